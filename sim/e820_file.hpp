#pragma once

// Reading E820 memory maps in text form: `BASE LENGTH TYPE [EXT]` a line, hex (0x) or
// decimal, `#` comments. Errors name the place: `file:line:col: message`.

#include <hal/firmware/e820.hpp>

#include <string>
#include <string_view>
#include <vector>

namespace duet {

// x86_64 physical addresses have at most 52 bits.
inline constexpr uint64_t kMaxPhysicalAddress = 1ull << 52;

// One line of a map; `origin`/`line_no` are used in error messages. Throws SourceError.
firmware::E820Entry parse_e820_line(std::string_view text, const std::string& origin, int line_no);

// A whole map. Throws SourceError, also for a map with no entries. `lines`, if given, gets
// the line each entry came from.
std::vector<firmware::E820Entry> parse_e820(std::string_view text, const std::string& origin,
                                            std::vector<int>* lines = nullptr);

// Reads a map from a file; throws SourceError (`file: ...` if it cannot be read).
std::vector<firmware::E820Entry> read_e820_file(const std::string& path,
                                                std::vector<int>* lines = nullptr);

// The built-in maps (QEMU's, from shared/fixtures/e820). Null if there is no such preset.
const char* e820_preset(std::string_view name);
std::vector<std::string> e820_preset_names();

} // namespace duet
