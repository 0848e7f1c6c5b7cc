// The race detector (duet run --race; docs/simulator.md, "Races"): ThreadSanitizer's fibers
// for the machine's contexts, its options, and the hook through which its reports become the
// verdict `race`. Only in race builds (DUET_RACE); elsewhere hal_sim/race.hpp's inline
// functions stand in.

#ifdef DUET_RACE

#include <hal_sim/machine.hpp>
#include <hal_sim/race.hpp>
#include <hal_sim/seconds.hpp>

#include <sanitizer/tsan_interface.h>
#include <sys/personality.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>

// Not in the runtime's public headers: its annotations for ignored regions, its debugging
// interface (tsan_debugging.cpp) and the symbolizer's.
extern "C" {
void AnnotateIgnoreSyncBegin(const char* file, int line);
void AnnotateIgnoreSyncEnd(const char* file, int line);
void* __tsan_get_current_report();
int __tsan_get_report_data(void* report, const char** description, int* count, int* stack_count,
                           int* mop_count, int* loc_count, int* mutex_count, int* thread_count,
                           int* unique_tid_count, void** sleep_trace, unsigned long trace_size);
int __tsan_get_report_mop(void* report, unsigned long idx, int* tid, void** addr, int* size,
                          int* write, int* atomic, void** trace, unsigned long trace_size);
int __tsan_get_report_thread(void* report, unsigned long idx, int* tid, unsigned long long* os_id,
                             int* running, const char** name, int* parent_tid, void** trace,
                             unsigned long trace_size);
void __sanitizer_symbolize_pc(void* pc, const char* fmt, char* out_buf, size_t out_buf_size);
}

namespace hal_sim::race {

namespace {

// Runs `f` as `fiber` for ThreadSanitizer, without synchronising (and without switching
// stacks: its fiber switch only changes whose clock and state count).
template <typename F>
void as_fiber(void* fiber, F f) {
    void* self = __tsan_get_current_fiber();
    __tsan_switch_to_fiber(fiber, __tsan_switch_to_fiber_no_sync);
    f();
    __tsan_switch_to_fiber(self, __tsan_switch_to_fiber_no_sync);
}

} // namespace

void* create_fiber(const char* name) {
    void* fiber = __tsan_create_fiber(0);
    __tsan_set_fiber_name(fiber, name);
    // NOTE: a fiber is only ever suspended inside the simulator's code, in a SimulatorCode
    // scope: the ignore it opened is then open, and the runtime kills the process when a fiber
    // ends with one open. A new fiber starts in the simulator's code too: inside one opened
    // here, which destroy_fiber() closes, as for every fiber.
    as_fiber(fiber, [] { __tsan_ignore_thread_begin(); });
    return fiber;
}

void destroy_fiber(void* fiber) {
    as_fiber(fiber, [] { __tsan_ignore_thread_end(); });
    __tsan_destroy_fiber(fiber);
}

void release(void* sync) {
    __tsan_release(sync);
}

void acquire(void* sync) {
    __tsan_acquire(sync);
}

void name_fiber(void* fiber, uint32_t cpu, const char* name) {
    char text[64];
    std::snprintf(text, sizeof text, "cpu %u: %s", cpu, name);
    __tsan_set_fiber_name(fiber, text);
}

void* current_fiber() {
    return __tsan_get_current_fiber();
}

void join_fiber(void* fiber) {
    if (fiber == nullptr) {
        return;
    }
    // NOTE: ThreadSanitizer's fiber switch only changes whose clock counts; no stack changes.
    // There and back, both synchronising: the caller then happens after all `fiber` did.
    void* self = __tsan_get_current_fiber();
    __tsan_switch_to_fiber(fiber, 0);
    __tsan_switch_to_fiber(self, 0);
}

Blind::Blind() {
    __tsan_ignore_thread_begin();
    AnnotateIgnoreSyncBegin(__FILE__, __LINE__);
}

Blind::~Blind() {
    AnnotateIgnoreSyncEnd(__FILE__, __LINE__);
    __tsan_ignore_thread_end();
}

namespace {

// "FILE:LINE in FUNCTION" of a report's frame, the source path relative to the project.
std::string frame_text(void* pc) {
    char text[512];
    __sanitizer_symbolize_pc(pc, "%s:%l in %f", text, sizeof text);
    return text;
}

// One access of the report: "a write at FILE:LINE in FUNCTION" (no address: the verdict must
// be the same in every run of one seed).
struct Access {
    std::string text;
    int tid = -1;
};

Access access(void* report, unsigned long i) {
    int tid = 0;
    void* addr = nullptr;
    int size = 0;
    int write = 0;
    int atomic = 0;
    void* trace[1] = {nullptr};
    __tsan_get_report_mop(report, i, &tid, &addr, &size, &write, &atomic, trace, 1);
    Access a;
    a.tid = tid;
    a.text = std::string(atomic ? "an atomic " : "a ") + (write ? "write" : "read") + " of " +
             std::to_string(size) + " bytes at " +
             (trace[0] != nullptr ? frame_text(trace[0]) : "an unknown place");
    return a;
}

// The name ThreadSanitizer has for thread `tid` of the report: "cpu N: CONTEXT".
std::string thread_name(void* report, int threads, int tid) {
    for (int i = 0; i < threads; ++i) {
        int id = 0;
        unsigned long long os_id = 0;
        int running = 0;
        const char* name = nullptr;
        int parent = 0;
        void* trace[1] = {nullptr};
        __tsan_get_report_thread(report, static_cast<unsigned long>(i), &id, &os_id, &running,
                                 &name, &parent, trace, 1);
        if (id == tid) {
            return name != nullptr && *name != '\0' ? name : "the executor or a host thread";
        }
    }
    return "an unknown context";
}

// What ThreadSanitizer reported, in one line.
std::string describe_report(const char* summary) {
    void* report = __tsan_get_current_report();
    if (report == nullptr) {
        return summary;
    }
    const char* description = nullptr;
    int count = 0;
    int stacks = 0;
    int mops = 0;
    int locs = 0;
    int mutexes = 0;
    int threads = 0;
    int unique_tids = 0;
    void* sleep[1] = {nullptr};
    __tsan_get_report_data(report, &description, &count, &stacks, &mops, &locs, &mutexes, &threads,
                           &unique_tids, sleep, 1);
    std::string what = description != nullptr ? description : "report";
    if (mops == 0) {
        // Not a race between two accesses (ThreadSanitizer checks more): its summary line.
        const char* prefix = "SUMMARY: ThreadSanitizer: ";
        return std::strncmp(summary, prefix, std::strlen(prefix)) == 0
                   ? summary + std::strlen(prefix)
                   : summary;
    }
    std::string text = access(report, 0).text;
    if (mops > 1) {
        Access other = access(report, 1);
        text += ", unordered with " + other.text + " by '" +
                thread_name(report, threads, other.tid) + "' (the CPU it ran on last)";
    }
    return what + ": " + text;
}

} // namespace

} // namespace hal_sim::race

namespace hal_sim {

void Machine::race_found(const std::string& what) {
    if (m_current == nullptr || m_borrowed) {
        return;
    }
    SimCpu& c = *m_current;
    stop(Verdict::Race, "cpu " + std::to_string(c.index) + " (" + c.context_name() + ") at " +
                            seconds(c.clock_ns) + " s: " + what +
                            "\n(ThreadSanitizer's report, with both stacks, is on stderr)");
}

} // namespace hal_sim

namespace {

// NOTE: ThreadSanitizer leaves host mappings about 1.5 TiB below the libraries and the stack,
// and with address-space randomisation the libraries land anywhere in the top TiB of it: the
// simulated RAM's reservation (1 TiB for QEMU's q35 map, whose last reserved entry ends
// there) failed with ENOMEM in about half the runs. So the race build runs without
// randomisation, as under gdb: it starts itself again once, before main(). (glibc passes
// initialisers the program's arguments.)
void run_without_aslr(int, char** argv, char**) {
    int persona = personality(0xffffffff);
    if (persona == -1 || (persona & ADDR_NO_RANDOMIZE) != 0 ||
        personality(static_cast<unsigned long>(persona) | ADDR_NO_RANDOMIZE) == -1) {
        return;
    }
    execv("/proc/self/exe", argv);
    // Could not: go on with randomisation; a big memory map may not fit.
    personality(static_cast<unsigned long>(persona));
}

__attribute__((section(".init_array"),
               used)) void (*const s_run_without_aslr)(int, char**, char**) = &run_without_aslr;

} // namespace

// ThreadSanitizer's options for the race build (TSAN_OPTIONS adds to them and wins).
extern "C" const char* __tsan_default_options() {
    // halt_on_error=0: the run goes on to the CPU's next preemption point and ends there, with
    // the verdict race. report_signal_unsafe=0: the simulator's SIGSEGV handler (a memory
    // fault is a verdict) allocates. suppress_equal_*=0: a second machine in the process
    // reports what the first did (--verify-determinism). history_size=7: the other access's
    // stack is found even long after. exitcode=1: a failed run, as any other verdict.
    return "halt_on_error=0:report_signal_unsafe=0:suppress_equal_stacks=0:"
           "suppress_equal_addresses=0:history_size=7:exitcode=1:strip_path_prefix=" DUET_SOURCE_DIR
           "/";
}

// Called by the runtime at the end of each report it prints, on the fiber that made the
// second access: the running CPU's machine stops with the verdict race.
extern "C" void __sanitizer_report_error_summary(const char* summary) {
    std::fprintf(stderr, "%s\n", summary);
    hal_sim::Machine* m = hal_sim::Machine::current();
    if (m != nullptr) {
        m->race_found(hal_sim::race::describe_report(summary));
    }
}

#endif
