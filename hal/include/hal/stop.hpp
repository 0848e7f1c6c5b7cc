#pragma once

/// @file
/// Stopping the machine.

#include <hal/types.hpp>

namespace hal {

/// Ends the run with `code`: QEMU's isa-debug-exit device on bare metal (falls back to halting
/// every CPU), the end of the run in the simulator. Any context, any CPU; never returns.
[[noreturn]] void halt_machine(ExitCode code);

} // namespace hal
