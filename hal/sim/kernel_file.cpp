// The kernel ELF the simulated firmware loads from the initrd's sys/core, and the stand-in
// it loads when a run names none. See hal_sim/firmware.hpp.

#include <hal_sim/firmware.hpp>
#include <hal_sim/hex.hpp>

#include <hal/bootboot.hpp>

#include <cstdio>
#include <cstring>

namespace hal_sim {

namespace {

using firmware::kPage;

// --- The kernel ELF ---------------------------------------------------------------------------

constexpr size_t kEhdrSize = 64;
constexpr size_t kPhdrSize = 56;
constexpr size_t kShdrSize = 64;
constexpr uint16_t kEtDyn = 3;
constexpr uint16_t kMachineX86_64 = 62;
constexpr uint32_t kPtLoad = 1;
constexpr uint32_t kShtNobits = 8;

template <typename T>
T load(std::span<const uint8_t> b, uint64_t at) {
    T v{};
    std::memcpy(&v, b.data() + at, sizeof v);
    return v;
}

[[noreturn]] void bad_kernel(const std::string& what) {
    throw ConfigError(what);
}

struct Section {
    uint64_t addr = 0;
    uint64_t size = 0;
    bool found = false;
};

// The sections the kernel maps with W^X, by name (the stripped kernel keeps its section
// headers).
void find_sections(std::span<const uint8_t> elf, Section* text, Section* rodata, Section* data,
                   Section* bss) {
    uint64_t shoff = load<uint64_t>(elf, 40);
    uint16_t shentsize = load<uint16_t>(elf, 58);
    uint16_t shnum = load<uint16_t>(elf, 60);
    uint16_t shstrndx = load<uint16_t>(elf, 62);
    if (shnum == 0 || shentsize < kShdrSize || shstrndx >= shnum || shoff > elf.size() ||
        uint64_t{shnum} * shentsize > elf.size() - shoff) {
        bad_kernel("no readable section headers (the simulator maps the kernel's .text, .rodata, "
                   ".data and .bss as the kernel does)");
    }
    auto header = [&](size_t i) { return shoff + i * shentsize; };
    uint64_t strings = load<uint64_t>(elf, header(shstrndx) + 24);
    uint64_t strings_size = load<uint64_t>(elf, header(shstrndx) + 32);
    if (strings > elf.size() || strings_size > elf.size() - strings) {
        bad_kernel("its section name table lies outside the file");
    }
    for (size_t i = 0; i < shnum; ++i) {
        uint32_t name = load<uint32_t>(elf, header(i));
        if (name >= strings_size) {
            continue;
        }
        const char* n = reinterpret_cast<const char*>(elf.data() + strings + name);
        size_t max = strings_size - name;
        Section s{load<uint64_t>(elf, header(i) + 16), load<uint64_t>(elf, header(i) + 32), true};
        auto is = [&](const char* want) {
            size_t len = std::strlen(want);
            return len < max && std::memcmp(n, want, len + 1) == 0;
        };
        if (is(".text")) {
            *text = s;
        } else if (is(".rodata")) {
            *rodata = s;
        } else if (is(".data")) {
            *data = s;
        } else if (is(".bss") && load<uint32_t>(elf, header(i) + 4) == kShtNobits) {
            *bss = s;
        }
    }
}

// --- The stand-in kernel ----------------------------------------------------------------------

// NOTE: few bytes in the file, most in the bss: every run builds this file and an initrd around
// it, and with 256 KiB in the file (the real kernel's share) that cost a run of default.scn a
// tenth of its host time. The loader's hole ends near the real kernel's all the same.
constexpr uint64_t kModelText = 48 << 10;
constexpr uint64_t kModelRodata = 8 << 10;
constexpr uint64_t kModelData = 8 << 10;
constexpr uint64_t kModelBss = 1152 << 10;

template <typename T>
void store(std::vector<uint8_t>& b, size_t at, T v) {
    std::memcpy(b.data() + at, &v, sizeof v);
}

std::vector<uint8_t> make_model_kernel() {
    constexpr uint64_t kVirt = bootboot_abi::kKernelVirt;
    constexpr uint64_t kOffset = kPage; // the segment's bytes, page-aligned in the file
    constexpr uint64_t kFileBytes = kModelText + kModelRodata + kModelData;
    static constexpr char kNames[] = "\0.text\0.rodata\0.data\0.bss\0.shstrtab";
    constexpr size_t kSections = 6; // null, .text, .rodata, .data, .bss, .shstrtab
    uint64_t strings = kOffset + kFileBytes;
    uint64_t shoff = strings + sizeof kNames;
    shoff = (shoff + 7) & ~uint64_t{7};
    std::vector<uint8_t> b(shoff + kSections * kShdrSize, 0);

    const uint8_t ident[] = {0x7f, 'E', 'L', 'F', 2, 1, 1};
    std::memcpy(b.data(), ident, sizeof ident);
    store<uint16_t>(b, 16, 2); // ET_EXEC
    store<uint16_t>(b, 18, kMachineX86_64);
    store<uint32_t>(b, 20, 1);
    store<uint64_t>(b, 24, kVirt);
    store<uint64_t>(b, 32, kEhdrSize);
    store<uint64_t>(b, 40, shoff);
    store<uint16_t>(b, 52, kEhdrSize);
    store<uint16_t>(b, 54, kPhdrSize);
    store<uint16_t>(b, 56, 1);
    store<uint16_t>(b, 58, kShdrSize);
    store<uint16_t>(b, 60, kSections);
    store<uint16_t>(b, 62, kSections - 1);

    size_t ph = kEhdrSize;
    store<uint32_t>(b, ph, kPtLoad);
    store<uint32_t>(b, ph + 4, 7); // RWX, as Duet's kernel's one segment
    store<uint64_t>(b, ph + 8, kOffset);
    store<uint64_t>(b, ph + 16, kVirt);
    store<uint64_t>(b, ph + 24, kVirt);
    store<uint64_t>(b, ph + 32, kFileBytes);
    store<uint64_t>(b, ph + 40, kFileBytes + kModelBss);
    store<uint64_t>(b, ph + 48, kPage);

    std::memcpy(b.data() + strings, kNames, sizeof kNames);
    struct Shdr {
        uint32_t name;
        uint32_t type;
        uint64_t addr;
        uint64_t offset;
        uint64_t size;
    };
    const Shdr sections[kSections] = {
        {},
        {1, 1, kVirt, kOffset, kModelText},
        {7, 1, kVirt + kModelText, kOffset + kModelText, kModelRodata},
        {15, 1, kVirt + kModelText + kModelRodata, kOffset + kModelText + kModelRodata, kModelData},
        {21, kShtNobits, kVirt + kFileBytes, kOffset + kFileBytes, kModelBss},
        {26, 3, 0, strings, sizeof kNames},
    };
    for (size_t i = 0; i < kSections; ++i) {
        size_t at = shoff + i * kShdrSize;
        store<uint32_t>(b, at, sections[i].name);
        store<uint32_t>(b, at + 4, sections[i].type);
        store<uint64_t>(b, at + 16, sections[i].addr);
        store<uint64_t>(b, at + 24, sections[i].offset);
        store<uint64_t>(b, at + 32, sections[i].size);
    }
    return b;
}

} // namespace

KernelFile read_kernel_file(std::span<const uint8_t> elf) {
    if (elf.size() < kEhdrSize || std::memcmp(elf.data(),
                                              "\x7f"
                                              "ELF",
                                              4) != 0) {
        bad_kernel("not an ELF file");
    }
    if (elf[4] != 2 || elf[5] != 1 || load<uint16_t>(elf, 18) != kMachineX86_64) {
        bad_kernel("not a little-endian ELF64 file for x86_64");
    }
    KernelFile k;
    k.entry = load<uint64_t>(elf, 24);
    uint64_t phoff = load<uint64_t>(elf, 32);
    uint16_t phentsize = load<uint16_t>(elf, 54);
    uint16_t phnum = load<uint16_t>(elf, 56);
    if (phnum == 0 || phentsize < kPhdrSize || phoff > elf.size() ||
        uint64_t{phnum} * phentsize > elf.size() - phoff) {
        bad_kernel("no readable program headers");
    }
    // As a level 1 loader: the first PT_LOAD whose address has 0xFFFF in its top 16 bits.
    bool found = false;
    uint64_t vaddr = 0;
    for (size_t i = 0; i < phnum && !found; ++i) {
        uint64_t ph = phoff + i * phentsize;
        vaddr = load<uint64_t>(elf, ph + 16);
        if (load<uint32_t>(elf, ph) != kPtLoad || (vaddr >> 48) != 0xFFFF) {
            continue;
        }
        found = true;
        k.segment_offset = load<uint64_t>(elf, ph + 8);
        k.segment.file_size = load<uint64_t>(elf, ph + 32);
        k.segment.mem_size = load<uint64_t>(elf, ph + 40);
    }
    if (!found) {
        bad_kernel("no loadable segment in the higher half, which is all a level 1 loader loads");
    }
    // As the BIOS loader tests it: the segment's byte 16 (e_type's low byte if p_offset is 0).
    k.segment.shared_object =
        k.segment_offset + 16 < elf.size() && elf[k.segment_offset + 16] == kEtDyn;
    if (vaddr != bootboot_abi::kKernelVirt) {
        bad_kernel("its segment is linked at " + hex(vaddr) + ", not at " +
                   hex(bootboot_abi::kKernelVirt) + ", where the BOOTBOOT level 1 loaders map it");
    }
    if (k.segment.file_size > k.segment.mem_size || k.segment_offset > elf.size() ||
        k.segment.file_size > elf.size() - k.segment_offset) {
        bad_kernel("its segment's bytes lie outside the file, or it has more bytes in the file "
                   "than in memory");
    }
    Section text, rodata, data, bss;
    find_sections(elf, &text, &rodata, &data, &bss);
    if (!text.found || !rodata.found || !data.found) {
        bad_kernel("no .text, .rodata or .data section (the kernel maps its image by them)");
    }
    auto up = [](uint64_t v) { return firmware::page_round_up(v); };
    k.text_start = text.addr;
    k.text_end = up(text.addr + text.size);
    k.rodata_start = rodata.addr;
    k.rodata_end = up(rodata.addr + rodata.size);
    k.data_start = data.addr;
    k.data_end = up(bss.found ? bss.addr + bss.size : data.addr + data.size);
    bool ordered = k.text_start == vaddr && k.text_end <= k.rodata_start &&
                   k.rodata_end <= k.data_start && k.data_start < k.data_end &&
                   k.rodata_start % kPage == 0 && k.data_start % kPage == 0 &&
                   k.data_end - k.text_start <= up(k.segment.mem_size);
    if (!ordered) {
        bad_kernel("its .text, .rodata and .data/.bss are not page-aligned, in that order, "
                   "inside its segment, as Duet's link.ld lays them out");
    }
    return k;
}

const std::vector<uint8_t>& model_kernel_file() {
    static const std::vector<uint8_t> file = make_model_kernel();
    return file;
}

} // namespace hal_sim
