#pragma once

// Performance goals are ratios between two benchmarks measured in the same run, on medians,
// so that a noisy shared machine moves both sides together. Each benchmark file registers
// the ratios it is responsible for.

#include <string>
#include <vector>

namespace duet_bench {

struct Ratio {
    std::string what;        // the goal, in words
    std::string numerator;   // benchmark name (function name, plus "/args" if it has any)
    std::string denominator; // benchmark name
    double limit = 0;        // the goal: numerator/denominator <= limit (at_most) or >= limit
    bool at_most = true;
    bool informational = false; // printed, but not a goal
    // A rate rather than a ratio, with no denominator: the numerator's time is host time per
    // unit (an event, a seed, a virtual second), and the value is units per host second.
    bool rate = false;
};

int register_ratio(Ratio ratio);
const std::vector<Ratio>& ratios();

} // namespace duet_bench
