#pragma once

// Switches for the QEMU tests, read from the environment page (sys/config in the initrd):
//
//   duet.test=fault  the core with the highest index writes to an unmapped address: the
//                    page-fault report and the panic verdict (37) are what the test expects.
//   duet.test=clock  the core with the highest index checks its own timer, a self-IPI and
//                    cpu_work against the clock, logs "clock: self-test passed ..." and goes on,
//                    or stops the machine with ExitCode::Failure.
//
// They run once the core is released (the bootstrap CPU, when it is alone, just before
// core::boot_main), interrupts off, on the 1 KiB bring-up stack. The core reads one more,
// duet.test=stack-overflow (core/boot/init.cpp): its init thread overflows its kernel stack.

#include <stdint.h>

namespace x86_self_test {

void run(uint32_t index);

} // namespace x86_self_test
