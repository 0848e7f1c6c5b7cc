#include "text.hpp"
#include "source_error.hpp"

#include <utility>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <numeric>

namespace duet {

std::vector<Token> tokenize(std::string_view line) {
    std::vector<Token> tokens;
    size_t i = 0;
    while (i < line.size()) {
        char c = line[i];
        if (c == '#') {
            break;
        }
        if (c == ' ' || c == '\t' || c == '\r') {
            ++i;
            continue;
        }
        size_t start = i;
        while (i < line.size() && line[i] != ' ' && line[i] != '\t' && line[i] != '\r' &&
               line[i] != '#') {
            ++i;
        }
        tokens.push_back({line.substr(start, i - start), static_cast<int>(start) + 1});
    }
    return tokens;
}

std::optional<uint64_t> parse_u64(std::string_view s) {
    unsigned base = 10;
    if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        base = 16;
        s.remove_prefix(2);
    }
    if (s.empty()) {
        return std::nullopt;
    }
    uint64_t value = 0;
    for (char c : s) {
        unsigned digit;
        if (c >= '0' && c <= '9') {
            digit = static_cast<unsigned>(c - '0');
        } else if (base == 16 && c >= 'a' && c <= 'f') {
            digit = static_cast<unsigned>(c - 'a' + 10);
        } else if (base == 16 && c >= 'A' && c <= 'F') {
            digit = static_cast<unsigned>(c - 'A' + 10);
        } else if (c == '_' || c == '\'') {
            continue; // digit separators: 0x7fee_0000
        } else {
            return std::nullopt;
        }
        if (value > (UINT64_MAX - digit) / base) {
            return std::nullopt;
        }
        value = value * base + digit;
    }
    return value;
}

namespace {

// A decimal number with an optional fraction, as a value scaled by 10^9 (nullopt on overflow).
std::optional<uint64_t> parse_decimal_nano(std::string_view s) {
    size_t dot = s.find('.');
    std::string_view whole = s.substr(0, dot);
    std::string_view frac = dot == std::string_view::npos ? std::string_view{} : s.substr(dot + 1);
    if (whole.empty() && frac.empty()) {
        return std::nullopt;
    }
    uint64_t w = 0;
    for (char c : whole) {
        if (c < '0' || c > '9' || w > (UINT64_MAX / 10 - 9) / 1'000'000'000) {
            return std::nullopt;
        }
        w = w * 10 + static_cast<uint64_t>(c - '0');
    }
    if (frac.size() > 9) {
        return std::nullopt;
    }
    uint64_t f = 0;
    for (size_t i = 0; i < 9; ++i) {
        char c = i < frac.size() ? frac[i] : '0';
        if (c < '0' || c > '9') {
            return std::nullopt;
        }
        f = f * 10 + static_cast<uint64_t>(c - '0');
    }
    return w * 1'000'000'000 + f;
}

} // namespace

std::optional<uint64_t> parse_duration(std::string_view s) {
    struct Unit {
        std::string_view suffix;
        uint64_t ns;
    };
    static constexpr Unit kUnits[] = {
        {"ns", 1}, {"us", 1'000}, {"ms", 1'000'000}, {"s", 1'000'000'000}};
    for (const auto& u : kUnits) {
        if (s.size() > u.suffix.size() && s.ends_with(u.suffix)) {
            auto scaled = parse_decimal_nano(s.substr(0, s.size() - u.suffix.size()));
            if (!scaled) {
                return std::nullopt;
            }
            // scaled is value * 10^9; the unit brings it to nanoseconds.
            unsigned __int128 product = static_cast<unsigned __int128>(*scaled) * u.ns;
            if (product % 1'000'000'000 != 0) {
                return std::nullopt; // fractions of a nanosecond
            }
            unsigned __int128 ns = product / 1'000'000'000;
            if (ns > UINT64_MAX) {
                return std::nullopt;
            }
            return static_cast<uint64_t>(ns);
        }
    }
    return std::nullopt;
}

std::string format_duration(uint64_t ns) {
    static constexpr std::pair<const char*, uint64_t> kUnits[] = {
        {"s", 1'000'000'000}, {"ms", 1'000'000}, {"us", 1'000}};
    for (auto [suffix, unit] : kUnits) {
        if (ns != 0 && ns % unit == 0) {
            return std::to_string(ns / unit) + suffix;
        }
    }
    return std::to_string(ns) + "ns";
}

std::optional<uint64_t> parse_size(std::string_view s) {
    struct Unit {
        std::string_view suffix;
        unsigned shift;
    };
    // Longest suffixes first: "MiB" before "B".
    static constexpr Unit kUnits[] = {{"KiB", 10}, {"MiB", 20}, {"GiB", 30}, {"TiB", 40}, {"K", 10},
                                      {"M", 20},   {"G", 30},   {"T", 40},   {"B", 0}};
    for (const auto& u : kUnits) {
        if (s.size() > u.suffix.size() && s.ends_with(u.suffix)) {
            std::string_view digits = s.substr(0, s.size() - u.suffix.size());
            if (digits.find_first_not_of("0123456789") != std::string_view::npos) {
                return std::nullopt; // no hex, no sign, no fraction
            }
            auto v = parse_u64(digits);
            if (!v || (u.shift != 0 && *v > (UINT64_MAX >> u.shift))) {
                return std::nullopt;
            }
            return *v << u.shift;
        }
    }
    return std::nullopt;
}

std::string format_size(uint64_t bytes) {
    static constexpr std::pair<const char*, unsigned> kUnits[] = {
        {"TiB", 40}, {"GiB", 30}, {"MiB", 20}, {"KiB", 10}};
    for (auto [suffix, shift] : kUnits) {
        uint64_t unit = uint64_t{1} << shift;
        if (bytes != 0 && bytes % unit == 0) {
            return std::to_string(bytes / unit) + suffix;
        }
    }
    return std::to_string(bytes) + "B";
}

std::optional<double> parse_number(std::string_view s) {
    bool negative = !s.empty() && s[0] == '-';
    if (negative) {
        s.remove_prefix(1);
    }
    std::optional<double> v;
    if (auto u = parse_u64(s)) {
        v = static_cast<double>(*u);
    } else if (auto d = parse_decimal_nano(s)) {
        v = static_cast<double>(*d) / 1e9;
    }
    if (v && negative) {
        *v = -*v;
    }
    return v;
}

std::optional<double> parse_probability(std::string_view s) {
    bool percent = s.ends_with('%');
    if (percent) {
        s.remove_suffix(1);
    }
    auto v = parse_decimal_nano(s);
    if (!v) {
        return std::nullopt;
    }
    double p = static_cast<double>(*v) / 1e9 / (percent ? 100.0 : 1.0);
    if (p > 1) {
        return std::nullopt;
    }
    return p;
}

namespace {

size_t edit_distance(std::string_view a, std::string_view b) {
    std::vector<size_t> row(b.size() + 1);
    std::iota(row.begin(), row.end(), size_t{0});
    for (size_t i = 1; i <= a.size(); ++i) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= b.size(); ++j) {
            size_t up = row[j];
            row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] != b[j - 1])});
            diag = up;
        }
    }
    return row[b.size()];
}

} // namespace

std::optional<std::string> closest(std::string_view word,
                                   const std::vector<std::string>& candidates) {
    std::optional<std::string> best;
    size_t best_distance = SIZE_MAX;
    for (const auto& c : candidates) {
        size_t d = edit_distance(word, c);
        if (d < best_distance) {
            best_distance = d;
            best = c;
        }
    }
    // A typo is a couple of edits away, and not most of the word.
    if (best && best_distance <= std::max<size_t>(1, std::min<size_t>(2, word.size() / 2))) {
        return best;
    }
    return std::nullopt;
}

std::string read_input_file(const std::string& path, const char* kind) {
    std::string name = shown(path, kShownPathLength);
    if (path.find('\0') != std::string::npos) {
        throw SourceError(name, 0, 0, "a file name cannot hold a NUL byte");
    }
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec)) {
        throw SourceError(name, 0, 0, std::string("is a directory, not a ") + kind);
    }
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        throw SourceError(name, 0, 0, std::string("cannot read the ") + kind);
    }
    // NOTE: read in pieces, never more than one past the bound: the file may be endless.
    std::string text;
    char piece[64 * 1024];
    while (in.read(piece, sizeof piece) || in.gcount() > 0) {
        text.append(piece, static_cast<size_t>(in.gcount()));
        if (text.size() > kMaxInputFileBytes) {
            throw SourceError(name, 0, 0,
                              "is larger than " + std::to_string(kMaxInputFileBytes >> 20) +
                                  " MiB, the most a " + kind + " may be");
        }
    }
    if (in.bad()) {
        throw SourceError(name, 0, 0, std::string("cannot read the ") + kind);
    }
    return text;
}

namespace {

// The length of the well-formed UTF-8 sequence of a printable character (not a C1 control)
// at the start of `s`, or 0.
size_t printable_utf8(std::string_view s) {
    auto byte = [&](size_t i) { return static_cast<unsigned char>(s[i]); };
    unsigned char b = byte(0);
    size_t n = b >= 0xc2 && b <= 0xdf   ? 2
               : b >= 0xe0 && b <= 0xef ? 3
               : b >= 0xf0 && b <= 0xf4 ? 4
                                        : 0;
    if (n == 0 || s.size() < n) {
        return 0;
    }
    uint32_t cp = b & (0x7f >> n);
    for (size_t i = 1; i < n; ++i) {
        if ((byte(i) & 0xc0) != 0x80) {
            return 0;
        }
        cp = (cp << 6) | (byte(i) & 0x3f);
    }
    // Overlong forms, surrogates, beyond Unicode, C1 controls.
    static constexpr uint32_t kLeast[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kLeast[n] || (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff || cp < 0xa0) {
        return 0;
    }
    return n;
}

// printable(), stopping after `columns` characters (an escape counts as its four); sets
// *cut if something was left out.
std::string printable_upto(std::string_view s, size_t columns, bool* cut) {
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    size_t width = 0;
    size_t i = 0;
    while (i < s.size()) {
        auto c = static_cast<unsigned char>(s[i]);
        size_t n = c >= 0x20 && c < 0x7f ? 1 : c >= 0x80 ? printable_utf8(s.substr(i)) : 0;
        size_t w = n == 0 ? 4 : 1;
        if (width + w > columns) {
            break;
        }
        width += w;
        if (n == 0) {
            out += {'\\', 'x', kHex[c >> 4], kHex[c & 15]};
            ++i;
        } else {
            out.append(s.substr(i, n));
            i += n;
        }
    }
    if (cut != nullptr) {
        *cut = i < s.size();
    }
    return out;
}

} // namespace

std::string printable(std::string_view s) {
    return printable_upto(s, SIZE_MAX, nullptr);
}

std::string shown(std::string_view s, size_t limit) {
    bool cut = false;
    std::string out = printable_upto(s, limit, &cut);
    if (cut) {
        out += "...";
    }
    return out;
}

} // namespace duet
