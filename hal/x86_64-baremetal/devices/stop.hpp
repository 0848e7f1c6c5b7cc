#pragma once

// Stopping the machine: the verdict to QEMU's isa-debug-exit, then every other CPU halted.

namespace x86_stop {

// Whether some CPU is stopping the machine (hal::halt_machine has begun).
bool stopping();

} // namespace x86_stop
