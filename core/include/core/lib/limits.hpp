#pragma once

// Sizes the kernel's static tables are built for.

#include <stdint.h>

namespace core {

// CPUs the kernel runs on at most (the per-CPU table, core/cpu.hpp).
inline constexpr uint32_t kMaxCpus = 256;

} // namespace core
