// The simulated machine's executor: what one step costs against the raw fiber switch.

#include "ratios.hpp"

#include <core/boot/boot.hpp>
#include <core/lib/atomic.hpp>
#include <hal/hal.hpp>
#include <hal_sim/machine.hpp>

#include <benchmark/benchmark.h>

#include <cstdint>
#include <string>

namespace {

hal_sim::MachineConfig spinning_machine(uint32_t cpus) {
    hal_sim::MachineConfig c;
    c.cpus = cpus;
    c.memory = {{0x0, 0x9fc00, 1, 1}, {0x100000, 0x7fee0000, 1, 1}};
    c.livelock_ns = UINT64_MAX;
    c.time_limit_ns = UINT64_MAX;
    c.kernel = {[](const core::BootInfo&) {
                    hal::release_secondary_cpus();
                    for (;;) {
                        hal::cpu_relax();
                    }
                },
                [] {
                    for (;;) {
                        hal::cpu_relax();
                    }
                },
                [] {}, [](hal::IpiKind) {}};
    return c;
}

// One step: pick the CPU furthest behind, resume its fiber, run it to its next preemption
// point (a cpu_relax() here), and come back.
void BM_ExecutorStep(benchmark::State& state) {
    hal_sim::Machine m(spinning_machine(static_cast<uint32_t>(state.range(0))));
    for (int i = 0; i < 1000; ++i) {
        m.step(); // boot and release every CPU first
    }
    for (auto _ : state) {
        m.step();
    }
    state.counters["cpus"] = static_cast<double>(state.range(0));
}
BENCHMARK(BM_ExecutorStep)->Arg(1)->Arg(4)->Arg(256);

// One step of four CPUs that each add to a shared counter (an atomic: a synchronisation point)
// and spin, under each schedule: what stopping at the point costs, and under random and pct the
// stalls and extra steps it makes.
uint64_t g_shared;

void BM_ExecutorStepAtomic(benchmark::State& state, const char* schedule) {
    hal_sim::MachineConfig c = spinning_machine(4);
    std::string error;
    c.schedule = *hal_sim::parse_schedule(schedule, &error);
    c.kernel.boot_main = [](const core::BootInfo&) {
        hal::release_secondary_cpus();
        for (;;) {
            core::atomic::fetch_add<core::atomic::relaxed>(&g_shared, 1);
            hal::cpu_relax();
        }
    };
    c.kernel.ap_main = [] {
        for (;;) {
            core::atomic::fetch_add<core::atomic::relaxed>(&g_shared, 1);
            hal::cpu_relax();
        }
    };
    hal_sim::Machine m(c);
    for (int i = 0; i < 1000; ++i) {
        m.step();
    }
    for (auto _ : state) {
        m.step();
    }
}

BENCHMARK_CAPTURE(BM_ExecutorStepAtomic, coarse, "coarse");
BENCHMARK_CAPTURE(BM_ExecutorStepAtomic, random, "random");
BENCHMARK_CAPTURE(BM_ExecutorStepAtomic, pct, "pct:3:1000000");

const int kRatios[] = {
    duet_bench::register_ratio({
        .what = "executor step, 4 cpus on an atomic, under coarse / raw switch",
        .numerator = "BM_ExecutorStepAtomic/coarse",
        .denominator = "BM_RawFiberSwitch",
        .informational = true,
    }),
    duet_bench::register_ratio({
        .what = "executor step, 4 cpus on an atomic, under random / under coarse",
        .numerator = "BM_ExecutorStepAtomic/random",
        .denominator = "BM_ExecutorStepAtomic/coarse",
        .limit = 3.0,
    }),
    duet_bench::register_ratio({
        .what = "executor step, 4 cpus on an atomic, under pct / under coarse",
        .numerator = "BM_ExecutorStepAtomic/pct",
        .denominator = "BM_ExecutorStepAtomic/coarse",
        .limit = 3.0,
    }),
    duet_bench::register_ratio({
        .what = "executor step (1 cpu) / raw Boost.Context switch",
        .numerator = "BM_ExecutorStep/1",
        .denominator = "BM_RawFiberSwitch",
        .limit = 3.0,
    }),
    duet_bench::register_ratio({
        .what = "executor step (256 cpus) / raw Boost.Context switch",
        .numerator = "BM_ExecutorStep/256",
        .denominator = "BM_RawFiberSwitch",
        .informational = true,
    }),
};

} // namespace
