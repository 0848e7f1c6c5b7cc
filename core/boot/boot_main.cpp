#include <core/boot/boot.hpp>
#include <core/boot/boot_info.hpp>
#include <core/boot/init.hpp>
#include <core/boot/smp.hpp>
#include <core/cpu.hpp>
#include <core/lib/compiler.hpp>
#include <core/lib/environment.hpp>
#include <core/lib/log.hpp>
#include <core/lib/panic.hpp>
#include <core/mm/heap.hpp>
#include <core/mm/kernel_space.hpp>
#include <core/mm/physical_memory.hpp>
#include <core/sched/scheduler.hpp>
#include <core/version.hpp>

#include <hal/context.hpp>
#include <hal/mmu.hpp>

#include <hal/cpu.hpp>
#include <hal/stop.hpp>

namespace core {

namespace {

BootInfo s_info;

// The bootstrap CPU's stack while it builds the kernel address space (step 4), which takes
// more than the loader's 1 KiB stack and must be done before the kernel stacks exist. It lives
// in the image's bss, which is mapped at the same address under the loader's tables and the
// kernel's, so the CPU can load the kernel's tables while it runs on it. tools/check-stack.py
// checks what runs on it against this size (OTHER_STACK_ROOTS).
constexpr size_t kBuildStackSize = 16 * 1024;
alignas(16) uint8_t s_build_stack[kBuildStackSize];
hal::ArchContext s_build;

// NOTE: the log lines live in helpers' frames, not in boot_main's, which runs on the 1 KiB
// loader stack.
NOINLINE BOOT_CODE void log_banner() {
    LogLine("boot").str("Duet ").str(kVersion).str(" on ").str(hal::machine_name());
}

NOINLINE BOOT_CODE void log_boot_info(const bootboot_abi::Header& h) {
    LogLine("boot")
        .str("bootboot protocol ")
        .dec(h.protocol & 3)
        .str(", ")
        .dec(h.numcores)
        .str(h.numcores == 1 ? " core" : " cores")
        .str(", bsp ")
        .dec(h.bspid)
        .str(", initrd ")
        .hex(h.initrd_ptr, 8)
        .chr(' ')
        .size(h.initrd_size);
}

[[noreturn]] NOINLINE BOOT_CODE void refuse(BootInfoError err) {
    LogLine("boot").str("unusable BOOTBOOT information: ").str(describe(err));
    hal::halt_machine(hal::ExitCode::Panic);
}

// Moves the calling CPU onto its kernel stack, where it goes on with next(nullptr), leaving
// the context it runs in now in `leave`.
[[noreturn]] void switch_to_kernel_stack(hal::ArchContext& leave, hal::ContextEntry next) {
    Cpu& me = this_cpu();
    const mm::KernelStack& stack = me.stack;
    hal::context_init(me.first, stack.bottom, stack.top.value() - stack.bottom.value(), next,
                      nullptr, "idle");
    hal::context_switch(leave, me.first);
    panic("a CPU returned to its bring-up stack");
}

// Steps 6 and 7 of the bootstrap CPU's boot, on its kernel stack.
void bsp_continue(void*) {
    mm::hand_over_frames();
    if (Result<void> r = mm::init_heap(mm::FrameSource(mm::frames())); !r.ok()) {
        panic_error("starting the kernel heap", r.error());
    }
    const auto& h = s_info.bootboot->header;
    sched::Config config;
    config.tick_ns = env_duration(s_info.environment, "duet.tick", config.tick_ns);
    config.slice_ns = env_duration(s_info.environment, "duet.slice", config.slice_ns);
    config.trace = env_number(s_info.environment, "duet.trace", 0) != 0;
    config.watchdog_ns = env_duration(s_info.environment, "duet.watchdog", config.watchdog_ns);
    sched::init(config, h.numcores);

    mark_this_cpu_online();
    start_secondary_cpus(h.numcores);
    start_init_thread(s_info);
    sched::run_cpu();
}

// Steps 4 and 5 of the bootstrap CPU's boot, on the build stack: the kernel address space from
// the bump allocator, every CPU's kernel stack in it, below an unmapped guard page (so that the
// others switch to theirs at once when released), then onto its own.
void bsp_build(void*) {
    const auto& h = s_info.bootboot->header;
    mm::start_kernel_space(*s_info.bootboot, sched::kStackSize);
    for (uint32_t i = 0; i < h.numcores; ++i) {
        Result<mm::KernelStack> stack = mm::kernel_space().alloc_stack(false);
        if (!stack.ok()) {
            panic_error("allocating the CPUs' kernel stacks", stack.error());
        }
        cpu(i).stack = stack.value();
    }
    // From here on the direct map is at mm::kDirectMapBase on bare metal (hal::phys_to_virt()):
    // the frame allocator and the heap start after this, and cache it.
    mm::enter_kernel_space();
    switch_to_kernel_stack(s_build, &bsp_continue);
}

} // namespace

void leave_bring_up_stack(hal::ContextEntry next) {
    switch_to_kernel_stack(this_cpu().bring_up, next);
}

[[noreturn]] BOOT_CODE void boot_main(const BootInfo& info) {
    install_this_cpu(hal::cpu_index());
    log_banner();
    BootInfoError err = validate_boot_info(*info.bootboot);
    if (err != BootInfoError::None) {
        refuse(err);
    }
    log_boot_info(info.bootboot->header);
    log_memory_map(*info.bootboot);
    mm::start_physical_memory(*info.bootboot);
    // The 1 KiB stack the loader gave this CPU is left behind for good: the rest of the boot
    // runs on the build stack, then on the CPU's kernel stack.
    s_info = info;
    hal::context_init(s_build, hal::VirtAddr(reinterpret_cast<uint64_t>(s_build_stack)),
                      kBuildStackSize, &bsp_build, nullptr, "boot");
    hal::context_switch(this_cpu().bring_up, s_build);
    panic("a CPU returned to its bring-up stack");
}

} // namespace core
