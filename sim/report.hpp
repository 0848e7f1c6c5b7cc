#pragma once

// The report of a run: named metrics (the JSON report's dotted names), the table `duet run`
// prints, and the expectations a scenario checks against them.

#include <nlohmann/json.hpp>

#include <cstdint>
#include <cstdio>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace duet {

// Every metric a run reports, with what it means. `expect` lines may only name these; the
// JSON report has exactly these keys (a dotted name is a nested object). docs/scenarios.md
// lists them.
struct MetricInfo {
    const char* name;
    const char* meaning;
};
const std::vector<MetricInfo>& metric_catalogue();
bool is_metric(const std::string& name);

class Report {
public:
    using Value = std::variant<uint64_t, double, std::string>;

    void set(const std::string& name, uint64_t value) { m_values[name] = value; }
    void set(const std::string& name, double value) { m_values[name] = value; }
    void set(const std::string& name, std::string value) { m_values[name] = std::move(value); }

    bool has(const std::string& name) const { return m_values.count(name) != 0; }
    // The metric as a number; nullopt if it is absent or a string.
    std::optional<double> number(const std::string& name) const;
    std::string text(const std::string& name) const;

    // Per-CPU rows for the table and the JSON ("cpus": [...]).
    struct CpuRow {
        uint32_t index;
        double utilisation;
        uint64_t busy_ns;
        uint64_t idle_ns;
        uint64_t steps;
        uint64_t context_switches; // the scheduler's, on this CPU: they sum to the metric's
    };
    std::vector<CpuRow> cpus;

    // Every thread of the run but the idle ones, exited or not, by id: the first
    // kThreadListMax spawned ("threads": {"list": [...]} in the JSON; threads.unlisted counts
    // the others).
    struct ThreadRow {
        uint32_t id; // the thread's number: the pid of traces and of the gdb helpers
        std::string name;
        std::string state;
        uint32_t cpu;
        uint32_t priority;
        uint64_t run_ns;
        uint64_t run_delay_ns;
        uint64_t wakeups;
        uint64_t preemptions;
        uint64_t migrations;
    };
    static constexpr uint32_t kThreadListMax = 10'000;
    std::vector<ThreadRow> threads;

    // The JSON report: metrics nested by their dots, in catalogue order, plus the two arrays
    // ("cpus", and "list" in "threads").
    nlohmann::ordered_json to_json() const;

    // What to_json() holds, as plain text in the same order (one "name=value" line a metric,
    // doubles in full, then a line a CPU row and a thread row), less every metric `skip` says
    // to leave out: what a run's digest covers, without the cost of a JSON tree (a tenth of the
    // boot of a machine with 10,000 threads).
    std::string canonical_text(bool (*skip)(std::string_view metric)) const;

private:
    std::map<std::string, Value> m_values;
};

enum class CompareOp { Eq, Ne, Lt, Le, Gt, Ge };
const char* spelling(CompareOp op);

struct Expectation {
    std::string metric;
    CompareOp op = CompareOp::Eq;
    double value = 0;
    std::string text; // as written, for messages
    std::string file;
    int line = 0;
};

struct ExpectationResult {
    const Expectation* expectation;
    bool held;
    std::string actual; // the metric's value, formatted
};

std::vector<ExpectationResult> check_expectations(const std::vector<Expectation>& expectations,
                                                  const Report& report);

// The table `duet run` prints after the COM1 log.
void print_report(std::FILE* out, const Report& report,
                  const std::vector<ExpectationResult>& results);

} // namespace duet
