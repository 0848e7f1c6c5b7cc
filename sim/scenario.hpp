#pragma once

// Scenario files: the machine, its memory map and (as the core grows) the workload and what
// must hold. Line-oriented, `#` comments; see docs/scenarios.md.

#include "process_builder.hpp"
#include "report.hpp"
#include "workload_builder.hpp"

#include <hal/firmware/e820.hpp>
#include <hal_sim/machine.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace duet {

// What `duet swarm --randomize` may draw, from each seed, for a scenario: its `vary` line, or
// without one what the scenario leaves open (docs/scenarios.md, "What a swarm may vary").
struct Variation {
    uint32_t cpus_min = 0; // 0: the CPU count stays the scenario's
    uint32_t cpus_max = 0;
    std::vector<uint64_t> ticks;     // empty: the tick stays
    std::vector<uint64_t> slices;    // empty: the slice stays
    std::vector<std::string> faults; // faults that half the seeds turn on, at a drawn rate
    int line = 0;                    // the vary line, 0 if there is none

    bool empty() const {
        return cpus_min == 0 && ticks.empty() && slices.empty() && faults.empty();
    }
    // "cpus=2..8 tick=250us,1ms ...", as a vary line would say it; "nothing" if empty.
    std::string describe() const;
};

struct Scenario {
    std::string path;
    uint32_t cpus = 1;
    uint64_t seed = 1;
    std::vector<firmware::E820Entry> memory;
    std::string memory_source; // "preset qemu-q35-2g", a file path, or "inline"
    // Where each entry of `memory` was written: the file (the scenario for an inline map,
    // "preset NAME" for a preset) and the line, for errors about one entry.
    std::string memory_file;
    std::vector<int> memory_lines;
    int memory_line = 0; // the scenario's `memory` statement
    hal_sim::Firmware firmware = hal_sim::Firmware::BootbootBios;
    hal_sim::FaultRates faults;
    hal_sim::Costs costs;
    uint64_t livelock_ns = hal_sim::MachineConfig{}.livelock_ns;
    // `run`: end at a virtual time (until=) or when the kernel stops the machine (until=exit,
    // the default), and fail past `limit`.
    uint64_t until_ns = UINT64_MAX;
    uint64_t time_limit_ns = hal_sim::MachineConfig{}.time_limit_ns;
    std::vector<Expectation> expectations;
    // The kernel's scheduler settings, passed in the BOOTBOOT environment.
    uint64_t tick_ns = 1'000'000;
    uint64_t slice_ns = 4'000'000;
    // machine watchdog=: the kernel's watchdog period (0: off); unset, the kernel's default.
    std::optional<uint64_t> watchdog_ns;
    // Thread programs and what to start; compiled for the kernel (sys/workload in the initrd).
    WorkloadBuilder workload;
    // Processes (`process` blocks): sys/programs, the scripts and the program that runs them.
    ProcessBuilder processes;
    // What a swarm's --randomize draws.
    Variation vary;
    // What is probably a mistake but runs anyway: `file:line: warning: ...`, for stderr.
    std::vector<std::string> warnings;

    // The environment page the firmware writes (duet.tick, duet.slice).
    std::string environment() const;
};

// The names `faults` and --fault take.
const std::vector<std::string>& fault_names();

// Sets fault `name` from `value` ("0.01", "5%", or a duration for late_max). Returns an error
// message, or an empty string.
std::string set_fault(hal_sim::FaultRates& rates, std::string_view name, std::string_view value);

// Throws SourceError pointing at the offending `file:line:col`.
Scenario parse_scenario(std::string_view text, const std::string& path);
Scenario load_scenario(const std::string& path);

// A memory map by preset name or file path (what `memory preset=`/`file=` and `--memory` take).
// `file` and `lines` (if given) get where each entry was written.
std::vector<firmware::E820Entry> load_memory(const std::string& spec, const std::string& origin,
                                             int line, int col, std::string* source,
                                             std::string* file = nullptr,
                                             std::vector<int>* lines = nullptr);

} // namespace duet
