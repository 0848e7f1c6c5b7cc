#pragma once

// Writing a ustar archive: the initrd the simulated firmware hands the kernel, in the same
// format as the one QEMU boots (tar --format=ustar).

#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace hal_sim {

// Regular files, in the given order; names up to 99 bytes. Deterministic: mode 0444, owner 0,
// time 0.
using UstarFile = std::pair<std::string, std::span<const uint8_t>>;
std::vector<uint8_t> make_ustar(const std::vector<UstarFile>& files);

} // namespace hal_sim
