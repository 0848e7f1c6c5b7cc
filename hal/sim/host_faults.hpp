#pragma once

// Host faults, as the rest of the machine sees them (host_faults.cpp): the signal handlers a
// powered machine installs, the watchdog thread that run() keeps, and the marker that a fiber
// ended by a host fault hands the executor instead of its own continuation.

#include <pthread.h>
#include <time.h>

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>

namespace hal_sim {

class Machine;

// Its address is what a fiber passes to the executor when a host fault ended it.
extern int g_host_fault_marker;

// The SIGSEGV handler (the kernel touching what is not RAM, or overflowing a stack) and the
// watchdog's, on an alternate stack. Counted: machines may be powered in turn or at once.
void install_fault_handler();
void remove_fault_handler();

// While run() runs: a host thread that watches the executor's step counter against the
// executor thread's CPU time, and signals the executor when one step has used up
// `step_limit_ns` (watchdog_ns), and asks it to stop when the run has used up
// `run_limit_ns` (host_time_limit_ns) or when the process's resident memory is above
// `memory_limit_bytes` (host_memory_limit_bytes). CPU time, not wall time: a machine shared
// with other work, or a process stopped in gdb, does not trip it. 0: no such limit.
class Watchdog {
public:
    Watchdog(Machine& machine, uint64_t step_limit_ns, uint64_t run_limit_ns,
             uint64_t memory_limit_bytes);
    Watchdog(const Watchdog&) = delete;
    Watchdog& operator=(const Watchdog&) = delete;
    ~Watchdog();

private:
    uint64_t cpu_ns() const;
    void watch();

    Machine& m_machine;
    uint64_t m_limit_ns;
    uint64_t m_run_limit_ns;
    uint64_t m_memory_limit;
    static constexpr uint64_t kMemoryPeriodNs = 10'000'000;
    clockid_t m_clock{};
    pthread_t m_target{};
    std::thread m_thread;
    std::mutex m_mutex;
    std::condition_variable m_wake;
    bool m_done = false;
};

} // namespace hal_sim
