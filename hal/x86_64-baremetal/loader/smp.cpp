// Starting the other cores. The trampoline and hand-over code are in loader/ap_start.S.

#include "loader/smp.hpp"

#include "cpu/x86.hpp"
#include "devices/lapic_regs.hpp"
#include "devices/pit.hpp"
#include "loader/acpi.hpp"
#include "loader/console.hpp"

extern "C" {
// From loader/ap_start.S. Only their addresses matter: they locate the blobs and their fields.
extern const uint8_t ap_trampoline_base[];
extern const uint8_t ap_trampoline_start[], ap_trampoline_end[];
extern const uint8_t ap_trampoline_cr0[], ap_trampoline_cr3[], ap_trampoline_cr4[];
extern const uint8_t ap_trampoline_efer[], ap_trampoline_handover[];
extern const uint8_t ap_handover_start[], ap_handover_end[];
extern const uint8_t ap_handover_gdtr[], ap_handover_lapic[], ap_handover_entry[];
extern const uint8_t ap_handover_release[], ap_handover_arrived[], ap_handover_index[];
}

namespace loader::smp {

namespace {

using firmware::BootPlan;

constexpr uint64_t kFourGiB = 4ull << 30;
constexpr uint16_t kNoIndex = 0xFFFF;
// The hand-over stub sits behind the loader's GDT in the GDT page.
constexpr uint64_t kHandoverOffset = 0x100;
constexpr uint64_t kEferLma = 1ull << 10;
// Intel's MP start-up sequence: INIT, 10 ms, SIPI, 200 us, SIPI.
constexpr uint32_t kInitDelayUs = 10'000;
constexpr uint32_t kSipiDelayUs = 200;
// How long the cores get to reach the hand-over stub.
constexpr uint32_t kArrivalTimeoutMs = 1000;
constexpr uint32_t kIcrTimeoutUs = 100'000;

// The loader runs on an identity map of the first 4 GiB (see loader_main.cpp).
template <typename T = uint8_t>
T* phys(uint64_t pa) {
    asm("" : "+r"(pa));
    return reinterpret_cast<T*>(pa);
}

uint64_t trampoline_base() {
    return reinterpret_cast<uint64_t>(ap_trampoline_base);
}

// Where `field` of a blob that starts at `start` lands once the blob is copied to `to`.
template <typename T>
T* field(uint64_t to, const uint8_t* start, const uint8_t* field) {
    return phys<T>(to + static_cast<uint64_t>(field - start));
}

uint64_t lapic_base() {
    uint64_t msr = x86::rdmsr(x86::kMsrApicBase);
    return msr & lapic_regs::kBaseMask;
}

// The local APIC this loader drives: xAPIC mode, globally enabled, below 4 GiB.
bool xapic_usable() {
    uint64_t msr = x86::rdmsr(x86::kMsrApicBase);
    return (msr & lapic_regs::kApicBaseEnable) != 0 && (msr & lapic_regs::kApicBaseX2Mode) == 0 &&
           (msr & lapic_regs::kBaseMask) < kFourGiB;
}

uint64_t find_madt(uint64_t root_pa) {
    constexpr size_t kMaxTables = 64;
    constexpr uint32_t kMaxRootLength = 64 * 1024;
    if (root_pa == 0 || root_pa + acpi::kTableHeaderSize > kFourGiB) {
        return 0;
    }
    uint32_t length = acpi::table_length(phys(root_pa));
    if (length > kMaxRootLength || root_pa + length > kFourGiB) {
        return 0;
    }
    uint64_t tables[kMaxTables];
    size_t n = 0;
    if (acpi::root_entries(phys(root_pa), length, tables, kMaxTables, &n) != acpi::Error::None) {
        return 0;
    }
    for (size_t i = 0; i < n && i < kMaxTables; ++i) {
        uint64_t pa = tables[i];
        if (pa != 0 && pa + acpi::kTableHeaderSize <= kFourGiB &&
            acpi::has_signature(phys(pa), "APIC")) {
            return pa;
        }
    }
    return 0;
}

Cores only_the_bsp(uint8_t bsp, const char* why) {
    console::begin();
    console::str("starting the bootstrap CPU only: ");
    console::str(why);
    console::end();
    Cores c{};
    c.count = 1;
    c.bsp_index = 0;
    c.apic_ids[0] = bsp;
    return c;
}

bool wait_icr_idle(uint64_t base) {
    for (uint32_t us = 0; us < kIcrTimeoutUs; us += 10) {
        if ((*lapic_regs::reg(base, lapic_regs::kIcrLow) & lapic_regs::kIcrPending) == 0) {
            return true;
        }
        pit::wait_us(10);
    }
    return false;
}

void send_icr(uint64_t base, uint8_t apic_id, uint32_t low) {
    if (!wait_icr_idle(base)) {
        console::fail("the local APIC does not accept interrupt commands");
    }
    *lapic_regs::reg(base, lapic_regs::kIcrHigh) = uint32_t{apic_id} << lapic_regs::kIcrDestShift;
    *lapic_regs::reg(base, lapic_regs::kIcrLow) = low;
}

bool usable_page(uint64_t pa, const firmware::E820Entry* map, size_t n) {
    for (size_t i = 0; i < n; ++i) {
        const firmware::E820Entry& e = map[i];
        if (firmware::e820_counts(e) && e.type == firmware::kE820Usable && e.base <= pa &&
            pa + firmware::kPage <= e.base + e.length) {
            return true;
        }
    }
    return false;
}

} // namespace

uint8_t bsp_apic_id() {
    if (xapic_usable()) {
        return static_cast<uint8_t>(*lapic_regs::reg(lapic_base(), lapic_regs::kId) >> 24);
    }
    // No usable MMIO window: the initial APIC ID from CPUID is the same number.
    return static_cast<uint8_t>(x86::cpuid(1).ebx >> 24);
}

Cores number_cores(uint64_t acpi_root, bool nosmp, bool reverse) {
    uint8_t bsp = bsp_apic_id();
    if (nosmp) {
        return only_the_bsp(bsp, "nosmp=1");
    }
    if (!xapic_usable()) {
        return only_the_bsp(bsp, "no local APIC in xAPIC mode");
    }
    uint64_t madt = find_madt(acpi_root);
    if (madt == 0) {
        return only_the_bsp(bsp, "no ACPI MADT");
    }
    Cores c{};
    size_t total = 0;
    acpi::Error err = acpi::madt_apic_ids(phys(madt), acpi::table_length(phys(madt)), c.apic_ids,
                                          bootboot_abi::kMaxCores, &total);
    if (err != acpi::Error::None) {
        return only_the_bsp(bsp, acpi::describe(err));
    }
    if (total > bootboot_abi::kMaxCores) {
        console::begin();
        console::str("the MADT lists ");
        console::dec(total);
        console::str(" cores; BOOTBOOT takes the first ");
        console::dec(bootboot_abi::kMaxCores);
        console::end();
        total = bootboot_abi::kMaxCores;
    }
    c.count = static_cast<uint32_t>(total);
    if (reverse) {
        for (uint32_t i = 0; i < c.count / 2; ++i) {
            uint8_t t = c.apic_ids[i];
            c.apic_ids[i] = c.apic_ids[c.count - 1 - i];
            c.apic_ids[c.count - 1 - i] = t;
        }
    }
    for (uint32_t i = 0; i < c.count; ++i) {
        if (c.apic_ids[i] == bsp) {
            c.bsp_index = i;
            return c;
        }
    }
    return only_the_bsp(bsp, "the MADT does not list it");
}

void start_secondary_cores(const Cores& cores, const BootPlan& plan, uint64_t entry,
                           const firmware::E820Entry* map, size_t map_count) {
    static_assert(bootboot_abi::kMaxCores <= 256, "one arrival byte per core, 8-bit APIC IDs");
    uint64_t tramp = trampoline_base();
    auto tramp_size = static_cast<uint64_t>(ap_trampoline_end - ap_trampoline_start);
    auto handover_size = static_cast<uint64_t>(ap_handover_end - ap_handover_start);
    if (tramp % firmware::kPage != 0 || tramp >= (1u << 20) || tramp_size > firmware::kPage) {
        console::fail("the AP trampoline is not one page below 1 MiB");
    }
    if (kHandoverOffset + handover_size > firmware::kGdtPages * firmware::kPage) {
        console::fail("the AP hand-over stub does not fit the GDT page");
    }
    if (!usable_page(tramp, map, map_count)) {
        console::fail("the AP trampoline page is not usable RAM");
    }

    // The trampoline: the bootstrap CPU's control registers, so every core enters alike.
    __builtin_memcpy(phys(tramp), ap_trampoline_start, tramp_size);
    uint64_t handover = plan.gdt + kHandoverOffset;
    *field<uint64_t>(tramp, ap_trampoline_start, ap_trampoline_cr0) = x86::read_cr0();
    *field<uint64_t>(tramp, ap_trampoline_start, ap_trampoline_cr3) = plan.tables;
    *field<uint64_t>(tramp, ap_trampoline_start, ap_trampoline_cr4) = x86::read_cr4();
    *field<uint64_t>(tramp, ap_trampoline_start, ap_trampoline_efer) =
        x86::rdmsr(x86::kMsrEfer) & ~kEferLma;
    *field<uint64_t>(tramp, ap_trampoline_start, ap_trampoline_handover) = handover;

    // The hand-over stub, with the GDT pointer, the entry point and the core numbering.
    __builtin_memcpy(phys(handover), ap_handover_start, handover_size);
    uint8_t* gdtr = field<uint8_t>(handover, ap_handover_start, ap_handover_gdtr);
    uint16_t limit = 3 * sizeof(uint64_t) - 1;
    __builtin_memcpy(gdtr, &limit, sizeof limit);
    __builtin_memcpy(gdtr + sizeof limit, &plan.gdt, sizeof plan.gdt);
    uint64_t base = lapic_base();
    *field<uint64_t>(handover, ap_handover_start, ap_handover_lapic) = base;
    *field<uint64_t>(handover, ap_handover_start, ap_handover_entry) = entry;
    *field<volatile uint32_t>(handover, ap_handover_start, ap_handover_release) = 0;
    auto* arrived = field<volatile uint8_t>(handover, ap_handover_start, ap_handover_arrived);
    auto* index = field<uint16_t>(handover, ap_handover_start, ap_handover_index);
    for (uint32_t id = 0; id < 256; ++id) {
        index[id] = kNoIndex;
    }
    for (uint32_t i = 0; i < cores.count; ++i) {
        arrived[i] = 0;
        if (i != cores.bsp_index) {
            index[cores.apic_ids[i]] = static_cast<uint16_t>(i);
        }
    }

    // As the BIOS loader leaves it with SMP on: the local APIC enabled, spurious vector 0xFF.
    *lapic_regs::reg(base, lapic_regs::kSvr) = lapic_regs::kSvrEnable | 0xFF;

    // INIT every core, then two start-up IPIs, the second only to cores not yet seen.
    auto vector = static_cast<uint32_t>(tramp / firmware::kPage);
    for (uint32_t i = 0; i < cores.count; ++i) {
        if (i != cores.bsp_index) {
            send_icr(base, cores.apic_ids[i], lapic_regs::kIcrInit | lapic_regs::kIcrAssert);
        }
    }
    pit::wait_us(kInitDelayUs);
    for (int round = 0; round < 2; ++round) {
        for (uint32_t i = 0; i < cores.count; ++i) {
            if (i != cores.bsp_index && arrived[i] == 0) {
                send_icr(base, cores.apic_ids[i],
                         lapic_regs::kIcrStartup | lapic_regs::kIcrAssert | vector);
            }
        }
        pit::wait_us(kSipiDelayUs);
    }

    for (uint32_t ms = 0;; ++ms) {
        uint32_t missing = cores.count;
        for (uint32_t i = 0; i < cores.count; ++i) {
            if (i == cores.bsp_index || arrived[i] != 0) {
                --missing;
            }
        }
        if (missing == 0) {
            break;
        }
        if (ms == kArrivalTimeoutMs) {
            console::begin();
            console::dec(missing);
            console::str(" of ");
            console::dec(cores.count - 1);
            console::str(" cores did not start, the first being core ");
            for (uint32_t i = 0; i < cores.count; ++i) {
                if (i != cores.bsp_index && arrived[i] == 0) {
                    console::dec(i);
                    console::str(" (APIC ID ");
                    console::dec(cores.apic_ids[i]);
                    console::str(")");
                    break;
                }
            }
            console::refuse();
        }
        pit::wait_us(1000);
    }
}

void release_secondary_cores(const BootPlan& plan) {
    uint64_t handover = plan.gdt + kHandoverOffset;
    __atomic_store_n(field<uint32_t>(handover, ap_handover_start, ap_handover_release), 1u,
                     __ATOMIC_RELEASE);
}

} // namespace loader::smp
