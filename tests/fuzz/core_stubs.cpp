// What the pure core readers link against in the fuzz build instead of a machine: the core's
// real log lines (core/lib/log.cpp, so their bounds are fuzzed too) over a HAL that discards
// COM1 output and runs on one fixed CPU, and a panic that aborts (a finding for libFuzzer).

#include <core/lib/panic.hpp>
#include <core/lib/result.hpp>

#include <hal/cpu.hpp>
#include <hal/serial.hpp>
#include <hal/stop.hpp>

#include <cstdlib>

namespace hal_sim {

namespace {
FastCpu s_cpu;
} // namespace

// The inline HAL functions (hal/sim/include/hal_backend/inline.hpp) read this.
FastCpu* g_current_cpu = &s_cpu;
// One CPU, no schedule: hal::sync_point() never stops.
bool g_sync_points = false;

void deliver_pending_now() {}

void sync_point_now() {}

void no_current_cpu() {
    std::abort();
}

} // namespace hal_sim

namespace hal {

void serial_write(const char*, size_t) {}

// Only reached by a spinlock that is taken already: one thread never contends.
void cpu_relax() {
    std::abort();
}

// A kernel stopping the machine (a lock-order report ends so): a finding.
void halt_machine(ExitCode) {
    std::abort();
}

} // namespace hal

namespace core {

void panic(const char*) {
    std::abort();
}

void panic_error(const char*, Error) {
    std::abort();
}

void assertion_failed(const char*, const char*, int) {
    std::abort();
}

} // namespace core
