// The JSON report against the metric catalogue, its list of threads (every thread of the run,
// with the number traces and the gdb helpers show), and thread numbers: unique in a run.

#include <report.hpp>
#include <run.hpp>
#include <scenario.hpp>

#include <core/sched/scheduler.hpp>
#include <core/sched/thread.hpp>
#include <core/workload/workload.hpp>
#include <hal_sim/machine.hpp>

// NOTE: the scheduler's own view of its thread numbers, to use them up without spawning two
// billion threads.
#include "../../core/sched/internal.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace {

std::string scenario(const std::string& name) {
    return std::string(DUET_SOURCE_DIR) + "/" + name;
}

// Runs a scenario given as text.
duet::Outcome run_text(const char* text, const duet::RunOptions& options) {
    auto path = std::filesystem::temp_directory_path() /
                ("duet-report-test-" + std::to_string(::getpid()) + ".scn");
    std::ofstream(path) << text;
    auto o = duet::execute(path.string(), options, nullptr);
    std::filesystem::remove(path);
    return o;
}

// The JSON report as a file holds it: written out and read back.
nlohmann::json json_of(const duet::Report& report) {
    return nlohmann::json::parse(report.to_json().dump(2));
}

// The arrays the JSON report has besides the catalogue's metrics (docs/scenarios.md).
const std::set<std::string> kArrays = {"cpus", "threads.list"};

// Every leaf of `j` (an array counts as one) by its dotted name.
void leaves(const nlohmann::json& j, const std::string& prefix, std::vector<std::string>& out) {
    if (!j.is_object()) {
        out.push_back(prefix);
        return;
    }
    for (auto it = j.begin(); it != j.end(); ++it) {
        leaves(it.value(), prefix.empty() ? it.key() : prefix + "." + it.key(), out);
    }
}

// The value at a dotted name, or null.
const nlohmann::json* at(const nlohmann::json& j, const std::string& name) {
    const nlohmann::json* node = &j;
    std::istringstream parts(name);
    for (std::string part; std::getline(parts, part, '.');) {
        if (!node->is_object() || !node->contains(part)) {
            return nullptr;
        }
        node = &(*node)[part];
    }
    return node;
}

// `least`: how many catalogue metrics the run must have measured.
void expect_json_is_the_catalogue(const duet::Outcome& o, size_t least) {
    nlohmann::json j = json_of(o.report);
    size_t measured = 0;
    for (const auto& m : duet::metric_catalogue()) {
        if (!o.report.has(m.name)) {
            EXPECT_EQ(at(j, m.name), nullptr) << m.name << " was not measured but is in the JSON";
            continue;
        }
        ++measured;
        const nlohmann::json* v = at(j, m.name);
        ASSERT_NE(v, nullptr) << m.name << " was measured but is not in the JSON";
        if (v->is_string()) {
            EXPECT_EQ(v->get<std::string>(), o.report.text(m.name)) << m.name;
        } else {
            ASSERT_TRUE(v->is_number()) << m.name << ": " << v->dump();
            EXPECT_EQ(v->get<double>(), *o.report.number(m.name)) << m.name;
        }
    }
    EXPECT_GE(measured, least);
    std::vector<std::string> names;
    leaves(j, "", names);
    for (const auto& name : names) {
        if (kArrays.count(name) != 0) {
            EXPECT_TRUE(at(j, name)->is_array()) << name;
        } else {
            EXPECT_TRUE(duet::is_metric(name))
                << name << " is in the JSON but not in the catalogue";
        }
    }
    for (const auto& name : kArrays) {
        EXPECT_NE(at(j, name), nullptr) << name;
    }
}

TEST(ReportJsonTest, HoldsEveryMeasuredCatalogueMetricAtItsPlaceAndNothingElse) {
    // baremetal.scn: threads, and processes (only a run with processes has user.* and ipc.*).
    auto o = duet::execute(scenario("scenarios/baremetal.scn"), {}, nullptr);
    ASSERT_EQ(o.status, duet::kExitOk) << o.first_failure();
    EXPECT_TRUE(o.report.has("threads.started"));
    expect_json_is_the_catalogue(o, duet::metric_catalogue().size());
}

TEST(ReportJsonTest, ARunThatFailsEarlyHasOnlyWhatItMeasured) {
    // Past its time limit the kernel has not stopped the machine: no memory or heap metrics.
    auto o = run_text("memory preset=qemu-q35-2g\n"
                      "run limit=5ms\n"
                      "program spin\n"
                      "  compute 20ms\n"
                      "spawn spin\n",
                      {});
    EXPECT_EQ(o.status, duet::kExitFailed);
    EXPECT_FALSE(o.report.has("heap.allocs"));
    expect_json_is_the_catalogue(o, 30);
}

TEST(ReportJsonTest, ThreadListIsEveryThreadWithItsTraceNumber) {
    duet::RunOptions options;
    options.trace_path = "unused";
    auto o = duet::execute(scenario("scenarios/sched-mutex.scn"), options, nullptr);
    ASSERT_EQ(o.status, duet::kExitOk) << o.first_failure();
    nlohmann::json j = json_of(o.report);
    const nlohmann::json& list = j["threads"]["list"];
    // init and the eight contenders, in spawn order; the idle threads are the "cpus" rows.
    ASSERT_EQ(list.size(), 9u) << list.dump(1);
    EXPECT_EQ(j["threads"]["unlisted"], 0);
    EXPECT_EQ(j["threads"]["started"], 8);
    for (size_t i = 0; i < list.size(); ++i) {
        const nlohmann::json& t = list[i];
        EXPECT_EQ(t["id"], i + 1);
        if (i == 0) {
            EXPECT_EQ(t["name"], "init");
            continue;
        }
        // Exited threads keep what they did.
        EXPECT_EQ(t["name"], "contender");
        EXPECT_EQ(t["state"], "exited");
        EXPECT_GT(t["run_ns"].get<uint64_t>(), 0u);
        EXPECT_GT(t["wakeups"].get<uint64_t>(), 0u);
        // The trace knows the thread by the same number.
        std::string id = std::to_string(t["id"].get<uint32_t>());
        EXPECT_NE(o.trace.find("sched_waking: comm=contender pid=" + id + " "), std::string::npos)
            << id;
        EXPECT_NE(o.trace.find("prev_comm=contender prev_pid=" + id + " prev_prio=4 prev_state=X"),
                  std::string::npos)
            << id;
    }
    // Each CPU's switches are the scheduler's on that CPU: they add up to the total.
    uint64_t sum = 0;
    for (const auto& c : j["cpus"]) {
        sum += c["context_switches"].get<uint64_t>();
    }
    EXPECT_EQ(sum, j["sched"]["context_switches"].get<uint64_t>());
}

// A chain of threads, each starting the next and exiting: thousands of threads through a few
// slots of the thread table.
constexpr const char* kChain = R"(
machine cpus=2
memory preset=qemu-q35-2g
run until=3ms
program link
  spawn link
spawn link
)";

TEST(ThreadNumberTest, ThreadsOfAChainNeverShareANumber) {
    duet::RunOptions options;
    options.trace_path = "unused";
    auto o = run_text(kChain, options);
    ASSERT_EQ(o.status, duet::kExitOk) << o.first_failure();
    uint64_t started = static_cast<uint64_t>(*o.report.number("threads.started"));
    ASSERT_GT(started, 12'000u) << "too short a chain to reuse slots 4294 times";
    // Each thread of the chain is woken once, when it is spawned, and exits once.
    std::set<std::string> woken;
    std::set<std::string> exited;
    size_t wakings = 0;
    size_t exits = 0;
    std::istringstream in(o.trace);
    for (std::string line; std::getline(in, line);) {
        if (size_t at = line.find("sched_waking: comm=link pid="); at != std::string::npos) {
            ++wakings;
            woken.insert(line.substr(at + 28, line.find(' ', at + 28) - at - 28));
        }
        if (size_t at = line.find("prev_comm=link prev_pid=");
            at != std::string::npos && line.find("prev_state=X") != std::string::npos) {
            ++exits;
            exited.insert(line.substr(at + 24, line.find(' ', at + 24) - at - 24));
        }
    }
    EXPECT_EQ(wakings, started);
    EXPECT_EQ(woken.size(), wakings);
    EXPECT_EQ(exited.size(), exits);
    EXPECT_GE(exits + 2, wakings);

    // The JSON lists the first ones, and says how many it left out.
    nlohmann::json j = json_of(o.report);
    const nlohmann::json& list = j["threads"]["list"];
    ASSERT_EQ(list.size(), duet::Report::kThreadListMax);
    for (size_t i = 0; i < list.size(); ++i) {
        ASSERT_EQ(list[i]["id"], i + 1);
    }
    EXPECT_EQ(list[1]["state"], "exited");
    EXPECT_EQ(j["threads"]["unlisted"].get<uint64_t>(), started + 1 - list.size());
    bool says_cap = false;
    for (const auto& m : duet::metric_catalogue()) {
        if (std::string(m.name) == "threads.unlisted") {
            says_cap = std::string(m.meaning).find(std::to_string(duet::Report::kThreadListMax)) !=
                       std::string::npos;
        }
    }
    EXPECT_TRUE(says_cap) << "the catalogue names another cap than Report::kThreadListMax";
}

TEST(ThreadNumberTest, ASpawnIsRefusedOnceTheNumbersAreUsedUp) {
    // The parent sleeps before it spawns: meanwhile the numbers are used up all but one.
    constexpr const char* kScenario = R"(
machine cpus=1
memory preset=qemu-q35-2g
program parent
  sleep 1ms
  spawn child count=3
program child
  compute 10us
spawn parent
)";
    hal_sim::Machine m(duet::machine_config(duet::parse_scenario(kScenario, "numbers.scn"), {}));
    auto parent_sleeps = [] {
        for (uint32_t slot = 1; slot < core::sched::thread_slots(); ++slot) {
            const core::sched::Thread* t = core::sched::thread_at(slot);
            if (t != nullptr && std::strcmp(t->name, "parent") == 0 && t->in_timer) {
                return true;
            }
        }
        return false;
    };
    while (!parent_sleeps()) {
        ASSERT_TRUE(m.step()) << "the run ended before the parent slept";
    }
    {
        hal_sim::Machine::CpuScope scope(m, 0);
        core::sched::detail::set_last_number(core::sched::kMaxThreadNumber - 1);
    }
    auto r = m.run();
    const core::workload::Results& w = core::workload::last_results();
    EXPECT_EQ(w.threads_started, 2u) << r.detail; // the parent, and one child: the last number
    EXPECT_EQ(w.spawn_failures, 2u);
    EXPECT_EQ(w.threads_exited, 2u);
}

} // namespace
