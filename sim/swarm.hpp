#pragma once

// `duet swarm`: one scenario under a range of seeds, each run a `duet run` child process, a
// few at a time; every failing seed is reported with the command that reproduces it.

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
    std::string self;                  // the duet program the children run
    std::string program = "duet";      // how the reproduction commands name it
};

// "A..B" (inclusive, A <= B) or a single seed "A".
std::optional<std::pair<uint64_t, uint64_t>> parse_seed_range(std::string_view text);

// "K/M" with 1 <= K <= M.
std::optional<std::pair<uint32_t, uint32_t>> parse_shard(std::string_view text);

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

} // namespace duet
