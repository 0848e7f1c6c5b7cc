#pragma once

// Fibers for the simulated machine: a guarded stack and the raw Boost.Context switch.
// We use the fcontext layer directly: it is the cheapest switch Boost offers, it never
// unwinds a fiber we abandon (a halted CPU simply stays suspended), and it leaves the
// sanitizer annotations to us.

#include <boost/context/detail/fcontext.hpp>

#include <cstddef>
#include <cstdint>
#include <vector>

#ifdef DUET_SANITIZE
#include <sanitizer/common_interface_defs.h>
#endif
#ifdef DUET_RACE
#include <sanitizer/tsan_interface.h>
#endif

namespace hal_sim {

namespace fctx = boost::context::detail;

// jump_fcontext, entered so that the host's return-stack predictions survive the switch
// (fiber_switch.S says how).
extern "C" fctx::transfer_t duet_jump_fcontext(fctx::fcontext_t to, void* data);

// Where fibers begin (fiber_switch.S): given to make_fcontext() as the fiber's function, each
// calls its entry below, and is the outermost frame of the fiber's stack for debuggers.
extern "C" void duet_fiber_start_cpu(fctx::transfer_t from);     // a CPU's boot fiber
extern "C" void duet_fiber_start_context(fctx::transfer_t from); // a kernel thread's context
// The entries (machine.cpp, contexts.cpp); they never return.
extern "C" [[noreturn]] void duet_sim_cpu_entry(fctx::transfer_t from);
extern "C" [[noreturn]] void duet_sim_context_entry(fctx::transfer_t from);

// What the sanitizers must be told of the fiber a switch goes to: its stack's extent
// (AddressSanitizer) and its ThreadSanitizer fiber (race builds, hal_sim/race.hpp).
struct StackBounds {
    const void* bottom = nullptr;
    size_t size = 0;
    void* race_fiber = nullptr;
};

// How a switch enters jump_fcontext. Through duet_jump_fcontext (Entry::Alike) when both
// sides run the same code, as two kernel contexts switching in hal::context_switch do: the
// thunk's `ret` and the resumed side's returns after it are then predicted. Directly
// (Entry::Across) between the executor and a CPU, whose code differs: there the thunk's `ret`
// is predicted into the switching side's caller and every return after it misses; measured,
// an executor step cost 3.7x the raw switch through the thunk and 2.6x without it.
enum class Entry { Alike, Across };

// The raw switch, annotated for AddressSanitizer in sanitizer builds and for ThreadSanitizer in
// race builds (free otherwise). `dying` says the calling fiber will never be resumed.
inline fctx::transfer_t jump(fctx::fcontext_t to, void* data, const StackBounds& target,
                             bool dying = false, Entry entry = Entry::Alike) {
#ifdef DUET_SANITIZE
    void* fake_stack = nullptr;
    __sanitizer_start_switch_fiber(dying ? nullptr : &fake_stack, target.bottom, target.size);
#else
    (void)target;
    (void)dying;
#endif
#ifdef DUET_RACE
    // NOTE: only a context switch (two kernel contexts on one simulated CPU, Entry::Alike, the
    // caller going on later) orders what ran before it with what runs after: it is program
    // order on one real CPU. Between the executor and a CPU (Entry::Across, and the dying
    // jumps back to the executor) nothing is ordered, so that two simulated CPUs are ordered
    // only by the kernel's own atomics and locks.
    if (target.race_fiber != nullptr) {
        __tsan_switch_to_fiber(target.race_fiber, entry == Entry::Alike && !dying
                                                      ? 0
                                                      : __tsan_switch_to_fiber_no_sync);
    }
#endif
    fctx::transfer_t t =
        entry == Entry::Alike ? duet_jump_fcontext(to, data) : fctx::jump_fcontext(to, data);
#ifdef DUET_SANITIZE
    __sanitizer_finish_switch_fiber(fake_stack, nullptr, nullptr);
#endif
    return t;
}

// The first thing a new fiber does: completes the switch that started it, and learns the
// stack it came from.
inline StackBounds fiber_started() {
    StackBounds from;
#ifdef DUET_SANITIZE
    __sanitizer_finish_switch_fiber(nullptr, &from.bottom, &from.size);
#endif
    return from;
}

// A fiber stack from its own host mapping, with an inaccessible guard page below it so that
// an overflow faults at a known address instead of corrupting a neighbour.
class FiberStack {
public:
    static constexpr size_t kDefaultSize = 256 * 1024;

    FiberStack() = default;
    explicit FiberStack(size_t size);
    FiberStack(FiberStack&& other) noexcept;
    FiberStack& operator=(FiberStack&& other) noexcept;
    FiberStack(const FiberStack&) = delete;
    FiberStack& operator=(const FiberStack&) = delete;
    ~FiberStack();

    void* top() const { return m_base + m_guard + m_size; }
    StackBounds bounds() const { return {m_base + m_guard, m_size}; }
    size_t size() const { return m_size; }
    // The guard page's host address range: a fault in it is a stack overflow.
    bool in_guard(const void* addr) const;

    // Race builds: the ThreadSanitizer fiber of the context on this stack (null otherwise).
    void* race_fiber() const { return m_race_fiber; }
    // Gives the stack a new fiber for a context called `name`, created by the calling one; on
    // a stack used before, first forgets what the old fiber did there (docs/simulator.md).
    void* new_race_fiber(const char* name);
    // Destroys the stack's fiber, if it has one (its context was released).
    void end_race_fiber();

private:
    friend class StackArena;
    // A stack in memory it does not own (a StackArena's): the guard page is made inaccessible,
    // unless the arena did it already (`guarded`).
    FiberStack(std::byte* base, size_t guard, size_t size, bool guarded);

    std::byte* m_base = nullptr;
    size_t m_guard = 0;
    size_t m_size = 0;
    void* m_race_fiber = nullptr;
    bool m_used = false;  // a fiber ran on it: ThreadSanitizer remembers its accesses
    bool m_owned = false; // m_base is its own mapping, unmapped with it
};

// Fiber stacks carved out of larger host mappings: a machine with thousands of kernel threads
// makes one mmap and one munmap per slab of stacks instead of per stack (on a virtualised host,
// an munmap of a stack cost about 9 us: 90 ms of a run with 10,000 threads). Each stack keeps
// its guard page. The arena must outlive the stacks carved from it.
class StackArena {
public:
    StackArena() = default;
    StackArena(const StackArena&) = delete;
    StackArena& operator=(const StackArena&) = delete;
    ~StackArena();

    // A stack of at least `size` bytes (rounded up to pages).
    FiberStack carve(size_t size);

private:
    static constexpr size_t kStacksPerSlab = 64;
    struct Slab {
        std::byte* base;
        size_t bytes;
    };
    std::vector<Slab> m_slabs;
    std::byte* m_next = nullptr; // what is left of the last slab
    size_t m_left = 0;
    size_t m_slab_stride = 0; // the last slab's guard pages are installed for stacks this big
};

} // namespace hal_sim
