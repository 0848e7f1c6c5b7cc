// The simulator at scale: a big machine with many threads, a long spawn chain, and how many
// default.scn seeds a host core runs per second. Each is a rate (per host second of CPU time,
// medians): scheduling events, virtual seconds, seeds.

#include "ratios.hpp"

#include <run.hpp>
#include <scenario.hpp>

#include <hal_sim/machine.hpp>

#include <benchmark/benchmark.h>

#include <fcntl.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include <ctime>
#include <fstream>
#include <sstream>
#include <string>

extern char** environ;

namespace {

double thread_cpu_seconds() {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// The process's peak resident set since the last reset_peak_rss(), in bytes (VmHWM), or 0.
void reset_peak_rss() {
    std::ofstream("/proc/self/clear_refs") << "5";
}

double peak_rss_bytes() {
    std::ifstream status("/proc/self/status");
    for (std::string line; std::getline(status, line);) {
        if (line.rfind("VmHWM:", 0) == 0) {
            return std::stod(line.substr(6)) * 1024;
        }
    }
    return 0;
}

// tests/bench/sched-10k-threads.scn: 256 CPUs, 10,000 threads, one virtual second, the whole
// run (boot included) as `duet run` makes it. Its time is host CPU time per scheduling event
// (context switches plus wake-ups); the counters give the events per host second and the
// run's peak RSS.
void BM_Sched10kThreads(benchmark::State& state) {
    duet::RunOptions options;
    options.quiet = true;
    double events = 0;
    double seconds = 0;
    for (auto _ : state) {
        reset_peak_rss();
        double start = thread_cpu_seconds();
        duet::Outcome outcome =
            duet::execute(DUET_SOURCE_DIR "/tests/bench/sched-10k-threads.scn", options, nullptr);
        double elapsed = thread_cpu_seconds() - start;
        if (outcome.status != duet::kExitOk) {
            state.SkipWithError(outcome.first_failure().c_str());
            break;
        }
        double n = *outcome.report.number("sched.context_switches") +
                   *outcome.report.number("sched.wakeups");
        events += n;
        seconds += elapsed;
        state.SetIterationTime(elapsed / n);
        state.counters["peak_rss_MB"] = peak_rss_bytes() / 1e6;
    }
    state.counters["events_per_s"] = seconds > 0 ? events / seconds : 0;
}
BENCHMARK(BM_Sched10kThreads)->UseManualTime()->Unit(benchmark::kNanosecond)->Iterations(1);

// tests/bench/spawn-chain.scn: each thread spawns the next and exits, about 50,000 threads in
// 10 ms of virtual time. Its time is host CPU time per virtual second of the chain: the same
// machine run to 100 us (its boot and the chain's start) is subtracted, as BM_YieldPingPong
// subtracts the boot.
void BM_SpawnChain(benchmark::State& state) {
    std::ifstream file(DUET_SOURCE_DIR "/tests/bench/spawn-chain.scn");
    std::stringstream text;
    text << file.rdbuf();
    duet::Scenario scenario = duet::parse_scenario(text.str(), "spawn-chain.scn");
    duet::RunOptions options;
    hal_sim::MachineConfig chain = duet::machine_config(scenario, options);
    uint64_t until = scenario.until_ns;
    constexpr uint64_t kBoot = 100'000;
    scenario.until_ns = kBoot;
    hal_sim::MachineConfig boot = duet::machine_config(scenario, options);
    auto run = [](const hal_sim::MachineConfig& config, std::string* detail) {
        hal_sim::Machine m(config);
        double start = thread_cpu_seconds();
        hal_sim::RunResult r = m.run();
        double elapsed = thread_cpu_seconds() - start;
        *detail = r.detail;
        return r.verdict == hal_sim::Verdict::Success ? elapsed : -1;
    };
    for (auto _ : state) {
        std::string detail;
        double base = run(boot, &detail);
        double total = base < 0 ? -1 : run(chain, &detail);
        if (total < 0) {
            state.SkipWithError(detail.c_str());
            break;
        }
        double virtual_seconds = static_cast<double>(until - kBoot) * 1e-9;
        state.SetIterationTime((total > base ? total - base : 0) / virtual_seconds);
    }
}
BENCHMARK(BM_SpawnChain)->UseManualTime()->Unit(benchmark::kMillisecond)->Iterations(3);

// `duet swarm scenarios/default.scn --seeds 1..100 --jobs 1`, the program as users run it: a
// process per seed (forked from the swarm), the swarm's own start included. Its time is the
// host CPU time of the swarm and its children per seed; items_per_second, the seeds one core
// runs a second. BM_DefaultScenario is the same runs without the process around each.
void BM_SwarmDefaultScenario(benchmark::State& state) {
    constexpr int kSeeds = 100;
    for (auto _ : state) {
        rusage before{};
        getrusage(RUSAGE_CHILDREN, &before);
        std::string program = DUET_BINARY;
        std::string scenario = DUET_SOURCE_DIR "/scenarios/default.scn";
        std::string seeds = "1.." + std::to_string(kSeeds);
        char* argv[] = {program.data(),         const_cast<char*>("swarm"),
                        scenario.data(),        const_cast<char*>("--seeds"),
                        seeds.data(),           const_cast<char*>("--jobs"),
                        const_cast<char*>("1"), nullptr};
        posix_spawn_file_actions_t actions;
        posix_spawn_file_actions_init(&actions);
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
        pid_t pid = 0;
        int rc = posix_spawn(&pid, argv[0], &actions, nullptr, argv, environ);
        posix_spawn_file_actions_destroy(&actions);
        int status = 0;
        if (rc != 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
            WEXITSTATUS(status) != 0) {
            state.SkipWithError("duet swarm failed");
            break;
        }
        rusage after{};
        getrusage(RUSAGE_CHILDREN, &after);
        auto seconds = [](const rusage& r) {
            return static_cast<double>(r.ru_utime.tv_sec + r.ru_stime.tv_sec) +
                   static_cast<double>(r.ru_utime.tv_usec + r.ru_stime.tv_usec) * 1e-6;
        };
        state.SetIterationTime((seconds(after) - seconds(before)) / kSeeds);
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_SwarmDefaultScenario)->UseManualTime()->Unit(benchmark::kMillisecond)->Iterations(1);

const int kRatios[] = {
    duet_bench::register_ratio({
        .what = "256 CPUs x 10,000 threads: scheduling events per host second",
        .numerator = "BM_Sched10kThreads",
        .limit = 5e6,
        .at_most = false,
        .rate = true,
    }),
    duet_bench::register_ratio({
        .what = "256 CPUs x 10,000 threads: one event / raw switch",
        .numerator = "BM_Sched10kThreads",
        .denominator = "BM_RawFiberSwitch",
        .informational = true,
    }),
    duet_bench::register_ratio({
        .what = "a 50,000-thread spawn chain: virtual seconds per host second",
        .numerator = "BM_SpawnChain",
        .limit = 1.0,
        .at_most = false,
        .rate = true,
    }),
    duet_bench::register_ratio({
        .what = "default.scn: seeds per host second per core",
        .numerator = "BM_DefaultScenario",
        .limit = 150,
        .at_most = false,
        .rate = true,
    }),
    duet_bench::register_ratio({
        .what = "default.scn under duet swarm: seeds per host second per core",
        .numerator = "BM_SwarmDefaultScenario",
        .informational = true,
        .rate = true,
    }),
};

} // namespace
