// The scenario parser only names the kernel's entry points (MachineConfig's default); the
// fuzz build has no kernel to run, so it names none.

#include <hal_sim/machine.hpp>

namespace hal_sim {

KernelEntry duet_kernel() {
    return {};
}

} // namespace hal_sim
