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

bool Machine::step() {
    if (m_stopped) {
        return false;
    }
    if (!m_powered) {
        power_on();
    }
    if (m_heap.empty()) {
        stop(Verdict::Deadlock, "no CPU can run and no interrupt is pending\n" + describe_cpus());
        return false;
    }
    // NOTE: the CPU stays in the heap while it runs (no other CPU's ready time changes but
    // through update_next_event, which leaves the running CPU alone); it is re-sifted after.
    SimCpu* cpu = m_heap.front();
    uint64_t ready = ready_time(*cpu);
    if (ready >= m_config.stop_at_ns) {
        stop(Verdict::Success, "the run reached its end time");
        return false;
    }
    if (ready > m_config.time_limit_ns) {
        stop(Verdict::TimeLimit,
             "virtual time passed " + seconds(m_config.time_limit_ns) + " s\n" + describe_cpus());
        return false;
    }
    if (cpu->state == SimCpu::State::Idle) {
        if (cpu->next_event_ns > cpu->clock_ns) {
            cpu->idle_ns += cpu->next_event_ns - cpu->clock_ns;
            cpu->clock_ns = cpu->next_event_ns;
        }
        cpu->state = SimCpu::State::Running;
    }
    s_current = this;
    m_current = cpu;
    g_current_cpu = cpu;
    m_first_until = 0; // still_first() was about another CPU
    __atomic_store_n(&m_steps, m_steps + 1, __ATOMIC_RELAXED); // the watchdog reads it
    ++cpu->steps;
    fctx::transfer_t back = jump(cpu->resume, nullptr, cpu->stack(), false, Entry::Across);
    if (back.data != &g_host_fault_marker) {
        cpu->resume = back.fctx;
    }
    m_current = nullptr;
    g_current_cpu = nullptr;
    s_current = nullptr;
    if (m_stopped) {
        m_com1.flush();
        return false;
    }
    if (cpu->state == SimCpu::State::Running ||
        (cpu->state == SimCpu::State::Idle && cpu->next_event_ns != SimCpu::kNever)) {
        // A tie can only be broken between two CPUs: a lone one keeps its place for free.
        if (m_heap.size() > 1) {
            cpu->tie_break = m_schedule_rng.next();
            heap_update(*cpu);
        }
    } else {
        heap_remove(*cpu);
    }
#ifdef DUET_DEBUG
    for (size_t i = 1; i < m_heap.size(); ++i) {
        if (heap_less(m_heap[i], m_heap[(i - 1) / 2]) || m_heap[i]->heap_pos != int(i)) {
            std::fputs("duet: executor heap corrupt\n", stderr);
            std::abort();
        }
    }
#endif
    if (m_config.check_every != 0 && m_steps >= m_next_check && !check_invariants(cpu)) {
        m_com1.flush();
        return false;
    }
    return true;
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

inline bool Machine::still_first(const SimCpu& c) {
    // NOTE: every switch asks. Once the answer is yes, it stays yes until the running CPU's
    // clock reaches the first of the children's ready times and the run's end, or the heap
    // changes (which resets m_first_until).
    if (c.clock_ns < m_first_until) {
        return true;
    }
    // The executor would pick this CPU again at once when it is still at the top of the heap
    // and strictly ahead of both children (a tie is the seeded generator's to break), and the
    // run is not about to end.
    if (m_borrowed || m_stopped || c.heap_pos != 0 || c.clock_ns >= m_clock_end) {
        return false;
    }
    uint64_t until = m_clock_end;
    for (size_t child = 1; child <= 2 && child < m_heap.size(); ++child) {
        until = std::min(until, ready_time(*m_heap[child]));
    }
    if (c.clock_ns >= until) {
        return false;
    }
    m_first_until = until;
    return true;
}

void Machine::preemption_point() {
    if (m_borrowed) {
        std::fputs("duet: a preemption point was reached under a CpuScope (outside run())\n",
                   stderr);
        std::abort();
    }
    fctx::transfer_t back =
        jump(m_current->executor, nullptr, m_executor_stack, false, Entry::Across);
    SimCpu& c = *m_current;
    c.executor = back.fctx;
    if (c.irq_enabled && c.next_event_ns <= c.clock_ns) [[unlikely]] {
        deliver_pending();
    }
}

void Machine::cpu_relax() {
    SimCpu& c = *m_current;
    c.clock_ns += m_config.costs.relax;
    if (!c.spinning) {
        c.spinning = true;
        c.spin_since_ns = c.clock_ns - m_config.costs.relax;
    } else if (c.clock_ns - c.spin_since_ns > m_config.livelock_ns) {
        stop(Verdict::Livelock, "cpu " + std::to_string(c.index) + " spun for " +
                                    seconds(c.clock_ns - c.spin_since_ns) +
                                    " s without progress\n" + describe_cpus());
    }
    preemption_point();
}

void Machine::cpu_work(uint64_t ns) {
    uint64_t remaining = ns;
    do {
        SimCpu& c = *m_current;
        c.spinning = false;
        uint64_t chunk = remaining;
        if (c.irq_enabled && c.next_event_ns != SimCpu::kNever) {
            chunk =
                c.next_event_ns > c.clock_ns ? std::min(chunk, c.next_event_ns - c.clock_ns) : 0;
        }
        c.clock_ns += chunk;
        remaining -= chunk;
        preemption_point();
    } while (remaining > 0);
}

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

// --- Bookkeeping. ---

void Machine::update_next_event(SimCpu& c) {
    uint64_t next = c.timer_deadline_ns;
    if (!c.ipis.empty()) {
        next = std::min(next, c.ipis.front().at_ns);
    }
    c.next_event_ns = next;
    if (c.state == SimCpu::State::Idle && &c != m_current) {
        if (next == SimCpu::kNever) {
            heap_remove(c);
        } else {
            heap_update(c);
        }
    }
}

uint64_t Machine::ready_time(const SimCpu& c) const {
    return c.state == SimCpu::State::Idle ? c.next_event_ns : c.clock_ns;
}

bool Machine::heap_less(const SimCpu* a, const SimCpu* b) const {
    uint64_t ta = ready_time(*a);
    uint64_t tb = ready_time(*b);
    if (ta != tb) {
        return ta < tb;
    }
    if (a->tie_break != b->tie_break) {
        return a->tie_break < b->tie_break;
    }
    return a->index < b->index;
}

void Machine::heap_swap(size_t i, size_t j) {
    std::swap(m_heap[i], m_heap[j]);
    m_heap[i]->heap_pos = static_cast<int>(i);
    m_heap[j]->heap_pos = static_cast<int>(j);
}

void Machine::heap_sift_up(size_t i) {
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!heap_less(m_heap[i], m_heap[parent])) {
            break;
        }
        heap_swap(i, parent);
        i = parent;
    }
}

void Machine::heap_sift_down(size_t i) {
    for (;;) {
        size_t best = i;
        size_t l = 2 * i + 1;
        size_t r = l + 1;
        if (l < m_heap.size() && heap_less(m_heap[l], m_heap[best])) {
            best = l;
        }
        if (r < m_heap.size() && heap_less(m_heap[r], m_heap[best])) {
            best = r;
        }
        if (best == i) {
            return;
        }
        heap_swap(i, best);
        i = best;
    }
}

void Machine::heap_update(SimCpu& c) {
    m_first_until = 0;
    if (c.heap_pos < 0) {
        c.heap_pos = static_cast<int>(m_heap.size());
        m_heap.push_back(&c);
    }
    heap_sift_up(static_cast<size_t>(c.heap_pos));
    heap_sift_down(static_cast<size_t>(c.heap_pos));
}

void Machine::heap_remove(SimCpu& c) {
    if (c.heap_pos < 0) {
        return;
    }
    m_first_until = 0;
    size_t i = static_cast<size_t>(c.heap_pos);
    size_t last = m_heap.size() - 1;
    if (i != last) {
        heap_swap(i, last);
    }
    m_heap.pop_back();
    c.heap_pos = -1;
    if (i < m_heap.size()) {
        heap_sift_up(i);
        heap_sift_down(i);
    }
}

} // namespace hal_sim
