// The benchmark floor: the raw Boost.Context switch (the physical limit every simulator
// operation is measured against) and a pthread hand-off (one host thread per simulated task,
// exactly one running at a time, handed over with a mutex and a condition variable: how
// Zephyr's native_sim and the FreeRTOS POSIX port run a kernel on a host).
//
// One iteration is one round trip: A hands over to B, and B hands back to A.

#include "ratios.hpp"

#include <hal_sim/fiber.hpp>

#include <benchmark/benchmark.h>

#include <condition_variable>
#include <mutex>
#include <thread>

namespace {

namespace fctx = hal_sim::fctx;

void bounce(fctx::transfer_t t) {
    // NOTE: no floating point here: Boost.Context saves MXCSR on every switch, and a switch
    // between fibers whose MXCSR differ costs many times more.
    for (;;) {
        t = fctx::jump_fcontext(t.fctx, nullptr);
    }
}

void BM_RawFiberSwitch(benchmark::State& state) {
    hal_sim::FiberStack stack(64 * 1024);
    fctx::fcontext_t other = fctx::make_fcontext(stack.top(), stack.size(), &bounce);
    for (auto _ : state) {
        other = fctx::jump_fcontext(other, nullptr).fctx;
    }
    // The bouncing fiber stays suspended; its stack is unmapped without unwinding it.
}
BENCHMARK(BM_RawFiberSwitch);

void BM_PthreadHandoff(benchmark::State& state) {
    std::mutex m;
    std::condition_variable cv;
    int turn = 0; // 0: the benchmark thread runs, 1: the partner runs
    bool stop = false;
    std::thread partner([&] {
        std::unique_lock lock(m);
        for (;;) {
            cv.wait(lock, [&] { return turn == 1 || stop; });
            if (stop) {
                return;
            }
            turn = 0;
            cv.notify_all();
        }
    });
    {
        std::unique_lock lock(m);
        for (auto _ : state) {
            turn = 1;
            cv.notify_all();
            cv.wait(lock, [&] { return turn == 0; });
        }
        stop = true;
        cv.notify_all();
    }
    partner.join();
}
BENCHMARK(BM_PthreadHandoff)->UseRealTime();

} // namespace

namespace {
const int kRatios = duet_bench::register_ratio({
    .what = "pthread hand-off / raw Boost.Context switch",
    .numerator = "BM_PthreadHandoff",
    .denominator = "BM_RawFiberSwitch",
    .informational = true,
});
}
