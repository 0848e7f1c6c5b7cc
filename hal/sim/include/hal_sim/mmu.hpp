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
// replaces its ways in turn. Kernel accesses are host pointers and are not cached, but for
// the kernel stacks' top pages (StackTlb); CR4.PGE is off on both machines, so no entry is
// global.
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

// A CPU's cached translations of kernel stack pages (hal/sim/contexts.cpp): the 4 KiB page a
// context's first frame was written on or a context was resumed on, and its frame. Flushed as
// Tlb is. Unlike Tlb it holds thousands: on the machine a stale translation lives until the
// CPU flushes it or the TLB happens to evict it (QEMU's software TLB holds thousands of pages),
// and a small model evicted the stale entries of `tests/qemu/spawn-storm.scn` before anything
// could use them. An open-addressed table that grows to kMaxEntries and then forgets every
// entry, as a full flush would; a full flush is O(1).
class StackTlb {
public:
    static constexpr uint64_t kNone = UINT64_MAX;
    static constexpr size_t kMaxEntries = 8192;

    // The frame cached for the 4 KiB page at `va`, or kNone.
    uint64_t find(uint64_t va) const {
        if (m_size == 0) {
            return kNone;
        }
        const Slot& s = m_slots[probe(key_of(va))];
        return live(s) ? s.frame : kNone;
    }
    // Caches `frame` for the 4 KiB page at `va`.
    void fill(uint64_t va, uint64_t frame);
    // INVLPG: drops the page at `va`.
    void drop(uint64_t va);
    // A CR3 load or a full flush: drops everything.
    void clear();
    size_t size() const { return m_size; }

private:
    // A slot is live when its key carries the current generation; clear() starts a new one.
    struct Slot {
        uint64_t key = 0; // the page number (36 bits) and, above it, the generation
        uint64_t frame = 0;
    };
    static constexpr unsigned kPageBits = 36;
    uint64_t key_of(uint64_t va) const {
        return ((va >> 12) & ((uint64_t{1} << kPageBits) - 1)) | m_generation << kPageBits;
    }
    // NOTE: the page number's low bits, not a multiplicative hash: the kernel's stack slots are
    // five pages apart, which no power of two divides, so consecutive slots take consecutive
    // homes; a multiplicative hash cost 6 more instructions a thread's life in the spawn chain.
    size_t home(uint64_t key) const { return static_cast<size_t>(key) & m_mask; }
    bool live(const Slot& s) const { return s.key >> kPageBits == m_generation; }
    // The slot that holds `key`, or the empty one where its probe ends (the table not empty).
    size_t probe(uint64_t key) const {
        size_t i = home(key);
        while (live(m_slots[i]) && m_slots[i].key != key) {
            i = (i + 1) & m_mask;
        }
        return i;
    }
    void grow();

    std::vector<Slot> m_slots;
    size_t m_mask = 0;
    size_t m_size = 0;
    uint64_t m_generation = 1; // 28 bits; slots of another are empty
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
    // Kernel stacks' translations, the top page of each stack this CPU wrote a context's first
    // frame on or resumed a context on, flushed as `tlb` is: a stack slot mapped to other frames
    // since is reached through the old ones until this CPU flushes it (docs/simulator.md,
    // "The TLB").
    StackTlb kernel_stacks;

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
