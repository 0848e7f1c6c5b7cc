#pragma once

// `duet run`: boot a scenario's machine, show COM1 and the report.

#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace duet {

// Exit statuses of the duet program.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1; // the run failed: kernel verdict, stuck machine
inline constexpr int kExitUsage = 2;  // a bad command line, scenario or memory map

struct RunOptions {
    std::optional<uint64_t> seed;
    std::optional<uint32_t> cpus;
    std::optional<std::string> memory;                       // preset name or E820 file
    std::vector<std::pair<std::string, std::string>> faults; // --fault NAME=P, over the scenario's
    std::string com1_path;                                   // also write COM1 here
    bool quiet = false;                                      // no COM1 on stdout
    bool timestamps = false; // tag COM1 lines with virtual time and CPU
};

// Runs the scenario at `path`; returns the program's exit status. Writes COM1, the
// simulator's own events and the report to `out`, errors to `err`.
int run_scenario(const std::string& path, const RunOptions& options, std::FILE* out,
                 std::FILE* err);

} // namespace duet
