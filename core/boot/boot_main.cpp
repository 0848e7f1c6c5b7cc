#include <core/boot/boot.hpp>
#include <core/boot/init.hpp>
#include <core/boot/memory_map.hpp>
#include <core/boot/smp.hpp>
#include <core/lib/compiler.hpp>
#include <core/lib/environment.hpp>
#include <core/lib/log.hpp>
#include <core/lib/panic.hpp>
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
// Per CPU: the bring-up context it leaves behind, and its first context on a kernel stack
// (which becomes its idle thread), on the stack the bootstrap CPU allocated for it.
hal::ArchContext s_bring_up[kMaxCpus];
hal::ArchContext s_first[kMaxCpus];
hal::PhysAddr s_stacks[kMaxCpus];

// NOTE: the log lines live in helpers' frames, not in boot_main's, which stays on the 1 KiB
// stack for the whole bring-up.
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

// The bootstrap CPU's boot, continued on its kernel stack.
void bsp_continue(void*) {
    mm::hand_over_frames();
    const auto& h = s_info.bootboot->header;
    // The other CPUs' kernel stacks, so that they switch to them at once when released.
    for (uint32_t cpu = 0; cpu < h.numcores; ++cpu) {
        if (cpu == hal::cpu_index()) {
            continue;
        }
        auto stack = mm::frames().alloc({.order = sched::kStackOrder,
                                         .align = 0,
                                         .owner = mm::FrameOwner::KernelStacks,
                                         .injectable = false});
        if (!stack.ok()) {
            panic_error("allocating the CPUs' kernel stacks", stack.error());
        }
        s_stacks[cpu] = stack.value();
    }
    sched::Config config;
    config.tick_ns = env_duration(s_info.environment, "duet.tick", config.tick_ns);
    config.slice_ns = env_duration(s_info.environment, "duet.slice", config.slice_ns);
    sched::init(config, h.numcores);

    init_this_cpu(hal::cpu_index());
    start_secondary_cpus(h.numcores);
    start_init_thread(s_info);
    sched::run_cpu();
}

} // namespace

void leave_bring_up_stack(hal::ContextEntry next) {
    uint32_t cpu = hal::cpu_index();
    auto base = reinterpret_cast<uint64_t>(hal::phys_to_virt(s_stacks[cpu]));
    hal::context_init(s_first[cpu], hal::VirtAddr(base), sched::kStackSize, next, nullptr, "idle");
    hal::context_switch(s_bring_up[cpu], s_first[cpu]);
    panic("a CPU returned to its bring-up stack");
}

[[noreturn]] BOOT_CODE void boot_main(const BootInfo& info) {
    log_banner();
    BootInfoError err = validate_boot_info(*info.bootboot);
    if (err != BootInfoError::None) {
        refuse(err);
    }
    log_boot_info(info.bootboot->header);
    log_memory_map(*info.bootboot);
    mm::start_physical_memory(*info.bootboot);
    // Step 5 of the boot: from here on the CPU runs on a kernel stack of its own (the bump
    // allocator's, handed over with the rest); the 1 KiB stack the loader gave it is left
    // behind for good.
    auto stack = mm::bump_allocator().alloc(sched::kStackSize / mm::kFrameSize,
                                            mm::FrameOwner::KernelStacks, sched::kStackSize);
    if (!stack.ok()) {
        panic_error("allocating the bootstrap CPU's kernel stack", stack.error());
    }
    s_stacks[hal::cpu_index()] = stack.value();
    s_info = info;
    leave_bring_up_stack(&bsp_continue);
}

} // namespace core
