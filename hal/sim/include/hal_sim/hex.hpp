#pragma once

// Addresses in the simulator's messages: "0x7ffdf000" (and "0" for zero, as printf's %#x).

#include <cstdint>
#include <cstdio>
#include <string>

namespace hal_sim {

inline std::string hex(uint64_t v) {
    char buf[24];
    std::snprintf(buf, sizeof buf, "%#llx", static_cast<unsigned long long>(v));
    return buf;
}

} // namespace hal_sim
