// duet_bench: Google Benchmark with Duet's ratio report. Run it through `./duet bench`, which
// asks for repetitions so that the report uses medians.

#include "ratios.hpp"

#include <benchmark/benchmark.h>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <string>

namespace duet_bench {

namespace {

std::vector<Ratio>& registry() {
    static std::vector<Ratio> r;
    return r;
}

std::string key_of(const benchmark::BenchmarkReporter::Run& run) {
    std::string key = run.run_name.function_name;
    if (!run.run_name.args.empty()) {
        key += "/" + run.run_name.args;
    }
    return key;
}

// Prints what the console reporter prints and keeps each benchmark's median time (or its only
// time, when run without repetitions). The time is CPU time: on a shared, noisy machine it is
// what a single-threaded benchmark controls. Benchmarks that ask for real or manual time (the
// pthread hand-off, whose cost is waiting for the other thread; whole simulated runs timed by
// hand) are taken at their word.
class MedianReporter : public benchmark::ConsoleReporter {
public:
    void ReportRuns(const std::vector<Run>& runs) override {
        ConsoleReporter::ReportRuns(runs);
        for (const auto& run : runs) {
            if (run.error_occurred) {
                continue;
            }
            double t = run.run_name.time_type.empty() ? run.GetAdjustedCPUTime()
                                                      : run.GetAdjustedRealTime();
            double ns = t * (1e9 / benchmark::GetTimeUnitMultiplier(run.time_unit));
            if (run.run_type == Run::RT_Aggregate && run.aggregate_name == "median") {
                m_median[key_of(run)] = ns;
            } else if (run.run_type == Run::RT_Iteration && !m_median.count(key_of(run))) {
                m_single[key_of(run)] = ns;
            }
        }
    }

    std::map<std::string, double> medians() const {
        auto all = m_single;
        for (const auto& [k, v] : m_median) {
            all[k] = v;
        }
        return all;
    }

private:
    std::map<std::string, double> m_median;
    std::map<std::string, double> m_single;
};

} // namespace

int register_ratio(Ratio ratio) {
    registry().push_back(std::move(ratio));
    return static_cast<int>(registry().size());
}

const std::vector<Ratio>& ratios() {
    return registry();
}

} // namespace duet_bench

int main(int argc, char** argv) {
    std::string ratios_json;
    // Our own flag; everything else goes to Google Benchmark.
    std::vector<char*> args;
    for (int i = 0; i < argc; ++i) {
        if (std::strncmp(argv[i], "--ratios_json=", 14) == 0) {
            ratios_json = argv[i] + 14;
        } else {
            args.push_back(argv[i]);
        }
    }
    int n = static_cast<int>(args.size());
    benchmark::Initialize(&n, args.data());
    if (benchmark::ReportUnrecognizedArguments(n, args.data())) {
        return 2;
    }
    duet_bench::MedianReporter reporter;
    benchmark::RunSpecifiedBenchmarks(&reporter);
    benchmark::Shutdown();

    auto medians = reporter.medians();
    nlohmann::json out;
    out["median_ns"] = medians;
    out["ratios"] = nlohmann::json::array();
    bool missed = false;
    std::printf("\n%-64s %12s %10s  %s\n", "ratio or rate (medians, same run)", "value", "goal",
                "");
    for (const auto& r : duet_bench::ratios()) {
        auto num = medians.find(r.numerator);
        auto den = medians.find(r.denominator);
        if (num == medians.end() || (!r.rate && (den == medians.end() || den->second <= 0)) ||
            num->second <= 0) {
            continue; // filtered out of this run
        }
        double value = r.rate ? 1e9 / num->second : num->second / den->second;
        bool met = r.informational || (r.at_most ? value <= r.limit : value >= r.limit);
        missed |= !met;
        char goal[32] = "-";
        if (!r.informational) {
            std::snprintf(goal, sizeof goal, "%s%.10g", r.at_most ? "<=" : ">=", r.limit);
        }
        std::printf("%-64s %12.3f %10s  %s\n", r.what.c_str(), value, goal,
                    r.informational ? "" : (met ? "met" : "MISSED"));
        out["ratios"].push_back(
            {{"what", r.what},
             {"numerator", r.numerator},
             {"denominator", r.rate ? nlohmann::json() : nlohmann::json(r.denominator)},
             {"value", value},
             {"goal", r.informational ? nlohmann::json() : nlohmann::json(goal)},
             {"met", met}});
    }
    if (!ratios_json.empty()) {
        std::ofstream(ratios_json) << out.dump(2) << "\n";
    }
    return missed ? 1 : 0;
}
