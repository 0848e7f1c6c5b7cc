// The local APIC, xAPIC mode.

#include "devices/lapic.hpp"

#include "cpu/percpu.hpp"
#include "cpu/vectors.hpp"
#include "cpu/x86.hpp"
#include "devices/lapic_regs.hpp"

#include <core/lib/compiler.hpp>

namespace lapic {

namespace {

using namespace lapic_regs;

constexpr uint64_t kFourGiB = 4ull << 30;
constexpr uint32_t kDivideBy16 = 0x3;

// The registers' physical address (probe()), and where the kernel address space maps them
// (set_kernel_mapping()). Each CPU reaches them through its per-CPU block's `lapic`: the
// physical address under the loader's identity map, the mapping once it has loaded the
// kernel's tables, which do not map the identity.
uint64_t s_base = 0;
uint64_t s_mapped = 0;

ALWAYS_INLINE volatile uint32_t* at(uint32_t offset) {
    return reg(x86_percpu::this_block().lapic, offset);
}

ALWAYS_INLINE void send(uint32_t apic_id, uint32_t low) {
    while ((*at(kIcrLow) & kIcrPending) != 0) {
        asm volatile("pause");
    }
    *at(kIcrHigh) = apic_id << kIcrDestShift;
    *at(kIcrLow) = low;
}

} // namespace

BOOT_CODE bool probe() {
    uint64_t msr = x86::rdmsr(x86::kMsrApicBase);
    uint64_t base = msr & kBaseMask;
    if ((msr & kApicBaseEnable) == 0 || (msr & kApicBaseX2Mode) != 0 || base >= kFourGiB) {
        return false;
    }
    __atomic_store_n(&s_base, base, __ATOMIC_RELEASE);
    return true;
}

bool ready() {
    return x86_percpu::this_block().lapic != 0;
}

uint64_t physical_base() {
    return __atomic_load_n(&s_base, __ATOMIC_ACQUIRE);
}

void set_kernel_mapping(uint64_t va) {
    __atomic_store_n(&s_mapped, va, __ATOMIC_RELEASE);
}

void use_kernel_mapping() {
    uint64_t va = __atomic_load_n(&s_mapped, __ATOMIC_ACQUIRE);
    if (va != 0) {
        x86_percpu::this_block().lapic = va;
    }
}

BOOT_CODE void init_this_cpu() {
    x86_percpu::Block& b = x86_percpu::this_block();
    if (b.lapic == 0) {
        b.lapic = __atomic_load_n(&s_base, __ATOMIC_ACQUIRE);
    }
    *at(kSvr) = kSvrEnable | x86_vectors::kApicSpurious;
    *at(kTpr) = 0;
    *at(kTimerDivide) = kDivideBy16;
    *at(kTimerInitialCount) = 0;
    *at(kLvtTimer) = x86_vectors::kTimer; // one-shot, unmasked
}

uint32_t id() {
    return *at(kId) >> 24;
}

void eoi() {
    *at(kEoi) = 0;
}

void timer_start(uint32_t ticks) {
    *at(kTimerInitialCount) = ticks;
}

uint32_t timer_count() {
    return *at(kTimerCurrentCount);
}

void send_fixed(uint32_t apic_id, uint8_t vector) {
    send(apic_id, kIcrFixed | kIcrAssert | vector);
}

void send_nmi(uint32_t apic_id) {
    send(apic_id, kIcrNmi | kIcrAssert);
}

} // namespace lapic
