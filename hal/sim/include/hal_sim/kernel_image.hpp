#pragma once

// The core's global state in the simulator. On hardware every boot starts from a freshly
// loaded kernel (data as linked, bss zeroed); in one host process many machines boot the same
// core one after another, so each Machine reloads the core's writable data first.

#include <cstddef>

namespace hal_sim {

// Restores the core's data to its load-time contents and zeroes its bss (every machine does
// before it boots), unless the program said that the core has not run yet in this process.
void reload_kernel_image();

// The program's promise that no core code has run in this process yet, nor will outside a
// machine (`duet`'s command line; not a test binary, which calls the core directly): the next
// reload_kernel_image() then leaves the core's data as the process loaded it. A copy writes
// every page of it (434 KB of data, 343 KB of bss), pages the run does not all write: 75 of the
// 1,176 page faults of a `duet run` of default.scn (docs/simulator.md, "Speed at scale").
void kernel_image_is_pristine();

// How many bytes that covers (for tests: non-zero once the core has any globals).
size_t kernel_image_writable_bytes();

} // namespace hal_sim
