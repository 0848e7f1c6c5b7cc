// The clock and the one-shot timer.

#include "cpu/time.hpp"

#include "cpu/percpu.hpp"
#include "cpu/x86.hpp"
#include "devices/lapic.hpp"
#include "devices/pit.hpp"

#include <core/irq_entry.hpp>
#include <core/lib/compiler.hpp>
#include <hal/cpu.hpp>
#include <hal/irq.hpp>
#include <hal/time.hpp>

namespace x86_time {

namespace {

constexpr uint64_t kNsPerSecond = 1'000'000'000;
// PIT ticks between the two calibration samples: about 20 ms.
constexpr uint16_t kCalibrationTicks = 23'864;
// Samples taken at each end; the one read fastest wins (the least disturbed by the host, under
// QEMU, or by an SMI).
constexpr int kSamples = 5;

// Written once by calibrate() before the other CPUs are released; read-only afterwards.
uint64_t s_tsc_hz = 0;
uint64_t s_apic_hz = 0;
uint64_t s_tsc_at_zero = 0;
// ns = (tsc - s_tsc_at_zero) * s_ns_per_tick_32 >> 32.
uint64_t s_ns_per_tick_32 = 0;
// ticks = ns * s_apic_ticks_per_ns_32 >> 32.
uint64_t s_apic_ticks_per_ns_32 = 0;

struct Sample {
    uint64_t tsc;
    uint32_t count;
};

// A counter read with the TSC taken around it; the tightest of kSamples reads. The reader is a
// template argument (the stack check allows no indirect calls on the boot path), inlined into
// the wrappers below (GCC drops section attributes from template instances).
template <typename Count, Count (*ReadCount)()>
ALWAYS_INLINE Sample sample() {
    Sample best{0, 0};
    uint64_t best_width = ~uint64_t{0};
    for (int i = 0; i < kSamples; ++i) {
        uint64_t before = x86::rdtsc();
        uint32_t count = ReadCount();
        uint64_t after = x86::rdtsc();
        if (after - before < best_width) {
            best_width = after - before;
            best = Sample{before + (after - before) / 2, count};
        }
    }
    return best;
}

BOOT_CODE Sample sample_pit() {
    return sample<uint16_t, pit::read_count>();
}

BOOT_CODE Sample sample_apic() {
    return sample<uint32_t, lapic::timer_count>();
}

uint64_t tsc_to_ns(uint64_t ticks) {
    return static_cast<uint64_t>((static_cast<unsigned __int128>(ticks) * s_ns_per_tick_32) >> 32);
}

// Starts the calling CPU's APIC timer so that it fires `ns` from now (at least one tick, at
// most the 32-bit counter's reach: a longer wait fires early and on_timer_interrupt re-arms).
void program_timer(uint64_t ns) {
    auto ticks = static_cast<uint64_t>(
        (static_cast<unsigned __int128>(ns) * s_apic_ticks_per_ns_32 + 0xFFFF'FFFFu) >> 32);
    if (ticks == 0) {
        ticks = 1;
    }
    if (ticks > 0xFFFF'FFFFu) {
        ticks = 0xFFFF'FFFFu;
    }
    lapic::timer_start(static_cast<uint32_t>(ticks));
}

} // namespace

BOOT_CODE bool calibrate() {
    // The TSC against PIT channel 2, counting down freely from its maximum.
    pit::start_countdown(pit::kMaxCount);
    Sample a = sample_pit();
    Sample b = sample_pit();
    while (static_cast<uint16_t>(a.count - b.count) < kCalibrationTicks) {
        b = sample_pit();
    }
    uint64_t pit_ticks = static_cast<uint16_t>(a.count - b.count);
    uint64_t tsc_ticks = b.tsc - a.tsc;
    s_tsc_hz = tsc_ticks * pit::kFrequencyHz / pit_ticks;

    // The APIC timer against the TSC, over about 10 ms.
    lapic::timer_start(0xFFFF'FFFFu);
    Sample c = sample_apic();
    uint64_t until = c.tsc + s_tsc_hz / 100;
    while (x86::rdtsc() < until) {
        asm volatile("pause");
    }
    Sample d = sample_apic();
    lapic::timer_start(0);
    uint64_t apic_ticks = c.count - d.count;
    if (s_tsc_hz < 1'000'000 || apic_ticks == 0 || d.tsc <= c.tsc) {
        return false;
    }
    s_apic_hz = apic_ticks * s_tsc_hz / (d.tsc - c.tsc);

    s_ns_per_tick_32 = (kNsPerSecond << 32) / s_tsc_hz;
    s_apic_ticks_per_ns_32 = (s_apic_hz << 32) / kNsPerSecond;
    s_tsc_at_zero = x86::rdtsc();
    return s_apic_hz != 0;
}

uint64_t tsc_hz() {
    return s_tsc_hz;
}

uint64_t apic_timer_hz() {
    return s_apic_hz;
}

void on_timer_interrupt() {
    x86_percpu::Block& b = x86_percpu::this_block();
    if (!b.timer_armed) {
        return; // the deadline was replaced meanwhile; the new one is programmed already
    }
    uint64_t now = hal::now_ns();
    if (now < b.timer_deadline_ns) {
        program_timer(b.timer_deadline_ns - now);
        return;
    }
    b.timer_armed = false;
    if (!b.in_self_test) {
        core::on_timer();
    }
}

} // namespace x86_time

namespace hal {

uint64_t now_ns() {
    uint64_t tsc = x86::rdtsc();
    // NOTE: a CPU whose TSC lags the bootstrap CPU's by a little reads 0, not 2^64 - 1.
    return tsc > x86_time::s_tsc_at_zero ? x86_time::tsc_to_ns(tsc - x86_time::s_tsc_at_zero) : 0;
}

uint64_t cycle_count() {
    return x86::rdtsc();
}

void timer_arm(uint64_t deadline_ns) {
    IrqFlags flags = irq_save();
    x86_percpu::Block& b = x86_percpu::this_block();
    if (deadline_ns == UINT64_MAX) {
        // Disarmed: stop the count, and a tick already pending finds nothing armed.
        b.timer_armed = false;
        lapic::timer_start(0);
        irq_restore(flags);
        return;
    }
    b.timer_deadline_ns = deadline_ns;
    b.timer_armed = true;
    uint64_t now = now_ns();
    x86_time::program_timer(deadline_ns > now ? deadline_ns - now : 0);
    irq_restore(flags);
}

void cpu_work(uint64_t ns) {
    uint64_t end = now_ns() + ns;
    while (now_ns() < end) {
        cpu_relax();
    }
}

} // namespace hal
