// Duet's QEMU loader: turns what QEMU's Multiboot support hands over (an E820 memory map and
// the initrd as module 1) into what a BOOTBOOT level 1 BIOS loader hands a kernel, and starts
// the kernel in sys/core on every core the ACPI MADT lists, all at once.
//
// Everything it allocates is placed by firmware::plan_boot_area() and the memory map is built
// by firmware::build_mmap(), the same functions the simulator's firmware calls, so that both
// machines show the kernel the same memory map.

#include "cpu/x86.hpp"
#include "loader/acpi.hpp"
#include "loader/console.hpp"
#include "loader/elf64.hpp"
#include "loader/multiboot.hpp"
#include "loader/page_tables.hpp"
#include "loader/rtc.hpp"
#include "loader/smp.hpp"

#include <core/lib/environment.hpp>
#include <core/lib/ustar.hpp>
#include <hal/bootboot.hpp>
#include <hal/firmware/boot_area.hpp>

#include <stddef.h>
#include <stdint.h>

struct [[gnu::packed]] GdtPointer {
    uint16_t limit;
    uint64_t base;
};

extern "C" {
void loader_load_gdt(const GdtPointer* gdtr);
[[noreturn]] void loader_enter_kernel(uint64_t cr3, uint64_t entry, uint64_t rsp,
                                      uint64_t core_index);
[[noreturn]] void loader_main(uint32_t magic, uint32_t mbi);
}

namespace {

using namespace loader;
namespace ustar = core::ustar;
using firmware::BootPlan;
using firmware::E820Entry;

constexpr uint64_t kFourGiB = 4ull << 30;
constexpr size_t kMaxE820Entries = 256;

// Copied out of the Multiboot information before the boot area is touched.
E820Entry g_e820[kMaxE820Entries];
// sys/config, NUL-terminated as the environment page will be, for the loader's own keys.
char g_config[bootboot_abi::kEnvironmentSize];

// The loader runs on an identity map of the first 4 GiB, so a physical address is a pointer.
// NOTE: the empty asm hides the constant from GCC, which otherwise treats small addresses
// such as the BIOS data area as offsets from a null pointer and warns about them.
template <typename T = uint8_t>
T* phys(uint64_t pa) {
    asm("" : "+r"(pa));
    return reinterpret_cast<T*>(pa);
}

constexpr uint64_t page_round_up(uint64_t bytes) {
    return (bytes + firmware::kPage - 1) & ~(firmware::kPage - 1);
}

void zero(uint64_t pa, uint64_t bytes) {
    __builtin_memset(phys(pa), 0, bytes);
}

// --- Legacy hardware -------------------------------------------------------------------------

constexpr uint16_t kPic1Data = 0x21;
constexpr uint16_t kPic2Data = 0xA1;
constexpr uint16_t kCmosIndex = 0x70;
constexpr uint16_t kCmosData = 0x71;
constexpr uint8_t kCmosNmiOff = 0x80;

// Every CMOS access keeps bit 7 of the index set, which keeps NMIs off as the BIOS loader does.
uint8_t cmos_read(uint8_t reg) {
    x86::outb(kCmosIndex, kCmosNmiOff | reg);
    return x86::inb(kCmosData);
}

// As the BIOS loader leaves them: both PICs masked (still at the BIOS vectors), NMI off.
void quiet_legacy_interrupts() {
    x86::outb(kPic1Data, 0xFF);
    x86::outb(kPic2Data, 0xFF);
    (void)cmos_read(0x0D);
}

rtc::Registers read_rtc_once() {
    constexpr uint8_t kStatusA = 0x0A;
    constexpr uint8_t kUpdateInProgress = 0x80;
    // An update takes under 2 ms; bound the wait anyway so a dead RTC cannot hang the boot.
    for (int i = 0; i < 1'000'000 && (cmos_read(kStatusA) & kUpdateInProgress) != 0; ++i) {
        asm volatile("pause");
    }
    return rtc::Registers{cmos_read(0x00), cmos_read(0x02), cmos_read(0x04), cmos_read(0x07),
                          cmos_read(0x08), cmos_read(0x09), cmos_read(0x32), cmos_read(0x0B)};
}

bool same_time(const rtc::Registers& a, const rtc::Registers& b) {
    return a.second == b.second && a.minute == b.minute && a.hour == b.hour && a.day == b.day &&
           a.month == b.month && a.year == b.year && a.century == b.century &&
           a.status_b == b.status_b;
}

void read_datetime(uint8_t out[8]) {
    // Read until two reads agree, so that no field is taken across a rollover.
    rtc::Registers regs = read_rtc_once();
    for (int tries = 0; tries < 5; ++tries) {
        rtc::Registers again = read_rtc_once();
        if (same_time(regs, again)) {
            break;
        }
        regs = again;
    }
    rtc::to_bootboot(regs, out);
}

bool has_signature(uint64_t pa, const char (&sig)[5]) {
    if (pa == 0 || pa + 4 > kFourGiB) {
        return false;
    }
    const uint8_t* p = phys(pa);
    return p[0] == sig[0] && p[1] == sig[1] && p[2] == sig[2] && p[3] == sig[3];
}

// The RSDT or XSDT (not the RSDP), found through the RSDP in the EBDA's first KiB or in the
// BIOS area 0xE0000-0xFFFFF; 0 if there is none.
uint64_t find_acpi_root() {
    constexpr uint64_t kEbdaSegmentPtr = 0x40E;
    constexpr uint64_t kBiosArea = 0xE0000;
    constexpr size_t kBiosAreaSize = 0x20000;
    constexpr size_t kEbdaScan = 1024;

    const uint8_t* rsdp = nullptr;
    size_t avail = 0;
    uint64_t ebda = uint64_t{*phys<volatile uint16_t>(kEbdaSegmentPtr)} << 4;
    if (ebda >= 0x80000 && ebda < 0xA0000) {
        size_t off = acpi::find_rsdp(phys(ebda), kEbdaScan);
        if (off < kEbdaScan) {
            rsdp = phys(ebda + off);
            avail = kEbdaScan - off;
        }
    }
    if (rsdp == nullptr) {
        size_t off = acpi::find_rsdp(phys(kBiosArea), kBiosAreaSize);
        if (off < kBiosAreaSize) {
            rsdp = phys(kBiosArea + off);
            avail = kBiosAreaSize - off;
        }
    }
    if (rsdp == nullptr) {
        return 0;
    }
    acpi::RootTables roots = acpi::root_tables(rsdp, avail);
    if (has_signature(roots.xsdt, "XSDT")) {
        return roots.xsdt;
    }
    if (has_signature(roots.rsdt, "RSDT")) {
        return roots.rsdt;
    }
    return 0;
}

// --- Hand-over ---------------------------------------------------------------------------

void write_gdt(const BootPlan& plan) {
    constexpr uint64_t kCode64 = 0x00AF'9A00'0000'FFFF;
    constexpr uint64_t kData = 0x00CF'9200'0000'FFFF;
    zero(plan.gdt, firmware::kGdtPages * firmware::kPage);
    uint64_t* gdt = phys<uint64_t>(plan.gdt);
    gdt[1] = kCode64;
    gdt[2] = kData;
    GdtPointer gdtr{3 * sizeof(uint64_t) - 1, plan.gdt};
    loader_load_gdt(&gdtr);
}

void write_environment(const BootPlan& plan, const uint8_t* config, size_t size) {
    zero(plan.environment, firmware::kPage);
    char* env = phys<char>(plan.environment);
    if (config == nullptr) {
        static constexpr char kNone[] = "// N/A";
        __builtin_memcpy(env, kNone, sizeof(kNone));
        return;
    }
    size_t n =
        size < bootboot_abi::kEnvironmentSize - 1 ? size : bootboot_abi::kEnvironmentSize - 1;
    __builtin_memcpy(env, config, n);
}

bool env_is(const char* env, const char* key, const char* value) {
    char buf[16];
    if (!core::env_get(env, key, buf, sizeof buf)) {
        return false;
    }
    size_t i = 0;
    while (buf[i] != '\0' && buf[i] == value[i]) {
        ++i;
    }
    return buf[i] == value[i];
}

void fail_lookup(const char* path, const ustar::Lookup& found) {
    console::begin();
    if (found.error == ustar::Error::NotFound) {
        console::str(path);
        console::str(": ");
        console::str(ustar::describe(found.error));
    } else {
        console::str("initrd: ");
        console::str(ustar::describe(found.error));
        console::str(" at offset ");
        console::hex(found.header_offset);
    }
    console::refuse();
}

} // namespace

extern "C" void loader_main(uint32_t magic, uint32_t mbi_phys) {
    console::init();
    quiet_legacy_interrupts();
    console::line("Duet loader, Multiboot to BOOTBOOT level 1");
    if (magic != multiboot::kBootloaderMagic) {
        console::fail("not started by a Multiboot boot loader (bad magic in EAX)");
    }

    // Take everything needed from the Multiboot information first: the boot area may cover it.
    multiboot::Info mbi = multiboot::read_info(phys(mbi_phys));
    if ((mbi.flags & multiboot::kInfoMmap) == 0) {
        console::fail("the boot loader passed no memory map");
    }
    size_t e820_count = 0;
    multiboot::Error mb_err = multiboot::read_mmap(phys(mbi.mmap_addr), mbi.mmap_length, g_e820,
                                                   kMaxE820Entries, &e820_count);
    if (mb_err != multiboot::Error::None) {
        console::fail(multiboot::describe(mb_err));
    }
    if ((mbi.flags & multiboot::kInfoModules) == 0 || mbi.mods_count == 0) {
        console::fail("no initrd module (boot with -initrd initrd.tar)");
    }
    multiboot::Module module = multiboot::read_module(phys(mbi.mods_addr));
    if (module.end < module.start) {
        console::fail("the initrd module ends before it starts");
    }
    uint64_t initrd_size = module.end - module.start;
    if (initrd_size == 0) {
        console::fail("the initrd is empty");
    }
    if (initrd_size > bootboot_abi::kMaxInitrdSize) {
        console::fail("the initrd is larger than 16 MiB");
    }

    // The loader's own keys come from sys/config where the module lies now: the number of
    // cores decides the plan, and the plan decides where the initrd goes.
    ustar::Lookup early_config = ustar::find(phys(module.start), initrd_size, "sys/config");
    if (early_config.error == ustar::Error::None) {
        size_t n =
            early_config.size < sizeof g_config - 1 ? early_config.size : sizeof g_config - 1;
        __builtin_memcpy(g_config, phys(module.start + early_config.data_offset), n);
    }
    bool nosmp = env_is(g_config, "nosmp", "1");
    // A test aid: number the cores backwards so that the bootstrap CPU's index is not 0.
    bool reverse_cores = env_is(g_config, "duet.loader.cores", "reverse");
    uint64_t acpi_root = find_acpi_root();
    smp::Cores cores = smp::number_cores(acpi_root, nosmp, reverse_cores);

    BootPlan plan = firmware::plan_boot_area(cores.count);
    firmware::FirmwareError fw_err = firmware::check_boot_area(g_e820, e820_count, plan);
    if (fw_err != firmware::FirmwareError::None) {
        console::fail(firmware::describe(fw_err));
    }

    // The initrd moves to its place in the boot area first: the module may overlap the
    // kernel window, which is written next.
    __builtin_memmove(phys(plan.initrd), phys(module.start), initrd_size);
    uint64_t initrd_bytes = page_round_up(initrd_size);
    zero(plan.initrd + initrd_size, initrd_bytes - initrd_size);
    const uint8_t* initrd = phys(plan.initrd);

    ustar::Lookup core = ustar::find(initrd, initrd_size, "sys/core");
    if (core.error != ustar::Error::None) {
        fail_lookup("sys/core", core);
    }
    ustar::Lookup config = ustar::find(initrd, initrd_size, "sys/config");
    if (config.error != ustar::Error::None && config.error != ustar::Error::NotFound) {
        fail_lookup("sys/config", config);
    }
    elf64::KernelSegment seg{};
    elf64::Error elf_err = elf64::find_kernel_segment(initrd + core.data_offset, core.size, &seg);
    if (elf_err != elf64::Error::None) {
        console::fail(elf64::describe(elf_err));
    }

    // The kernel segment: file bytes, then zeroes up to the end of its last page.
    uint64_t kernel_bytes = page_round_up(seg.memsz);
    zero(plan.kernel, kernel_bytes);
    __builtin_memcpy(phys(plan.kernel), initrd + core.data_offset + seg.offset, seg.filesz);

    TableError table_err = build_kernel_tables(phys<uint64_t>(plan.tables), plan, seg.memsz);
    if (table_err != TableError::None) {
        console::fail(describe(table_err));
    }
    zero(plan.stacks, plan.stack_pages * firmware::kPage);
    write_environment(plan,
                      config.error == ustar::Error::None ? initrd + config.data_offset : nullptr,
                      config.size);

    zero(plan.bootboot, firmware::kPage);
    auto* info = phys<bootboot_abi::Info>(plan.bootboot);
    bootboot_abi::Header& h = info->header;
    __builtin_memcpy(h.magic, bootboot_abi::kMagic, sizeof(h.magic));
    h.protocol = bootboot_abi::kProtocolStatic | bootboot_abi::kLoaderBios;
    h.numcores = static_cast<uint16_t>(cores.count);
    h.bspid = cores.apic_ids[cores.bsp_index];
    h.timezone = 0;
    read_datetime(h.datetime);
    h.initrd_ptr = plan.initrd;
    h.initrd_size = initrd_bytes;
    h.arch.acpi_ptr = acpi_root;
    size_t mmap_count = 0;
    fw_err = firmware::build_mmap(g_e820, e820_count, plan, info->mmap, &mmap_count);
    if (fw_err != firmware::FirmwareError::None) {
        console::fail(firmware::describe(fw_err));
    }
    h.size = static_cast<uint32_t>(sizeof(bootboot_abi::Header) +
                                   mmap_count * sizeof(bootboot_abi::MmapEntry));

    console::begin();
    console::str("initrd ");
    console::dec(initrd_size);
    console::str(" B, sys/core ");
    console::dec(core.size);
    console::str(" B, ");
    console::str(config.error == ustar::Error::None ? "sys/config" : "no sys/config");
    console::end();
    console::begin();
    console::str("kernel segment ");
    console::hex(seg.memsz);
    console::str(" B at ");
    console::hex(plan.kernel);
    console::str(", entry ");
    console::hex(seg.entry);
    console::end();

    write_gdt(plan);
    if (cores.count > 1) {
        smp::start_secondary_cores(cores, plan, seg.entry, g_e820, e820_count);
    }
    console::begin();
    console::dec(cores.count);
    console::str(cores.count == 1 ? " core" : " cores");
    console::str(", bootstrap CPU APIC ID ");
    console::dec(h.bspid);
    console::str(" is core ");
    console::dec(cores.bsp_index);
    console::end();

    // Every core enters the kernel at once: the others leave the hand-over stub as soon as
    // they see the release, the bootstrap CPU jumps right after setting it.
    uint64_t bsp_stack = 0 - uint64_t{cores.bsp_index} * bootboot_abi::kInitStackSize;
    if (cores.count > 1) {
        smp::release_secondary_cores(plan);
    }
    loader_enter_kernel(plan.tables, seg.entry, bsp_stack, cores.bsp_index);
}
