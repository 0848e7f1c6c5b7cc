// The scheduler: a yield round trip between two threads on one simulated CPU, through the
// kernel's scheduler and the simulated machine, against the raw fiber switch and the pthread
// hand-off; and picking the next thread with few or very many runnable threads.

#include "ratios.hpp"

#include <run.hpp>
#include <scenario.hpp>

#include <core/sched/run_queue.hpp>
#include <hal_sim/machine.hpp>

#include <benchmark/benchmark.h>

#include <ctime>
#include <string>
#include <vector>

namespace {

constexpr uint64_t kRounds = 50'000;

double thread_cpu_seconds() {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

const char* kPingPong = R"(
machine cpus=1
memory preset=qemu-q35-2g
program ping
  repeat 50000
    yield
spawn ping count=2
)";

// One iteration: a whole machine running 50,000 yield round trips (each thread yields 50,000
// times); the time reported is the run's host CPU time per round trip (the simulator runs on
// one host thread, so its CPU time is what it costs, however busy the machine is).
void BM_YieldPingPong(benchmark::State& state) {
    duet::Scenario scenario = duet::parse_scenario(kPingPong, "pingpong.scn");
    hal_sim::MachineConfig config = duet::machine_config(scenario, {});
    for (auto _ : state) {
        hal_sim::Machine m(config);
        double start = thread_cpu_seconds();
        hal_sim::RunResult r = m.run();
        double elapsed = thread_cpu_seconds() - start;
        if (r.verdict != hal_sim::Verdict::Success) {
            state.SkipWithError(r.detail.c_str());
            break;
        }
        state.SetIterationTime(elapsed / kRounds);
    }
}
BENCHMARK(BM_YieldPingPong)->UseManualTime()->Iterations(20);

// Picking the next thread and putting the previous one back, as every time slice does, with N
// runnable threads spread over the priority levels.
void BM_PickNext(benchmark::State& state) {
    using core::sched::RunLink;
    using core::sched::RunQueue;
    auto n = static_cast<size_t>(state.range(0));
    std::vector<RunLink> threads(n);
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
        .what = "pick-next with 100,000 runnable threads / with 10",
        .numerator = "BM_PickNext/100000",
        .denominator = "BM_PickNext/10",
        .limit = 1.5,
    }),
};

} // namespace
