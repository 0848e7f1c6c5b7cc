// The scheduler: a yield round trip between two threads on one simulated CPU, through the
// kernel's scheduler and the simulated machine, against the raw fiber switch and the pthread
// hand-off; and picking the next thread with few or very many runnable threads.

#include "ratios.hpp"

#include <run.hpp>
#include <scenario.hpp>

#include <core/sched/run_queue.hpp>
#include <hal_sim/machine.hpp>
#include <hal_sim/schedule.hpp>

#include <benchmark/benchmark.h>

#include <sys/mman.h>

#include <ctime>
#include <new>
#include <string>

namespace {

constexpr uint64_t kRounds = 100'000;

double thread_cpu_seconds() {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// Two threads on one CPU yielding to each other `rounds` times each.
std::string ping_pong(uint64_t rounds) {
    return R"(
machine cpus=1
memory preset=qemu-q35-2g
program ping
  repeat )" +
           std::to_string(rounds) +
           R"(
    yield
spawn ping count=2
)";
}

// Host CPU time of one run of the machine (the simulator runs on one host thread, so its CPU
// time is what the run costs, however busy the host is); negative if the run failed.
double run_seconds(const hal_sim::MachineConfig& config, std::string* detail) {
    hal_sim::Machine m(config);
    double start = thread_cpu_seconds();
    hal_sim::RunResult r = m.run();
    double elapsed = thread_cpu_seconds() - start;
    if (r.verdict != hal_sim::Verdict::Success) {
        *detail = r.detail;
        return -1;
    }
    return elapsed;
}

// One iteration: a machine whose two threads make kRounds + 1 yield round trips, less the same
// machine making one: what is left is kRounds round trips, without the kernel's boot and the
// threads' start and exit (about a millisecond, a third of the run at 50,000 rounds).
void BM_YieldPingPongUnder(benchmark::State& state, const char* schedule) {
    duet::RunOptions options;
    std::string error;
    options.schedule = *hal_sim::parse_schedule(schedule, &error);
    hal_sim::MachineConfig many =
        duet::machine_config(duet::parse_scenario(ping_pong(kRounds + 1), "pingpong.scn"), options);
    hal_sim::MachineConfig one =
        duet::machine_config(duet::parse_scenario(ping_pong(1), "pingpong.scn"), options);
    for (auto _ : state) {
        std::string detail;
        double base = run_seconds(one, &detail);
        double total = base < 0 ? -1 : run_seconds(many, &detail);
        if (total < 0) {
            state.SkipWithError(detail.c_str());
            break;
        }
        state.SetIterationTime((total > base ? total - base : 0) / kRounds);
    }
}

void BM_YieldPingPong(benchmark::State& state) {
    BM_YieldPingPongUnder(state, "coarse");
}
BENCHMARK(BM_YieldPingPong)->UseManualTime()->Iterations(20);

// The same under the schedules that stop at synchronisation points. One CPU: no stall is ever
// made (nothing could run meanwhile), so this is what stopping at each point costs. pct is
// given its K (a million, more than the run has) rather than counting it first.
BENCHMARK_CAPTURE(BM_YieldPingPongUnder, random, "random")->UseManualTime()->Iterations(20);

BENCHMARK_CAPTURE(BM_YieldPingPongUnder, pct, "pct:3:1000000")->UseManualTime()->Iterations(20);

// A whole run of scenarios/default.scn, as a swarm makes one per seed (less the process that
// carries it): parse, boot, the workload, the report. Host CPU time per run, seeds 1, 2, ...;
// items_per_second is the seeds per second one core runs.
void BM_DefaultScenarioUnder(benchmark::State& state, const char* schedule) {
    duet::RunOptions options;
    options.quiet = true;
    std::string error;
    options.schedule = *hal_sim::parse_schedule(schedule, &error);
    uint64_t seed = 0;
    for (auto _ : state) {
        options.seed = ++seed;
        double start = thread_cpu_seconds();
        duet::Outcome outcome =
            duet::execute(DUET_SOURCE_DIR "/scenarios/default.scn", options, nullptr);
        double elapsed = thread_cpu_seconds() - start;
        if (outcome.status != duet::kExitOk) {
            state.SkipWithError(outcome.first_failure().c_str());
            break;
        }
        state.SetIterationTime(elapsed);
    }
    state.SetItemsProcessed(state.iterations());
}

void BM_DefaultScenario(benchmark::State& state) {
    BM_DefaultScenarioUnder(state, "coarse");
}
BENCHMARK(BM_DefaultScenario)->UseManualTime()->Unit(benchmark::kMillisecond)->Iterations(40);

// The same under the schedules a swarm would use to look for races; pct counts its K first,
// as `duet run --schedule pct` does, so each of its runs is two.
BENCHMARK_CAPTURE(BM_DefaultScenarioUnder, random, "random")
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond)
    ->Iterations(40);

BENCHMARK_CAPTURE(BM_DefaultScenarioUnder, pct, "pct")
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond)
    ->Iterations(40);

// Picking the next thread and putting the previous one back, as every time slice does, with N
// runnable threads spread over the priority levels.
void BM_PickNext(benchmark::State& state) {
    using core::sched::RunLink;
    using core::sched::RunQueue;
    auto n = static_cast<size_t>(state.range(0));
    // NOTE: the links get a mapping of their own, so the 100,000-thread case measures the same
    // memory whatever ran before it (from glibc's heap, after the yield benchmark's machines,
    // it ran 30% slower).
    size_t bytes = n * sizeof(RunLink);
    void* mem = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) {
        state.SkipWithError("mmap failed");
        return;
    }
    auto* threads = new (mem) RunLink[n];
    RunQueue rq;
    for (size_t i = 0; i < n; ++i) {
        threads[i].priority = static_cast<uint8_t>(i % core::sched::kPriorityLevels);
        rq.push_back(&threads[i]);
    }
    for (auto _ : state) {
        RunLink* next = rq.pop();
        benchmark::DoNotOptimize(next);
        rq.push_back(next);
    }
    munmap(mem, bytes);
}
BENCHMARK(BM_PickNext)->Arg(10)->Arg(100'000);

const int kRatios[] = {
    duet_bench::register_ratio({
        .what = "yield round trip through the scheduler / raw switch",
        .numerator = "BM_YieldPingPong",
        .denominator = "BM_RawFiberSwitch",
        .limit = 4.0,
    }),
    duet_bench::register_ratio({
        .what = "pthread hand-off / yield round trip through the scheduler",
        .numerator = "BM_PthreadHandoff",
        .denominator = "BM_YieldPingPong",
        .limit = 100.0,
        .at_most = false,
    }),
    duet_bench::register_ratio({
        .what = "a default.scn run / raw switch",
        .numerator = "BM_DefaultScenario",
        .denominator = "BM_RawFiberSwitch",
        .informational = true,
    }),
    duet_bench::register_ratio({
        .what = "yield round trip under random / under coarse",
        .numerator = "BM_YieldPingPongUnder/random",
        .denominator = "BM_YieldPingPong",
        .limit = 3.0,
    }),
    duet_bench::register_ratio({
        .what = "yield round trip under pct / under coarse",
        .numerator = "BM_YieldPingPongUnder/pct",
        .denominator = "BM_YieldPingPong",
        .limit = 3.0,
    }),
    duet_bench::register_ratio({
        .what = "a default.scn run under random / under coarse",
        .numerator = "BM_DefaultScenarioUnder/random",
        .denominator = "BM_DefaultScenario",
        .limit = 3.0,
    }),
    duet_bench::register_ratio({
        .what = "a default.scn run under pct (K counted first) / under coarse",
        .numerator = "BM_DefaultScenarioUnder/pct",
        .denominator = "BM_DefaultScenario",
        .limit = 3.0,
    }),
    duet_bench::register_ratio({
        .what = "pick-next with 100,000 runnable threads / with 10",
        .numerator = "BM_PickNext/100000",
        .denominator = "BM_PickNext/10",
        .limit = 1.5,
    }),
};

} // namespace
