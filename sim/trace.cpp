#include "trace.hpp"

#include <core/sched/trace.hpp>

#include <fmt/format.h>

#include <algorithm>

namespace duet {

namespace {

using Kind = hal_sim::TraceRecord::Kind;

constexpr uint32_t kProcess = core::sched::trace::kProcessPid;

// An instant's text inside an atrace field: '|' would end it and a newline the line.
std::string instant_text(std::string_view text) {
    std::string s(text);
    for (char& c : s) {
        if (c == '|') {
            c = '/';
        } else if (static_cast<unsigned char>(c) < 0x20) {
            c = ' ';
        }
    }
    return s;
}

// Who a line is about, in ftrace's `TASK-PID` prefix.
struct Task {
    std::string name = "<idle>";
    uint32_t pid = 0;
};

Task task_of(const std::string& name, uint32_t pid) {
    return pid == 0 ? Task{} : Task{trace_field(name), pid};
}

// NOTE: `TASK-PID [CPU] SECONDS: EVENT: ARGS`, as `trace-cmd report` prints: no (TGID) and
// no flags column, which Perfetto takes or leaves but traceshark's parser cannot skip (the
// token before [CPU] must be TASK-PID, and the one after it the time).
void line(std::string& out, const Task& task, uint32_t cpu, uint64_t ns, std::string_view body) {
    fmt::format_to(std::back_inserter(out), "{:>16}-{:<7} [{:03}] {}.{:09}: {}\n", task.name,
                   task.pid, cpu, ns / 1'000'000'000, ns % 1'000'000'000, body);
}

} // namespace

std::string trace_field(std::string_view name) {
    if (name.empty()) {
        return "_";
    }
    std::string s(name);
    for (char& c : s) {
        auto u = static_cast<unsigned char>(c);
        if (u <= 0x20 || u == 0x7f || c == '=' || c == '|') {
            c = '_';
        }
    }
    return s;
}

std::string ftrace_header(std::string_view title) {
    return fmt::format(
        "# tracer: nop\n"
        "#\n"
        "# {}\n"
        "# A Duet schedule trace (docs/debugging.md); open it in the Perfetto UI or traceshark.\n"
        "# pid: the thread's number, unique in the run (1 is init, then in spawn order); 0 is a\n"
        "# CPU's idle thread. Process {} (duet) holds the counters (free_frames,\n"
        "# heap_bytes) and the instants (faults, expectations). prio: the scheduler's\n"
        "# priority, 0 (lowest) to 7.\n"
        "#\n"
        "#           TASK-PID     CPU#   TIMESTAMP  FUNCTION\n"
        "#              | |         |       |         |\n",
        title, kProcess);
}

void TraceLog::add(const hal_sim::TraceRecord& r) {
    Event e{r.kind, r.cpu, r.ns, {}, {}, r.target_cpu, std::string(r.track), std::string(r.name),
            r.value};
    auto copy = [](const hal::TraceThread& t) {
        return Thread{t.name != nullptr ? std::string(t.name) : std::string(), t.pid, t.priority,
                      t.state};
    };
    if (r.kind == Kind::Switch) {
        e.prev = copy(r.prev);
    }
    if (r.kind == Kind::Switch || r.kind == Kind::Waking) {
        e.next = copy(r.next);
    }
    m_events.push_back(std::move(e));
}

void TraceLog::instant(uint64_t ns, uint32_t cpu, std::string_view track, std::string_view text) {
    hal_sim::TraceRecord r;
    r.kind = Kind::Instant;
    r.ns = ns;
    r.cpu = cpu;
    r.track = track;
    r.name = text;
    add(r);
}

std::string TraceLog::ftrace(std::string_view title) const {
    // NOTE: each CPU's events are in its clock's order already; a stable sort by time merges
    // the CPUs and keeps the order of events at the same time.
    std::vector<const Event*> order;
    order.reserve(m_events.size());
    for (const auto& e : m_events) {
        order.push_back(&e);
    }
    std::stable_sort(order.begin(), order.end(),
                     [](const Event* a, const Event* b) { return a->ns < b->ns; });
    std::string out = ftrace_header(title);
    std::vector<Task> current; // per CPU: the thread it runs, for the waking lines' prefix
    const Task process{"duet", kProcess};
    for (const Event* e : order) {
        if (e->cpu >= current.size()) {
            current.resize(e->cpu + 1);
        }
        switch (e->kind) {
        case Kind::Switch: {
            const Thread& p = e->prev;
            const Thread& n = e->next;
            line(out, task_of(p.name, p.pid), e->cpu, e->ns,
                 fmt::format("sched_switch: prev_comm={} prev_pid={} prev_prio={} prev_state={} "
                             "==> next_comm={} next_pid={} next_prio={}",
                             trace_field(p.name), p.pid, p.priority, p.state, trace_field(n.name),
                             n.pid, n.priority));
            current[e->cpu] = task_of(n.name, n.pid);
            break;
        }
        case Kind::Waking:
            line(out, current[e->cpu], e->cpu, e->ns,
                 fmt::format("sched_waking: comm={} pid={} prio={} target_cpu={:03}",
                             trace_field(e->next.name), e->next.pid, e->next.priority,
                             e->target_cpu));
            break;
        case Kind::Counter:
            line(out, process, e->cpu, e->ns,
                 fmt::format("tracing_mark_write: C|{}|{}|{}", kProcess, trace_field(e->name),
                             e->value));
            break;
        case Kind::Instant:
            line(out, process, e->cpu, e->ns,
                 fmt::format("tracing_mark_write: N|{}|{}|{}", kProcess, trace_field(e->track),
                             instant_text(e->name)));
            break;
        }
    }
    return out;
}

std::string finish_trace(TraceLog& trace, std::string_view format, std::string_view title,
                         uint64_t end_ns, const hal_sim::RunResult& result,
                         const std::vector<ExpectationResult>& checked) {
    if (result.verdict != hal_sim::Verdict::Success) {
        std::string detail = result.detail.substr(0, result.detail.find('\n'));
        trace.instant(end_ns, 0, "verdict",
                      fmt::format("{}{}{}", hal_sim::describe(result.verdict),
                                  detail.empty() ? "" : ": ", detail));
    }
    for (const auto& r : checked) {
        if (!r.held) {
            trace.instant(end_ns, 0, "expectations",
                          fmt::format("expectation failed: {} (got {}) at {}:{}",
                                      r.expectation->text, r.actual, r.expectation->file,
                                      r.expectation->line));
        }
    }
    return format == "com1" ? trace.com1() : trace.ftrace(title);
}

std::string TraceLog::com1() const {
    std::string out;
    auto it = std::back_inserter(out);
    for (const auto& e : m_events) {
        fmt::format_to(it, "trace: {} {} ", e.ns, e.cpu);
        switch (e.kind) {
        case Kind::Switch:
            fmt::format_to(it, "S {} {} {} {} {} {} {}\n", e.prev.pid, e.prev.priority,
                           e.prev.state, trace_field(e.prev.name), e.next.pid, e.next.priority,
                           trace_field(e.next.name));
            break;
        case Kind::Waking:
            fmt::format_to(it, "W {} {} {} {}\n", e.next.pid, e.next.priority, e.target_cpu,
                           trace_field(e.next.name));
            break;
        case Kind::Counter:
            fmt::format_to(it, "C {} {}\n", trace_field(e.name), e.value);
            break;
        case Kind::Instant:
            fmt::format_to(it, "I {} {}\n", trace_field(e.track), instant_text(e.name));
            break;
        }
    }
    return out;
}

} // namespace duet
