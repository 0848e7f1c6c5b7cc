// Host faults: the kernel touching host memory that is not its RAM or running into a stack's
// guard page (SIGSEGV), and one executor step that never reaches a preemption point (the
// watchdog's signal). Either stops the run with a verdict and leaves its signal handler by a
// switch to the executor, abandoning the fiber that was running.

#include "host_faults.hpp"

#include <hal_sim/hex.hpp>
#include <hal_sim/machine.hpp>
#include <hal_sim/race.hpp>
#include <hal_sim/seconds.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>
#ifdef DUET_SANITIZE
#include <sanitizer/asan_interface.h>
#endif
#include <ucontext.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

namespace hal_sim {

int g_host_fault_marker;

namespace {

struct sigaction s_old_segv;
struct sigaction s_old_watchdog;
stack_t s_old_altstack;
int s_handler_users = 0;
// NOTE: left uninitialised (not a zero-filled vector): a handler uses only its top, and
// zeroing all of it cost every duet process 64 page faults.
constexpr size_t kAltStackBytes = 256 * 1024;
std::unique_ptr<std::byte[]> s_altstack;

void on_segv(int sig, siginfo_t* info, void* context) {
    // Race builds: the simulator's code, on the faulting fiber (which it then abandons).
    race::SimulatorCode sim;
    auto* uc = static_cast<ucontext_t*>(context);
    // Page-fault error code bit 1: the access was a write.
    bool write = (uc->uc_mcontext.gregs[REG_ERR] & 2) != 0;
    Machine* m = Machine::current();
    if (m != nullptr && m->on_host_fault(info->si_addr, write)) {
        return; // not reached: on_host_fault switches to the executor
    }
    // Not the simulated machine's business: a bug in the simulator itself. Crash as usual.
    sigaction(sig, &s_old_segv, nullptr);
}

// The signal the Watchdog thread sends: ends a step that has run too long, if the machine
// agrees it is the same step; otherwise nothing.
constexpr int kWatchdogSignal = SIGUSR2;

void on_watchdog(int) {
    race::SimulatorCode sim;
    Machine* m = Machine::current();
    if (m != nullptr) {
        m->on_watchdog_signal(); // switches to the executor if it stops the run
    }
}

// The handlers leave by a fiber switch and never return: AddressSanitizer's poison for their
// frames would stay on the alternate stack, and the next fault's handler, on the same stack,
// was reported as using them after their scope (several faults in one process). Called just
// before that switch.
void forget_handler_frames() {
#ifdef DUET_SANITIZE
    __asan_unpoison_memory_region(s_altstack.get(), kAltStackBytes);
#endif
}

} // namespace

void install_fault_handler() {
    if (s_handler_users++ > 0) {
        return;
    }
    if (s_altstack == nullptr) {
        s_altstack.reset(new std::byte[kAltStackBytes]);
    }
    stack_t ss{};
    ss.ss_sp = s_altstack.get();
    ss.ss_size = kAltStackBytes;
    sigaltstack(&ss, &s_old_altstack);
    struct sigaction sa {};
    sa.sa_sigaction = &on_segv;
    // NOTE: SA_NODEFER because the handler leaves by switching fibers, never by returning,
    // so SIGSEGV must not stay blocked afterwards.
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, &s_old_segv);
    struct sigaction wd {};
    wd.sa_handler = &on_watchdog;
    wd.sa_flags = SA_ONSTACK | SA_NODEFER | SA_RESTART; // left by a fiber switch too
    sigemptyset(&wd.sa_mask);
    sigaction(kWatchdogSignal, &wd, &s_old_watchdog);
}

void remove_fault_handler() {
    if (--s_handler_users > 0) {
        return;
    }
    sigaction(SIGSEGV, &s_old_segv, nullptr);
    sigaction(kWatchdogSignal, &s_old_watchdog, nullptr);
    sigaltstack(&s_old_altstack, nullptr);
}

Watchdog::Watchdog(Machine& machine, uint64_t step_limit_ns, uint64_t run_limit_ns,
                   uint64_t memory_limit_bytes)
    : m_machine(machine), m_limit_ns(step_limit_ns), m_run_limit_ns(run_limit_ns),
      m_memory_limit(memory_limit_bytes) {
    if ((step_limit_ns == 0 && run_limit_ns == 0 && memory_limit_bytes == 0) ||
        pthread_getcpuclockid(pthread_self(), &m_clock) != 0) {
        return;
    }
    m_target = pthread_self();
    m_thread = std::thread([this] { watch(); });
}

Watchdog::~Watchdog() {
    if (!m_thread.joinable()) {
        return;
    }
    {
        std::lock_guard lock(m_mutex);
        m_done = true;
    }
    m_wake.notify_all();
    m_thread.join();
}

namespace {

// The process's resident memory now, from /proc/self/statm (open as `statm`).
uint64_t resident_bytes(int statm) {
    // /proc/self/statm: "size resident shared text lib data dt", in pages.
    char buf[128];
    ssize_t n = statm < 0 ? -1 : pread(statm, buf, sizeof buf - 1, 0);
    if (n > 0) {
        buf[n] = '\0';
        unsigned long long size = 0;
        unsigned long long resident = 0;
        if (std::sscanf(buf, "%llu %llu", &size, &resident) == 2) {
            return resident * static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
        }
    }
    // No /proc: the peak instead, which getrusage() brings up to date when asked.
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    return static_cast<uint64_t>(usage.ru_maxrss) * 1024;
}

} // namespace

uint64_t Watchdog::cpu_ns() const {
    timespec ts{};
    clock_gettime(m_clock, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000 + static_cast<uint64_t>(ts.tv_nsec);
}

void Watchdog::watch() {
    uint64_t step = ~uint64_t{0};
    uint64_t since = 0;
    uint64_t start = cpu_ns();
    std::unique_lock lock(m_mutex);
    // A tenth of the shorter limit between looks, at most a second: a hang, or the end of the
    // run's time, is caught within 10%.
    uint64_t shorter = std::min(m_limit_ns == 0 ? UINT64_MAX : m_limit_ns,
                                m_run_limit_ns == 0 ? UINT64_MAX : m_run_limit_ns);
    // NOTE: resident memory can grow by a gigabyte in a fraction of a second, so with a
    // memory limit it is looked at every 10 ms (a pread of a few bytes: no measurable cost).
    uint64_t period_ns = std::clamp<uint64_t>(shorter / 10, 1, 1'000'000'000);
    int statm = -1;
    if (m_memory_limit != 0) {
        period_ns = std::min<uint64_t>(period_ns, kMemoryPeriodNs);
        statm = ::open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    }
    auto period = std::chrono::nanoseconds(period_ns);
    while (!m_wake.wait_for(lock, period, [this] { return m_done; })) {
        uint64_t now_step = m_machine.steps_started();
        uint64_t now = cpu_ns();
        if (m_run_limit_ns != 0 && now - start >= m_run_limit_ns) {
            m_machine.request_timeout();
        }
        if (m_memory_limit != 0) {
            if (uint64_t rss = resident_bytes(statm); rss > m_memory_limit) {
                m_machine.request_out_of_memory(rss);
            }
        }
        if (m_limit_ns == 0) {
            continue;
        }
        if (now_step != step) {
            step = now_step;
            since = now;
        } else if (now - since >= m_limit_ns) {
            m_machine.request_hang_stop(step);
            pthread_kill(m_target, kWatchdogSignal);
            since = now; // again only after another full limit
        }
    }
    if (statm >= 0) {
        ::close(statm);
    }
}

bool Machine::on_watchdog_signal() {
    if (m_current == nullptr || m_borrowed || m_stopped ||
        __atomic_load_n(&m_hang_step, __ATOMIC_RELAXED) != m_steps) {
        return false;
    }
    SimCpu& c = *m_current;
    stop(Verdict::Hang,
         "cpu " + std::to_string(c.index) + " (" + c.context_name() + ") ran for " +
             seconds(m_config.watchdog_ns) +
             " s of host CPU time without reaching a preemption point: a kernel loop that "
             "never calls cpu_relax() or cpu_work() and never waits (its virtual clock stood at " +
             seconds(c.clock_ns) + " s)");
    // Leave the handler for the executor; the looping fiber is abandoned.
    forget_handler_frames();
    jump(c.executor, &g_host_fault_marker, m_executor_stack, true);
    std::abort(); // not reached
}

bool Machine::on_host_fault(const void* address, bool write) {
    if (m_current == nullptr || m_borrowed) {
        return false;
    }
    SimCpu& c = *m_current;
    bool ours = false;
    // The guard page is the one below the running context's stack.
    auto* a = static_cast<const std::byte*>(address);
    auto* bottom = static_cast<const std::byte*>(c.running->stack_bottom);
    size_t page = firmware::kPage;
    if (bottom != nullptr && a < bottom && a >= bottom - page) {
        stop(Verdict::StackOverflow, "kernel stack overflow on cpu " + std::to_string(c.index) +
                                         ": " + c.context_name() + " ran into its guard page");
        ours = true;
    }
    if (!ours && m_ram.contains(address)) {
        uint64_t pa = m_ram.phys_of(address);
        std::string what = "absent: no memory map entry covers it";
        bool read_only = false;
        for (const ReadOnlyRange& r : m_boot.read_only) {
            if (write && pa >= r.base && pa < r.end) {
                what = std::string(r.what) + ", which the " + firmware_name(m_boot.firmware) +
                       " loader maps read-only ([" + hex(r.base) + ", " + hex(r.end) + "))";
                read_only = true;
            }
        }
        for (const auto& e : m_config.memory) {
            if (!read_only && firmware::e820_counts(e) && pa >= e.base && pa - e.base < e.length) {
                what = e.type == firmware::kE820Usable
                           ? "in a page that is not wholly usable RAM"
                           : "reserved (E820 type " + std::to_string(e.type) + ", [" + hex(e.base) +
                                 ", " + hex(e.base + e.length) + "))";
                if (e.type != firmware::kE820Usable) {
                    break;
                }
            }
        }
        stop(Verdict::MemoryFault, std::string("cpu ") + std::to_string(c.index) + " (" +
                                       c.context_name() + ") " + (write ? "wrote" : "read") +
                                       " physical address " + hex(pa) + ", which is " + what);
        ours = true;
    }
    if (!ours) {
        return false;
    }
    // Leave the handler for the executor; the faulting fiber is abandoned.
    forget_handler_frames();
    jump(c.executor, &g_host_fault_marker, m_executor_stack, true);
    std::abort(); // not reached
}

} // namespace hal_sim
