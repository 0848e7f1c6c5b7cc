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

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace hal_sim {

struct Schedule {
    enum class Kind { Coarse, Random, Pct };
    Kind kind = Kind::Coarse;
    double stall_chance = 1.0 / 16; // random
    uint32_t depth = 3;             // pct: the bug depth D
    uint64_t horizon = 0;           // pct: K; 0: to be counted

    // random: a CPU stalls for another only when that one's ready time is at most this far
    // ahead, and then until just past it, plus up to this jitter.
    static constexpr uint64_t kMaxRaceGapNs = 16'384;
    static constexpr uint64_t kStallJitterNs = 64;
    // random: a timer interrupt comes up to this late (its latency varies).
    static constexpr uint64_t kTimerJitterNs = 1'024;
    static constexpr uint64_t kMinLongStallNs = 1'024;     // pct: change-point stalls from this
    static constexpr uint64_t kMaxLongStallNs = 1'048'576; //    to this
    static constexpr uint32_t kMaxDepth = 64;

    // Whether the executor stops at synchronisation points at all.
    bool stops_at_sync_points() const { return kind != Kind::Coarse; }
    bool operator==(const Schedule&) const = default;
};

// Parses a --schedule value: "coarse", "random", "random:P" (0 <= P <= 1), "pct", "pct:D",
// "pct:D:K" (1 <= D <= 64, K >= 1). On failure returns nothing and sets `*error` to what is
// wrong.
std::optional<Schedule> parse_schedule(std::string_view text, std::string* error);

// The --schedule value that gives `s` back (what reproduce commands print).
std::string describe(const Schedule& s);

} // namespace hal_sim
