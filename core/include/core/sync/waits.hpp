#pragma once

// Who waits for what: for each thread blocked on a mutex or a semaphore, a line naming what it
// waits for and, for a mutex, the thread that holds it; then each cycle of threads waiting for
// mutexes the others hold (a deadlock), once. Reads the thread table and the locks' owners
// without taking any lock: for a machine that has stopped (the simulator's deadlock verdict)
// or a watchdog's last report.

#include <stddef.h>

namespace core {

// Calls emit(line, length, ctx) for each line (no newline; at most 255 bytes). Returns how many
// threads it found waiting.
size_t describe_waits(void (*emit)(const char* line, size_t length, void* ctx), void* ctx);

} // namespace core
