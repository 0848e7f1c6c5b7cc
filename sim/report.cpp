#include "report.hpp"

#include <fmt/compile.h>
#include <fmt/format.h>

#include <cmath>
#include <iterator>

namespace duet {

const std::vector<MetricInfo>& metric_catalogue() {
    static const std::vector<MetricInfo> catalogue = {
        {"seed", "the seed every choice of the run came from"},
        {"digest", "FNV-1a digest of everything the run printed (COM1, simulator events, "
                   "verdict) and of what the report measured but the seed, the schedule strategy "
                   "and the invariant checks; equal digests mean identical runs"},
        {"verdict", "how the run ended: success, failure, panic, deadlock, livelock, memory "
                    "fault, stack overflow, time limit, invariant broken, hang, race, timeout, "
                    "out of memory, stale translation"},
        {"machine.cpus", "simulated CPUs"},
        {"schedule.strategy", "how the CPUs interleaved: the --schedule value that repeats the "
                              "run (coarse, random[:P], pct:D:K)"},
        {"schedule.sync_points", "synchronisation points reached (atomics, spinlocks, interrupts "
                                 "turned on; 0 under coarse, which does not stop at them)"},
        {"schedule.stalls", "synchronisation points where the schedule stalled the CPU"},
        {"schedule.stall_ns", "virtual time those stalls took, summed over the CPUs"},
        {"time.virtual_ns", "virtual time at the end of the run (the furthest CPU clock)"},
        {"time.executor_steps", "times the executor resumed a CPU"},
        {"invariants.checks", "times the simulator checked the kernel's invariants (after every "
                              "--check-every steps, and at the end)"},
        {"invariants.skipped", "structures those checks skipped because a CPU held their lock"},
        {"faults.injected", "faults the simulator injected"},
        {"memory.usable_frames", "4 KiB frames of usable RAM in the E820 input (every byte "
                                 "covered by usable memory, none by anything else)"},
        {"memory.total_frames", "frames the kernel's allocator manages (free + used + reserved)"},
        {"memory.free_frames", "frames free at the end of the run"},
        {"memory.used_frames", "frames allocated at the end of the run, by anyone"},
        {"memory.reserved_frames", "frames the kernel kept at boot (page 0, the initrd, ...)"},
        {"memory.peak_frames", "the most frames out of the frame allocator at once (used, or in "
                               "a per-CPU cache): the peak of used, to within the caches"},
        {"memory.leaked_frames", "frames the workload allocated and never freed"},
        {"memory.kept_stack_frames", "frames of freed kernel stacks the CPUs keep mapped for "
                                     "their next threads (part of used)"},
        {"memory.accounting_ok", "1 if free + used + reserved = total held at the end"},
        {"heap.bytes_from_frames",
         "bytes the kernel heap holds from the frame allocator at the end"},
        {"heap.allocs", "successful heap allocations"},
        {"heap.frees", "heap frees"},
        {"heap.live", "heap allocations not freed at the end (allocs - frees)"},
        {"heap.failures", "heap allocations that found no memory (injected faults included)"},
        {"threads.started", "workload threads started"},
        {"threads.exited", "workload threads that exited"},
        {"threads.spawn_failures", "workload threads that could not be started"},
        {"threads.unlisted", "threads left out of the JSON report's list of threads, which holds "
                             "the first 10000 spawned (init and the workload's)"},
        {"workload.alloc_failures", "allocations the workload asked for and did not get"},
        {"workload.frames_allocated", "frames the workload allocated, in all"},
        {"workload.lock_wait_ns.max", "the longest a workload thread waited to lock a mutex"},
        {"cpu.utilisation.mean", "mean over CPUs of the fraction of virtual time not idle"},
        {"cpu.utilisation.min", "the least busy CPU's utilisation"},
        {"cpu.utilisation.max", "the busiest CPU's utilisation"},
        {"sched.context_switches", "context switches on all CPUs"},
        {"sched.preemptions", "threads preempted at the end of their time slice"},
        {"sched.migrations", "times a thread ran on another CPU than the last time"},
        {"sched.wakeups", "threads made runnable by a wake-up (wait queue, sleep, mutex, event)"},
        {"sched.steals", "threads an idle or less loaded CPU took from another's queue"},
        {"sched.run_delay_ns.p50", "median time from runnable to running (the upper bound of "
                                   "the histogram bucket that holds it: docs/scenarios.md)"},
        {"sched.run_delay_ns.p99", "99th percentile of the same"},
        {"sched.wakeup_latency_ns.p50", "median time from a wake-up (or a sleep's deadline) to "
                                        "running (a histogram bucket's upper bound, as above)"},
        {"sched.wakeup_latency_ns.p99", "99th percentile of the same"},
        {"sched.wakeup_latency_ns.max", "the longest of the same"},
        {"sched.fairness", "Jain's fairness index over CPU-bound threads' CPU shares (1 is fair)"},
        {"sched.imbalance", "most minus fewest runnable threads on one CPU at the end"},
        {"user.processes.started", "processes whose thread started (docs/scenarios.md, "
                                   "\"Processes\"; the user.* and ipc.* metrics are in the "
                                   "report of a run that started any)"},
        {"user.processes.exited", "processes that exited (with any code)"},
        {"user.processes.failed", "processes that exited with a code other than 0"},
        {"user.processes.killed", "processes killed by a fault in user mode"},
        {"user.syscalls", "system calls made by every process"},
        {"user.bad_addresses", "system calls refused because a buffer was not the caller's "
                               "user memory (-BadAddress)"},
        {"user.leaked_frames", "frames of user pages and page tables in use after every "
                               "process was reaped, less those before the first started "
                               "(present once all were reaped)"},
        {"ipc.calls", "IPC calls that got their reply"},
        {"ipc.direct_switches", "calls and replies that switched straight to the thread they "
                                "woke, without a run queue"},
        {"ipc.peer_gone", "IPC operations that ended because the other side had gone"},
        {"ipc.round_trip_ns.p50", "median time from a call's entry into the kernel to its return "
                                  "with the reply (a histogram bucket's upper bound)"},
        {"ipc.round_trip_ns.p99", "99th percentile of the same"},
        {"ipc.round_trip_ns.max", "the longest of the same"},
        {"ipc.objects_left", "endpoints and notifications still allocated at the end"},
        {"expectations.total", "expect lines checked"},
        {"expectations.failed", "expect lines that did not hold"},
    };
    return catalogue;
}

bool is_metric(const std::string& name) {
    for (const auto& m : metric_catalogue()) {
        if (name == m.name) {
            return true;
        }
    }
    return false;
}

std::optional<double> Report::number(const std::string& name) const {
    auto it = m_values.find(name);
    if (it == m_values.end()) {
        return std::nullopt;
    }
    if (const auto* u = std::get_if<uint64_t>(&it->second)) {
        return static_cast<double>(*u);
    }
    if (const auto* d = std::get_if<double>(&it->second)) {
        return *d;
    }
    return std::nullopt;
}

std::string Report::text(const std::string& name) const {
    auto it = m_values.find(name);
    if (it == m_values.end()) {
        return "-";
    }
    return std::visit(
        [](const auto& v) -> std::string {
            using T = std::decay_t<decltype(v)>;
            if constexpr (std::is_same_v<T, std::string>) {
                return v;
            } else if constexpr (std::is_same_v<T, double>) {
                return fmt::format("{:.4f}", v);
            } else {
                return fmt::format("{}", v);
            }
        },
        it->second);
}

nlohmann::ordered_json Report::to_json() const {
    nlohmann::ordered_json root = nlohmann::ordered_json::object();
    for (const auto& m : metric_catalogue()) {
        auto it = m_values.find(m.name);
        if (it == m_values.end()) {
            continue;
        }
        // "a.b.c" becomes root["a"]["b"]["c"].
        nlohmann::ordered_json* node = &root;
        std::string name = m.name;
        size_t start = 0;
        for (size_t dot = name.find('.'); dot != std::string::npos; dot = name.find('.', start)) {
            node = &(*node)[name.substr(start, dot - start)];
            start = dot + 1;
        }
        std::visit([&](const auto& v) { (*node)[name.substr(start)] = v; }, it->second);
    }
    nlohmann::ordered_json rows = nlohmann::ordered_json::array();
    for (const auto& c : cpus) {
        rows.push_back({{"index", c.index},
                        {"utilisation", c.utilisation},
                        {"busy_ns", c.busy_ns},
                        {"idle_ns", c.idle_ns},
                        {"executor_steps", c.steps},
                        {"context_switches", c.context_switches}});
    }
    root["cpus"] = rows;
    nlohmann::ordered_json trows = nlohmann::ordered_json::array();
    for (const auto& t : threads) {
        trows.push_back({{"id", t.id},
                         {"name", t.name},
                         {"state", t.state},
                         {"cpu", t.cpu},
                         {"priority", t.priority},
                         {"run_ns", t.run_ns},
                         {"run_delay_ns", t.run_delay_ns},
                         {"wakeups", t.wakeups},
                         {"preemptions", t.preemptions},
                         {"migrations", t.migrations}});
    }
    // NOTE: inside the object that holds threads.started and the others, never over it.
    root["threads"]["list"] = trows;
    return root;
}

std::string Report::canonical_text(bool (*skip)(std::string_view metric)) const {
    fmt::memory_buffer out;
    for (const auto& m : metric_catalogue()) {
        auto it = m_values.find(m.name);
        if (it == m_values.end() || skip(m.name)) {
            continue;
        }
        std::visit(
            [&](const auto& v) { fmt::format_to(std::back_inserter(out), "{}={}\n", m.name, v); },
            it->second);
    }
    // NOTE: the rows' formats compiled: parsed at run time, they were 38% of `duet run` on a
    // chain of 15,000 threads (one row a thread, up to kThreadListMax).
    for (const auto& c : cpus) {
        fmt::format_to(std::back_inserter(out), FMT_COMPILE("cpu {} {} {} {} {} {}\n"), c.index,
                       c.utilisation, c.busy_ns, c.idle_ns, c.steps, c.context_switches);
    }
    for (const auto& t : threads) {
        fmt::format_to(std::back_inserter(out),
                       FMT_COMPILE("thread {} {} {} {} {} {} {} {} {} {}\n"), t.id, t.name, t.state,
                       t.cpu, t.priority, t.run_ns, t.run_delay_ns, t.wakeups, t.preemptions,
                       t.migrations);
    }
    return fmt::to_string(out);
}

const char* spelling(CompareOp op) {
    switch (op) {
    case CompareOp::Eq:
        return "==";
    case CompareOp::Ne:
        return "!=";
    case CompareOp::Lt:
        return "<";
    case CompareOp::Le:
        return "<=";
    case CompareOp::Gt:
        return ">";
    case CompareOp::Ge:
        return ">=";
    }
    return "?";
}

std::vector<ExpectationResult> check_expectations(const std::vector<Expectation>& expectations,
                                                  const Report& report) {
    std::vector<ExpectationResult> results;
    for (const auto& e : expectations) {
        auto v = report.number(e.metric);
        bool held = false;
        if (v) {
            switch (e.op) {
            case CompareOp::Eq:
                held = *v == e.value;
                break;
            case CompareOp::Ne:
                held = *v != e.value;
                break;
            case CompareOp::Lt:
                held = *v < e.value;
                break;
            case CompareOp::Le:
                held = *v <= e.value;
                break;
            case CompareOp::Gt:
                held = *v > e.value;
                break;
            case CompareOp::Ge:
                held = *v >= e.value;
                break;
            }
        }
        results.push_back({&e, held, v ? report.text(e.metric) : "not measured in this run"});
    }
    return results;
}

void print_report(std::FILE* out, const Report& report,
                  const std::vector<ExpectationResult>& results) {
    fmt::print(out, "== report\n");
    auto row = [&](const char* label, const std::string& value) {
        fmt::print(out, "{:<12}{}\n", label, value);
    };
    row("verdict", report.text("verdict"));
    row("seed", report.text("seed"));
    row("digest", report.text("digest"));
    uint64_t ns = static_cast<uint64_t>(report.number("time.virtual_ns").value_or(0));
    row("time", fmt::format("{}.{:09} s virtual, {} executor steps", ns / 1'000'000'000,
                            ns % 1'000'000'000, report.text("time.executor_steps")));
    row("schedule",
        fmt::format("{}: {} synchronisation points, {} stalls ({} ns)",
                    report.text("schedule.strategy"), report.text("schedule.sync_points"),
                    report.text("schedule.stalls"), report.text("schedule.stall_ns")));
    row("invariants",
        fmt::format("{} checks, {} structures skipped (locked)", report.text("invariants.checks"),
                    report.text("invariants.skipped")));
    row("memory",
        fmt::format("{} usable frames in the map; kernel: {} total, {} free, {} used (peak {}; "
                    "{} in kept kernel stacks), {} reserved, {} leaked",
                    report.text("memory.usable_frames"), report.text("memory.total_frames"),
                    report.text("memory.free_frames"), report.text("memory.used_frames"),
                    report.text("memory.peak_frames"), report.text("memory.kept_stack_frames"),
                    report.text("memory.reserved_frames"), report.text("memory.leaked_frames")));
    row("heap", fmt::format("{} bytes from frames, {} allocations, {} frees, {} failures",
                            report.text("heap.bytes_from_frames"), report.text("heap.allocs"),
                            report.text("heap.frees"), report.text("heap.failures")));
    row("threads",
        fmt::format("{} started, {} exited, {} spawn failures, {} allocation failures",
                    report.text("threads.started"), report.text("threads.exited"),
                    report.text("threads.spawn_failures"), report.text("workload.alloc_failures")));
    row("sched", fmt::format("{} switches, {} preemptions, {} migrations, {} wakeups, {} steals",
                             report.text("sched.context_switches"),
                             report.text("sched.preemptions"), report.text("sched.migrations"),
                             report.text("sched.wakeups"), report.text("sched.steals")));
    row("run delay", fmt::format("p50 {} ns, p99 {} ns", report.text("sched.run_delay_ns.p50"),
                                 report.text("sched.run_delay_ns.p99")));
    row("wake-up",
        fmt::format("p50 {} ns, p99 {} ns, max {} ns", report.text("sched.wakeup_latency_ns.p50"),
                    report.text("sched.wakeup_latency_ns.p99"),
                    report.text("sched.wakeup_latency_ns.max")));
    row("fairness", fmt::format("{} (Jain, CPU-bound threads); imbalance {}",
                                report.text("sched.fairness"), report.text("sched.imbalance")));
    row("faults", fmt::format("{} injected", report.text("faults.injected")));
    if (report.number("user.processes.started")) {
        row("processes",
            fmt::format("{} started, {} exited ({} failed), {} killed; {} system calls, {} bad "
                        "addresses; {} frames leaked",
                        report.text("user.processes.started"), report.text("user.processes.exited"),
                        report.text("user.processes.failed"), report.text("user.processes.killed"),
                        report.text("user.syscalls"), report.text("user.bad_addresses"),
                        report.text("user.leaked_frames")));
        row("ipc",
            fmt::format("{} calls, round trip p50 {} ns, p99 {} ns, max {} ns; {} direct "
                        "switches, {} peer gone, {} objects left",
                        report.text("ipc.calls"), report.text("ipc.round_trip_ns.p50"),
                        report.text("ipc.round_trip_ns.p99"), report.text("ipc.round_trip_ns.max"),
                        report.text("ipc.direct_switches"), report.text("ipc.peer_gone"),
                        report.text("ipc.objects_left")));
    }
    if (!report.cpus.empty()) {
        fmt::print(out, "{:>5} {:>7} {:>16} {:>16} {:>10}\n", "cpu", "util", "busy ns", "idle ns",
                   "switches");
        for (const auto& c : report.cpus) {
            fmt::print(out, "{:>5} {:>6.1f}% {:>16} {:>16} {:>10}\n", c.index, 100 * c.utilisation,
                       c.busy_ns, c.idle_ns, c.context_switches);
        }
    }
    if (!results.empty()) {
        size_t failed = 0;
        for (const auto& r : results) {
            failed += r.held ? 0 : 1;
        }
        row("expect", fmt::format("{} of {} held", results.size() - failed, results.size()));
    }
}

} // namespace duet
