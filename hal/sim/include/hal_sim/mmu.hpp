#pragma once

// The simulated MMU: a software walk of the x86_64 4-level page tables in simulated RAM, with
// the hardware's rules (present, writable, user, no-execute, reserved bits, CR0.WP, EFER.NXE,
// SMEP/SMAP), the architectural page-fault error code, and the bookkeeping the HAL's paging
// functions leave behind (CR3, the PAT, TLB flush counts). The core's code runs on host
// pointers; this walk is for what is modelled as a memory access (user accesses, permission
// checks, tests) and for debugging helpers.

#include <hal_sim/physical_memory.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace hal_sim {

// Page-fault error code bits (Intel SDM vol. 3, 4.7).
namespace pf {
inline constexpr uint32_t kPresent = 1u << 0;     // P: a protection violation (else: not present)
inline constexpr uint32_t kWrite = 1u << 1;       // W/R: the access was a write
inline constexpr uint32_t kUser = 1u << 2;        // U/S: the access was made in user mode
inline constexpr uint32_t kReserved = 1u << 3;    // RSVD: a reserved bit was set in an entry
inline constexpr uint32_t kInstruction = 1u << 4; // I/D: an instruction fetch (NXE or SMEP on)
} // namespace pf

// The power-on value of IA32_PAT: WB, WT, UC-, UC, repeated.
inline constexpr uint64_t kPatPowerOn = 0x0007'0406'0007'0406;

enum class AccessKind : uint8_t { Read, Write, Execute };
enum class Privilege : uint8_t { Supervisor, User };

// x86 memory types, as the PAT encodes them.
enum class MemoryType : uint8_t {
    Uncacheable = 0,
    WriteCombining = 1,
    WriteThrough = 4,
    WriteProtect = 5,
    WriteBack = 6,
    UncachedMinus = 7,
};
const char* memory_type_name(MemoryType type);

enum class WalkStatus : uint8_t {
    Ok,
    PageFault,         // error_code says why
    GeneralProtection, // a non-canonical address (#GP, not a page fault)
    NoPageTable,       // CR3 was never loaded
    BadTable,          // an entry points at physical memory that is not RAM (bad_table)
};

struct WalkResult {
    WalkStatus status = WalkStatus::NoPageTable;
    uint64_t va = 0;
    // Ok:
    uint64_t pa = 0;
    uint64_t page_size = 0;
    uint64_t leaf = 0;       // the leaf entry, as read
    bool writable = false;   // R/W at every level
    bool user = false;       // U/S at every level
    bool executable = false; // XD at no level (or NXE off)
    MemoryType memory_type = MemoryType::WriteBack;
    // PageFault:
    uint32_t error_code = 0;
    // BadTable:
    uint64_t bad_table = 0;

    bool ok() const { return status == WalkStatus::Ok; }
};

// One cached translation: the 4 KiB piece of a user page that a user-privilege walk allowed,
// with the rights that walk found. Empty while `page` is kEmpty.
struct TlbEntry {
    static constexpr uint64_t kEmpty = UINT64_MAX;
    uint64_t page = kEmpty;  // the virtual address of the 4 KiB piece, >> 12
    uint64_t frame = 0;      // the physical address of that piece
    uint64_t page_size = 0;  // the page the walk found it in: INVLPG anywhere in it drops it
    bool writable = false;   // R/W at every level
    bool executable = false; // XD at no level
    bool dirty = false;      // the walk was a write, so it set the dirty bit
};

// A CPU's TLB for user pages: what the walks of user accesses (hal/sim/user.cpp) found, so that
// a translation the tables no longer give is used until it is flushed, as on the machine.
// Four ways in each of 16 sets, picked by the low bits of the page number; a full set
// replaces its ways in turn. Kernel accesses are host pointers and are not cached; CR4.PGE
// is off on both machines, so no entry is global.
struct Tlb {
    static constexpr size_t kSets = 16;
    static constexpr size_t kWays = 4;
    TlbEntry sets[kSets][kWays];
    uint8_t victim[kSets] = {}; // the way a fill replaces next in a full set
    // Whether anything (any piece of a page larger than 4 KiB) was filled since the last
    // clear(): a kernel-only run's INVLPGs (a freed kernel stack's every page) look at no entry,
    // and with no large page one INVLPG looks at one set, not all 64 entries.
    bool filled = false;
    bool filled_large = false;

    uint64_t hits = 0;
    uint64_t misses = 0; // walks: not cached, or cached with too few rights (a first write)

    // The entry for the 4 KiB page at `va`, or null.
    TlbEntry* find(uint64_t va);
    // Caches what a successful walk for an access of `kind` at `va` found.
    void fill(uint64_t va, AccessKind kind, const WalkResult& walk);
    // INVLPG: drops every entry in the page that holds `va`, whatever its size.
    void drop(uint64_t va);
    // A CR3 load or a full flush: drops everything.
    void clear();
    size_t size() const; // entries in use
};

// One CPU's paging state, as far as the simulator models it.
struct MmuState {
    // The PML4 hal::load_page_table() loaded; 0 until the kernel loads its own (the loader's
    // tables are not modelled).
    uint64_t cr3 = 0;
    // What the bare-metal entry sets before the core runs: ring 0 honours read-only pages,
    // and no-execute pages exist.
    bool wp = true;    // CR0.WP
    bool nxe = true;   // EFER.NXE
    bool smep = false; // CR4.SMEP: no supervisor fetches from user pages
    bool smap = false; // CR4.SMAP (with RFLAGS.AC clear): no supervisor data access to user pages
    uint64_t pat = kPatPowerOn;
    uint64_t cr2 = 0; // the address of the last page fault
    // MAXPHYADDR: entry bits from here to 51 are reserved.
    unsigned phys_bits = 46;

    uint64_t page_table_loads = 0; // hal::load_page_table() calls
    uint64_t page_flushes = 0;     // hal::flush_tlb_page() calls
    uint64_t full_flushes = 0;     // hal::flush_tlb_all() calls
    uint64_t page_faults = 0;      // faults delivered to the core by access()

    // User translations: load_page_table() and flush_tlb_all() drop them all,
    // flush_tlb_page() those of one page.
    Tlb tlb;

    uint64_t flushes() const { return page_flushes + full_flushes; }
};

struct WalkOptions {
    // Set the accessed bit in every entry used, and the dirty bit in the leaf for a write, as
    // the hardware does (for modelled accesses; a debugger's look leaves no trace).
    bool set_accessed_dirty = false;
};

// Walks the tables under `mmu.cr3` for an access of `kind` at `va`. Pure, apart from the
// accessed and dirty bits when asked.
WalkResult walk(PhysicalMemory& ram, const MmuState& mmu, uint64_t va, AccessKind kind,
                Privilege privilege, WalkOptions options = {});

// A user-privilege access at `va` through `mmu`'s TLB (hal/sim/user.cpp's accesses and
// copies). A hit whose cached rights allow the access returns the cached translation without
// reading the tables, even if they have changed since, as the machine does until the page is
// flushed. A miss, or a hit that does not allow the access (a write through an entry a read
// filled must set the dirty bit; the hardware walks again then too), walks as walk() does
// with set_accessed_dirty and caches what it allowed; a refused access leaves no entry. A hit
// fills in only status, va, pa, page_size, writable, user and executable.
WalkResult user_walk(PhysicalMemory& ram, MmuState& mmu, uint64_t va, AccessKind kind);

// The calling CPU's MMU (inside a running machine or a CpuScope).
MmuState& this_mmu();

// A modelled access by the calling CPU: walks its tables, setting accessed and dirty bits. A
// page fault records CR2 and is delivered to core::on_page_fault() with its error code; if
// the handler returns, the access is tried once more. Returns the final walk.
WalkResult access(uint64_t va, AccessKind kind, Privilege privilege);

// "not-present supervisor write" and the like, for reports.
std::string describe_error_code(uint32_t error_code);
std::string describe(const WalkResult& result);

// Debugging: each level of the walk for `va` under `cr3`, one line each
// ("PML4[511] 0x...: present writable -> PDPT at 0x...").
std::vector<std::string> explain_walk(PhysicalMemory& ram, uint64_t cr3, uint64_t va);

// One contiguous run of virtual memory with the same rights, as a walk of every table finds.
struct MappedRange {
    uint64_t va;
    uint64_t pa;
    uint64_t bytes;
    bool writable;
    bool user;
    bool executable;
    MemoryType memory_type;
};

// Every mapping under `cr3`, merged where virtually and physically contiguous with the same
// rights, in address order. For tests and debuggers.
std::vector<MappedRange> mapped_ranges(PhysicalMemory& ram, const MmuState& mmu);

} // namespace hal_sim
