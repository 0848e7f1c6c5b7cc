// Starting the other cores. The code they run until they enter the kernel is loader/ap_start.S.

#include "loader/smp.hpp"

#include "cpu/x86.hpp"
#include "devices/lapic_regs.hpp"
#include "devices/pit.hpp"
#include "loader/acpi.hpp"
#include "loader/console.hpp"

extern "C" {
// From loader/ap_start.S. Only their addresses matter: they locate the page and its fields.
extern const uint8_t ap_blob_base[];
extern const uint8_t ap_blob_start[], ap_blob_end[];
extern const uint8_t ap_handover_gdtr[];
extern const uint8_t ap_entry[], ap_lapic[], ap_release[], ap_arrived[], ap_index[];
}

namespace loader::smp {

namespace {

constexpr uint64_t kFourGiB = 4ull << 30;
constexpr uint16_t kNoIndex = 0xFFFF;
// Intel's MP start-up sequence: INIT, 10 ms, SIPI, 200 us, SIPI.
constexpr uint32_t kInitDelayUs = 10'000;
constexpr uint32_t kSipiDelayUs = 200;
// How long the cores get to reach their page.
constexpr uint32_t kArrivalTimeoutMs = 1000;
constexpr uint32_t kIcrTimeoutUs = 100'000;
// The ICR's destination shorthand "all excluding self".
constexpr uint32_t kIcrAllButSelf = 3u << 18;
// The local APIC registers the BIOS loader sets on the bootstrap CPU besides the SVR.
constexpr uint32_t kLapicLdr = 0xD0;
constexpr uint32_t kLapicDfr = 0xE0;
// The IMCR (ports 0x22/0x23, register 0x70): bit 0 routes the PICs' interrupts through the
// local APIC (symmetric I/O mode).
constexpr uint16_t kImcrIndex = 0x22;
constexpr uint16_t kImcrData = 0x23;
constexpr uint8_t kImcr = 0x70;
// CMOS register 0x0F, the shutdown status: 0x0A makes a reset jump to the warm-reset vector at
// 0x467 (segment:offset) instead of running the POST. The index keeps bit 7 set: NMIs stay off.
constexpr uint16_t kCmosIndex = 0x70;
constexpr uint16_t kCmosData = 0x71;
constexpr uint8_t kCmosShutdownStatus = 0x8F;
constexpr uint8_t kShutdownJumpToVector = 0x0A;
constexpr uint64_t kWarmResetVector = 0x467;

// The loader runs on an identity map of the first 4 GiB (see loader_main.cpp).
template <typename T = uint8_t>
T* phys(uint64_t pa) {
    asm("" : "+r"(pa));
    return reinterpret_cast<T*>(pa);
}

uint64_t page_base() {
    return reinterpret_cast<uint64_t>(ap_blob_base);
}

// Where `field` of the blob lands once the blob is copied to its page.
template <typename T>
T* field(const uint8_t* field) {
    return phys<T>(page_base() + static_cast<uint64_t>(field - ap_blob_start));
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

// INIT to all but this CPU, 10 ms, then two start-up IPIs to them 200 us apart.
void start_all_but_self(uint64_t base, uint32_t vector) {
    send_icr(base, 0, kIcrAllButSelf | lapic_regs::kIcrInit | lapic_regs::kIcrAssert);
    pit::wait_us(kInitDelayUs);
    for (int round = 0; round < 2; ++round) {
        send_icr(base, 0,
                 kIcrAllButSelf | lapic_regs::kIcrStartup | lapic_regs::kIcrAssert | vector);
        pit::wait_us(kSipiDelayUs);
    }
}

// INIT to every core, 10 ms, a start-up IPI to every core, 200 us, a second one to the cores
// not yet seen.
void start_one_by_one(const Cores& cores, uint64_t base, uint32_t vector,
                      const volatile uint8_t* arrived) {
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
    size_t skipped = 0;
    acpi::Error err = acpi::madt_apic_ids(phys(madt), acpi::table_length(phys(madt)), c.apic_ids,
                                          bootboot_abi::kMaxCores, &total, &skipped);
    c.broadcast = skipped == 0;
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

uint64_t install_ap_page(const Cores& cores, uint64_t entry) {
    static_assert(bootboot_abi::kMaxCores <= 256, "one arrival byte per core, 8-bit APIC IDs");
    uint64_t base = page_base();
    auto size = static_cast<uint64_t>(ap_blob_end - ap_blob_start);
    if (base % bootboot_abi::kPageSize != 0 || base + bootboot_abi::kPageSize > 0x8000 ||
        size > bootboot_abi::kPageSize) {
        console::fail("the cores' page is not one page below 0x8000");
    }
    __builtin_memcpy(phys(base), ap_blob_start, size);
    *field<uint64_t>(ap_entry) = entry;
    *field<uint32_t>(ap_lapic) = static_cast<uint32_t>(lapic_base());
    *field<volatile uint8_t>(ap_release) = 0;
    auto* arrived = field<volatile uint8_t>(ap_arrived);
    auto* index = field<uint16_t>(ap_index);
    for (uint32_t id = 0; id < 256; ++id) {
        index[id] = kNoIndex;
    }
    for (uint32_t i = 0; i < cores.count; ++i) {
        arrived[i] = 0;
        if (i != cores.bsp_index) {
            index[cores.apic_ids[i]] = static_cast<uint16_t>(i);
        }
    }
    return base + static_cast<uint64_t>(ap_handover_gdtr - ap_blob_start);
}

void start_secondary_cores(const Cores& cores) {
    uint64_t base = lapic_base();
    x86::outb(kImcrIndex, kImcr);
    x86::outb(kImcrData, x86::inb(kImcrData) | 1);
    *lapic_regs::reg(base, kLapicLdr) = 1u << 24;
    *lapic_regs::reg(base, kLapicDfr) = 0xFFFF'FFFF;
    uint32_t svr = *lapic_regs::reg(base, lapic_regs::kSvr);
    *lapic_regs::reg(base, lapic_regs::kSvr) = (svr & 0xFFFF'0000) | lapic_regs::kSvrEnable | 0xFF;
    *lapic_regs::reg(base, lapic_regs::kTpr) = 0;
    x86::outb(kCmosIndex, kCmosShutdownStatus);
    x86::outb(kCmosData, kShutdownJumpToVector);
    *phys<volatile uint32_t>(kWarmResetVector) = static_cast<uint32_t>((page_base() >> 4) << 16);

    auto* arrived = field<volatile uint8_t>(ap_arrived);
    auto vector = static_cast<uint32_t>(page_base() / bootboot_abi::kPageSize);
    if (cores.broadcast) {
        start_all_but_self(base, vector);
    } else {
        start_one_by_one(cores, base, vector, arrived);
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

void release_secondary_cores() {
    __atomic_store_n(field<uint8_t>(ap_release), uint8_t{1}, __ATOMIC_RELEASE);
}

} // namespace loader::smp
