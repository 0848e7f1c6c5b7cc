// duet: the simulator's command line.

#include "run.hpp"

#include <CLI/CLI.hpp>

#include <cstdio>

int main(int argc, char** argv) {
    CLI::App app{"Duet: run the Duet kernel's core on a simulated machine"};
    app.require_subcommand(1);

    std::string scenario = "scenarios/default.scn";
    duet::RunOptions options;
    uint64_t seed = 0;
    uint32_t cpus = 0;
    std::string memory;

    auto* run = app.add_subcommand("run", "Boot a scenario's machine and run it");
    run->add_option("scenario", scenario, "Scenario file")->capture_default_str();
    auto* seed_opt = run->add_option("--seed", seed, "Seed for every choice the simulator makes");
    auto* cpus_opt = run->add_option("--cpus", cpus, "Number of CPUs (overrides the scenario)")
                         ->check(CLI::Range(1u, 256u));
    auto* memory_opt = run->add_option("--memory", memory,
                                       "Memory map: a preset name or an E820 file (overrides "
                                       "the scenario)");
    run->add_option("--com1", options.com1_path, "Also write COM1 output to this file");
    run->add_option("--json", options.json_path, "Write the report as JSON to this file");
    run->add_flag("--quiet,-q", options.quiet, "Do not print COM1 output");
    run->add_flag("--timestamps,-t", options.timestamps,
                  "Tag each COM1 line with the virtual time and CPU it was written at");
    std::vector<std::string> faults;
    run->add_option("--fault", faults,
                    "Inject faults: NAME=PROBABILITY (frame_alloc, heap_alloc, timer_late, "
                    "ipi_delay, ipi_duplicate) or late_max=DURATION; repeatable");

    std::vector<std::string> check_paths;
    auto* check =
        app.add_subcommand("check", "Run every scenario under the given files or folders");
    check->add_option("paths", check_paths, "Scenario files or folders (default: scenarios/)");
    auto* check_seed = check->add_option("--seed", seed, "Run each scenario with this seed");

    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForAllHelp& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        app.exit(e);
        return duet::kExitUsage;
    }

    if (*seed_opt) {
        options.seed = seed;
    }
    if (*cpus_opt) {
        options.cpus = cpus;
    }
    if (*memory_opt) {
        options.memory = memory;
    }
    for (const auto& f : faults) {
        auto eq = f.find('=');
        if (eq == std::string::npos) {
            std::fprintf(stderr, "duet: --fault takes NAME=VALUE, not '%s'\n", f.c_str());
            return duet::kExitUsage;
        }
        options.faults.emplace_back(f.substr(0, eq), f.substr(eq + 1));
    }
    if (*check) {
        if (*check_seed) {
            options.seed = seed;
        }
        if (check_paths.empty()) {
            check_paths.push_back("scenarios");
        }
        return duet::check_scenarios(check_paths, options, stdout);
    }
    int status = duet::run_scenario(scenario, options, stdout, stderr);
    std::fflush(stdout);
    return status;
}
