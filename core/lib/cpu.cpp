#include <core/cpu.hpp>

#include <hal/cpu.hpp>

namespace core {

namespace {
Cpu s_cpus[kMaxCpus];
}

Cpu& cpu(uint32_t index) {
    return s_cpus[index];
}

} // namespace core
