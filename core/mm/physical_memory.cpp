#include <core/cpu.hpp>
#include <core/lib/compiler.hpp>
#include <core/lib/log.hpp>
#include <core/mm/bump_allocator.hpp>
#include <core/mm/map_normalizer.hpp>
#include <core/mm/physical_memory.hpp>

#include <hal/stop.hpp>

namespace core::mm {

namespace {

// Every entry of a full bootboot page, plus the two reservations.
constexpr size_t kMaxEntries = bootboot_abi::kMaxMmapEntries + 2;

MapEvent s_events[2 * kMaxEntries];
MemoryRegion s_regions[2 * kMaxEntries];
FrameArea s_areas[2 * kMaxEntries];
MapSummary s_summary;
BumpAllocator s_bump;
// NOTE: the caches are the CPUs' (core::Cpu::frame_cache).
constinit FrameAllocator s_frames{&g_cpus[0].frame_cache, sizeof(Cpu)};

// The helpers below keep their LogLine off the stack of the functions that call deeper.
[[noreturn]] NOINLINE BOOT_CODE void fail(const char* what, Error e) {
    LogLine("mm").str(what).str(": ").str(describe(e));
    hal::halt_machine(hal::ExitCode::Panic);
}

[[noreturn]] NOINLINE BOOT_CODE void fail_entry(size_t index, const bootboot_abi::MmapEntry& e) {
    // NOTE: the e820 notation of the mmap lines, and short enough for one LogLine.
    LogLine("mm")
        .str("mmap entry ")
        .dec(index)
        .str(" [mem ")
        .hex(e.base())
        .chr('-')
        .hex(e.base() + e.length() - 1)
        .str("] beyond the 52-bit physical address space");
    hal::halt_machine(hal::ExitCode::Panic);
}

NOINLINE BOOT_CODE void log_usable(const MapSummary& s) {
    LogLine("mm")
        .dec(s.usable_frames)
        .str(" usable frames (")
        .dec(s.usable_frames >> (20 - kFrameShift))
        .str(" MiB) in ")
        .dec(s.areas)
        .str(s.areas == 1 ? " area" : " areas");
}

// Not BOOT_CODE: log_frame_stats() calls it after bring-up too.
NOINLINE void log_frames() {
    FrameStats st = s_frames.stats();
    LogLine("frames")
        .str("total ")
        .dec(st.total)
        .str(", free ")
        .dec(st.free)
        .str(", used ")
        .dec(st.used)
        .str(", reserved ")
        .dec(st.reserved);
}

BOOT_CODE MapSummary normalize_boot_map(const bootboot_abi::Info& info) {
    MapNormalizer map(s_events, sizeof s_events / sizeof s_events[0]);
    size_t n = info.mmap_count();
    for (size_t i = 0; i < n; ++i) {
        Result<void> r = map.add_bootboot(info.mmap[i]);
        if (!r.ok()) {
            if (r.error() == Error::AddressOutOfRange) {
                fail_entry(i, info.mmap[i]);
            }
            fail("reading the memory map", r.error());
        }
    }
    // Page 0 holds the real-mode IVT and BIOS data and is where null pointers point.
    Result<void> r = map.reserve(0, kFrameSize);
    if (r.ok()) {
        r = map.reserve(info.header.initrd_ptr, info.header.initrd_size);
    }
    if (!r.ok()) {
        fail("reserving page 0 and the initrd", r.error());
    }
    Result<MapSummary> s = map.normalize(s_regions, sizeof s_regions / sizeof s_regions[0], s_areas,
                                         sizeof s_areas / sizeof s_areas[0]);
    if (!s.ok()) {
        fail("normalising the memory map", s.error());
    }
    return s.value();
}

} // namespace

FrameAllocator& frames() {
    return s_frames;
}

bool check_frame_accounting() {
    return s_frames.accounting_holds();
}

BootMemoryMap boot_memory_map() {
    return {s_regions, s_summary.regions, s_areas, s_summary.areas, s_summary};
}

BumpAllocator& bump_allocator() {
    return s_bump;
}

BOOT_CODE void start_physical_memory(const bootboot_abi::Info& info) {
    s_summary = normalize_boot_map(info);
    log_usable(s_summary);
    if (Result<void> r = s_bump.init(s_areas, s_summary.areas); !r.ok()) {
        fail("starting the bump allocator", r.error());
    }
}

BOOT_CODE void hand_over_frames() {
    Result<void> r = s_frames.init(s_areas, s_summary.areas, s_bump, s_summary.reserved_frames());
    if (!r.ok()) {
        fail("handing over to the frame allocator", r.error());
    }
    log_frames();
    ASSERT(s_frames.accounting_holds());
}

BOOT_CODE void init_physical_memory(const bootboot_abi::Info& info) {
    start_physical_memory(info);
    hand_over_frames();
}

void log_frame_stats() {
    log_frames();
}

namespace {
FinalStats s_final;
} // namespace

void take_final_stats() {
    s_final.frames = s_frames.stats();
    s_final.heap = heap().stats();
    s_final.taken = true;
}

const FinalStats& final_stats() {
    return s_final;
}

} // namespace core::mm
