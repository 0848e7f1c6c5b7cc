#pragma once

// How the executor interleaves the simulated CPUs: the --schedule strategies
// (docs/simulator.md, "Schedules").
//
// Every strategy resumes the CPU furthest behind in virtual time at each preemption point
// (cpu_relax, cpu_work, a context switch, a wait for an interrupt). `coarse` stops there only.
// The others also stop at every synchronisation point (hal::sync_point(): each atomic
// operation, spinlock acquire and release, interrupts turned on, and the core's unlocked reads
// of shared state). There a CPU that has run ahead of another since its last preemption point
// lets that one go first, and the schedule may stall it, as a cache miss, an interrupt the
// kernel does not see (SMI) or a host that preempts a virtual CPU stalls a real one: the CPUs
// behind its new clock then run first. A stall only moves the stalled CPU's clock forward, so
// virtual time stays consistent.
//   random[:P]       each synchronisation point stalls with probability P (default 1/16) when
//                    another CPU is due within 16 us: until just past that CPU's time (plus
//                    up to 64 ns), so that it acts first. A stall that would reorder nothing
//                    is not made: it would only distort time. Each timer interrupt also comes
//                    up to 1 us late (interrupt latency varies).
//   pct[:D[:K]]      PCT (Burckhardt et al., ASPLOS 2010) on virtual time: D-1 change points
//                    drawn uniformly among the first K synchronisation points, where the
//                    running CPU stalls for a long time (1 us to 2 ms, log-uniform), in
//                    effect dropping below every other CPU's priority; D defaults to 3. Without
//                    K, the run first counts the synchronisation points of the same run under
//                    `random:0` (which stops at them but never stalls).
//   input:FILE       the file's bytes make the choices (ScheduleInput, below): the schedule
//                    a fuzzer drives (`duet fuzz schedule`) and that replays what it found.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace hal_sim {

struct Schedule {
    enum class Kind { Coarse, Random, Pct, Input };
    Kind kind = Kind::Coarse;
    double stall_chance = 1.0 / 16; // random
    uint32_t depth = 3;             // pct: the bug depth D
    uint64_t horizon = 0;           // pct: K; 0: to be counted
    std::string input_path;         // input: the file (what describe() prints)...
    std::vector<uint8_t> input;     // ...and its bytes

    // random: a CPU stalls for another only when that one's ready time is at most this far
    // ahead, and then until just past it, plus up to this jitter.
    static constexpr uint64_t kMaxRaceGapNs = 16'384;
    static constexpr uint64_t kStallJitterNs = 64;
    // random: a timer interrupt comes up to this late (its latency varies).
    static constexpr uint64_t kTimerJitterNs = 1'024;
    static constexpr uint64_t kMinLongStallNs = 1'024;     // pct: change-point stalls from this
    static constexpr uint64_t kMaxLongStallNs = 1'048'576; //    to this
    static constexpr uint32_t kMaxDepth = 64;
    static constexpr size_t kMaxInputBytes = 1 << 20; // input: larger files are refused

    // Whether the executor stops at synchronisation points at all.
    bool stops_at_sync_points() const { return kind != Kind::Coarse; }
    bool operator==(const Schedule&) const = default;
};

// Parses a --schedule value: "coarse", "random", "random:P" (0 <= P <= 1), "pct", "pct:D",
// "pct:D:K" (1 <= D <= 64, K >= 1), "input:FILE" (read here, at most kMaxInputBytes). On
// failure returns nothing and sets `*error` to what is wrong.
std::optional<Schedule> parse_schedule(std::string_view text, std::string* error);

// The --schedule value that gives `s` back (what reproduce commands print).
std::string describe(const Schedule& s);

// The choices an `input` schedule's bytes make. The input is a list of records, each a
// position and an action:
//   - the position: how many synchronisation points after the previous record's (the first:
//     after the start of the run) this one acts, an unsigned LEB128 number (7 bits a byte, low
//     first, the top bit set on all but the last byte; values above 2^32, and numbers longer
//     than 5 bytes, count as 2^32). Only points where another CPU could run count (at least
//     two CPUs running or due to wake: a lone CPU has no choice to make, and the boot, before
//     the others start, is most of a run's points), over the whole machine, from 1; 0 acts at
//     the same point as the previous record.
//   - the action, one byte A:
//       0x00-0x7f  race stall: the CPU at the point stalls until just past the ready time of
//                  the CPU next in time, plus A ns, so that the other acts first; as under
//                  `random`, only if that is within kMaxRaceGapNs (otherwise nothing);
//       0x80-0xbf  long stall: 1 us << ((A & 0x3f) % 11), up to 1 ms (as pct's change points);
//       0xc0-0xdf  timer latency: the next timer interrupt armed comes (A & 0x1f) * 32 ns late;
//       0xe0-0xff  a fault: (A - 0xe0) % 5 picks frame_alloc, heap_alloc, timer_late,
//                  ipi_delay or ipi_duplicate, which strikes at the next chance it has (the
//                  late ones 1 us << ((A - 0xe0) / 5) late, at most the machine's late_max_ns),
//                  if the machine's fault rate for it is above zero: a scenario (or --fault)
//                  says which faults may happen, the input says when.
// Once the records run out, the choices do too: the run goes on as `random:0` would (stopping
// at each synchronisation point, never stalling). A record cut short at the end is ignored.
enum class InputFault : uint8_t { FrameAlloc, HeapAlloc, TimerLate, IpiDelay, IpiDuplicate };

struct InputChoice {
    enum class Kind : uint8_t { RaceStall, LongStall, TimerLatency, Fault };
    uint64_t at = 0; // the counted synchronisation point (from 1) it is made at
    Kind kind = Kind::RaceStall;
    uint64_t ns = 0; // race stall: beyond the next CPU; long stall, latencies: the time
    InputFault fault = InputFault::FrameAlloc;
    bool operator==(const InputChoice&) const = default;
};

class ScheduleInput {
public:
    explicit ScheduleInput(std::span<const uint8_t> bytes = {}) : m_bytes(bytes) {}
    // The next record's choice, or nothing once the records have run out.
    std::optional<InputChoice> next();

    static constexpr uint64_t kMaxDelta = uint64_t{1} << 32;

private:
    std::span<const uint8_t> m_bytes;
    size_t m_offset = 0;
    uint64_t m_at = 0;
};

} // namespace hal_sim
