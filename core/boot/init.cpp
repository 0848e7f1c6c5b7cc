#include <core/boot/init.hpp>
#include <core/lib/compiler.hpp>
#include <core/lib/environment.hpp>
#include <core/lib/log.hpp>
#include <core/lib/ustar.hpp>
#include <core/mm/physical_memory.hpp>
#include <core/sched/scheduler.hpp>
#include <core/sched/thread.hpp>
#include <core/user/programs.hpp>
#include <core/workload/workload.hpp>

#include <hal/cpu.hpp>
#include <hal/irq.hpp>
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
    // Per CPU, so that a log shows threads ran everywhere (the QEMU tests read these lines).
    for (uint32_t cpu = 0; cpu < sched::cpu_count(); ++cpu) {
        sched::CpuCounters c = sched::cpu_counters(cpu);
        LogLine("sched")
            .str("cpu ")
            .dec(cpu)
            .str(": ")
            .dec(c.switches)
            .str(" switches, ")
            .dec(c.preemptions)
            .str(" preemptions, ")
            .dec(c.migrations)
            .str(" migrations in");
    }
    mm::take_final_stats();
    mm::log_frame_stats();
    hal::halt_machine(code);
}

bool test_is(const char* value) {
    char buf[24];
    if (!env_get(s_info.environment, "duet.test", buf, sizeof buf)) {
        return false;
    }
    size_t i = 0;
    while (buf[i] != '\0' && buf[i] == value[i]) {
        ++i;
    }
    return buf[i] == value[i];
}

// Recurses `depth` times, each level with a frame the compiler can neither drop nor reuse (the
// callee is handed its caller's frame): deep enough, it overflows any kernel stack.
NOINLINE uint64_t overflow_stack(volatile uint8_t* caller, uint64_t depth) {
    volatile uint8_t frame[256];
    frame[0] = static_cast<uint8_t>(caller != nullptr ? caller[0] + 1 : 0);
    if (depth == 0) {
        return frame[0];
    }
    return overflow_stack(frame, depth - 1) + frame[0];
}

// duet.test=lockup: a thread that computes on another CPU, so that it takes ticks.
void busy_main(void*) {
    for (;;) {
        hal::cpu_work(1'000'000);
    }
}

void init_main(void*) {
    const auto& h = s_info.bootboot->header;
    if (test_is("lockup")) {
        // duet.test=lockup: this CPU spins with interrupts off for good (as on a spinlock whose
        // holder never lets go) while another computes: the watchdog, on that one's ticks,
        // must name this one and stop the machine.
        if (sched::cpu_count() < 2) {
            LogLine("init").str("duet.test=lockup needs two CPUs");
            stop(hal::ExitCode::Failure);
        }
        sched::SpawnOptions busy;
        busy.name = "busy";
        busy.cpu = (hal::cpu_index() + 1) % sched::cpu_count();
        busy.detached = true;
        if (!sched::spawn(&busy_main, nullptr, busy).ok()) {
            stop(hal::ExitCode::Failure);
        }
        (void)hal::irq_save();
        LogLine("init").str("spinning with interrupts off on cpu ").dec(hal::cpu_index());
        for (;;) {
            hal::cpu_relax();
        }
    }
    if (test_is("stack-overflow")) {
        // duet.test=stack-overflow: the guard page below this thread's stack (in the simulator,
        // the protected host page) must stop it and name it a kernel stack overflow.
        LogLine("init").str("overflowing the init thread's kernel stack on purpose");
        uint64_t r = overflow_stack(nullptr, uint64_t{1} << 32);
        LogLine("init").str("the stack did not overflow (").dec(r).chr(')');
        stop(hal::ExitCode::Failure);
    }
    if (h.initrd_size == 0) {
        LogLine("workload").str("none (no initrd)");
        stop(hal::ExitCode::Success);
    }
    const auto* initrd =
        static_cast<const uint8_t*>(hal::phys_to_virt(hal::PhysAddr(h.initrd_ptr)));
    // The user programs (sys/programs) and the workload's threads run side by side: the
    // programs start first, and are reaped once the threads have all exited.
    (void)user::start_initrd_programs(initrd, h.initrd_size);
    ustar::Lookup found = ustar::find(initrd, h.initrd_size, "sys/workload");
    if (found.error == ustar::Error::NotFound) {
        LogLine("workload").str("none (no sys/workload in the initrd)");
        user::reap_initrd_programs();
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
    user::reap_initrd_programs();
    stop(r.threads_exited == r.threads_started ? hal::ExitCode::Success : hal::ExitCode::Failure);
}

} // namespace

void start_init_thread(const BootInfo& info) {
    s_info = info;
    sched::SpawnOptions options;
    options.name = "init";
    options.detached = true;
    options.injectable = false; // without init there is no run to report on
    if (auto id = sched::spawn(&init_main, nullptr, options); !id.ok()) {
        panic_error("starting the init thread", id.error());
    }
}

} // namespace core
