// The scenario parser only names the kernel's entry points (MachineConfig's default); the
// fuzz build has no kernel to run, so it names none.

#include <hal_sim/machine.hpp>

namespace hal_sim {

KernelEntry duet_kernel() {
    return {};
}

} // namespace hal_sim

// The user program the scenario's processes run (sim/script_program.S): the parser never
// writes an initrd here.
extern "C" const uint8_t duet_script_program[1] = {};
extern "C" const uint8_t duet_script_program_end[1] = {};
