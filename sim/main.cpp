// duet: the simulator's command line.

#include "run.hpp"
#include "source_error.hpp"
#include "swarm.hpp"
#include "text.hpp"

#include <hal_sim/firmware.hpp>
#include <hal_sim/kernel_image.hpp>
#include <hal_sim/race.hpp>
#include <hal_sim/schedule.hpp>

#include <CLI/CLI.hpp>

#include <cstdio>
#include <cstdlib>
#include <tuple>
#include <utility>

namespace {

// CLI11 reads "-1" into an unsigned option as 2^64 - 1: refuse a sign instead.
const CLI::Validator kWholeNumber(
    [](std::string& value) -> std::string {
        if (value.empty() || value.find_first_not_of("0123456789") != std::string::npos) {
            return "takes a whole number, 0 or more, not '" + value + "'";
        }
        return {};
    },
    "N");

// The command line: main(), and in each child of a swarm, its `run`.
int cli_main(int argc, char** argv) {
    CLI::App app{"Duet: run the Duet kernel's core on a simulated machine"};
    app.require_subcommand(1);

    std::string scenario = "scenarios/default.scn";
    duet::RunOptions options;
    uint64_t seed = 0;
    uint32_t cpus = 0;
    std::string memory;

    auto* run = app.add_subcommand("run", "Boot a scenario's machine and run it");
    run->add_option("scenario", scenario, "Scenario file")->capture_default_str();
    auto* seed_opt = run->add_option("--seed", seed, "Seed for every choice the simulator makes")
                         ->check(kWholeNumber);
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

    std::string tick;
    std::string slice;
    auto* tick_opt = run->add_option("--tick", tick,
                                     "The scheduler's timer tick, e.g. 500us (overrides the "
                                     "scenario's machine tick=)");
    auto* slice_opt = run->add_option("--slice", slice,
                                      "The scheduler's time slice, e.g. 2ms (overrides the "
                                      "scenario's machine slice=)");
    run->add_option("--trace", options.trace_path,
                    "Write a schedule trace to this file (Perfetto opens it; docs/debugging.md)");
    run->add_option("--trace-format", options.trace_format,
                    "ftrace (for Perfetto) or com1 (the bare-metal kernel's trace: lines)")
        ->check(CLI::IsMember({"ftrace", "com1"}))
        ->capture_default_str();
    run->add_flag("--verify-determinism", options.verify_determinism,
                  "Run the scenario twice and check that the digests, reports and traces agree");
    run->add_flag("--race", options.race,
                  "Detect data races in the core with ThreadSanitizer (the race build: ./duet "
                  "run SCENARIO --race; docs/simulator.md)");
    std::string firmware;
    std::string kernel_path;
    const std::string firmware_help =
        "The loader that boots the machine: bootboot-bios (the upstream BIOS loader, the "
        "default), bootboot-uefi or duet (overrides the scenario's machine firmware=)";
    const std::string kernel_help =
        "The kernel ELF the firmware loads (e.g. build/dev/hal/x86_64-baremetal/initrd/sys/core): "
        "its size places the loader's holes in the memory map; default: a stand-in of Duet's "
        "shape (docs/boot.md)";
    auto* firmware_opt = run->add_option("--firmware", firmware, firmware_help)
                             ->check(CLI::IsMember(hal_sim::firmware_names()));
    auto* kernel_opt = run->add_option("--kernel", kernel_path, kernel_help);
    std::string schedule;
    const std::string schedule_help =
        "How the CPUs interleave: coarse (at preemption points only, the default), random[:P] "
        "(also at every synchronisation point, stalling the CPU there with probability P, "
        "default 1/16), pct[:D[:K]] (PCT: D-1 long stalls among the first K synchronisation "
        "points) or input:FILE (the file's bytes make the choices: what duet fuzz schedule "
        "found; docs/simulator.md)";
    auto* schedule_opt = run->add_option("--schedule", schedule, schedule_help);
    std::string timeout;
    auto* timeout_opt = run->add_option(
        "--timeout", timeout,
        "End the run with verdict timeout after this much host CPU time, e.g. 60s (default: "
        "none)");
    std::string memory_limit;
    auto* memory_limit_opt = run->add_option(
        "--memory-limit", memory_limit,
        "End the run with verdict 'out of memory' once the process's resident memory is above "
        "this, e.g. 2GiB or 512MiB (default: none)");
    run->add_option("--check-every", options.check_every,
                    "Check the kernel's invariants after every N executor steps, and at the end; "
                    "0: never (default: 1 in debug builds, 1024 otherwise)")
        ->check(kWholeNumber);

    duet::SwarmOptions swarm_options;
    std::string seed_range;
    std::string shard;
    std::vector<std::string> swarm_faults;
    std::string swarm_schedule;
    uint32_t swarm_cpus = 0;
    std::string swarm_memory;
    std::string swarm_tick;
    std::string swarm_slice;
    auto* swarm = app.add_subcommand(
        "swarm", "Run a scenario under many seeds in parallel processes; report failing seeds");
    // NOTE: not ->required(): `duet swarm merge FILES...` has neither (checked below).
    auto* swarm_scenario_opt =
        swarm->add_option("scenario", swarm_options.scenario, "Scenario file (required)");
    auto* swarm_seeds_opt = swarm->add_option("--seeds", seed_range,
                                              "Seeds to run: A..B (inclusive) or one seed "
                                              "(required)");
    swarm->add_option("--jobs,-j", swarm_options.jobs, "Runs at once (default: one per CPU)")
        ->check(kWholeNumber);
    swarm->add_option("--shard", shard,
                      "Run only shard K of M (1-based): seeds A+K-1, A+K-1+M, ... (default: "
                      "from a Slurm array task's SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN + 1 "
                      "and SLURM_ARRAY_TASK_COUNT, when they are set)");
    swarm->add_option("--results", swarm_options.results_path,
                      "Also write one JSON line per seed to this file, as each run ends "
                      "(docs/swarm.md)");
    swarm->add_flag("--randomize", swarm_options.randomize,
                    "Also draw the CPU count, tick, time slice and timing-fault rates from each "
                    "seed (printed first)");
    auto* swarm_cpus_opt = swarm->add_option("--cpus", swarm_cpus, "Number of CPUs, every run")
                               ->check(CLI::Range(1u, 256u));
    auto* swarm_memory_opt = swarm->add_option("--memory", swarm_memory, "Memory map, every run");
    std::string swarm_firmware;
    std::string swarm_kernel;
    auto* swarm_firmware_opt = swarm->add_option("--firmware", swarm_firmware, firmware_help)
                                   ->check(CLI::IsMember(hal_sim::firmware_names()));
    auto* swarm_kernel_opt = swarm->add_option("--kernel", swarm_kernel, kernel_help);
    auto* swarm_tick_opt = swarm->add_option("--tick", swarm_tick, "Timer tick, every run");
    auto* swarm_slice_opt = swarm->add_option("--slice", swarm_slice, "Time slice, every run");
    swarm->add_option("--fault", swarm_faults, "Inject faults in every run: NAME=P; repeatable");
    auto* swarm_schedule_opt = swarm->add_option("--schedule", swarm_schedule, schedule_help);
    std::string swarm_timeout = "600s";
    swarm
        ->add_option("--timeout", swarm_timeout,
                     "Host CPU time each run may use before it ends with verdict timeout; 0s: "
                     "no limit")
        ->capture_default_str();
    std::string swarm_memory_limit = "4GiB";
    swarm
        ->add_option("--memory-limit", swarm_memory_limit,
                     "Resident memory each run may use before it ends with verdict 'out of "
                     "memory'; 0: no limit")
        ->capture_default_str();
    std::vector<std::string> merge_files;
    std::string merge_seeds;
    auto* merge = swarm->add_subcommand(
        "merge", "Join the --results files of a sweep's shards: failing seeds, verdicts, the "
                 "slowest seeds; exit 1 if any seed failed");
    merge->add_option("files", merge_files, "Results files (duet swarm --results)")->required();
    auto* merge_seeds_opt = merge->add_option(
        "--seeds", merge_seeds, "The sweep's seeds, A..B: a seed of them in no file fails too");

    std::vector<std::string> check_paths;
    auto* check =
        app.add_subcommand("check", "Run every scenario under the given files or folders");
    check->add_option("paths", check_paths, "Scenario files or folders (default: scenarios/)");
    auto* check_seed = check->add_option("--seed", seed, "Run each scenario with this seed");
    auto* check_schedule_opt = check->add_option("--schedule", schedule, schedule_help);
    auto* check_firmware_opt = check->add_option("--firmware", firmware, firmware_help)
                                   ->check(CLI::IsMember(hal_sim::firmware_names()));
    auto* check_kernel_opt = check->add_option("--kernel", kernel_path, kernel_help);

    std::string workload_scenario;
    std::string workload_out;
    auto* workload = app.add_subcommand(
        "workload", "Compile a scenario's programs and spawns into the kernel's workload format "
                    "(the initrd's sys/workload, for booting the same workload on bare metal)");
    workload->add_option("scenario", workload_scenario, "Scenario file")->required();
    workload->add_option("output", workload_out, "Where to write sys/workload")->required();

    std::string initrd_scenario;
    std::string initrd_out;
    auto* initrd = app.add_subcommand(
        "initrd", "Write the initrd a scenario's machine boots (sys/core, sys/workload): the "
                  "same bytes the simulated firmware loads, for booting them in QEMU");
    initrd->add_option("scenario", initrd_scenario, "Scenario file")->required();
    initrd->add_option("output", initrd_out, "Where to write the initrd (a ustar archive)")
        ->required();
    auto* initrd_kernel_opt = initrd->add_option("--kernel", kernel_path, kernel_help);

    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForAllHelp& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        // NOTE: CLI11 quotes the values it refuses as they are: show them printably.
        std::fprintf(stderr, "%s\nRun with --help for more information.\n",
                     duet::printable(e.what()).c_str());
        return duet::kExitUsage;
    }

    if (*workload) {
        return duet::write_workload(workload_scenario, workload_out, stderr);
    }
    if (*kernel_opt || *check_kernel_opt || *initrd_kernel_opt) {
        try {
            options.kernel_file = duet::read_kernel_file(kernel_path);
            options.kernel_path = kernel_path;
            (void)hal_sim::read_kernel_file(options.kernel_file);
        } catch (const duet::SourceError& e) {
            std::fprintf(stderr, "duet: --kernel %s\n", e.what());
            return duet::kExitUsage;
        } catch (const hal_sim::ConfigError& e) {
            std::fprintf(stderr, "duet: --kernel %s: %s\n", duet::printable(kernel_path).c_str(),
                         e.what());
            return duet::kExitUsage;
        }
    }
    for (auto [opt, value] :
         {std::pair{schedule_opt, &schedule}, std::pair{check_schedule_opt, &schedule},
          std::pair{swarm_schedule_opt, &swarm_schedule}}) {
        if (*opt) {
            std::string error;
            auto parsed = hal_sim::parse_schedule(*value, &error);
            if (!parsed) {
                std::fprintf(stderr, "duet: --schedule %s\n", duet::printable(error).c_str());
                return duet::kExitUsage;
            }
            options.schedule = *parsed;
        }
    }
    if (*firmware_opt || *check_firmware_opt) {
        options.firmware = hal_sim::firmware_by_name(firmware);
    }
    if (*initrd) {
        return duet::write_initrd(initrd_scenario, options, initrd_out, stderr);
    }
    if (*merge) {
        std::optional<std::pair<uint64_t, uint64_t>> expected;
        if (*merge_seeds_opt) {
            expected = duet::parse_seed_range(merge_seeds);
            if (!expected) {
                std::fprintf(stderr,
                             "duet: --seeds takes A..B with A <= B, or one seed, not '%s'\n",
                             duet::shown(merge_seeds).c_str());
                return duet::kExitUsage;
            }
        }
        return duet::merge_results(merge_files, expected, stdout, stderr);
    }
    // --timeout: run's (no default) or swarm's (600s).
    uint64_t timeout_ns = 0;
    if (*timeout_opt || *swarm) {
        const std::string& text = *swarm ? swarm_timeout : timeout;
        auto limit = duet::parse_duration(text);
        if (!limit) {
            std::fprintf(stderr, "duet: --timeout takes a duration such as 60s, not '%s'\n",
                         duet::shown(text).c_str());
            return duet::kExitUsage;
        }
        timeout_ns = *limit;
    }
    // --memory-limit: run's (no default) or swarm's (4GiB).
    uint64_t memory_limit_bytes = 0;
    if (*memory_limit_opt || *swarm) {
        const std::string& text = *swarm ? swarm_memory_limit : memory_limit;
        auto limit = text == "0" ? std::optional<uint64_t>(0) : duet::parse_size(text);
        if (!limit) {
            std::fprintf(stderr,
                         "duet: --memory-limit takes a size such as 2GiB or 512MiB, not '%s'\n",
                         duet::shown(text).c_str());
            return duet::kExitUsage;
        }
        memory_limit_bytes = *limit;
    }
    if (*swarm) {
        if (!*swarm_scenario_opt || !*swarm_seeds_opt) {
            std::fprintf(stderr, "duet: swarm needs a scenario and --seeds A..B (duet swarm "
                                 "SCENARIO --seeds A..B), or merge FILES...\nRun with --help "
                                 "for more information.\n");
            return duet::kExitUsage;
        }
        auto range = duet::parse_seed_range(seed_range);
        if (!range) {
            std::fprintf(stderr, "duet: --seeds takes A..B with A <= B, or one seed, not '%s'\n",
                         duet::shown(seed_range).c_str());
            return duet::kExitUsage;
        }
        std::tie(swarm_options.first_seed, swarm_options.last_seed) = *range;
        if (!shard.empty()) {
            auto k = duet::parse_shard(shard);
            if (!k) {
                std::fprintf(stderr, "duet: --shard takes K/M with 1 <= K <= M, not '%s'\n",
                             duet::shown(shard).c_str());
                return duet::kExitUsage;
            }
            std::tie(swarm_options.shard, swarm_options.shard_count) = *k;
        } else {
            // A Slurm array task: the shard of its ID (docs/swarm.md).
            auto e = duet::slurm_array_shard(
                std::getenv("SLURM_ARRAY_TASK_ID"), std::getenv("SLURM_ARRAY_TASK_COUNT"),
                std::getenv("SLURM_ARRAY_TASK_MIN"), std::getenv("SLURM_ARRAY_TASK_MAX"));
            if (!e.error.empty()) {
                std::fprintf(stderr, "duet: %s\n", e.error.c_str());
                return duet::kExitUsage;
            }
            if (e.shard) {
                std::tie(swarm_options.shard, swarm_options.shard_count) = *e.shard;
                swarm_options.shard_origin = e.origin;
            }
        }
        auto& args = swarm_options.run_args;
        if (*swarm_cpus_opt) {
            args.insert(args.end(), {"--cpus", std::to_string(swarm_cpus)});
        }
        if (*swarm_memory_opt) {
            args.insert(args.end(), {"--memory", swarm_memory});
        }
        if (*swarm_firmware_opt) {
            args.insert(args.end(), {"--firmware", swarm_firmware});
        }
        if (*swarm_kernel_opt) {
            args.insert(args.end(), {"--kernel", swarm_kernel});
        }
        for (auto [opt, value] :
             {std::pair{swarm_tick_opt, &swarm_tick}, std::pair{swarm_slice_opt, &swarm_slice}}) {
            if (*opt) {
                if (!duet::parse_duration(*value)) {
                    std::fprintf(stderr,
                                 "duet: %s takes a duration such as 500us or 2ms, not "
                                 "'%s'\n",
                                 opt->get_name().c_str(), duet::shown(*value).c_str());
                    return duet::kExitUsage;
                }
                args.insert(args.end(), {opt->get_name(), *value});
            }
        }
        for (const auto& f : swarm_faults) {
            args.insert(args.end(), {"--fault", f});
        }
        if (timeout_ns != 0) {
            args.insert(args.end(), {"--timeout", duet::format_duration(timeout_ns)});
        }
        if (memory_limit_bytes != 0) {
            args.insert(args.end(), {"--memory-limit", duet::format_size(memory_limit_bytes)});
        }
        if (*swarm_schedule_opt) {
            args.insert(args.end(), {"--schedule", hal_sim::describe(options.schedule)});
        }
        swarm_options.run_child = &cli_main;
        const char* program = std::getenv("DUET_PROGRAM");
        swarm_options.program = program != nullptr && *program != '\0' ? program : argv[0];
        return duet::run_swarm(swarm_options, stdout, stderr);
    }
    for (auto [opt, value, target] : {std::tuple{tick_opt, &tick, &options.tick_ns},
                                      std::tuple{slice_opt, &slice, &options.slice_ns}}) {
        if (*opt) {
            auto ns = duet::parse_duration(*value);
            if (!ns || *ns == 0) {
                std::fprintf(stderr, "duet: %s takes a duration such as 500us or 2ms, not '%s'\n",
                             opt->get_name().c_str(), duet::shown(*value).c_str());
                return duet::kExitUsage;
            }
            *target = *ns;
        }
    }
    options.timeout_ns = timeout_ns;
    options.memory_limit_bytes = memory_limit_bytes;
    if (options.race && !hal_sim::race::kBuilt) {
        std::fputs("duet: --race needs the race build (the core under ThreadSanitizer): run "
                   "./duet run SCENARIO --race, which builds it, or build the preset yourself "
                   "(cmake --preset race && cmake --build build/race) and use build/race/duet\n",
                   stderr);
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
            std::fprintf(stderr, "duet: --fault takes NAME=VALUE, not '%s'\n",
                         duet::shown(f).c_str());
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

} // namespace

int main(int argc, char** argv) {
    // Nothing has run the core yet: the first machine may boot on its data as loaded.
    hal_sim::kernel_image_is_pristine();
    return cli_main(argc, argv);
}
