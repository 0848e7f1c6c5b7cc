#include <core/boot/boot.hpp>
#include <core/boot/smp.hpp>
#include <core/cpu.hpp>
#include <core/lib/atomic.hpp>
#include <core/lib/log.hpp>
#include <core/mm/kernel_space.hpp>
#include <core/sched/scheduler.hpp>
#include <core/sync/spinlock.hpp>

#include <hal/cpu.hpp>
#include <hal/time.hpp>

namespace core {

namespace {

SpinLock s_online_lock("smp.online", LockRank::SmpOnline);
uint32_t s_online = 0;
// The order in which CPUs came online: a race between them, so it differs from one seed
// (or one real boot) to the next.
uint16_t s_online_order[kMaxCpus];

// How long a released CPU may take to come online. They wait in the kernel for the release, so
// they come within microseconds, unless the host does not run QEMU's thread for the CPU (10 s:
// a loaded 2-core host took 48 s to boot a UEFI machine that boots in 5 s alone); a CPU the loader
// counted but never started does not come at all (the upstream UEFI loader under OVMF with 49 MiB
// and 2 CPUs leaves CPU 1 halted in the firmware, with paging off).
constexpr uint64_t kCpuArrivalNs = 10'000'000'000;

// Names every CPU that has not come online, then stops the machine.
[[noreturn]] void report_missing_cpus(uint32_t count) {
    for (uint32_t i = 0; i < count; ++i) {
        bool online = false;
        {
            auto guard = s_online_lock.lock_irqsave();
            online = cpu(i).online;
        }
        if (!online) {
            LogLine("smp").str("cpu ").dec(i).str(" of ").dec(count).str(
                " did not come online within 10 s of its release: did the loader start it?");
        }
    }
    panic("smp: a CPU the loader counted never came online");
}

} // namespace

void install_this_cpu(uint32_t index) {
    Cpu& c = cpu(index);
    c.index = index;
    hal::set_this_cpu(&c);
}

void mark_this_cpu_online() {
    Cpu& c = this_cpu();
    auto guard = s_online_lock.lock_irqsave();
    c.online = true;
    s_online_order[s_online] = static_cast<uint16_t>(c.index);
    atomic::store<atomic::release>(&s_online, s_online + 1);
}

uint32_t cpus_online() {
    return atomic::load<atomic::acquire>(&s_online);
}

void start_secondary_cpus(uint32_t count) {
    hal::release_secondary_cpus();
    uint64_t released = hal::now_ns();
    while (cpus_online() < count) {
        if (hal::now_ns() - released > kCpuArrivalNs) {
            report_missing_cpus(count);
        }
        hal::cpu_relax();
    }
    LogLine line("smp");
    line.dec(count).str(count == 1 ? " cpu online" : " cpus online");
    if (count <= 16) {
        line.str(", in order");
        for (uint32_t i = 0; i < count; ++i) {
            line.chr(' ').dec(s_online_order[i]);
        }
    } else {
        // Too many to list on one line; a hash still tells two orders apart.
        uint64_t h = 0xcbf29ce484222325ull;
        for (uint32_t i = 0; i < count; ++i) {
            h = (h ^ s_online_order[i]) * 0x100000001b3ull;
        }
        line.str(", order hash ").hex(h);
    }
}

namespace {

void ap_continue(void*) {
    sched::run_cpu();
}

} // namespace

[[noreturn]] void ap_main() {
    install_this_cpu(hal::cpu_index());
    // Its kernel stack exists only in the kernel address space: load it first (on the loader's
    // stack, which the kernel address space maps where the loader's tables did).
    mm::enter_kernel_space();
    mark_this_cpu_online();
    leave_bring_up_stack(&ap_continue);
}

} // namespace core
