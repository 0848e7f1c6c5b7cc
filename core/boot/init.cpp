#include <core/boot/init.hpp>
#include <core/lib/log.hpp>
#include <core/lib/ustar.hpp>
#include <core/mm/physical_memory.hpp>
#include <core/sched/scheduler.hpp>
#include <core/sched/thread.hpp>
#include <core/workload/workload.hpp>

#include <hal/mmu.hpp>
#include <hal/stop.hpp>
#include <hal/time.hpp>

namespace core {

namespace {

BootInfo s_info;

[[noreturn]] void stop(hal::ExitCode code) {
    sched::Stats s = sched::stats(hal::now_ns());
    LogLine("sched")
        .dec(s.context_switches)
        .str(" switches, ")
        .dec(s.preemptions)
        .str(" preemptions, ")
        .dec(s.migrations)
        .str(" migrations, ")
        .dec(s.wakeups)
        .str(" wakeups");
    mm::log_frame_stats();
    hal::halt_machine(code);
}

void init_main(void*) {
    const auto& h = s_info.bootboot->header;
    if (h.initrd_size == 0) {
        LogLine("workload").str("none (no initrd)");
        stop(hal::ExitCode::Success);
    }
    const auto* initrd =
        static_cast<const uint8_t*>(hal::phys_to_virt(hal::PhysAddr(h.initrd_ptr)));
    ustar::Lookup found = ustar::find(initrd, h.initrd_size, "sys/workload");
    if (found.error == ustar::Error::NotFound) {
        LogLine("workload").str("none (no sys/workload in the initrd)");
        stop(hal::ExitCode::Success);
    }
    if (found.error != ustar::Error::None) {
        LogLine("workload").str("the initrd is unreadable: ").str(ustar::describe(found.error));
        stop(hal::ExitCode::Failure);
    }
    workload::View view;
    workload::ParseError err = workload::parse(initrd + found.data_offset, found.size, &view);
    if (err != workload::ParseError::None) {
        LogLine("workload").str("sys/workload is unusable: ").str(workload::describe(err));
        stop(hal::ExitCode::Failure);
    }
    workload::Results r = workload::run(view);
    stop(r.threads_exited == r.threads_started ? hal::ExitCode::Success : hal::ExitCode::Failure);
}

} // namespace

void start_init_thread(const BootInfo& info) {
    s_info = info;
    sched::SpawnOptions options;
    options.name = "init";
    options.detached = true;
    if (auto id = sched::spawn(&init_main, nullptr, options); !id.ok()) {
        panic_error("starting the init thread", id.error());
    }
}

} // namespace core
