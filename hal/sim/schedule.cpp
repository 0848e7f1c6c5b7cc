// Parsing and printing --schedule values (hal_sim/schedule.hpp). What the strategies do at a
// synchronisation point is in executor.cpp (Machine::sync_point).

#include <hal_sim/schedule.hpp>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <memory>

namespace hal_sim {

namespace {

template <typename T>
bool parse_number(std::string_view text, T* value) {
    const char* end = text.data() + text.size();
    auto [p, ec] = std::from_chars(text.data(), end, *value);
    return ec == std::errc() && p == end && !text.empty();
}

// A value an error message quotes, cut after `limit` bytes with "..." (a value 100 KB long is
// not echoed whole; sim/text.hpp's shown() does the same for the scenario's errors, and the
// caller makes the message printable). File names get more room.
constexpr size_t kQuotedLength = 60;
constexpr size_t kQuotedPathLength = 400;
std::string quoted(std::string_view value, size_t limit = kQuotedLength) {
    std::string q = "'";
    q += value.substr(0, limit);
    if (value.size() > limit) {
        q += "...";
    }
    return q + "'";
}

// Reads at most `limit` + 1 bytes of `path` into `*bytes`; false with `*error` set if it
// cannot be read.
bool read_bounded(const std::string& path, size_t limit, std::vector<uint8_t>* bytes,
                  std::string* error) {
    std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
    if (!f) {
        *error = "input:FILE: cannot open " + quoted(path, kQuotedPathLength) + ": " +
                 std::strerror(errno);
        return false;
    }
    bytes->resize(limit + 1);
    size_t got = std::fread(bytes->data(), 1, bytes->size(), f.get());
    if (std::ferror(f.get())) {
        *error = "input:FILE: cannot read " + quoted(path, kQuotedPathLength) + ": " +
                 std::strerror(errno);
        return false;
    }
    bytes->resize(got);
    return true;
}

} // namespace

std::optional<Schedule> parse_schedule(std::string_view text, std::string* error) {
    std::string_view name = text.substr(0, text.find(':'));
    std::string_view args = name.size() < text.size() ? text.substr(name.size() + 1) : "";
    bool has_args = name.size() < text.size();
    Schedule s;
    if (name == "coarse" && !has_args) {
        return s;
    }
    if (name == "random") {
        s.kind = Schedule::Kind::Random;
        if (has_args && (!parse_number(args, &s.stall_chance) || !(s.stall_chance >= 0) ||
                         s.stall_chance > 1)) {
            *error = "random:P takes a probability P from 0 to 1, not " + quoted(args);
            return std::nullopt;
        }
        return s;
    }
    if (name == "pct") {
        s.kind = Schedule::Kind::Pct;
        if (!has_args) {
            return s;
        }
        std::string_view depth = args.substr(0, args.find(':'));
        if (!parse_number(depth, &s.depth) || s.depth < 1 || s.depth > Schedule::kMaxDepth) {
            *error = "pct:D takes a depth D from 1 to 64, not " + quoted(depth);
            return std::nullopt;
        }
        if (depth.size() < args.size()) {
            std::string_view horizon = args.substr(depth.size() + 1);
            if (!parse_number(horizon, &s.horizon) || s.horizon == 0) {
                *error = "pct:D:K takes a positive number K of synchronisation points, not " +
                         quoted(horizon);
                return std::nullopt;
            }
        }
        return s;
    }
    if (name == "input") {
        s.kind = Schedule::Kind::Input;
        s.input_path = std::string(args);
        if (s.input_path.empty()) {
            *error = "input:FILE needs the file whose bytes make the choices";
            return std::nullopt;
        }
        if (!read_bounded(s.input_path, Schedule::kMaxInputBytes, &s.input, error)) {
            return std::nullopt;
        }
        if (s.input.size() > Schedule::kMaxInputBytes) {
            *error = "input:FILE: " + quoted(s.input_path, kQuotedPathLength) +
                     " is larger than 1 MiB, the most an input schedule reads";
            return std::nullopt;
        }
        return s;
    }
    *error = "expected coarse, random[:P], pct[:D[:K]] or input:FILE, not " + quoted(text);
    return std::nullopt;
}

std::string describe(const Schedule& s) {
    switch (s.kind) {
    case Schedule::Kind::Coarse:
        return "coarse";
    case Schedule::Kind::Random: {
        if (s.stall_chance == Schedule{}.stall_chance) {
            return "random";
        }
        // The shortest of %g and %.17g that reads back as the same probability.
        char p[32];
        std::snprintf(p, sizeof p, "%g", s.stall_chance);
        double back = 0;
        if (!parse_number(std::string_view(p), &back) || back != s.stall_chance) {
            std::snprintf(p, sizeof p, "%.17g", s.stall_chance);
        }
        return std::string("random:") + p;
    }
    case Schedule::Kind::Pct:
        return "pct:" + std::to_string(s.depth) +
               (s.horizon != 0 ? ":" + std::to_string(s.horizon) : "");
    case Schedule::Kind::Input:
        return "input:" + s.input_path;
    }
    return "?";
}

std::optional<InputChoice> ScheduleInput::next() {
    // The position: LEB128; past 5 bytes it only saturates.
    uint64_t delta = 0;
    size_t i = m_offset;
    for (unsigned shift = 0;; shift += 7) {
        if (i >= m_bytes.size()) {
            m_offset = m_bytes.size();
            return std::nullopt;
        }
        uint8_t b = m_bytes[i++];
        delta = shift < 35 ? delta | uint64_t{b & 0x7fu} << shift : kMaxDelta;
        if ((b & 0x80) == 0) {
            break;
        }
    }
    if (i >= m_bytes.size()) {
        m_offset = m_bytes.size();
        return std::nullopt;
    }
    uint8_t a = m_bytes[i++];
    m_offset = i;
    m_at += std::min(delta, kMaxDelta);
    InputChoice c;
    c.at = m_at;
    if (a < 0x80) {
        c.kind = InputChoice::Kind::RaceStall;
        c.ns = a;
    } else if (a < 0xc0) {
        c.kind = InputChoice::Kind::LongStall;
        c.ns = Schedule::kMinLongStallNs << ((a & 0x3fu) % 11);
    } else if (a < 0xe0) {
        c.kind = InputChoice::Kind::TimerLatency;
        c.ns = uint64_t{a & 0x1fu} * 32;
    } else {
        c.kind = InputChoice::Kind::Fault;
        c.fault = static_cast<InputFault>((a - 0xe0) % 5);
        c.ns = uint64_t{1'024} << ((a - 0xe0) / 5);
    }
    return c;
}

} // namespace hal_sim
