#pragma once

// The first thread: runs the workload the firmware handed over (sys/workload in the initrd),
// reports, and stops the machine with the verdict.

#include <core/boot/boot.hpp>

namespace core {

// On the bootstrap CPU once the scheduler is up: starts the init thread. Keeps `info`.
void start_init_thread(const BootInfo& info);

} // namespace core
