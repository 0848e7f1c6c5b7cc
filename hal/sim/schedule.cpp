// Parsing and printing --schedule values (hal_sim/schedule.hpp). What the strategies do at a
// synchronisation point is in executor.cpp (Machine::sync_point).

#include <hal_sim/schedule.hpp>

#include <charconv>
#include <cstdio>

namespace hal_sim {

namespace {

template <typename T>
bool parse_number(std::string_view text, T* value) {
    const char* end = text.data() + text.size();
    auto [p, ec] = std::from_chars(text.data(), end, *value);
    return ec == std::errc() && p == end && !text.empty();
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
            *error = "random:P takes a probability P from 0 to 1, not '" + std::string(args) + "'";
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
            *error = "pct:D takes a depth D from 1 to 64, not '" + std::string(depth) + "'";
            return std::nullopt;
        }
        if (depth.size() < args.size()) {
            std::string_view horizon = args.substr(depth.size() + 1);
            if (!parse_number(horizon, &s.horizon) || s.horizon == 0) {
                *error = "pct:D:K takes a positive number K of synchronisation points, not '" +
                         std::string(horizon) + "'";
                return std::nullopt;
            }
        }
        return s;
    }
    *error = "expected coarse, random[:P] or pct[:D[:K]], not '" + std::string(text) + "'";
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
    }
    return "?";
}

} // namespace hal_sim
