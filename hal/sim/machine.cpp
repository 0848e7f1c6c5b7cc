#include "executor.hpp"
#include "host_faults.hpp"

#include <hal_sim/error.hpp>
#include <hal_sim/kernel_image.hpp>
#include <hal_sim/machine.hpp>
#include <hal_sim/seconds.hpp>

#include <core/irq_entry.hpp>

#ifdef DUET_SANITIZE
#include <sanitizer/asan_interface.h>
#endif

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace hal_sim {

FastCpu* g_current_cpu = nullptr;

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
    write_boot_information();
    s_last_built = this;
    for (uint32_t i = 0; i < m_config.cpus; ++i) {
        auto cpu = std::make_unique<SimCpu>();
        cpu->index = i;
        cpu->irq_op_ns = m_config.costs.irq_op;
        // NOTE: the BOOTBOOT stacks are 1 KiB, but in the simulator the CPUs start on host
        // stacks: the 1 KiB limit is the kernel build's check, not the simulator's.
        cpu->boot_stack = FiberStack(FiberStack::kDefaultSize);
        cpu->resume =
            fctx::make_fcontext(cpu->boot_stack.top(), cpu->boot_stack.size(), &Machine::cpu_entry);
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
}

Machine::~Machine() {
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
    install_fault_handler();
    // Every core enters the kernel at once, as under BOOTBOOT; the one whose id is bspid
    // boots and the others wait (here: parked) until it releases them.
    SimCpu& bsp = *m_cpus[m_boot_info.bootboot->header.bspid];
    bsp.state = SimCpu::State::Running;
    heap_update(bsp);
}

void Machine::cpu_entry(fctx::transfer_t from) {
    Machine& m = *s_current;
    SimCpu& cpu = *m.m_current;
    cpu.executor = from.fctx;
    StackBounds executor = fiber_started();
    if (executor.bottom != nullptr) {
        m.m_executor_stack = executor;
    }
    if (cpu.index == m.m_boot_info.bootboot->header.bspid) {
        m.m_config.kernel.boot_main(m.m_boot_info);
    } else {
        m.m_config.kernel.ap_main();
    }
    m.stop(Verdict::Panic, "the kernel's entry point returned on cpu " + std::to_string(cpu.index));
    for (;;) {
        jump(m.m_current->executor, nullptr, m.m_executor_stack, true);
    }
}

RunResult Machine::run() {
    Watchdog watchdog(*this, m_config.watchdog_ns);
    while (step()) {
    }
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

// --- On the CPU fibers. ---

void Machine::release_secondary_cpus() {
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

void Machine::context_init(hal::ArchContext& ctx, size_t stack_size, hal::ContextEntry entry,
                           void* arg, const char* name) {
    // NOTE: the kernel's stack frames stay allocated (and accounted) as on hardware, but the
    // fiber runs on a host stack of the same size with a guard page below it: host code needs
    // host addresses, and the guard must not take a frame from anyone.
#ifdef DUET_SANITIZE
    // AddressSanitizer's redzones and its runtime take much more stack than the kernel's own
    // frames; the frames the kernel allocated are accounted all the same.
    stack_size *= 4;
#endif
    FiberStack* stack = nullptr;
    for (size_t i = 0; i < m_free_stacks.size(); ++i) {
        if (m_free_stacks[i]->size() == stack_size) {
            stack = m_free_stacks[i];
            m_free_stacks[i] = m_free_stacks.back();
            m_free_stacks.pop_back();
            break;
        }
    }
    if (stack == nullptr) {
        m_stacks.push_back(std::make_unique<FiberStack>(stack_size));
        stack = m_stacks.back().get();
    }
#ifdef DUET_SANITIZE
    // NOTE: a recycled stack still carries AddressSanitizer's poison for the frames its last
    // fiber never returned from (an exited thread leaves from the middle of a switch); the new
    // fiber's frames land on it and were reported as stack-buffer-underflows (fault sweep,
    // seed 21).
    __asan_unpoison_memory_region(stack->bounds().bottom, stack->size());
#endif
    ctx.host_stack = stack;
    ctx.fiber = fctx::make_fcontext(stack->top(), stack->size(), &Machine::context_entry);
    ctx.stack_bottom = stack->bounds().bottom;
    ctx.stack_size = stack->bounds().size;
    ctx.entry = entry;
    ctx.arg = arg;
    ctx.name = name != nullptr ? name : "unnamed context";
    ctx.irq_enabled = false; // the entry turns them on (hal/context.hpp)
}

void Machine::context_release(hal::ArchContext& ctx) {
    if (ctx.host_stack != nullptr) {
        m_free_stacks.push_back(static_cast<FiberStack*>(ctx.host_stack));
    }
    ctx = hal::ArchContext{};
}

void Machine::context_entry(fctx::transfer_t from) {
    fiber_started();
    // The switch hands over the context it left, to keep where it stopped.
    static_cast<hal::ArchContext*>(from.data)->fiber = from.fctx;
    Machine& m = *s_current;
    hal::ArchContext* self = m.m_current->running; // context_switch() set it to this one
    m.m_current->irq_enabled = self->irq_enabled;
    hal::ContextEntry entry = self->entry;
    void* arg = self->arg;
    self->entry = nullptr;
    if (m.m_current->irq_enabled && m.m_current->next_event_ns <= m.m_current->clock_ns) {
        m.deliver_pending();
    }
    entry(arg);
    m.stop(Verdict::Panic, "a kernel thread's entry function returned on cpu " +
                               std::to_string(m.m_current->index));
    for (;;) {
        jump(m.m_current->executor, nullptr, m.m_executor_stack, true);
    }
}

// NOTE: the HAL's switch is defined here rather than in hal.cpp with the other forwarders, so
// that the machine's switch is inlined into it: one call less on every switch.
} // namespace hal_sim

hal::ArchContext& hal::context_switch(ArchContext& from, ArchContext& to) {
    hal_sim::Machine* m = hal_sim::Machine::current();
    if (m == nullptr) [[unlikely]] {
        hal_sim::no_current_cpu();
    }
    return m->context_switch(from, to);
}

namespace hal_sim {

__attribute__((always_inline)) inline hal::ArchContext&
Machine::context_switch(hal::ArchContext& from, hal::ArchContext& to) {
    SimCpu& c = *m_current;
    c.spinning = false;
    ++c.context_switches;
    from.irq_enabled = c.irq_enabled;
    c.clock_ns += m_config.costs.context_switch;
    // A context switch is a preemption point: the other CPUs catch up first, unless this CPU
    // would be resumed next anyway.
    c.irq_enabled = false;
    if (!still_first(c)) {
        preemption_point();
    }
    if (c.running != &from) [[unlikely]] {
        // A CPU's boot context, switched away from the first time: the kernel's context for it
        // takes its name and stack.
        from.name = c.running->name;
        from.stack_bottom = c.running->stack_bottom;
        from.stack_size = c.running->stack_size;
    }
    c.running = &to;
    fctx::transfer_t back = jump(to.fiber, &from, {to.stack_bottom, to.stack_size});
    // Someone switched back to us, possibly on another CPU, leaving `last`.
    auto& last = *static_cast<hal::ArchContext*>(back.data);
    last.fiber = back.fctx;
    // NOTE: the machine is read again rather than kept across the jump (it is the same one):
    // fewer registers to save on every switch.
    Machine& m = *s_current;
    SimCpu& now = *m.m_current;
    now.running = &from;
    now.irq_enabled = from.irq_enabled;
    if (now.irq_enabled && now.next_event_ns <= now.clock_ns) {
        m.deliver_pending();
    }
    return last;
}

} // namespace hal_sim
