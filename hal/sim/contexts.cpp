// Contexts: each kernel thread's context is a fiber on a host stack of its own, with a guard
// page below it that turns an overflow into a host fault; freed stacks are kept for the next
// context of the same size. A switch between contexts is also a preemption point, unless the
// executor would resume the switching CPU next anyway.
//
// The kernel's own stack is modelled by its top page's translation: the frame a context's
// first frame was written through (on the CPU that made the context, through that CPU's
// cached translation if it has one) must be the frame each CPU that resumes it reaches, or on
// the machine the context would resume on another frame's contents.

#include "executor.hpp"

#include <hal_sim/hex.hpp>
#include <hal_sim/machine.hpp>
#include <hal_sim/mmu.hpp>
#include <hal_sim/race.hpp>

#include <core/mm/page_table.hpp>

#ifdef DUET_SANITIZE
#include <sanitizer/asan_interface.h>
#endif

#include <algorithm>
#include <memory>
#include <string>

namespace hal_sim {

using firmware::kPage;

uint64_t Machine::walk_stack_page(SimCpu& cpu, uint64_t va) {
    // NOTE: no accessed or dirty bits set: the kernel never reads them for its own pages, and
    // a walk the model adds must not change what the kernel sees.
    WalkResult r = walk(m_ram, cpu.mmu, va, AccessKind::Write, Privilege::Supervisor);
    if (!r.ok()) {
        return StackTlb::kNone;
    }
    uint64_t frame = r.pa & ~(kPage - 1);
    if (r.page_size == kPage) { // a stack's pages are 4 KiB; INVLPG drops a page, not a piece
        cpu.mmu.kernel_stacks.fill(va, frame);
    }
    return frame;
}

void Machine::check_stack_translation(SimCpu& cpu, const hal::ArchContext& to, uint64_t cached) {
    uint64_t frame = cached != StackTlb::kNone ? cached : walk_stack_page(cpu, to.stack_page);
    if (frame == to.stack_frame) {
        return; // not cached here before: the walk agrees
    }
    // NOTE: the detail is a temporary, gone before the executor abandons this fiber (what lives
    // on its stack then is never freed).
    if (frame == StackTlb::kNone) {
        stop(Verdict::MemoryFault, "cpu " + std::to_string(cpu.index) + " resumed " + to.name +
                                       " on a kernel stack its tables do not map (top page " +
                                       hex(to.stack_page) +
                                       "): on the machine its first pop page-faults on the stack");
    } else {
        stop(Verdict::StaleTranslation, stale_stack_detail(cpu, to, frame));
    }
    preemption_point(); // the executor ends the run
}

std::string Machine::stale_stack_detail(SimCpu& cpu, const hal::ArchContext& to, uint64_t frame) {
    WalkResult now = walk(m_ram, cpu.mmu, to.stack_page, AccessKind::Read, Privilege::Supervisor);
    uint64_t mapped = now.ok() ? now.pa & ~(kPage - 1) : StackTlb::kNone;
    std::string why;
    if (frame != mapped) {
        why = "cpu " + std::to_string(cpu.index) +
              "'s TLB still holds an earlier frame of the page: a missing INVLPG or TLB "
              "shootdown there";
    } else {
        why = "the tables changed since cpu " + std::to_string(to.stack_writer) +
              " wrote its first frame: that CPU wrote through a stale translation (a missing "
              "INVLPG there), or the stack was mapped again under the thread";
    }
    return "cpu " + std::to_string(cpu.index) + " resumed " + to.name +
           " through a stale translation of its kernel stack: its top page " + hex(to.stack_page) +
           " was written in frame " + hex(to.stack_frame) + " and this CPU reaches it in frame " +
           hex(frame) + ", the tables map it to " +
           (mapped != StackTlb::kNone ? "frame " + hex(mapped) : std::string("nothing")) + "; " +
           why + ". On the machine it resumes on another frame's contents";
}

void Machine::context_init(hal::ArchContext& ctx, uint64_t stack_base, size_t stack_size,
                           hal::ContextEntry entry, void* arg, const char* name) {
    // The kernel writes the first frame on the stack's top page through the calling CPU's
    // translation, whichever it is: a stale one shows when another CPU resumes the context.
    uint64_t top_page = stack_base + stack_size - kPage;
    uint64_t written = StackTlb::kNone;
    if (core::mm::in_kernel_half(hal::VirtAddr(top_page)) && m_current != nullptr &&
        m_current->mmu.cr3 != 0) {
        written = m_current->mmu.kernel_stacks.find(top_page); // cached: nearly always
        if (written == StackTlb::kNone) {
            written = walk_stack_page(*m_current, top_page);
        }
    }
    // NOTE: the kernel's stack frames stay allocated (and accounted) as on hardware, but the
    // fiber runs on a host stack of the same size with a guard page below it: host code needs
    // host addresses, and the guard must not take a frame from anyone.
#ifdef DUET_SANITIZE
    // AddressSanitizer's redzones and its runtime take much more stack than the kernel's own
    // frames; the frames the kernel allocated are accounted all the same.
    stack_size *= 4;
#endif
    if (race::kBuilt) {
        // ThreadSanitizer prints its report on the stack of the fiber that found the race, and
        // its symbolizer's demangler recurses deeply: on a kernel-sized stack it overflowed
        // while holding the runtime's locks, and the process hung.
        stack_size = std::max<size_t>(stack_size, 1024 * 1024);
    }
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
        m_stacks.push_back(std::make_unique<FiberStack>(m_stack_arena.carve(stack_size)));
        stack = m_stacks.back().get();
    }
#ifdef DUET_SANITIZE
    // NOTE: a recycled stack still carries AddressSanitizer's poison for the frames its last
    // fiber never returned from (an exited thread leaves from the middle of a switch); the new
    // fiber's frames land on it and were reported as stack-buffer-underflows (fault sweep,
    // seed 21).
    __asan_unpoison_memory_region(stack->bounds().bottom, stack->size());
#endif
    // NOTE: before make_fcontext(), which writes on the stack: a reused one is mapped afresh.
    ctx.race_fiber = stack->new_race_fiber(name != nullptr ? name : "unnamed context");
    ctx.race_cpu = ~0u; // named with its CPU when it first runs
    ctx.host_stack = stack;
    ctx.fiber = fctx::make_fcontext(stack->top(), stack->size(), &duet_fiber_start_context);
    ctx.stack_bottom = stack->bounds().bottom;
    ctx.stack_size = stack->bounds().size;
    ctx.entry = entry;
    ctx.arg = arg;
    ctx.name = name != nullptr ? name : "unnamed context";
    ctx.irq_enabled = false; // the entry turns them on (hal/context.hpp)
    ctx.stack_page = written != StackTlb::kNone ? top_page : 0;
    ctx.stack_frame = written;
    ctx.stack_writer = m_current != nullptr ? m_current->index : 0;
}

void Machine::context_release(hal::ArchContext& ctx) {
    if (ctx.host_stack != nullptr) {
        auto* stack = static_cast<FiberStack*>(ctx.host_stack);
        stack->end_race_fiber();
        m_free_stacks.push_back(stack);
    }
    ctx = hal::ArchContext{};
}

// Race builds: ThreadSanitizer's reports name a context's fiber with the CPU it runs on.
static inline void note_race_cpu(hal::ArchContext& ctx, uint32_t cpu) {
    if (race::kBuilt && ctx.race_cpu != cpu && ctx.race_fiber != nullptr) [[unlikely]] {
        ctx.race_cpu = cpu;
        race::name_fiber(ctx.race_fiber, cpu, ctx.name);
    }
}

void duet_sim_context_entry(fctx::transfer_t from) {
    // Race builds: this is the simulator's code (race::create_fiber() says why).
    fiber_started();
    // The switch hands over the context it left, to keep where it stopped.
    static_cast<hal::ArchContext*>(from.data)->fiber = from.fctx;
    Machine& m = *Machine::s_current;
    hal::ArchContext* self = m.m_current->running; // context_switch() set it to this one
    m.m_current->irq_enabled = self->irq_enabled;
    hal::ContextEntry entry = self->entry;
    void* arg = self->arg;
    self->entry = nullptr;
    note_race_cpu(*self, m.m_current->index);
    if (m.m_current->irq_enabled && m.m_current->next_event_ns <= m.m_current->clock_ns) {
        m.deliver_pending();
    }
    {
        race::KernelCode kernel;
        entry(arg);
    }
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
    hal_sim::race::SimulatorCode sim; // hal.cpp says why
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
        from.race_fiber = c.running->race_fiber;
        from.race_cpu = c.running->race_cpu;
    }
    if (to.stack_page != 0) {
        uint64_t cached = c.mmu.kernel_stacks.find(to.stack_page);
        if (cached != to.stack_frame) [[unlikely]] {
            check_stack_translation(c, to, cached);
        }
    }
    c.running = &to;
    fctx::transfer_t back = jump(to.fiber, &from, {to.stack_bottom, to.stack_size, to.race_fiber});
    // Someone switched back to us, possibly on another CPU, leaving `last`.
    auto& last = *static_cast<hal::ArchContext*>(back.data);
    last.fiber = back.fctx;
    // NOTE: the machine is read again rather than kept across the jump (it is the same one):
    // fewer registers to save on every switch.
    Machine& m = *s_current;
    SimCpu& now = *m.m_current;
    now.running = &from;
    now.irq_enabled = from.irq_enabled;
    note_race_cpu(from, now.index);
    if (now.irq_enabled && now.next_event_ns <= now.clock_ns) {
        m.deliver_pending();
    }
    return last;
}

} // namespace hal_sim
