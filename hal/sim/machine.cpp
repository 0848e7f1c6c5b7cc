// The simulated machine as a whole: building it from its configuration (the firmware's boot
// information in RAM, a boot fiber per CPU), powering it on, the run loop, and the CpuScope
// that lends tests a CPU. What the CPUs do once they run is split by concern: the executor,
// interrupts, thread contexts, host faults, fault injection and how a run ends each have a
// file of their own (machine.hpp names them).

#include "host_faults.hpp"

#include <hal_sim/error.hpp>
#include <hal_sim/kernel_image.hpp>
#include <hal_sim/machine.hpp>
#include <hal_sim/race.hpp>

#include <core/irq_entry.hpp>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace hal_sim {

FastCpu* g_current_cpu = nullptr;
bool g_sync_points = false;

void no_current_cpu() {
    // NOTE: core code called outside a running machine is a bug in a test or in the
    // simulator, not in the kernel; say so rather than crash somewhere else.
    std::fputs("duet: a HAL function was called outside a simulated CPU (tests: use "
               "hal_sim::Machine::CpuScope)\n",
               stderr);
    std::abort();
}

KernelEntry duet_kernel() {
    return {&core::boot_main, &core::ap_main, &core::on_timer, &core::on_ipi};
}

Machine::Machine(MachineConfig config)
    : m_config(std::move(config)), m_ram(m_config.memory), m_schedule_rng(m_config.seed),
      m_sync_rng(m_config.seed ^ 0x73796e6300000000ull),
      m_fault_rng(m_config.seed ^ 0x6661756c74730000ull) {
    if (m_config.cpus == 0 || m_config.cpus > bootboot_abi::kMaxCores) {
        throw ConfigError("the machine must have 1 to 256 CPUs, not " +
                          std::to_string(m_config.cpus));
    }
    const Costs& c = m_config.costs;
    if (c.relax == 0 || c.interrupt == 0 || c.context_switch == 0) {
        throw ConfigError("the relax, interrupt and context-switch costs must not be zero");
    }
    // The first virtual time at which step() stops the run (the end time, or the time limit
    // passed).
    m_clock_end = m_config.time_limit_ns == UINT64_MAX
                      ? m_config.stop_at_ns
                      : std::min(m_config.stop_at_ns, m_config.time_limit_ns + 1);
    const Schedule& schedule = m_config.schedule;
    if (schedule.kind == Schedule::Kind::Pct) {
        if (schedule.horizon == 0 || schedule.depth == 0) {
            throw ConfigError("a pct schedule needs a depth and a horizon of at least 1");
        }
        // PCT's d-1 change points, uniform among the first K synchronisation points.
        for (uint32_t i = 1; i < schedule.depth; ++i) {
            m_change_points.push_back(1 + m_sync_rng.below(schedule.horizon));
        }
        std::sort(m_change_points.begin(), m_change_points.end());
    }
    if (schedule.kind == Schedule::Kind::Input) {
        m_input = ScheduleInput(m_config.schedule.input);
        m_next_choice = m_input.next();
    }
    write_boot_information();
    s_last_built = this;
    for (uint32_t i = 0; i < m_config.cpus; ++i) {
        auto cpu = std::make_unique<SimCpu>();
        cpu->index = i;
        cpu->irq_op_ns = m_config.costs.irq_op;
        // NOTE: the BOOTBOOT stacks are 1 KiB, but in the simulator the CPUs start on host
        // stacks: the 1 KiB limit is the kernel build's check, not the simulator's.
        cpu->boot_stack = FiberStack(FiberStack::kDefaultSize);
        cpu->resume = fctx::make_fcontext(cpu->boot_stack.top(), cpu->boot_stack.size(),
                                          &duet_fiber_start_cpu);
        cpu->boot_name = "cpu " + std::to_string(i) + " boot stack";
        cpu->boot_context.name = cpu->boot_name.c_str();
        cpu->boot_context.stack_bottom = cpu->boot_stack.bounds().bottom;
        cpu->boot_context.stack_size = cpu->boot_stack.bounds().size;
        // As the loader hands them over: its tables loaded, CR0.WP clear (the BIOS loader maps
        // the kernel read-only); hal::load_page_table() sets WP, as on bare metal.
        cpu->mmu.cr3 = m_boot.handover.tables;
        cpu->mmu.wp = false;
        // A core the loader did not start (the BIOS loader starts at most 255) never runs.
        if (i >= m_boot.handover.numcores) {
            cpu->state = SimCpu::State::Off;
        }
        m_cpus.push_back(std::move(cpu));
    }
    m_heap_pos.assign(m_config.cpus, -1);
    m_heap.reserve(m_config.cpus);
}

Machine::~Machine() {
    // The fibers die with their stacks, below: the executor first takes in all they did.
    join_race_fibers();
    if (s_last_built == this) {
        s_last_built = nullptr;
    }
    if (m_powered) {
        remove_fault_handler();
    }
}

// The firmware: the configured loader's model, on simulated RAM (hal/sim/firmware.cpp).
void Machine::write_boot_information() {
    m_boot = run_firmware(m_config, m_ram);
    for (const ReadOnlyRange& r : m_boot.read_only) {
        m_ram.protect_read_only(r.base, r.end);
    }
    m_boot_info = m_boot.info;
}

bootboot_abi::Info* Machine::writable_boot_info() {
    uint64_t page = m_boot.handover.bootboot;
    m_ram.protect_read_write(page, page + firmware::kPage);
    return static_cast<bootboot_abi::Info*>(m_ram.at(page));
}

void Machine::power_on() {
    m_powered = true;
    // The kernel as loaded: another machine may have run the same core in this process.
    if (!m_image_loaded) {
        reload_kernel_image();
        m_image_loaded = true;
    }
    // Race builds: the CPUs' fibers start after all the executor did (the kernel's image
    // reloaded, the firmware's writes), and after every fiber of the machines before.
    m_executor_stack.race_fiber = race::current_fiber();
    for (auto& cpu : m_cpus) {
        cpu->boot_context.race_fiber = cpu->boot_stack.new_race_fiber(cpu->boot_name.c_str());
        cpu->boot_context.race_cpu = cpu->index; // its name says so already
    }
    install_fault_handler();
    // Every core enters the kernel at once, as under BOOTBOOT; the one whose id is bspid
    // boots and the others wait (here: parked) until it releases them.
    SimCpu& bsp = *m_cpus[m_boot_info.bootboot->header.bspid];
    bsp.state = SimCpu::State::Running;
    heap_update(bsp);
}

void duet_sim_cpu_entry(fctx::transfer_t from) {
    // Race builds: this is the simulator's code (race::create_fiber() says why).
    Machine& m = *Machine::s_current;
    SimCpu& cpu = *m.m_current;
    cpu.executor = from.fctx;
    StackBounds executor = fiber_started();
    if (executor.bottom != nullptr) {
        m.m_executor_stack.bottom = executor.bottom;
        m.m_executor_stack.size = executor.size;
    }
    if (cpu.index == m.m_boot_info.bootboot->header.bspid) {
        race::KernelCode kernel;
        m.m_config.kernel.boot_main(m.m_boot_info);
    } else {
        // As on bare metal, where the CPU waits for a release store: it starts after all the
        // releasing CPU did before hal::release_secondary_cpus().
        race::acquire(&m.m_cpus);
        race::KernelCode kernel;
        m.m_config.kernel.ap_main();
    }
    m.stop(Verdict::Panic, "the kernel's entry point returned on cpu " + std::to_string(cpu.index));
    for (;;) {
        jump(m.m_current->executor, nullptr, m.m_executor_stack, true);
    }
}

void Machine::release_secondary_cpus() {
    race::release(&m_cpus); // duet_sim_cpu_entry() acquires it
    SimCpu& self = *m_current;
    for (auto& cpu : m_cpus) {
        if (cpu->state == SimCpu::State::Parked) {
            // Parked CPUs spin in the entry code until released: their clocks went along.
            cpu->state = SimCpu::State::Running;
            cpu->clock_ns = self.clock_ns;
            cpu->tie_break = m_schedule_rng.next();
            heap_update(*cpu);
        }
    }
}

RunResult Machine::run() {
    Watchdog watchdog(*this, m_config.watchdog_ns, m_config.host_time_limit_ns,
                      m_config.host_memory_limit_bytes);
    while (step()) {
    }
    join_race_fibers();
    // The kernel may stop the machine with success while its state is broken: one more look.
    if (m_result.verdict == Verdict::Success && m_config.check_every != 0 &&
        !check_invariants(nullptr)) {
        m_com1.flush();
    }
    return m_result;
}

Machine::CpuScope::CpuScope(Machine& machine, uint32_t cpu) {
    if (s_current != nullptr || cpu >= machine.m_cpus.size()) {
        std::fputs("duet: CpuScope inside a running machine or for a CPU it does not have\n",
                   stderr);
        std::abort();
    }
    s_current = &machine;
    machine.m_current = machine.m_cpus[cpu].get();
    g_current_cpu = machine.m_current;
    machine.m_borrowed = true;
    machine.m_first_until = 0;
    if (!machine.m_image_loaded) {
        reload_kernel_image();
        machine.m_image_loaded = true;
    }
    // Interrupts stay off for the borrowed CPU: nothing is delivered outside run().
    machine.m_borrowed_irq = machine.m_current->irq_enabled;
    machine.m_current->irq_enabled = false;
}

Machine::CpuScope::~CpuScope() {
    s_current->m_current->irq_enabled = s_current->m_borrowed_irq;
    s_current->m_current = nullptr;
    g_current_cpu = nullptr;
    s_current->m_borrowed = false;
    s_current = nullptr;
}

} // namespace hal_sim
