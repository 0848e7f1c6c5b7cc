// Duet's QEMU loader: turns what a Multiboot boot loader (QEMU's -kernel, GRUB) hands over, an
// E820 memory map and the initrd as module 1, into exactly what the upstream BOOTBOOT BIOS
// loader (bootboot.bin, protocol level 1) hands a kernel on the same machine, and starts the
// kernel in sys/core on every core the ACPI MADT lists, all at once.
//
// Where everything goes and the memory map come from the model of that loader,
// firmware::bios::build() and firmware::bios::write_tables(): the initrd at the start of the
// first usable entry of 18 MiB (1 MiB on a PC), the kernel copy right after it, the bootboot
// page at 0x8000, the environment at 0x9000, the page tables at 0xA000, the stacks from
// 0x14000. The cores' own page (trampoline, hand-over GDT) is at 0x7000. The loader itself is
// linked at 19 MiB, out of the way, and is free memory in the kernel's map. The one intended
// difference: it starts up to 256 cores, where the BIOS loader stops at 255.

#include "cpu/x86.hpp"
#include "loader/bios_tables.hpp"
#include "loader/console.hpp"
#include "loader/elf64.hpp"
#include "loader/multiboot.hpp"
#include "loader/placement.hpp"
#include "loader/rtc.hpp"
#include "loader/smp.hpp"
#include "loader/video.hpp"

#include <core/lib/environment.hpp>
#include <core/lib/ustar.hpp>
#include <hal/bootboot.hpp>
#include <hal/firmware/bios_loader.hpp>

#include <stddef.h>
#include <stdint.h>

extern "C" {
extern const uint8_t __loader_start[], __loader_bss_end[];
extern uint64_t loader_kernel_entry;
[[noreturn]] void loader_enter_kernel(uint64_t gdtr, uint64_t index, uint64_t apic_id,
                                      uint64_t rdx);
[[noreturn]] void loader_main(uint32_t magic, uint32_t mbi);
}

namespace {

using namespace loader;
namespace ustar = core::ustar;
namespace bios = firmware::bios;
using firmware::E820Entry;

constexpr uint64_t kFourGiB = 4ull << 30;
constexpr size_t kMaxE820Entries = 256;

// Copied out of the Multiboot information before anything is moved.
E820Entry g_e820[kMaxE820Entries];
// The memory map the model builds, copied into the bootboot page at the end.
bootboot_abi::MmapEntry g_mmap[bios::kMaxEntries];
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

// The EBDA's segment, as INT 15h AX=C100h reports it: the BIOS data area's word at 0x40E.
uint32_t ebda_segment() {
    constexpr uint64_t kEbdaSegmentPtr = 0x40E;
    return *phys<volatile uint16_t>(kEbdaSegmentPtr);
}

uint32_t read32(uint64_t pa) {
    return *phys<volatile uint32_t>(pa);
}

// Whether [base, end) lies inside one usable E820 entry.
bool usable_ram(uint64_t base, uint64_t end, size_t n) {
    for (size_t i = 0; i < n; ++i) {
        const E820Entry& e = g_e820[i];
        if (e.type == firmware::kE820Usable && e.base <= base && end <= firmware::e820_end(e)) {
            return true;
        }
    }
    return false;
}

// --- Hand-over ---------------------------------------------------------------------------

void write_environment(const uint8_t* config, size_t size) {
    zero(bios::kEnvironmentPage, firmware::kPage);
    char* env = phys<char>(bios::kEnvironmentPage);
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

[[noreturn]] void refuse_machine(const firmware::LoaderStatus& st, size_t e820_count) {
    console::begin();
    console::str(firmware::describe(st.error));
    if (st.entry != firmware::kNoEntry && st.entry < e820_count) {
        const E820Entry& e = g_e820[st.entry];
        console::str(" (E820 entry ");
        console::dec(st.entry);
        console::str(": ");
        console::hex(e.base);
        console::str(", ");
        console::hex(e.length);
        console::str(" bytes, type ");
        console::dec(e.type);
        console::str(")");
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

    // Take everything needed from the Multiboot information first: the copies below may cover
    // it.
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

    // Read where the module lies: the loader's own keys in sys/config, and the kernel
    // segment's sizes, which decide where things go.
    const uint8_t* in_module = phys(module.start);
    ustar::Lookup config = ustar::find(in_module, initrd_size, "sys/config");
    if (config.error != ustar::Error::None && config.error != ustar::Error::NotFound) {
        fail_lookup("sys/config", config);
    }
    if (config.error == ustar::Error::None) {
        size_t n = config.size < sizeof g_config - 1 ? config.size : sizeof g_config - 1;
        __builtin_memcpy(g_config, in_module + config.data_offset, n);
    }
    ustar::Lookup core = ustar::find(in_module, initrd_size, "sys/core");
    if (core.error != ustar::Error::None) {
        fail_lookup("sys/core", core);
    }
    elf64::KernelSegment seg{};
    elf64::Error elf_err =
        elf64::find_kernel_segment(in_module + core.data_offset, core.size, &seg);
    if (elf_err != elf64::Error::None) {
        console::fail(elf64::describe(elf_err));
    }
    bool nosmp = env_is(g_config, "nosmp", "1");
    // A test aid: number the cores backwards so that the bootstrap CPU's index is not 0.
    bool reverse_cores = env_is(g_config, "duet.loader.cores", "reverse");

    bios_tables::Found tables = bios_tables::scan(ebda_segment(), read32);
    smp::Cores cores = smp::number_cores(tables.acpi_root, nosmp, reverse_cores);

    firmware::LoaderInput input{
        cores.count, initrd_size, {seg.filesz, seg.memsz, seg.shared_object}, tables.acpi_root};
    firmware::Handover h{};
    firmware::MmapOut mmap{g_mmap, bios::kMaxEntries, 0};
    firmware::LoaderStatus status = bios::build(g_e820, e820_count, input, &h, mmap);
    if (!status.ok()) {
        refuse_machine(status, e820_count);
    }
    // The one intended difference from the BIOS loader, which stops at 255 cores.
    h.numcores = cores.count;

    placement::Range self{reinterpret_cast<uint64_t>(__loader_start),
                          reinterpret_cast<uint64_t>(__loader_bss_end)};
    placement::Error place_err = placement::check(self, {module.start, module.end}, h);
    if (place_err != placement::Error::None) {
        console::fail(placement::describe(place_err));
    }
    if (!usable_ram(placement::kLowArea.start, placement::kLowArea.end, e820_count)) {
        console::fail("the memory from 0x7000 to 0x54000 is not usable RAM");
    }

    // The initrd to its place (the module may overlap it), zeroed up to a whole page; then the
    // kernel segment from it to right after it: the file's bytes, then zeroes.
    __builtin_memmove(phys(h.initrd), in_module, initrd_size);
    zero(h.initrd + initrd_size, h.initrd_size - initrd_size);
    uint64_t kernel_offset = core.data_offset + seg.offset;
    uint64_t file_bytes = seg.filesz + (seg.shared_object ? 0x4000 : 0);
    uint64_t available = h.initrd_size - kernel_offset;
    uint64_t copied = file_bytes < available ? file_bytes : available;
    __builtin_memcpy(phys(h.kernel), phys(h.initrd + kernel_offset), copied);
    zero(h.kernel + copied, h.kernel_size - copied);
    loader_kernel_entry = seg.entry;

    uint32_t width = video::kDefaultWidth;
    uint32_t height = video::kDefaultHeight;
    char screen[32];
    if (core::env_get(g_config, "screen", screen, sizeof screen)) {
        video::parse_screen(screen, &width, &height);
    }
    const char* video_err = nullptr;
    video::Framebuffer fb = video::set_mode(width, height, &video_err);
    if (video_err != nullptr) {
        console::fail(video_err);
    }

    // The low pages, as the BIOS loader leaves them: tables (zeroed with the stacks' room
    // first), environment, bootboot page.
    zero(bios::kTables, placement::kLowArea.end - bios::kTables);
    uint64_t* table_pages = phys<uint64_t>(bios::kTables);
    bios::write_tables(table_pages, h, fb.ptr);
    write_environment(config.error == ustar::Error::None ? phys(h.initrd + config.data_offset)
                                                         : nullptr,
                      config.size);

    zero(bios::kBootbootPage, firmware::kPage);
    auto* info = phys<bootboot_abi::Info>(bios::kBootbootPage);
    bootboot_abi::Header& hdr = info->header;
    __builtin_memcpy(hdr.magic, bootboot_abi::kMagic, sizeof(hdr.magic));
    hdr.size = static_cast<uint32_t>(sizeof(bootboot_abi::Header) +
                                     mmap.count * sizeof(bootboot_abi::MmapEntry));
    hdr.protocol = h.protocol;
    hdr.fb_type = fb.type;
    hdr.numcores = static_cast<uint16_t>(h.numcores);
    hdr.bspid = cores.apic_ids[cores.bsp_index];
    hdr.timezone = 0;
    read_datetime(hdr.datetime);
    hdr.initrd_ptr = h.initrd;
    hdr.initrd_size = h.initrd_size;
    hdr.fb_ptr = fb.ptr;
    hdr.fb_size = fb.size;
    hdr.fb_width = fb.width;
    hdr.fb_height = fb.height;
    hdr.fb_scanline = fb.scanline;
    hdr.arch.acpi_ptr = tables.acpi_root;
    hdr.arch.smbi_ptr = tables.smbios;
    hdr.arch.mp_ptr = tables.mp;
    for (size_t i = 0; i < mmap.count; ++i) {
        info->mmap[i] = g_mmap[i];
    }

    console::begin();
    console::str("initrd ");
    console::dec(initrd_size);
    console::str(" B at ");
    console::hex(h.initrd);
    console::str(", sys/core ");
    console::dec(core.size);
    console::str(" B, ");
    console::str(config.error == ustar::Error::None ? "sys/config" : "no sys/config");
    console::end();
    console::begin();
    console::str("kernel segment ");
    console::hex(seg.memsz);
    console::str(" B at ");
    console::hex(h.kernel);
    console::str(", entry ");
    console::hex(seg.entry);
    console::end();
    if (fb.ptr == 0) {
        console::line("no framebuffer: no standard VGA");
    }

    uint64_t gdtr = smp::install_ap_page(cores, seg.entry);
    bool smp_on = cores.count > 1;
    if (smp_on) {
        smp::start_secondary_cores(cores);
    }
    console::begin();
    console::dec(cores.count);
    console::str(cores.count == 1 ? " core" : " cores");
    console::str(", bootstrap CPU APIC ID ");
    console::dec(hdr.bspid);
    console::str(" is core ");
    console::dec(cores.bsp_index);
    console::end();

    // Every core enters the kernel at once: the others leave their page as soon as they see
    // the release, the bootstrap CPU jumps right after setting it. As the BIOS loader's, RAX
    // is the core's APIC ID and RDX too with SMP (0 without: it reads no local APIC then).
    uint8_t bsp_id = cores.apic_ids[cores.bsp_index];
    if (smp_on) {
        smp::release_secondary_cores();
    }
    loader_enter_kernel(gdtr, cores.bsp_index, bsp_id, smp_on ? bsp_id : 0);
}
