#pragma once

// `duet run` and `duet check`: boot a scenario's machine, collect the report, check the
// scenario's expectations.

#include "report.hpp"

#include <hal_sim/machine.hpp>

#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace duet {

// Exit statuses of the duet program.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1; // the run failed: kernel verdict, stuck machine, expectation
inline constexpr int kExitUsage = 2;  // a bad command line, scenario or memory map

struct Scenario;

struct RunOptions {
    std::optional<uint64_t> seed;
    std::optional<uint32_t> cpus;
    std::optional<std::string> memory;                       // preset name or E820 file
    std::vector<std::pair<std::string, std::string>> faults; // --fault NAME=P, over the scenario's
    std::string com1_path;                                   // also write COM1 here
    std::string json_path;                                   // write the report as JSON here
    bool quiet = false;                                      // no COM1 on stdout
    bool timestamps = false;          // tag COM1 lines with virtual time and CPU
    std::optional<uint64_t> tick_ns;  // --tick, over the scenario's machine tick=
    std::optional<uint64_t> slice_ns; // --slice, over the scenario's machine slice=
    // --trace FILE (written by run_scenario) in --trace-format ftrace or com1: sim/trace.hpp.
    std::string trace_path;
    std::string trace_format = "ftrace";
    bool verify_determinism = false; // run twice, compare digests, reports and traces
    bool race = false;               // --race: only the race build takes it (hal_sim/race.hpp)
    // --check-every N: the kernel's invariants after every N executor steps (0: never).
    std::optional<uint64_t> check_every;
    // --timeout: the run ends with verdict `timeout` after this much host CPU time (0: never).
    uint64_t timeout_ns = 0;
    // --memory-limit: the run ends with verdict `out of memory` once the process's resident
    // memory is above this many bytes (0: never).
    uint64_t memory_limit_bytes = 0;
    // --schedule: how the executor interleaves the CPUs (hal_sim/schedule.hpp).
    hal_sim::Schedule schedule;
    // --firmware NAME, over the scenario's machine firmware=.
    std::optional<hal_sim::Firmware> firmware;
    // --kernel FILE: the kernel ELF the firmware loads from the initrd's sys/core (its size
    // places the holes in the memory map); empty: the stand-in (hal_sim::model_kernel_file()).
    std::vector<uint8_t> kernel_file;
    std::string kernel_path; // where kernel_file came from (for reproduce commands)
};

// Reads a kernel ELF for RunOptions::kernel_file; throws SourceError naming the file if it
// cannot be read or is larger than an initrd may be.
std::vector<uint8_t> read_kernel_file(const std::string& path);

// The initrd a scenario's machine boots: sys/core (options.kernel_file, or the stand-in), then
// sys/workload when the scenario has programs, and user/script, sys/scripts/NAME and
// sys/programs when it has processes. Byte for byte what `duet initrd` writes.
std::vector<uint8_t> scenario_initrd(const Scenario& scenario, const RunOptions& options);

struct Outcome {
    int status = kExitUsage;
    std::string error; // for kExitUsage: what was wrong with the input
    hal_sim::RunResult result;
    Report report;
    std::vector<Expectation> expectations;
    std::vector<ExpectationResult> checked;
    uint64_t seed = 0;
    std::string trace; // the trace file's contents, when options.trace_path asked for one
    std::vector<std::string> warnings; // the scenario's (Scenario::warnings)

    // The first thing that went wrong, for one-line summaries ("" if nothing did).
    std::string first_failure() const;
};

// The `duet run` command that runs `path` again as it ran: the seed and every option that
// changes the run (not those that only change what is printed). `program` names duet.
std::string reproduce_command(const std::string& program, const std::string& path,
                              const RunOptions& options, uint64_t seed);

// The machine a scenario describes, with the command line's overrides.
hal_sim::MachineConfig machine_config(const Scenario& scenario, const RunOptions& options);

// Runs the scenario at `path`. COM1 and the simulator's events go to `out` unless it is null
// or options.quiet; nothing else is printed.
Outcome execute(const std::string& path, const RunOptions& options, std::FILE* out);

// `duet run`: execute(), then the report table (and JSON), failures on `err`. Returns the
// program's exit status.
int run_scenario(const std::string& path, const RunOptions& options, std::FILE* out,
                 std::FILE* err);

// `duet run --verify-determinism`: runs the scenario again, quietly, and compares the second
// run's digest, report and trace with `first`'s. Prints the verdict on `out` (what differs on
// `err`); returns kExitOk if they agree.
int verify_replay(const std::string& path, const RunOptions& options, const Outcome& first,
                  std::FILE* out, std::FILE* err);

// `duet workload`: writes the scenario's compiled workload to `output`. Returns the exit status.
int write_workload(const std::string& scenario, const std::string& output, std::FILE* err);

// `duet initrd`: writes the initrd the scenario's machine boots (scenario_initrd()) to
// `output`, for booting the same kernel and workload in QEMU. Returns the exit status.
int write_initrd(const std::string& scenario, const RunOptions& options, const std::string& output,
                 std::FILE* err);

// `duet check`: every scenario under `paths` (files, or folders searched for *.scn), one
// line each, then "N passed, N failed". Returns the exit status.
int check_scenarios(const std::vector<std::string>& paths, const RunOptions& options,
                    std::FILE* out);

} // namespace duet
