// How a run ends and what the machine says about it: the verdict that stop() records for
// every ending (the kernel's halt, or what the executor, the host-fault handlers and the
// livelock check found), the invariant checks whose failure outranks any of them, and the
// report of each CPU's state that a verdict's detail quotes.

#include <hal_sim/machine.hpp>
#include <hal_sim/race.hpp>
#include <hal_sim/seconds.hpp>

#include <core/cpu.hpp>
#include <core/invariants.hpp>
#include <core/sync/spinlock.hpp>

#include <string>

namespace hal_sim {

const char* describe(Verdict v) {
    switch (v) {
    case Verdict::Success:
        return "success";
    case Verdict::Failure:
        return "failure";
    case Verdict::Panic:
        return "panic";
    case Verdict::Deadlock:
        return "deadlock";
    case Verdict::Livelock:
        return "livelock";
    case Verdict::MemoryFault:
        return "memory fault";
    case Verdict::StackOverflow:
        return "stack overflow";
    case Verdict::TimeLimit:
        return "time limit";
    case Verdict::Invariant:
        return "invariant broken";
    case Verdict::Hang:
        return "hang";
    case Verdict::Race:
        return "race";
    case Verdict::Timeout:
        return "timeout";
    case Verdict::OutOfMemory:
        return "out of memory";
    case Verdict::StaleTranslation:
        return "stale translation";
    }
    return "unknown";
}

void Machine::stop(Verdict verdict, std::string detail) {
    if (m_stopped) {
        return;
    }
    m_stopped = true;
    m_first_until = 0;
    m_result = {verdict, std::move(detail)};
}

void Machine::halt(hal::ExitCode code) {
    switch (code) {
    case hal::ExitCode::Success:
        stop(Verdict::Success, {});
        break;
    case hal::ExitCode::Failure:
        stop(Verdict::Failure, "the kernel reported failure");
        break;
    case hal::ExitCode::Panic:
        stop(Verdict::Panic, "the kernel panicked");
        break;
    default:
        stop(Verdict::Panic,
             "the kernel stopped with unknown code " + std::to_string(static_cast<unsigned>(code)));
        break;
    }
    // The executor never resumes a stopped machine's CPUs; their stacks are unmapped
    // without unwinding them.
    for (;;) {
        jump(m_current->executor, nullptr, m_executor_stack, true);
    }
}

void Machine::join_race_fibers() {
    if (!race::kBuilt) {
        return;
    }
    for (const auto& cpu : m_cpus) {
        race::join_fiber(cpu->boot_stack.race_fiber());
    }
    for (const auto& stack : m_stacks) {
        race::join_fiber(stack->race_fiber());
    }
}

bool Machine::check_invariants(const SimCpu* last) {
    // The executor's reads of the kernel: neither racing with the CPUs nor ordering them.
    race::Blind blind;
    core::InvariantReport report;
    bool ok = core::check_invariants(report);
    ++m_invariant_checks;
    m_invariant_skips += report.skipped();
    // Every check_every steps; but for a period above 1, no more often than one step per
    // thing checked, so that a machine with 10,000 threads spends a few percent on checks,
    // not a third (the period depends only on the kernel's state: runs stay reproducible).
    uint64_t period = m_config.check_every;
    if (period > 1 && report.work() > period) {
        period = report.work();
    }
    m_next_check = m_steps + period;
    if (ok) {
        return true;
    }
    std::string detail = report.text();
    if (last != nullptr) {
        detail += "\n(found after executor step " + std::to_string(m_steps) + ", in which cpu " +
                  std::to_string(last->index) + " ran up to " + seconds(last->clock_ns) + " s)";
    } else {
        detail += "\n(found when the run ended)";
    }
    // NOTE: also after the kernel stopped the machine itself: a broken state outranks its
    // verdict.
    m_stopped = true;
    m_result = {Verdict::Invariant, std::move(detail)};
    return false;
}

std::string Machine::where(const SimCpu& c) const {
    std::string s = "cpu " + std::to_string(c.index) + ": ";
    switch (c.state) {
    case SimCpu::State::Parked:
        s += "parked (never released)";
        return s;
    case SimCpu::State::Off:
        s += "off";
        return s;
    case SimCpu::State::Idle:
        s += "idle, waiting for an interrupt";
        break;
    case SimCpu::State::Running:
        s += c.spinning ? "spinning" : "running";
        break;
    }
    s += ", interrupts " + std::string(c.irq_enabled ? "on" : "off");
    s += ", at " + seconds(c.clock_ns) + " s";
    if (c.cpu_data != nullptr && c.cpu_data->locks.waiting_for != nullptr) {
        const core::SpinLock* lock = c.cpu_data->locks.waiting_for;
        s += ", waiting for spinlock '" + std::string(lock->name()) + "'";
        for (const auto& other : m_cpus) {
            if (other.get() != &c && other->cpu_data != nullptr &&
                lock->held_by(other->cpu_data->locks)) {
                s += " held by cpu " + std::to_string(other->index);
            }
        }
    }
    if (c.timer_deadline_ns != SimCpu::kNever) {
        s += ", timer at " + seconds(c.timer_deadline_ns) + " s";
    }
    if (!c.ipis.empty()) {
        s += ", " + std::to_string(c.ipis.size()) + " IPI(s) pending";
    }
    if (c.state == SimCpu::State::Idle && c.next_event_ns == SimCpu::kNever) {
        s += ", nothing pending";
    }
    return s;
}

std::string Machine::describe_cpus() const {
    std::string s;
    for (const auto& c : m_cpus) {
        s += "  " + where(*c) + "\n";
    }
    if (!s.empty()) {
        s.pop_back();
    }
    return s;
}

} // namespace hal_sim
