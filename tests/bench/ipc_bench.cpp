// User space in the simulator: a system call and an IPC round trip (call + reply_recv between
// two processes) against the raw fiber switch, which is one round trip between two fibers.
//
// A machine boots, loads the programs from its initrd and runs them; what one call costs is the
// difference in host CPU time between a run that makes many of them (100,000 system calls,
// 50,000 round trips) and one that makes none (the same programs, each ending at once),
// divided by their number. Each iteration times both runs.

#include "ratios.hpp"

#include <hal_sim/firmware.hpp>
#include <hal_sim/machine.hpp>
#include <hal_sim/ustar_writer.hpp>

#include <e820_file.hpp>

#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

namespace {

std::vector<uint8_t> read_program(const std::string& name) {
    std::ifstream in(std::string(DUET_USER_ELF_DIR) + "/" + name, std::ios::binary);
    if (!in.good()) {
        std::fprintf(stderr, "ipc_bench: cannot read the user program %s\n", name.c_str());
        std::abort();
    }
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

struct Program {
    std::string name;
    std::string grants;
};

double thread_cpu_seconds() {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// One machine (1 CPU) running `programs` to its end: host CPU seconds.
double run(const std::vector<Program>& programs) {
    std::vector<std::vector<uint8_t>> bytes;
    std::string list;
    for (const Program& p : programs) {
        bytes.push_back(read_program(p.name));
        list += "user/" + p.name + " " + p.grants + "\n";
    }
    std::vector<hal_sim::UstarFile> files;
    files.emplace_back("sys/core", std::span(hal_sim::model_kernel_file()));
    files.emplace_back("sys/programs",
                       std::span(reinterpret_cast<const uint8_t*>(list.data()), list.size()));
    std::vector<std::string> paths;
    for (const Program& p : programs) {
        paths.push_back("user/" + p.name);
    }
    for (size_t i = 0; i < programs.size(); ++i) {
        files.emplace_back(paths[i], std::span(bytes[i]));
    }
    hal_sim::MachineConfig c;
    c.cpus = 1;
    c.memory =
        duet::read_e820_file(std::string(DUET_SOURCE_DIR) + "/scenarios/maps/qemu-q35-2g.e820");
    c.initrd = hal_sim::make_ustar(files);
    double start = thread_cpu_seconds();
    hal_sim::Machine m(c);
    auto result = m.run();
    double end = thread_cpu_seconds();
    if (result.verdict != hal_sim::Verdict::Success) {
        std::fprintf(stderr, "ipc_bench: the run failed: %s\n", result.detail.c_str());
        std::abort();
    }
    return end - start;
}

void measure(benchmark::State& state, double calls, const std::vector<Program>& with,
             const std::vector<Program>& without) {
    for (auto _ : state) {
        double t_with = run(with);
        double t_without = run(without);
        double per_call = (t_with - t_without) / calls;
        state.SetIterationTime(per_call > 0 ? per_call : 0);
    }
}

// handle_close(0) (BadHandle): the system-call entry and dispatch, in and out of user mode.
void BM_UserNullSyscall(benchmark::State& state) {
    measure(state, 100'000, {{"syscall-bench", ""}}, {{"syscall-bench", "call:x"}});
}
BENCHMARK(BM_UserNullSyscall)->UseManualTime()->Iterations(20);

// call + reply_recv of words only between ping-bench and ping-server on one CPU: two system
// calls and two direct switches.
void BM_UserIpcRoundTrip(benchmark::State& state) {
    measure(state, 50'000, {{"ping-server", "serve:ping"}, {"ping-bench", "call:ping"}},
            {{"ping-server", "serve:a"}, {"ping-bench", "call:b"}});
}
BENCHMARK(BM_UserIpcRoundTrip)->UseManualTime()->Iterations(20);

const int kRatios = [] {
    duet_bench::register_ratio({
        .what = "user null system call / raw Boost.Context round trip",
        .numerator = "BM_UserNullSyscall",
        .denominator = "BM_RawFiberSwitch",
        .informational = true,
    });
    duet_bench::register_ratio({
        .what = "user IPC round trip (call + reply_recv) / kernel threads' yield round trip",
        .numerator = "BM_UserIpcRoundTrip",
        .denominator = "BM_YieldPingPong",
        .informational = true,
    });
    return duet_bench::register_ratio({
        .what = "user IPC round trip (call + reply_recv) / raw Boost.Context round trip",
        .numerator = "BM_UserIpcRoundTrip",
        .denominator = "BM_RawFiberSwitch",
        .informational = true,
    });
}();

} // namespace
