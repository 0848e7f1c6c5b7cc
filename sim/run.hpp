#pragma once

// `duet run`: boot a scenario's machine, show COM1 and the report.

#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>

namespace duet {

// Exit statuses of the duet program.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1; // the run failed: kernel verdict, stuck machine
inline constexpr int kExitUsage = 2;  // a bad command line, scenario or memory map

struct RunOptions {
    std::optional<uint64_t> seed;
    std::optional<uint32_t> cpus;
    std::optional<std::string> memory; // preset name or E820 file
    std::string com1_path;             // also write COM1 here
    bool quiet = false;                // no COM1 on stdout
};

// Runs the scenario at `path`; returns the program's exit status. Writes COM1 and the report
// to `out`, errors to `err`.
int run_scenario(const std::string& path, const RunOptions& options, std::FILE* out,
                 std::FILE* err);

} // namespace duet
