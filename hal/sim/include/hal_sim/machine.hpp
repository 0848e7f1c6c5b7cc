#pragma once

// The simulated machine: CPUs as fibers on one host thread, each with its own virtual clock;
// RAM modelled from an E820 map; a one-shot timer and IPIs per CPU; a fake COM1; and the
// firmware that hands the core its BOOTBOOT information block. See docs/simulator.md.

#include <hal/context.hpp>
#include <hal/cpu.hpp>
#include <hal/fault.hpp>
#include <hal/types.hpp>
#include <hal_backend/inline.hpp>
#include <hal_sim/com1.hpp>
#include <hal_sim/fiber.hpp>
#include <hal_sim/firmware.hpp>
#include <hal_sim/mmu.hpp>
#include <hal_sim/physical_memory.hpp>
#include <hal_sim/rng.hpp>
#include <hal_sim/schedule.hpp>
#include <hal_sim/trace.hpp>

#include <core/boot/boot.hpp>

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace hal_sim {

// The kernel the machine runs: the core's entry points, or a test's.
struct KernelEntry {
    void (*boot_main)(const core::BootInfo&); // on the bootstrap CPU; must not return
    void (*ap_main)();                        // on the others once released; must not return
    void (*on_timer)();
    void (*on_ipi)(hal::IpiKind);
};

// The Duet core's entry points.
KernelEntry duet_kernel();

// Virtual costs of what the CPUs do, in nanoseconds. Only `relax`, `interrupt` and
// `context_switch` must be non-zero: they make spinning, interrupt storms and switch loops
// take time, so that a stuck machine is seen as stuck.
struct Costs {
    uint64_t relax = 20;           // one cpu_relax() (PAUSE)
    uint64_t interrupt = 100;      // entering an interrupt handler
    uint64_t context_switch = 200; // one context_switch()
    uint64_t ipi_latency = 1000;   // from send_ipi() to the earliest delivery
    uint64_t irq_op = 0;           // one irq_save() or irq_restore()
};

// Which faults to inject, with what probability (0 never, 1 always).
struct FaultRates {
    double frame_alloc = 0;   // hal::FaultPoint::FrameAlloc
    double heap_alloc = 0;    // hal::FaultPoint::HeapAlloc
    double timer_late = 0;    // a timer interrupt comes up to `late_max_ns` late
    double ipi_delay = 0;     // an IPI comes up to `late_max_ns` late
    double ipi_duplicate = 0; // an IPI is delivered twice
    uint64_t late_max_ns = 1'000'000;

    bool any() const;
};

struct MachineConfig {
    uint32_t cpus = 1;
    std::vector<firmware::E820Entry> memory;
    // The loader that boots the machine (hal_sim/firmware.hpp).
    Firmware firmware = Firmware::BootbootBios;
    // The environment page's text; the real loaders write "// N/A" when there is no config.
    std::string environment = "// N/A";
    // The initrd (a ustar archive): the loader boots the kernel ELF in its sys/core, the kernel
    // runs the workload in its sys/workload. Empty: one holding the stand-in kernel only
    // (model_kernel_file()).
    std::vector<uint8_t> initrd;
    // BOOTBOOT datetime (BCD). Fixed, so that runs are reproducible.
    std::array<uint8_t, 8> datetime{0x20, 0x26, 0x01, 0x01, 0x00, 0x00, 0x00, 0x00};
    uint64_t seed = 1;
    // How the executor interleaves the CPUs (hal_sim/schedule.hpp).
    Schedule schedule;
    Costs costs;
    FaultRates faults;
    // A CPU that only spins (cpu_relax) for this long without any other progress is livelocked.
    uint64_t livelock_ns = 100'000'000;
    // The run fails when the CPU furthest behind passes this virtual time...
    uint64_t time_limit_ns = 60'000'000'000;
    // ...and ends successfully when it reaches this one (a scenario's `run until=`).
    uint64_t stop_at_ns = UINT64_MAX;
    // Check the kernel's invariants (core/invariants.hpp) after every this many executor
    // steps, and when the run ends; 0: never. Every step in debug builds. Above 1, checks are
    // also spaced by their own cost: at least one step per thread (or heap page) checked.
    uint64_t check_every = kDefaultCheckEvery;
    // run() stops with Verdict::Hang when one executor step (one CPU running until its next
    // preemption point) has taken this much host CPU time: a kernel loop that never calls
    // cpu_relax(), cpu_work() or waits would otherwise hang the host. 0: never. Host CPU time,
    // so a process stopped in gdb does not count.
    uint64_t watchdog_ns = 30'000'000'000;
    // run() stops with Verdict::Timeout once the whole run has used this much host CPU time
    // (`duet run --timeout`); 0: never. Checked between executor steps, every tenth of it (at
    // most every second), so a run ends within 10% past it.
    uint64_t host_time_limit_ns = 0;
    // run() stops with Verdict::OutOfMemory once the host process's resident memory (its
    // RSS: simulated RAM the kernel touched, fiber stacks, the simulator's own heap) exceeds
    // this many bytes (`duet run --memory-limit`); 0: never. Sampled by the watchdog thread
    // every 10 ms and checked between executor steps, so a run ends a little past it.
    uint64_t host_memory_limit_bytes = 0;
#ifdef DUET_DEBUG
    static constexpr uint64_t kDefaultCheckEvery = 1;
#else
    static constexpr uint64_t kDefaultCheckEvery = 1024;
#endif
    KernelEntry kernel = duet_kernel();
};

enum class Verdict {
    Success,       // the kernel stopped the machine with ExitCode::Success
    Failure,       // the kernel stopped it with ExitCode::Failure
    Panic,         // the kernel stopped it with ExitCode::Panic
    Deadlock,      // no CPU can run and no interrupt is pending
    Livelock,      // a CPU spun for longer than livelock_ns without progress
    MemoryFault,   // the kernel touched physical memory that is not RAM
    StackOverflow, // a kernel stack ran into its guard page
    TimeLimit,     // time_limit_ns passed
    Invariant,     // the kernel's state broke one of its invariants (core/invariants.hpp)
    Hang,          // one step ran for watchdog_ns of host CPU time without a preemption point
    Race,          // race builds: ThreadSanitizer found two unordered accesses (docs/simulator.md)
    Timeout,       // the run used host_time_limit_ns of host CPU time
    OutOfMemory,   // the host process's resident memory passed host_memory_limit_bytes
    // A CPU resumed a context through a translation of its kernel stack that differs from the
    // one its stack was written through: a missing INVLPG or TLB shootdown (contexts.cpp)
    StaleTranslation,
};

const char* describe(Verdict v);

struct RunResult {
    Verdict verdict = Verdict::Deadlock;
    std::string detail; // what happened, for anything but Success: who waits for what
};

struct PendingIpi {
    uint64_t at_ns;
    hal::IpiKind kind;
};

struct SimCpu : FastCpu {
    enum class State {
        Parked,  // waiting to be released by the bootstrap CPU
        Running, // has work; the executor may resume it
        Idle,    // waits for an interrupt
        Off,     // stopped for good
    };

    State state = State::Parked;
    fctx::fcontext_t resume = nullptr;   // where this CPU continues
    fctx::fcontext_t executor = nullptr; // where it returns at a preemption point
    FiberStack boot_stack;               // the stack its firmware entry runs on
    std::string boot_name;               // "cpu N boot stack"
    hal::ArchContext boot_context;       // its firmware entry's: boot_name on boot_stack
    // The context it runs now (its name and stack, for reports and the guard-page check). A
    // pointer, so a switch stores one word, not a copy of both.
    hal::ArchContext* running = &boot_context;
    uint64_t spin_since_ns = 0; // start of the current run of cpu_relax() calls
    bool spinning = false;
    static constexpr uint64_t kNever = UINT64_MAX;
    uint64_t timer_deadline_ns = kNever;
    std::vector<PendingIpi> ipis; // in delivery order

    // Executor bookkeeping (its place in the executor's heap: Machine::heap_pos()).
    uint64_t tie_break = 0;
    uint64_t steps = 0;
    uint64_t context_switches = 0;
    uint64_t idle_ns = 0; // virtual time spent waiting for an interrupt
    MmuState mmu;         // CR3, PAT, TLB flush counts: hal_sim/mmu.hpp
    // Runs a user program's code (hal/sim/user.cpp): between hal::enter_user() or the return
    // of a system call and the next system call or user fault.
    bool user_mode = false;

    StackBounds stack() const {
        return {running->stack_bottom, running->stack_size, running->race_fiber};
    }
    const char* context_name() const { return running->name; }
};

// A stop the debugger asked for (tools/gdb/duet.py, `duet break-time`): the first time a CPU
// (`cpu`, or any) reaches `ns` of virtual time, inside cpu_work() or at a preemption point,
// the simulator calls time_break_reached(), where the debugger has its breakpoint. The
// debugger writes it; the simulator only disarms it once reached. Unarmed, a run does exactly
// what it does without a debugger.
struct TimeBreak {
    static constexpr uint64_t kNever = UINT64_MAX;
    static constexpr uint32_t kAnyCpu = UINT32_MAX;
    uint64_t ns = kNever;
    uint32_t cpu = kAnyCpu;
};
extern TimeBreak g_time_break;
// Does nothing: the debugger's breakpoint. Called once g_time_break is reached (and disarmed),
// on the CPU that reached it, whose clock is then `ns`.
void time_break_reached(uint32_t cpu, uint64_t ns);

// The machine. Its member functions are defined by concern: building, power-on and the run
// loop in machine.cpp; the executor in executor.cpp; interrupts in interrupts.cpp; thread
// contexts in contexts.cpp; host faults in host_faults.cpp; fault injection in
// fault_injection.cpp; how a run ends in verdict.cpp.
class Machine {
public:
    // Builds the machine and lets its firmware write the boot information into RAM.
    // Throws ConfigError if the configuration cannot be built.
    explicit Machine(MachineConfig config);
    Machine(const Machine&) = delete;
    Machine& operator=(const Machine&) = delete;
    ~Machine();

    // Powers the machine on (if it is not yet) and runs it until it stops.
    RunResult run();
    // One executor step: resumes the CPU furthest behind until its next preemption point.
    // False once the machine has stopped (result() says why).
    bool step();
    bool stopped() const { return m_stopped; }
    const RunResult& result() const { return m_result; }

    // The machine whose CPU is running (or that a CpuScope borrowed), or null.
    static Machine* current() { return s_current; }
    // The machine built last and not yet destroyed, running or not: what the gdb helpers
    // (tools/gdb/duet.py) show when no CPU is running.
    static Machine* last_built() { return s_last_built; }

    const MachineConfig& config() const { return m_config; }
    Com1& com1() { return m_com1; }
    PhysicalMemory& ram() { return m_ram; }
    // What the firmware did: where it put everything, the kernel's layout.
    const BootState& boot_state() const { return m_boot; }
    const core::BootInfo& boot_info() const { return m_boot_info; }
    // For tests that hand the kernel broken boot information: the bootboot page, made
    // writable again (the firmware hands it over read-only).
    bootboot_abi::Info* writable_boot_info();
    uint32_t cpu_count() const { return static_cast<uint32_t>(m_cpus.size()); }
    const SimCpu& cpu(uint32_t i) const { return *m_cpus[i]; }
    uint64_t executor_steps() const { return m_steps; }
    // Synchronisation points reached (under a schedule that stops at them), and the stalls
    // the schedule made there, with their total virtual time.
    uint64_t sync_points() const { return m_sync_points; }
    uint64_t stalls() const { return m_stalls; }
    uint64_t stall_ns() const { return m_stall_ns; }
    // Invariant checks made, and structures they skipped because a CPU held their lock.
    uint64_t invariant_checks() const { return m_invariant_checks; }
    uint64_t invariant_skips() const { return m_invariant_skips; }
    // The simulator's own log (injected faults and the like), one line each.
    const std::vector<std::string>& events() const { return m_events; }
    // Called with each line as it is added to events().
    void set_event_sink(std::function<void(const std::string&)> sink) {
        m_event_sink = std::move(sink);
    }
    // Receives every trace event of the run (hal/trace.hpp, injected faults) as it happens,
    // with its CPU and virtual time. The kernel only traces when its environment says
    // duet.trace=1.
    void set_trace_sink(std::function<void(const TraceRecord&)> sink) {
        m_trace_sink = std::move(sink);
    }
    // The HAL's trace functions: stamps `r` with the current CPU and its clock.
    void trace(TraceRecord& r) {
        if (m_trace_sink && m_current != nullptr) {
            r.cpu = m_current->index;
            r.ns = m_current->clock_ns;
            m_trace_sink(r);
        }
    }
    // Receives the summary of every thread that exits (hal::thread_exited), traced or not,
    // when it exits. The summary's name is only valid during the call.
    void set_exit_sink(std::function<void(const hal::ThreadSummary&)> sink) {
        m_exit_sink = std::move(sink);
    }
    void thread_exited(const hal::ThreadSummary& summary) {
        if (m_exit_sink) {
            m_exit_sink(summary);
        }
    }

    // For tests: makes CPU `cpu` of this machine current outside run(), so that core code
    // that never waits (bookkeeping on one CPU: allocators, parsers) can be called directly.
    // Reaching a preemption point inside such a scope is a test bug and aborts.
    class CpuScope {
    public:
        CpuScope(Machine& machine, uint32_t cpu);
        CpuScope(const CpuScope&) = delete;
        CpuScope& operator=(const CpuScope&) = delete;
        ~CpuScope();
    };

    // --- What the HAL functions do, on the calling CPU's fiber. ---
    SimCpu& current_cpu() { return *m_current; }
    // Preemption points (executor.cpp).
    void cpu_relax();
    void cpu_work(uint64_t ns);
    // hal::sync_point() under a schedule that stops there: may stall the CPU and let others
    // run first.
    void sync_point();
    // Charges the calling CPU `ns` of virtual time without a preemption point.
    void charge(uint64_t ns) { m_current->clock_ns += ns; }
    // Interrupts (interrupts.cpp).
    void wait_for_interrupt();
    void timer_arm(uint64_t deadline_ns);
    void send_ipi(uint32_t target, hal::IpiKind kind);
    // Power-on (machine.cpp): the bootstrap CPU lets the others enter the kernel.
    void release_secondary_cpus();
    // Thread contexts (contexts.cpp).
    void context_init(hal::ArchContext& ctx, uint64_t stack_base, size_t stack_size,
                      hal::ContextEntry entry, void* arg, const char* name);
    void context_release(hal::ArchContext& ctx);
    hal::ArchContext& context_switch(hal::ArchContext& from, hal::ArchContext& to);
    // Fault injection (fault_injection.cpp).
    bool inject_fault(hal::FaultPoint point);
    // The kernel stops the machine (verdict.cpp).
    [[noreturn]] void halt(hal::ExitCode code);

    // --- Host faults (host_faults.cpp), for its signal handlers and watchdog thread. ---
    // The SIGSEGV handler's view: called with the faulting host address; true if it is the
    // simulated machine's business (then the run stops with a report).
    bool on_host_fault(const void* address, bool write);
    // For the watchdog (another host thread): the executor step under way, and a request to
    // end it if it is still `step` when the request reaches the executor's thread.
    uint64_t steps_started() const { return __atomic_load_n(&m_steps, __ATOMIC_RELAXED); }
    void request_hang_stop(uint64_t step) {
        __atomic_store_n(&m_hang_step, step, __ATOMIC_RELAXED);
    }
    // The executor's thread, in the watchdog's signal: stops a run whose step `m_hang_step`
    // is still under way. False if there is nothing to stop.
    bool on_watchdog_signal();
    // For the watchdog: the run has used up its host time; the executor stops before its
    // next step.
    void request_timeout() { request_limit_stop(kTimeLimitReached); }
    // For the watchdog: the process's resident memory was `rss_bytes`, over its limit; the
    // executor stops before its next step. Whichever limit is reached first names the verdict.
    void request_out_of_memory(uint64_t rss_bytes) {
        __atomic_store_n(&m_rss_at_limit, rss_bytes, __ATOMIC_RELAXED);
        request_limit_stop(kMemoryLimitReached);
    }

    // --- Race builds (race.cpp): ThreadSanitizer reported `what` on the running CPU. ---
    void race_found(const std::string& what);

private:
    // Kernel stacks' translations (contexts.cpp). The frame through which `cpu` reaches the
    // kernel stack page at `va` by a walk of its tables, which it then caches;
    // StackTlb::kNone if they do not map it.
    uint64_t walk_stack_page(SimCpu& cpu, uint64_t va);
    // Before `cpu` resumes `to`, whose stack's top page `cpu` does not reach through the frame
    // it was written through (`cached`: what its cache holds, or StackTlb::kNone): stops the
    // run unless a walk shows it does.
    void check_stack_translation(SimCpu& cpu, const hal::ArchContext& to, uint64_t cached);
    // The stale translation verdict's detail: `cpu` reaches `to`'s stack in `frame`.
    std::string stale_stack_detail(SimCpu& cpu, const hal::ArchContext& to, uint64_t frame);

    // --- Building and power-on (machine.cpp). ---
    void write_boot_information();
    void power_on();
    // Each CPU's boot fiber (duet_fiber_start_cpu): enters the kernel as its loader would.
    friend void duet_sim_cpu_entry(fctx::transfer_t from);

    // --- The executor (executor.cpp). ---
    void preemption_point();
    // Whether the debugger's time break is for CPU `c` once its clock is `clock`; reaching it
    // disarms it and calls time_break_reached().
    static bool time_break_due(const SimCpu& c, uint64_t clock);
    static void reach_time_break(const SimCpu& c);
    // The stall the schedule makes at the synchronisation point just counted (0: none).
    uint64_t choose_stall(const SimCpu& cpu);
    // input: the choices due at this point; the stall they make (0: none).
    uint64_t input_choices(const SimCpu& cpu);
    // The earliest ready time of a CPU other than `cpu` (the running one), or kNever.
    uint64_t next_other_ready(const SimCpu& cpu) const;
    // Inline, for the context switch: executor.hpp.
    inline bool still_first(const SimCpu& cpu);
    void update_next_event(SimCpu& cpu);
    // Indexed binary min-heap of CPUs by (ready time, tie_break, index).
    uint64_t ready_time(const SimCpu& cpu) const {
        return cpu.state == SimCpu::State::Idle ? cpu.next_event_ns : cpu.clock_ns;
    }
    // A CPU's place in the heap, or -1 when it is not there.
    int heap_pos(const SimCpu& cpu) const { return m_heap_pos[cpu.index]; }
    // The heap's entry for the CPU at `i`: its ready time as last entered.
    uint64_t heap_ready(size_t i) const { return m_heap[i].ready; }
    void refresh_running_key();
    struct HeapEntry;
    static bool heap_less(const HeapEntry& a, const HeapEntry& b);
    void heap_update(SimCpu& cpu);
    void heap_remove(SimCpu& cpu);
    void heap_sift_up(size_t i);
    void heap_sift_down(size_t i);
    void heap_place(size_t i, const HeapEntry& e);

    // --- Interrupts (interrupts.cpp). ---
    friend void deliver_pending_now();
    void deliver_pending();

    // --- Thread contexts (contexts.cpp). ---
    // A new context's fiber (duet_fiber_start_context): runs its entry.
    friend void duet_sim_context_entry(fctx::transfer_t from);

    // --- Fault injection (fault_injection.cpp). ---
    // Whether the interrupt model's faults strike: the deadline a timer armed for
    // `deadline_ns` fires at, how much later an IPI to `target` comes, whether it comes twice.
    uint64_t fault_timer_late(uint64_t deadline_ns);
    uint64_t fault_ipi_delay(uint32_t target);
    bool fault_ipi_duplicate(uint32_t target);
    // Whether a fault with this rate strikes now: drawn from the fault generator, or under an
    // input schedule, whether the input armed it (`*armed`, cleared when it strikes).
    bool fault_strikes(double rate, bool* armed);
    // How late a late fault comes: drawn, or what the input armed.
    uint64_t fault_lateness(uint64_t armed_ns);
    void log_event(const std::string& line);

    // --- How the run ends (verdict.cpp). ---
    void stop(Verdict verdict, std::string detail);
    // Race builds: the executor joins every fiber (hal_sim/race.hpp), once the run is over.
    void join_race_fibers();
    // Checks the kernel's invariants now (every CPU is stopped at a preemption point); on a
    // broken one the run stops with Verdict::Invariant, naming `last`, the CPU that ran last.
    bool check_invariants(const SimCpu* last);
    std::string describe_cpus() const;
    std::string where(const SimCpu& cpu) const;

    static inline Machine* s_current = nullptr;
    static inline Machine* s_last_built = nullptr;

    // The machine as built, and a CpuScope's loan of one of its CPUs.
    MachineConfig m_config;
    PhysicalMemory m_ram;
    BootState m_boot;
    core::BootInfo m_boot_info{};
    Com1 m_com1;
    std::vector<std::unique_ptr<SimCpu>> m_cpus;
    bool m_powered = false;
    bool m_image_loaded = false; // the core's data reset for this machine
    bool m_borrowed = false;     // a CpuScope is active
    bool m_borrowed_irq = false; // the borrowed CPU's interrupt flag, given back after

    // The executor. Its heap holds each CPU's sort key beside it, so that sifting reads one
    // array rather than a cache line of each CPU it passes (256 of them, mostly cold); the
    // places are kept apart from the CPUs for the same reason. A key is entered by
    // heap_update() and is the CPU's ready time but for the running CPU's, whose clock moves
    // as it runs: refresh_running_key() enters it before the heap is touched.
    struct HeapEntry {
        uint64_t ready;
        uint64_t tie_break;
        uint32_t index;
        SimCpu* cpu;
    };
    std::vector<HeapEntry> m_heap;
    std::vector<int> m_heap_pos; // by CPU index
    SimCpu* m_current = nullptr;
    Rng m_schedule_rng;
    uint64_t m_clock_end = UINT64_MAX; // from the config: still_first() asks on every switch
    // still_first() holds while the running CPU's clock is below this (0: work it out).
    uint64_t m_first_until = 0;
    uint64_t m_steps = 0;
    StackBounds m_executor_stack;

    // The schedule's choices at synchronisation points (its own generator, so that `coarse`
    // draws exactly what it always did), and what it did.
    Rng m_sync_rng;
    std::vector<uint64_t> m_change_points; // pct: the ordinals of its change points, sorted
    size_t m_next_change = 0;
    uint64_t m_sync_points = 0;
    uint64_t m_stalls = 0;
    uint64_t m_stall_ns = 0;
    // input: the records not yet acted on, the next one, and what they armed for later.
    ScheduleInput m_input;
    std::optional<InputChoice> m_next_choice;
    uint64_t m_input_points = 0; // the points that count for its records
    struct Armed {
        uint64_t timer_latency_ns = 0; // the next timer armed comes this late
        bool frame_alloc = false;      // faults that strike at their next chance
        bool heap_alloc = false;
        bool timer_late = false;
        bool ipi_delay = false;
        bool ipi_duplicate = false;
        uint64_t timer_late_ns = 0; // and how late, for the late ones
        uint64_t ipi_delay_ns = 0;
    } m_armed;

    // How the run ended, and the invariant checks.
    bool m_stopped = false;
    RunResult m_result;
    uint64_t m_invariant_checks = 0;
    uint64_t m_next_check = 0; // the executor step after which the next check runs
    uint64_t m_invariant_skips = 0;

    // Host faults.
    uint64_t m_hang_step = 0; // the step the watchdog asked to stop (0: none)
    // Which host limit the watchdog found used up: the executor reads one byte a step.
    static constexpr uint8_t kNoLimitReached = 0;
    static constexpr uint8_t kTimeLimitReached = 1;
    static constexpr uint8_t kMemoryLimitReached = 2;
    uint8_t m_limit_reached = kNoLimitReached;
    uint64_t m_rss_at_limit = 0; // what the watchdog measured, for the verdict's detail
    void request_limit_stop(uint8_t limit) {
        uint8_t none = kNoLimitReached;
        // Release: the executor that sees the memory limit also sees m_rss_at_limit.
        __atomic_compare_exchange_n(&m_limit_reached, &none, limit, false, __ATOMIC_RELEASE,
                                    __ATOMIC_RELAXED);
    }

    // Fault injection, its event log, and the trace.
    Rng m_fault_rng;
    std::vector<std::string> m_events;
    std::function<void(const std::string&)> m_event_sink;
    std::function<void(const TraceRecord&)> m_trace_sink;
    std::function<void(const hal::ThreadSummary&)> m_exit_sink;

    // Thread contexts: host stacks of kernel threads, where they are carved from (it outlives
    // them), all of them and those free for reuse.
    StackArena m_stack_arena;
    std::vector<std::unique_ptr<FiberStack>> m_stacks;
    std::vector<FiberStack*> m_free_stacks;
};

} // namespace hal_sim
