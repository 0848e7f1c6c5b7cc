#pragma once

// Workloads: thread programs the kernel runs to exercise itself, from a scenario (the
// simulator compiles the scenario's programs into this form and passes it in the initrd as
// sys/workload) or built in. Both machines run them with the same interpreter.
//
// The binary form is little-endian and position-independent:
//   Header, then program_count Program records, then spawn_count Spawn records, then the
//   instructions every Program's [first, first + count) indexes, then the mutexes' names and
//   the events' (kNameLength bytes each, NUL-terminated), for reports.

#include <stddef.h>
#include <stdint.h>

namespace core::workload {

inline constexpr uint8_t kMagic[8] = {'D', 'U', 'E', 'T', 'W', 'L', '0', '1'};
inline constexpr uint32_t kMaxSlots = 16;       // named buffers a thread holds at once
inline constexpr uint32_t kMaxNesting = 8;      // repeat blocks inside each other
inline constexpr uint32_t kMaxSyncObjects = 64; // named mutexes, and named events
inline constexpr size_t kNameLength = 24;

enum class Op : uint8_t {
    Compute = 1, // c: nanoseconds of CPU work
    Sleep = 2,   // c: nanoseconds
    Yield = 3,
    AllocFrames = 4, // a: slot, b: frames (rounded up to a power of two)
    AllocHeap = 5,   // a: slot, b: bytes
    Free = 6,        // a: slot
    Touch = 7,       // a: slot: write every page of the slot's memory
    Spawn = 8,       // a: program, b: count
    Lock = 9,        // a: mutex
    Unlock = 10,     // a: mutex
    Wait = 11,       // a: event
    Signal = 12,     // a: event
    Exit = 13,       // c: exit code (as int64)
    Repeat = 14,     // a: instructions in the body (which follows), b: times
};

struct Instruction {
    Op op;
    uint8_t reserved;
    uint16_t a;
    uint32_t b;
    uint64_t c;
};
static_assert(sizeof(Instruction) == 16);

struct Program {
    char name[kNameLength];
    uint32_t first; // index of its first instruction
    uint32_t count;
};

struct Spawn {
    uint32_t program;
    uint32_t count;
    uint8_t priority;
    uint8_t reserved[3];
    uint32_t cpu; // ~0u: any
};

struct Header {
    uint8_t magic[8];
    uint32_t size; // of the whole blob
    uint32_t program_count;
    uint32_t spawn_count;
    uint32_t instruction_count;
    uint32_t mutex_count;
    uint32_t event_count;
};

// A workload checked for consistency (every index in range, repeats well nested), pointing
// into the blob it was read from.
struct View {
    const Header* header = nullptr;
    const Program* programs = nullptr;
    const Spawn* spawns = nullptr;
    const Instruction* code = nullptr;
    const char (*mutex_names)[kNameLength] = nullptr;
    const char (*event_names)[kNameLength] = nullptr;
};

enum class ParseError {
    None,
    TooSmall,
    BadMagic,
    BadSize,
    BadIndex,  // a program, slot, mutex or event index out of range
    BadRepeat, // a repeat body that runs past its program's end, or nesting too deep
    BadOp,
    BadName, // a mutex or event name without its terminating NUL
};
const char* describe(ParseError e);

ParseError parse(const void* blob, size_t size, View* out);

struct Results {
    uint64_t threads_started = 0;
    uint64_t threads_exited = 0;
    uint64_t spawn_failures = 0;
    uint64_t alloc_failures = 0;
    uint64_t frames_allocated = 0;
    uint64_t heap_allocated = 0; // bytes
    uint64_t lock_acquisitions = 0;
    uint64_t lock_wait_max_ns = 0; // the longest a thread waited for a mutex
    uint64_t events_signalled = 0;
    int64_t exit_code_sum = 0;
};

// Runs the workload on the kernel's scheduler: starts every Spawn, waits until every thread
// it led to has exited, logs a summary ("workload: ..."), and returns the results. Thread
// context.
Results run(const View& workload);

// The counters of the workload that runs or ran last (for the simulator's report).
const Results& last_results();

} // namespace core::workload
