#include <core/cpu.hpp>

namespace core {

Cpu g_cpus[kMaxCpus];

} // namespace core
