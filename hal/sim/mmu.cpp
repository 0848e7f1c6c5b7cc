// The simulated MMU, and the HAL's paging functions on the simulator's side.

#include <hal/firmware/loader_tables.hpp>
#include <hal_sim/hex.hpp>
#include <hal_sim/machine.hpp>
#include <hal_sim/mmu.hpp>
#include <hal_sim/race.hpp>

#include <core/irq_entry.hpp>
#include <hal/mmu.hpp>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <utility>

namespace hal_sim {

namespace {

constexpr uint64_t kPresent = 1ull << 0;
constexpr uint64_t kWritable = 1ull << 1;
constexpr uint64_t kUser = 1ull << 2;
constexpr uint64_t kPwt = 1ull << 3;
constexpr uint64_t kPcd = 1ull << 4;
constexpr uint64_t kAccessed = 1ull << 5;
constexpr uint64_t kDirty = 1ull << 6;
constexpr uint64_t kLarge = 1ull << 7;
constexpr uint64_t kPat4KiB = 1ull << 7;
constexpr uint64_t kPatLarge = 1ull << 12;
constexpr uint64_t kNoExecute = 1ull << 63;
constexpr uint64_t kAddress = 0x000F'FFFF'FFFF'F000ull;

const char* const kLevelName[] = {"", "PT", "PD", "PDPT", "PML4"};

uint64_t index_of(uint64_t va, unsigned level) {
    return (va >> (12 + 9 * (level - 1))) & 511;
}

bool canonical(uint64_t va) {
    uint64_t top = va >> 47;
    return top == 0 || top == 0x1FFFF;
}

// Bits of a present entry at `level` that must be zero (SDM vol. 3, tables 4-14 to 4-19).
uint64_t reserved_bits(const MmuState& mmu, unsigned level, bool large) {
    uint64_t r = 0;
    if (mmu.phys_bits < 52) {
        r |= ((1ull << 52) - 1) & ~((1ull << mmu.phys_bits) - 1);
    }
    if (!mmu.nxe) {
        r |= kNoExecute;
    }
    if (level == 4) {
        r |= kLarge; // PS must be 0 in a PML4E
    }
    if (large && level == 3) {
        r |= 0x3FFF'E000ull; // bits 29:13 of a 1 GiB leaf
    }
    if (large && level == 2) {
        r |= 0x1F'E000ull; // bits 20:13 of a 2 MiB leaf
    }
    return r;
}

MemoryType pat_type(const MmuState& mmu, uint64_t leaf, unsigned level) {
    unsigned index = ((leaf & kPwt) ? 1u : 0u) | ((leaf & kPcd) ? 2u : 0u);
    uint64_t pat_bit = level == 1 ? kPat4KiB : kPatLarge;
    if (leaf & pat_bit) {
        index |= 4;
    }
    return static_cast<MemoryType>((mmu.pat >> (8 * index)) & 0x7);
}

uint64_t* entry_ptr(PhysicalMemory& ram, uint64_t table, uint64_t index) {
    return static_cast<uint64_t*>(ram.at(table + 8 * index));
}

Machine& machine() {
    Machine* m = Machine::current();
    if (m == nullptr) {
        std::fputs("duet: an MMU function was called outside a simulated CPU (tests: use "
                   "hal_sim::Machine::CpuScope)\n",
                   stderr);
        std::abort();
    }
    return *m;
}

} // namespace

const char* memory_type_name(MemoryType type) {
    switch (type) {
    case MemoryType::Uncacheable:
        return "UC";
    case MemoryType::WriteCombining:
        return "WC";
    case MemoryType::WriteThrough:
        return "WT";
    case MemoryType::WriteProtect:
        return "WP";
    case MemoryType::WriteBack:
        return "WB";
    case MemoryType::UncachedMinus:
        return "UC-";
    }
    return "reserved";
}

WalkResult walk(PhysicalMemory& ram, const MmuState& mmu, uint64_t va, AccessKind kind,
                Privilege privilege, WalkOptions options) {
    WalkResult r;
    r.va = va;
    if (!canonical(va)) {
        r.status = WalkStatus::GeneralProtection;
        return r;
    }
    if (mmu.cr3 == 0) {
        r.status = WalkStatus::NoPageTable;
        return r;
    }
    bool user = privilege == Privilege::User;
    bool write = kind == AccessKind::Write;
    bool fetch = kind == AccessKind::Execute;
    uint32_t code = (write ? pf::kWrite : 0) | (user ? pf::kUser : 0) |
                    (fetch && (mmu.nxe || mmu.smep) ? pf::kInstruction : 0);

    uint64_t* used[4] = {};
    uint64_t* leaf_ptr = nullptr;
    bool writable = true;
    bool user_page = true;
    bool no_execute = false;
    uint64_t table = mmu.cr3 & kAddress;
    for (unsigned level = 4; level >= 1; --level) {
        uint64_t at = table + 8 * index_of(va, level);
        if (!ram.is_usable(at, 8)) {
            r.status = WalkStatus::BadTable;
            r.bad_table = at;
            return r;
        }
        uint64_t* p = entry_ptr(ram, table, index_of(va, level));
        uint64_t e = *p;
        used[level - 1] = p;
        if (!(e & kPresent)) {
            r.status = WalkStatus::PageFault;
            r.error_code = code;
            return r;
        }
        bool large = level <= 3 && level >= 2 && (e & kLarge);
        if (e & reserved_bits(mmu, level, large)) {
            r.status = WalkStatus::PageFault;
            r.error_code = code | pf::kPresent | pf::kReserved;
            return r;
        }
        writable &= (e & kWritable) != 0;
        user_page &= (e & kUser) != 0;
        no_execute |= mmu.nxe && (e & kNoExecute) != 0;
        if (level == 1 || large) {
            uint64_t size = 1ull << (12 + 9 * (level - 1));
            uint64_t frame_mask = kAddress & ~(size - 1);
            r.page_size = size;
            r.leaf = e;
            leaf_ptr = p;
            r.pa = (e & frame_mask) | (va & (size - 1));
            r.memory_type = pat_type(mmu, e, level);
            break;
        }
        table = e & kAddress;
    }
    r.writable = writable;
    r.user = user_page;
    r.executable = !no_execute;

    // Access rights (SDM vol. 3, 4.6).
    bool allowed = true;
    if (user) {
        allowed = user_page && (!write || writable) && (!fetch || !no_execute);
    } else if (write) {
        allowed = (!mmu.wp || writable) && !(mmu.smap && user_page);
    } else if (fetch) {
        allowed = !no_execute && !(mmu.smep && user_page);
    } else {
        allowed = !(mmu.smap && user_page);
    }
    if (!allowed) {
        r.status = WalkStatus::PageFault;
        r.error_code = code | pf::kPresent;
        return r;
    }
    if (options.set_accessed_dirty) {
        for (uint64_t* p : used) {
            if (p != nullptr) {
                *p |= kAccessed;
            }
        }
        if (write) {
            *leaf_ptr |= kDirty;
        }
    }
    r.status = WalkStatus::Ok;
    return r;
}

TlbEntry* Tlb::find(uint64_t va) {
    uint64_t page = va >> 12;
    for (TlbEntry& e : sets[page % kSets]) {
        if (e.page == page) {
            return &e;
        }
    }
    return nullptr;
}

void Tlb::fill(uint64_t va, AccessKind kind, const WalkResult& walk) {
    uint64_t page = va >> 12;
    size_t set = page % kSets;
    TlbEntry* slot = find(va);
    for (size_t way = 0; slot == nullptr && way < kWays; ++way) {
        if (sets[set][way].page == TlbEntry::kEmpty) {
            slot = &sets[set][way];
        }
    }
    if (slot == nullptr) {
        slot = &sets[set][victim[set]];
        victim[set] = static_cast<uint8_t>((victim[set] + 1) % kWays);
    }
    filled = true;
    filled_large = filled_large || walk.page_size > (uint64_t{1} << 12);
    *slot = TlbEntry{page,
                     walk.pa & ~uint64_t{0xFFF},
                     walk.page_size,
                     walk.writable,
                     walk.executable,
                     kind == AccessKind::Write};
}

void Tlb::drop(uint64_t va) {
    if (!filled) {
        return;
    }
    // A 4 KiB page's entry can only be in its own set; the pieces of a larger page are in the
    // sets of their own 4 KiB page numbers.
    size_t first = filled_large ? 0 : (va >> 12) % kSets;
    size_t last = filled_large ? kSets : first + 1;
    for (size_t s = first; s < last; ++s) {
        for (TlbEntry& e : sets[s]) {
            if (e.page != TlbEntry::kEmpty &&
                ((e.page << 12) & ~(e.page_size - 1)) == (va & ~(e.page_size - 1))) {
                e = TlbEntry{};
            }
        }
    }
}

void Tlb::clear() {
    if (!filled) {
        return;
    }
    filled = false;
    filled_large = false;
    for (auto& set : sets) {
        for (TlbEntry& e : set) {
            e = TlbEntry{};
        }
    }
}

void StackTlb::fill(uint64_t va, uint64_t frame) {
    if (m_size != 0) {
        Slot& s = m_slots[probe(key_of(va))];
        if (live(s)) {
            s.frame = frame; // cached already: the new frame replaces it
            return;
        }
    }
    if (2 * (m_size + 1) > m_slots.size()) {
        grow(); // which may forget everything: a new generation
    }
    uint64_t key = key_of(va);
    m_slots[probe(key)] = {key, frame};
    ++m_size;
}

void StackTlb::grow() {
    if (m_slots.size() >= 2 * kMaxEntries) {
        clear(); // as full as the model goes: the CPU forgets them all
        return;
    }
    std::vector<Slot> old = std::move(m_slots);
    size_t capacity = old.empty() ? 64 : 2 * old.size();
    m_slots.assign(capacity, Slot{});
    m_mask = capacity - 1;
    for (const Slot& s : old) {
        if (live(s)) {
            m_slots[probe(s.key)] = s;
        }
    }
}

void StackTlb::drop(uint64_t va) {
    if (m_size == 0) {
        return;
    }
    size_t i = probe(key_of(va));
    if (!live(m_slots[i])) {
        return;
    }
    // Backward-shift deletion: each later entry of the run that may sit in the hole moves
    // into it, so that no probe for a live entry meets an empty slot before it.
    for (size_t j = (i + 1) & m_mask; live(m_slots[j]); j = (j + 1) & m_mask) {
        size_t k = home(m_slots[j].key);
        bool movable = i <= j ? (k <= i || k > j) : (k <= i && k > j);
        if (movable) {
            m_slots[i] = m_slots[j];
            i = j;
        }
    }
    m_slots[i] = Slot{};
    --m_size;
}

void StackTlb::clear() {
    if (m_size == 0) {
        return;
    }
    m_size = 0;
    if (++m_generation == uint64_t{1} << (64 - kPageBits)) {
        m_generation = 1;
        std::fill(m_slots.begin(), m_slots.end(), Slot{});
    }
}

size_t Tlb::size() const {
    size_t n = 0;
    for (const auto& set : sets) {
        for (const TlbEntry& e : set) {
            n += e.page != TlbEntry::kEmpty ? 1 : 0;
        }
    }
    return n;
}

WalkResult user_walk(PhysicalMemory& ram, MmuState& mmu, uint64_t va, AccessKind kind) {
    if (TlbEntry* e = mmu.tlb.find(va)) {
        bool allowed = kind == AccessKind::Read ||
                       (kind == AccessKind::Write && e->writable && e->dirty) ||
                       (kind == AccessKind::Execute && e->executable);
        if (allowed) {
            ++mmu.tlb.hits;
            WalkResult r;
            r.status = WalkStatus::Ok;
            r.va = va;
            r.pa = e->frame | (va & 0xFFF);
            r.page_size = e->page_size;
            r.writable = e->writable;
            r.user = true;
            r.executable = e->executable;
            return r;
        }
        // NOTE: the hardware walks again before it faults or sets the dirty bit; a fault
        // drops the entry (SDM vol. 3, 4.10.4.1), so does a walk that refuses below.
        *e = TlbEntry{};
    }
    ++mmu.tlb.misses;
    WalkResult r = walk(ram, mmu, va, kind, Privilege::User, {.set_accessed_dirty = true});
    if (r.ok()) {
        mmu.tlb.fill(va, kind, r);
    }
    return r;
}

MmuState& this_mmu() {
    return machine().current_cpu().mmu;
}

WalkResult access(uint64_t va, AccessKind kind, Privilege privilege) {
    Machine& m = machine();
    WalkResult r;
    for (int attempt = 0; attempt < 2; ++attempt) {
        MmuState& mmu = m.current_cpu().mmu;
        r = walk(m.ram(), mmu, va, kind, privilege, {.set_accessed_dirty = true});
        if (r.status != WalkStatus::PageFault) {
            return r;
        }
        mmu.cr2 = va;
        ++mmu.page_faults;
        core::on_page_fault(hal::VirtAddr(va), r.error_code);
    }
    return r;
}

std::string describe_error_code(uint32_t code) {
    std::string s;
    if (code & pf::kReserved) {
        s = "reserved-bit";
    } else {
        s = (code & pf::kPresent) ? "protection" : "not-present";
    }
    s += (code & pf::kUser) ? " user" : " supervisor";
    if (code & pf::kInstruction) {
        s += " instruction fetch";
    } else {
        s += (code & pf::kWrite) ? " write" : " read";
    }
    return s;
}

std::string describe(const WalkResult& r) {
    switch (r.status) {
    case WalkStatus::Ok:
        return hex(r.va) + " -> " + hex(r.pa) + " (" +
               (r.page_size == (1ull << 30)   ? "1 GiB"
                : r.page_size == (1ull << 21) ? "2 MiB"
                                              : "4 KiB") +
               " page, " + (r.writable ? "rw" : "ro") + (r.user ? " user" : " kernel") +
               (r.executable ? " exec" : " nx") + " " + memory_type_name(r.memory_type) + ")";
    case WalkStatus::PageFault:
        return "page fault at " + hex(r.va) + ": " + describe_error_code(r.error_code) +
               " (error code " + hex(r.error_code) + ")";
    case WalkStatus::GeneralProtection:
        return "general protection fault: " + hex(r.va) + " is not canonical";
    case WalkStatus::NoPageTable:
        return "no page table loaded (CR3 is 0)";
    case WalkStatus::BadTable:
        return "a page-table entry at physical " + hex(r.bad_table) + " is not in RAM";
    }
    return "unknown";
}

std::vector<std::string> explain_walk(PhysicalMemory& ram, uint64_t cr3, uint64_t va) {
    std::vector<std::string> lines;
    if (!canonical(va)) {
        lines.push_back(hex(va) + " is not canonical");
        return lines;
    }
    uint64_t table = cr3 & kAddress;
    for (unsigned level = 4; level >= 1; --level) {
        uint64_t index = index_of(va, level);
        std::string head = std::string(kLevelName[level]) + "[" + std::to_string(index) + "] at " +
                           hex(table + 8 * index);
        if (!ram.is_usable(table + 8 * index, 8)) {
            lines.push_back(head + ": not in RAM");
            return lines;
        }
        uint64_t e = *entry_ptr(ram, table, index);
        std::string line = head + " = " + hex(e) + ":";
        if (!(e & kPresent)) {
            lines.push_back(line + " not present");
            return lines;
        }
        line += (e & kWritable) ? " writable" : " read-only";
        line += (e & kUser) ? " user" : " supervisor";
        line += (e & kNoExecute) ? " nx" : "";
        bool large = (level == 2 || level == 3) && (e & kLarge);
        if (level == 1 || large) {
            uint64_t size = 1ull << (12 + 9 * (level - 1));
            lines.push_back(line + " -> page at " + hex(e & kAddress & ~(size - 1)));
            return lines;
        }
        lines.push_back(line + " -> " + kLevelName[level - 1] + " at " + hex(e & kAddress));
        table = e & kAddress;
    }
    return lines;
}

namespace {

void collect(PhysicalMemory& ram, const MmuState& mmu, uint64_t table, unsigned level,
             uint64_t va_base, bool writable, bool user, bool nx, std::vector<MappedRange>& out) {
    for (uint64_t i = 0; i < 512; ++i) {
        if (!ram.is_usable(table + 8 * i, 8)) {
            return;
        }
        uint64_t e = *entry_ptr(ram, table, i);
        if (!(e & kPresent)) {
            continue;
        }
        uint64_t va = va_base + (i << (12 + 9 * (level - 1)));
        if (level == 4 && i >= 256) {
            va |= 0xFFFF'0000'0000'0000ull;
        }
        bool w = writable && (e & kWritable);
        bool u = user && (e & kUser);
        bool x = nx || (mmu.nxe && (e & kNoExecute));
        bool large = (level == 2 || level == 3) && (e & kLarge);
        if (level == 1 || large) {
            uint64_t size = 1ull << (12 + 9 * (level - 1));
            MappedRange r{va, e & kAddress & ~(size - 1), size, w, u, !x, pat_type(mmu, e, level)};
            if (!out.empty()) {
                MappedRange& last = out.back();
                if (last.va + last.bytes == r.va && last.pa + last.bytes == r.pa &&
                    last.writable == r.writable && last.user == r.user &&
                    last.executable == r.executable && last.memory_type == r.memory_type) {
                    last.bytes += r.bytes;
                    continue;
                }
            }
            out.push_back(r);
            continue;
        }
        collect(ram, mmu, e & kAddress, level - 1, va, w, u, x, out);
    }
}

} // namespace

std::vector<MappedRange> mapped_ranges(PhysicalMemory& ram, const MmuState& mmu) {
    std::vector<MappedRange> out;
    if (mmu.cr3 != 0) {
        collect(ram, mmu, mmu.cr3 & kAddress, 4, 0, true, true, false, out);
    }
    return out;
}

} // namespace hal_sim

// --- The HAL's paging functions. ---

namespace hal {

void load_page_table(PhysAddr pml4) {
    hal_sim::MmuState& mmu = hal_sim::this_mmu();
    mmu.cr3 = pml4.value();
    // No PCIDs and no global pages: a CR3 load drops every cached translation.
    mmu.tlb.clear();
    mmu.kernel_stacks.clear();
    // As the bare-metal backend: ring 0 honours read-only pages from the first load of the
    // kernel's tables on (the loaders hand over with CR0.WP clear).
    mmu.wp = true;
    ++mmu.page_table_loads;
}

void flush_tlb_page(VirtAddr va) {
    hal_sim::MmuState& mmu = hal_sim::this_mmu();
    mmu.tlb.drop(va.value());
    mmu.kernel_stacks.drop(va.value());
    ++mmu.page_flushes;
}

void flush_tlb_all() {
    hal_sim::MmuState& mmu = hal_sim::this_mmu();
    mmu.tlb.clear();
    mmu.kernel_stacks.clear();
    ++mmu.full_flushes;
}

void set_page_attribute_table(uint64_t pat) {
    hal_sim::this_mmu().pat = pat;
}

BootImage boot_image() {
    // NOTE: the core runs as host code: the section bounds are those of the kernel file the
    // firmware loaded (the stand-in's, unless the run named a kernel), and the physical
    // addresses are found as on bare metal, by walking the loader's tables in simulated RAM.
    hal_sim::race::SimulatorCode sim;
    hal_sim::Machine& m = *hal_sim::Machine::current();
    const hal_sim::KernelFile& k = m.boot_state().kernel;
    hal_sim::PhysicalMemory& ram = m.ram();
    auto read = [&ram](uint64_t pa) -> uint64_t {
        if (!ram.is_usable(pa, sizeof(uint64_t))) {
            return 0;
        }
        uint64_t e;
        std::memcpy(&e, ram.at(pa), sizeof e);
        return e;
    };
    uint64_t cr3 = m.boot_state().handover.tables;
    BootImage b;
    b.text_start = VirtAddr(k.text_start);
    b.text_end = VirtAddr(k.text_end);
    b.rodata_start = VirtAddr(k.rodata_start);
    b.rodata_end = VirtAddr(k.rodata_end);
    b.data_start = VirtAddr(k.data_start);
    b.data_end = VirtAddr(k.data_end);
    b.image = PhysAddr(firmware::loader_translate(cr3, k.text_start, read));
    b.bootboot = PhysAddr(firmware::loader_translate(cr3, bootboot_abi::kBootbootVirt, read));
    b.environment = PhysAddr(firmware::loader_translate(cr3, bootboot_abi::kEnvironmentVirt, read));
    firmware::CoreStacks stacks =
        firmware::loader_core_stacks(cr3, m.boot_info().bootboot->header.numcores, read);
    b.core_stacks = PhysAddr(stacks.first);
    b.core_stack_pages = stacks.pages;
    return b;
}

size_t device_windows(DeviceWindow* out, size_t capacity) {
    // The local APIC's page where a PC has it. The simulator models the local APIC's timer and
    // IPIs without memory accesses, but the kernel maps the page all the same, so that its
    // tables (and the frames they take) are those of bare metal.
    constexpr uint64_t kLocalApic = 0xFEE0'0000;
    if (capacity > 0) {
        out[0] = DeviceWindow{PhysAddr(kLocalApic), bootboot_abi::kPageSize};
    }
    return 1;
}

void device_window_mapped(size_t, VirtAddr) {}

} // namespace hal
