#pragma once

// Scenario files: the machine, its memory map and (as the core grows) the workload and what
// must hold. Line-oriented, `#` comments; see docs/scenarios.md.

#include <hal/firmware/boot_area.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace duet {

struct Scenario {
    std::string path;
    uint32_t cpus = 1;
    uint64_t seed = 1;
    std::vector<firmware::E820Entry> memory;
    std::string memory_source; // "preset qemu-q35-2g", a file path, or "inline"
};

// Throws SourceError pointing at the offending `file:line:col`.
Scenario parse_scenario(std::string_view text, const std::string& path);
Scenario load_scenario(const std::string& path);

// A memory map by preset name or file path (what `memory preset=`/`file=` and `--memory` take).
std::vector<firmware::E820Entry> load_memory(const std::string& spec, const std::string& origin,
                                             int line, int col, std::string* source);

} // namespace duet
