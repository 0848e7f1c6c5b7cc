#pragma once

// Small helpers for the line-oriented input formats.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace duet {

struct Token {
    std::string_view text;
    int col; // 1-based column of its first character
};

// Splits a line into whitespace-separated tokens, stopping at a `#` comment.
std::vector<Token> tokenize(std::string_view line);

// A non-negative integer, decimal or hex with 0x; nullopt if malformed or above 2^64-1.
std::optional<uint64_t> parse_u64(std::string_view s);

// A number as expectations write them: an integer (decimal or 0x hex) or a decimal fraction.
std::optional<double> parse_number(std::string_view s);

// A duration with its unit: "250ns", "10us", "4ms", "1s" (also "1.5ms"). In nanoseconds;
// nullopt if malformed, unitless or too large.
std::optional<uint64_t> parse_duration(std::string_view s);

// A duration as parse_duration() reads it back, in the largest unit that keeps it whole:
// "2s", "1500us", "7ns".
std::string format_duration(uint64_t ns);

// A memory size with its unit: "512MiB", "2GiB", "64KiB", "4096B" (also "2G", "512M": the same
// binary units). In bytes; nullopt if malformed, unitless, fractional or too large.
std::optional<uint64_t> parse_size(std::string_view s);

// A size as parse_size() reads it back, in the largest unit that keeps it whole: "2GiB",
// "1536MiB", "100B".
std::string format_size(uint64_t bytes);

// A probability: a number from 0 to 1 ("0.01", "1", "5%").
std::optional<double> parse_probability(std::string_view s);

// Input files (scenarios, memory maps) are read whole, and only up to this size: a larger one
// (or an endless one, such as /dev/zero) is refused before it takes the memory.
inline constexpr size_t kMaxInputFileBytes = size_t{4} << 20;

// Reads an input file of at most kMaxInputFileBytes. `kind` names it in errors ("scenario
// file"). Throws SourceError: `path: cannot read the KIND`, `path: is a directory, not a KIND`,
// `path: is larger than 4 MiB, the most a KIND may be`, `path: a file name cannot hold a NUL`
// (the system would read another file: the name up to the NUL).
std::string read_input_file(const std::string& path, const char* kind);

// Text as an error message may show it: printable ASCII and well-formed UTF-8 stay, any other
// byte (a control character, a NUL, a stray byte of binary input) becomes \xNN. A backslash
// stays as it is, so that applying it twice changes nothing.
std::string printable(std::string_view s);

// A value an error message quotes: printable(), and cut after `limit` characters with "..."
// (a 100 KB name is not echoed whole). File names get more room: a path is longer than a
// name, and one cut short may no longer say which file.
inline constexpr size_t kShownLength = 60;
inline constexpr size_t kShownPathLength = 400;
std::string shown(std::string_view s, size_t limit = kShownLength);

// The candidate closest to `word` by edit distance, if it is close enough to be a typo.
std::optional<std::string> closest(std::string_view word,
                                   const std::vector<std::string>& candidates);

} // namespace duet
