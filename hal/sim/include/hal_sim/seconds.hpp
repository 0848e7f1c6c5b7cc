#pragma once

// Virtual times in the simulator's messages: seconds with nanoseconds, "0.001000000".

#include <cstdint>
#include <cstdio>
#include <string>

namespace hal_sim {

inline std::string seconds(uint64_t ns) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%llu.%09llu",
                  static_cast<unsigned long long>(ns / 1'000'000'000),
                  static_cast<unsigned long long>(ns % 1'000'000'000));
    return buf;
}

} // namespace hal_sim
