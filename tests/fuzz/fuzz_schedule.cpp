// Fuzz target: a scenario's scheduling and fault choices. Each input is an `input` schedule
// (hal_sim/schedule.hpp: where CPUs stall at synchronisation points, when timers come late,
// where the faults the scenario allows strike); the scenario runs under it, and a run that
// does not succeed -- a kernel panic, a broken invariant, a deadlock, a failed expectation --
// is a finding. Only the core is built with coverage (cmake/DuetFlags.cmake), so the fuzzer
// is led by the core's behaviour. Run it with `./duet fuzz schedule --scenario FILE`
// (docs/robustness.md); its options, before libFuzzer's own:
//   --scenario=FILE   the scenario (required)
//   --seed=N          the seed (the simulator's other choices: tie breaks); default: the
//                     scenario's
//   --duet=PATH       the duet program the printed replay command names (default: duet)
//   --verdict-only    only the run's verdict counts, not the scenario's expectations
// A finding prints what failed and the `duet run` command that replays it; libFuzzer then
// writes the input (the file that command names) and stops.

#include "run.hpp"

#include <hal_sim/schedule.hpp>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

namespace {

struct Options {
    std::string scenario;
    std::string duet = "duet";
    duet::RunOptions run;
    bool verdict_only = false;
};

Options g_options;
// Set while an input runs: a run that ends the process (a corrupted stack that returns into
// main() or reaches exit()) is a finding too, though libFuzzer would not see it.
bool g_running = false;

void exit_during_run() {
    if (g_running) {
        std::fprintf(stderr,
                     "\nduet fuzz schedule: %s: the run ended the process (exit() or a "
                     "return from main() during a run: the kernel's state is corrupt)\n",
                     g_options.scenario.c_str());
        std::fflush(stderr);
        std::abort(); // libFuzzer writes the input
    }
}

[[noreturn]] void usage(const char* what) {
    std::fprintf(stderr,
                 "fuzz_schedule: %s\n"
                 "usage: fuzz_schedule --scenario=FILE [--seed=N] [--duet=PATH] "
                 "[--verdict-only] [libFuzzer options] [CORPUS...]\n",
                 what);
    std::exit(duet::kExitUsage);
}

// Whether the outcome is a finding.
bool failed(const duet::Outcome& o) {
    if (g_options.verdict_only) {
        return o.result.verdict != hal_sim::Verdict::Success;
    }
    return o.status != duet::kExitOk;
}

duet::Outcome run(const uint8_t* data, size_t size) {
    duet::RunOptions options = g_options.run;
    options.schedule.input.assign(data, data + size);
    g_running = true;
    duet::Outcome o = duet::execute(g_options.scenario, options, nullptr);
    g_running = false;
    if (o.status == duet::kExitUsage) {
        // The scenario was fine when the fuzzer started; only the file can have changed.
        std::fprintf(stderr, "fuzz_schedule: %s\n", o.error.c_str());
        std::exit(duet::kExitUsage);
    }
    return o;
}

void print_failure(const duet::Outcome& o) {
    std::fprintf(stderr, "\nduet fuzz schedule: %s, seed %llu: %s\n", g_options.scenario.c_str(),
                 static_cast<unsigned long long>(o.seed), o.first_failure().c_str());
    if (o.result.verdict != hal_sim::Verdict::Success) {
        std::fprintf(stderr, "%s: %s\n", hal_sim::describe(o.result.verdict),
                     o.result.detail.c_str());
    }
    for (const auto& r : o.checked) {
        if (!r.held) {
            std::fprintf(stderr, "%s:%d: expectation failed: %s (got %s)\n",
                         r.expectation->file.c_str(), r.expectation->line,
                         r.expectation->text.c_str(), r.actual.c_str());
        }
    }
    std::fprintf(stderr, "digest: %s\n", o.report.text("digest").c_str());
    std::fprintf(stderr,
                 "replay: %s run %s --seed %llu --schedule input:FILE\n"
                 "  (FILE: this input, which libFuzzer writes below as crash-...)\n",
                 g_options.duet.c_str(), g_options.scenario.c_str(),
                 static_cast<unsigned long long>(o.seed));
    std::fflush(stderr);
}

} // namespace

extern "C" int LLVMFuzzerInitialize(int* argc, char*** argv) {
    // Take this target's options out of the command line before libFuzzer reads it.
    int kept = 1;
    for (int i = 1; i < *argc; ++i) {
        std::string_view arg = (*argv)[i];
        auto value = [&](std::string_view name) -> const char* {
            return arg.substr(0, name.size()) == name ? (*argv)[i] + name.size() : nullptr;
        };
        if (const char* v = value("--scenario=")) {
            g_options.scenario = v;
        } else if (const char* v2 = value("--seed=")) {
            char* end = nullptr;
            errno = 0;
            unsigned long long seed = std::strtoull(v2, &end, 10);
            if (*v2 == '\0' || *end != '\0' || errno != 0) {
                usage("--seed takes a number");
            }
            g_options.run.seed = seed;
        } else if (const char* v3 = value("--duet=")) {
            g_options.duet = v3;
        } else if (arg == "--verdict-only") {
            g_options.verdict_only = true;
        } else if (arg.substr(0, 2) == "--") {
            usage(("unknown option '" + std::string(arg) + "'").c_str());
        } else {
            (*argv)[kept++] = (*argv)[i];
        }
    }
    *argc = kept;
    (*argv)[kept] = nullptr;
    std::atexit(exit_during_run);
    if (g_options.scenario.empty()) {
        usage("no --scenario");
    }
    g_options.run.quiet = true;
    g_options.run.schedule.kind = hal_sim::Schedule::Kind::Input;
    // The run with no choices at all must pass, or every input would be a finding.
    duet::Outcome o = run(nullptr, 0);
    if (failed(o)) {
        std::fprintf(stderr,
                     "fuzz_schedule: %s fails with no choices made (%s): the schedule fuzzer "
                     "needs a scenario that passes%s\n",
                     g_options.scenario.c_str(), o.first_failure().c_str(),
                     g_options.verdict_only ? "" : " (or --verdict-only)");
        std::exit(duet::kExitFailed);
    }
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    duet::Outcome o = run(data, size);
    if (failed(o)) {
        print_failure(o);
        std::abort();
    }
    return 0;
}
