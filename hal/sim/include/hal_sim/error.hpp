#pragma once

#include <stdexcept>
#include <string>

namespace hal_sim {

// An error the user caused (a memory map the machine cannot be built from, a bad
// configuration). The command line prints its message and exits 2; never a crash.
class ConfigError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

} // namespace hal_sim
