#pragma once

// The race detector's side of the machine (duet run --race; docs/simulator.md, "Races"). In the
// race build (DUET_RACE) the core is compiled with ThreadSanitizer and every fiber a kernel
// context runs on is a ThreadSanitizer fiber: the machine creates, names, switches (fiber.hpp,
// jump()) and destroys them through these functions. In other builds they do nothing.

#include <cstdint>

#ifdef DUET_RACE
extern "C" void __tsan_ignore_thread_begin();
extern "C" void __tsan_ignore_thread_end();
#endif

namespace hal_sim::race {

#ifdef DUET_RACE
inline constexpr bool kBuilt = true;
#else
inline constexpr bool kBuilt = false;
#endif

#ifdef DUET_RACE

// A new fiber for a context called `name`. It starts after everything the calling fiber did
// so far, as a thread starts after its creator, and inside the simulator's code (a
// SimulatorCode scope of its own), which is where every fiber is suspended.
void* create_fiber(const char* name);
void destroy_fiber(void* fiber);
// A release on `sync` by the calling fiber, and an acquire: what the simulator does for the
// kernel where the bare-metal HAL synchronises (hal::release_secondary_cpus()).
void release(void* sync);
void acquire(void* sync);
// Names `fiber` "cpu N: NAME" for ThreadSanitizer's reports: the CPU it runs on now.
void name_fiber(void* fiber, uint32_t cpu, const char* name);
// The calling host thread's fiber: the executor's.
void* current_fiber();
// Orders the calling fiber after everything `fiber` did so far, as joining a thread does.
// For the executor, once a run is over: it then reads what the CPUs left and frees what they
// touched, and the next machine's fibers start after all of it.
void join_fiber(void* fiber);

// While it lives, ThreadSanitizer sees neither the calling fiber's memory accesses nor its
// synchronisation: the executor reading kernel state between steps (invariant checks) must
// neither race with the CPUs nor order them.
class Blind {
public:
    Blind();
    Blind(const Blind&) = delete;
    Blind& operator=(const Blind&) = delete;
    ~Blind();
};

// hal::racy_reads_begin() and hal::racy_reads_end(): the kernel's deliberately unordered reads.
inline void ignore_begin() {
    __tsan_ignore_thread_begin();
}
inline void ignore_end() {
    __tsan_ignore_thread_end();
}

// While it lives, ThreadSanitizer does not see the calling fiber's memory accesses: for the
// simulator's own code on a CPU's fiber (the HAL's functions, a fiber's start), whose
// bookkeeping is shared between the fibers on purpose and is not the kernel's. Its code is not
// instrumented, but what it calls in the runtime is: malloc, free, memcpy and the like.
class SimulatorCode {
public:
    SimulatorCode() { __tsan_ignore_thread_begin(); }
    SimulatorCode(const SimulatorCode&) = delete;
    SimulatorCode& operator=(const SimulatorCode&) = delete;
    ~SimulatorCode() { __tsan_ignore_thread_end(); }
};

// The other way round, inside a SimulatorCode scope: the kernel's code, called by the
// simulator (its entry points, interrupt handlers), is seen again.
class KernelCode {
public:
    KernelCode() { __tsan_ignore_thread_end(); }
    KernelCode(const KernelCode&) = delete;
    KernelCode& operator=(const KernelCode&) = delete;
    ~KernelCode() { __tsan_ignore_thread_begin(); }
};

#else

inline void* create_fiber(const char*) {
    return nullptr;
}
inline void destroy_fiber(void*) {}
inline void release(void*) {}
inline void acquire(void*) {}
inline void name_fiber(void*, uint32_t, const char*) {}
inline void* current_fiber() {
    return nullptr;
}
inline void join_fiber(void*) {}
inline void ignore_begin() {}
inline void ignore_end() {}

class Blind {
public:
    Blind() {}
    Blind(const Blind&) = delete;
    Blind& operator=(const Blind&) = delete;
    ~Blind() {} // user-provided: a scope's variable is not unused
};

class SimulatorCode {
public:
    SimulatorCode() {}
    SimulatorCode(const SimulatorCode&) = delete;
    SimulatorCode& operator=(const SimulatorCode&) = delete;
    ~SimulatorCode() {} // user-provided: a scope's variable is not unused
};

class KernelCode {
public:
    KernelCode() {}
    KernelCode(const KernelCode&) = delete;
    KernelCode& operator=(const KernelCode&) = delete;
    ~KernelCode() {} // user-provided: a scope's variable is not unused
};

#endif

} // namespace hal_sim::race
