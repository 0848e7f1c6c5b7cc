#include <core/boot/boot.hpp>
#include <core/boot/memory_map.hpp>
#include <core/boot/smp.hpp>
#include <core/lib/compiler.hpp>
#include <core/lib/log.hpp>
#include <core/version.hpp>

#include <hal/cpu.hpp>
#include <hal/stop.hpp>

namespace core {

[[noreturn]] BOOT_CODE void boot_main(const BootInfo& info) {
    LogLine("boot").str("Duet ").str(kVersion).str(" on ").str(hal::machine_name());

    BootInfoError err = validate_boot_info(*info.bootboot);
    if (err != BootInfoError::None) {
        LogLine("boot").str("unusable BOOTBOOT information: ").str(describe(err));
        hal::halt_machine(hal::ExitCode::Panic);
    }
    const auto& h = info.bootboot->header;
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

    log_memory_map(*info.bootboot);

    init_this_cpu(hal::cpu_index());
    start_secondary_cpus(h.numcores);

    LogLine("boot").str("halting: the skeleton has nothing more to run");
    hal::halt_machine(hal::ExitCode::Success);
}

} // namespace core
