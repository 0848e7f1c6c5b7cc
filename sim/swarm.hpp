#pragma once

// `duet swarm`: one scenario under a range of seeds, each run a `duet run` in a child process
// of its own, a few at a time; every failing seed is reported with the command that
// reproduces it.

#include "scenario.hpp"

#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace duet {

struct SwarmOptions {
    std::string scenario;
    uint64_t first_seed = 1;
    uint64_t last_seed = 1;
    unsigned jobs = 0;        // children at once; 0: one per host CPU
    uint32_t shard = 1;       // this process runs shard `shard` (1-based) ...
    uint32_t shard_count = 1; // ... of `shard_count`: seeds first_seed + shard - 1 + k * count
    bool randomize = false;   // draw what the scenario lets vary (Variation) from each seed
    std::vector<std::string> run_args; // passed to every run: --cpus N, --fault NAME=P, ...
    // The duet program's own command line, which each child calls with a `run` command: the
    // children are forked from the swarm, not started afresh, so each is spared loading the
    // program (docs/swarm.md, "How a seed runs").
    int (*run_child)(int argc, char** argv) = nullptr;
    std::string program = "duet"; // how the reproduction commands name it
    std::string shard_origin;     // where K/M came from when not --shard ("" if it was)
    std::string results_path;     // --results: one JSON line per seed ("" for none)
};

// "A..B" (inclusive, A <= B) or a single seed "A".
std::optional<std::pair<uint64_t, uint64_t>> parse_seed_range(std::string_view text);

// "K/M" with 1 <= K <= M.
std::optional<std::pair<uint32_t, uint32_t>> parse_shard(std::string_view text);

// The shard of a Slurm job array task, from its environment (the values of
// SLURM_ARRAY_TASK_ID, _COUNT, _MIN and _MAX, null where unset): K = ID - MIN + 1 of M =
// COUNT, MIN taken as 1 where unset. `shard` is empty when the task is not in an array (no
// ID); `error` says what is wrong with values that name no shard (then shard is empty).
struct EnvironmentShard {
    std::optional<std::pair<uint32_t, uint32_t>> shard;
    std::string origin; // "SLURM_ARRAY_TASK_ID=3, ...": for the header line
    std::string error;
};
EnvironmentShard slurm_array_shard(const char* id, const char* count, const char* min,
                                   const char* max);

// What --randomize draws for `seed`: `duet run` options, as arguments, for what `vary` (the
// scenario's) opens; options already in `fixed` (by name) are left to it.
std::vector<std::string> randomized_args(uint64_t seed, const Variation& vary,
                                         const std::vector<std::string>& fixed);

// A command line as a shell reads it (arguments quoted where they need it).
std::string shell_command(const std::vector<std::string>& args);

// Runs the sweep. Progress on `err`; the randomized settings, the failures (sorted by seed,
// each with its reproduction command) and the summary on `out`. Returns 0 if every seed
// passed, 1 if any failed, 2 for bad input.
int run_swarm(const SwarmOptions& options, std::FILE* out, std::FILE* err);

// One seed's line in a --results file (docs/swarm.md, "Results").
struct SeedResult {
    uint64_t seed = 0;
    std::string scenario;
    std::vector<std::string> randomized; // what --randomize drew (empty without it)
    // The run's verdict as its report says it ("success", "deadlock", "timeout", "out of
    // memory", ...), "expectation failed" for a success that broke an expectation, "crash"
    // for a run ended by a signal before its report, "no report" for any other run that left
    // none. A seed passed if and only if its verdict is "success".
    std::string verdict;
    std::optional<std::string> digest; // the report's, when there is one
    std::optional<int> exit_status;    // none when a signal ended it
    std::optional<int> signal;
    uint64_t host_cpu_ns = 0;    // user + system CPU time of the run's process
    uint64_t peak_rss_bytes = 0; // its peak resident memory
    std::string failure;         // the first thing that went wrong ("" if it passed)
    std::string expectation;     // the first failed expectation, if that is not `failure`
    std::string reproduce;       // the command that runs it again
};

// The line (JSON, then a newline) that stands for `r` in a --results file.
std::string result_line(const SeedResult& r);

// A finished run's verdict and digest, from the JSON report it wrote (`report`, maybe empty
// or cut short) and how its process ended (a wait status).
void judge(SeedResult& r, const std::string& report, int wait_status);

// `duet swarm merge FILES...`: reads the --results files of a sweep's shards and prints one
// summary on `out`: the failing seeds (sorted, each with its reproduction command), the count
// of each verdict, the slowest seeds and the seeds run. With `expected` (--seeds A..B), a seed
// of the range in no file is a failure too. Returns 0 if every seed passed, 1 if any failed,
// 2 for bad input (on `err`: `FILE:LINE: what is wrong`, a seed in two places, a file too
// large).
int merge_results(const std::vector<std::string>& files,
                  std::optional<std::pair<uint64_t, uint64_t>> expected, std::FILE* out,
                  std::FILE* err);

// The most a results file may hold, and a line of it: a larger one is refused unread.
inline constexpr uint64_t kMaxResultsFileBytes = uint64_t{1} << 30;
inline constexpr size_t kMaxResultsLineBytes = size_t{1} << 20;

} // namespace duet
