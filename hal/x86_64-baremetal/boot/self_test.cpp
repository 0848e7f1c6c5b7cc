#include "boot/self_test.hpp"

#include "boot/bootboot_symbols.hpp"
#include "cpu/percpu.hpp"

#include <core/lib/compiler.hpp>
#include <core/lib/environment.hpp>
#include <core/lib/log.hpp>
#include <hal/cpu.hpp>
#include <hal/ipi.hpp>
#include <hal/stop.hpp>
#include <hal/time.hpp>

namespace x86_self_test {

namespace {

// Canonical, in the lower half, and mapped by nobody.
constexpr uint64_t kUnmappedAddress = 0x0000'7FFF'FFFF'F000;

constexpr uint64_t kTimerNs = 2'000'000;
constexpr uint64_t kWorkNs = 1'000'000;
// Generous: under TCG a virtual CPU can lose its host CPU for a while.
constexpr uint64_t kSlackNs = 500'000'000;

BOOT_CODE bool test_is(const char* value) {
    char buf[16];
    if (!core::env_get(environment, "duet.test", buf, sizeof buf)) {
        return false;
    }
    size_t i = 0;
    while (buf[i] != '\0' && buf[i] == value[i]) {
        ++i;
    }
    return buf[i] == value[i];
}

[[noreturn]] NOINLINE BOOT_CODE void fail(const char* what, uint64_t ns) {
    core::LogLine("clock")
        .str("self-test failed: ")
        .str(what)
        .str(" after ")
        .dec(ns)
        .str(" ns on cpu ")
        .dec(hal::cpu_index());
    hal::halt_machine(hal::ExitCode::Failure);
}

NOINLINE BOOT_CODE void report(uint64_t timer_ns, uint64_t ipi_ns, uint64_t work_ns) {
    core::LogLine("clock")
        .str("self-test passed on cpu ")
        .dec(hal::cpu_index())
        .str(": timer ")
        .dec(timer_ns / 1000)
        .chr('/')
        .dec(kTimerNs / 1000)
        .str(" us, self-IPI ")
        .dec(ipi_ns / 1000)
        .str(" us, FlushTlb self-IPI taken, cpu_work ")
        .dec(work_ns / 1000)
        .chr('/')
        .dec(kWorkNs / 1000)
        .str(" us");
}

// Interrupts are off on entry and off again on return.
NOINLINE BOOT_CODE void test_clock() {
    x86_percpu::Block& b = x86_percpu::this_block();

    uint64_t start = hal::now_ns();
    hal::timer_arm(start + kTimerNs);
    while (__atomic_load_n(&b.timer_armed, __ATOMIC_RELAXED)) {
        hal::wait_for_interrupt();
        if (hal::now_ns() - start > kSlackNs) {
            fail("the timer did not fire", hal::now_ns() - start);
        }
    }
    uint64_t timer_ns = hal::now_ns() - start;
    if (timer_ns < kTimerNs) {
        fail("the timer fired early", timer_ns);
    }

    start = hal::now_ns();
    uint64_t ipis = __atomic_load_n(&b.ipis, __ATOMIC_RELAXED);
    hal::send_ipi(hal::cpu_index(), hal::IpiKind::Reschedule);
    while (__atomic_load_n(&b.ipis, __ATOMIC_RELAXED) == ipis) {
        hal::wait_for_interrupt();
        if (hal::now_ns() - start > kSlackNs) {
            fail("the self-IPI did not arrive", hal::now_ns() - start);
        }
    }
    uint64_t ipi_ns = hal::now_ns() - start;

    // Every IPI kind has its vector: the TLB shootdown's too.
    ipis = __atomic_load_n(&b.ipis, __ATOMIC_RELAXED);
    hal::send_ipi(hal::cpu_index(), hal::IpiKind::FlushTlb);
    while (__atomic_load_n(&b.ipis, __ATOMIC_RELAXED) == ipis) {
        hal::wait_for_interrupt();
        if (hal::now_ns() - start > kSlackNs) {
            fail("the FlushTlb self-IPI did not arrive", hal::now_ns() - start);
        }
    }

    start = hal::now_ns();
    hal::cpu_work(kWorkNs);
    uint64_t work_ns = hal::now_ns() - start;
    if (work_ns < kWorkNs) {
        fail("cpu_work returned early", work_ns);
    }
    report(timer_ns, ipi_ns, work_ns);
}

} // namespace

BOOT_CODE void run(uint32_t index) {
    if (index + 1 != bootboot.header.numcores) {
        return;
    }
    if (test_is("fault")) {
        *reinterpret_cast<volatile uint64_t*>(kUnmappedAddress) = 1;
    } else if (test_is("clock")) {
        x86_percpu::Block& b = x86_percpu::this_block();
        b.in_self_test = true;
        test_clock();
        b.in_self_test = false;
    }
}

} // namespace x86_self_test
