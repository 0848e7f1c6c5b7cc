#pragma once

// The core's global state in the simulator. On hardware every boot starts from a freshly
// loaded kernel (data as linked, bss zeroed); in one host process many machines boot the same
// core one after another, so each Machine reloads the core's writable data first.

#include <cstddef>

namespace hal_sim {

// Restores the core's data to its load-time contents and zeroes its bss.
void reload_kernel_image();

// How many bytes that covers (for tests: non-zero once the core has any globals).
size_t kernel_image_writable_bytes();

} // namespace hal_sim
