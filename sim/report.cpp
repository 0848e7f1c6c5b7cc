#include "report.hpp"

#include <fmt/format.h>

#include <cmath>

namespace duet {

const std::vector<MetricInfo>& metric_catalogue() {
    static const std::vector<MetricInfo> catalogue = {
        {"seed", "the seed every choice of the run came from"},
        {"digest", "FNV-1a digest of everything the run printed (COM1, simulator events, "
                   "verdict); equal digests mean identical runs"},
        {"verdict", "how the run ended: success, failure, panic, deadlock, livelock, memory "
                    "fault, stack overflow, time limit"},
        {"machine.cpus", "simulated CPUs"},
        {"time.virtual_ns", "virtual time at the end of the run (the furthest CPU clock)"},
        {"time.executor_steps", "times the executor resumed a CPU"},
        {"faults.injected", "faults the simulator injected"},
        {"memory.usable_frames", "4 KiB frames of usable RAM in the E820 input (every byte "
                                 "covered by usable memory, none by anything else)"},
        {"cpu.utilisation.mean", "mean over CPUs of the fraction of virtual time not idle"},
        {"cpu.utilisation.min", "the least busy CPU's utilisation"},
        {"cpu.utilisation.max", "the busiest CPU's utilisation"},
        {"sched.context_switches", "context switches on all CPUs"},
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
    return root;
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
    row("memory", fmt::format("{} usable frames", report.text("memory.usable_frames")));
    row("faults", fmt::format("{} injected", report.text("faults.injected")));
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
