#include "run.hpp"
#include "scenario.hpp"
#include "source_error.hpp"

#include <hal_sim/error.hpp>
#include <hal_sim/machine.hpp>

#include <fmt/format.h>

#include <memory>

namespace duet {

int run_scenario(const std::string& path, const RunOptions& options, std::FILE* out,
                 std::FILE* err) {
    Scenario scenario;
    hal_sim::MachineConfig config;
    try {
        scenario = load_scenario(path);
        if (options.memory) {
            scenario.memory =
                load_memory(*options.memory, "--memory", 0, 0, &scenario.memory_source);
        }
        config.cpus = options.cpus.value_or(scenario.cpus);
        config.seed = options.seed.value_or(scenario.seed);
        config.memory = scenario.memory;
    } catch (const SourceError& e) {
        fmt::print(err, "{}\n", e.what());
        return kExitUsage;
    }

    std::unique_ptr<std::FILE, int (*)(std::FILE*)> com1_file(nullptr, &std::fclose);
    if (!options.com1_path.empty()) {
        com1_file.reset(std::fopen(options.com1_path.c_str(), "w"));
        if (!com1_file) {
            fmt::print(err, "duet: cannot write COM1 log '{}'\n", options.com1_path);
            return kExitUsage;
        }
    }

    std::unique_ptr<hal_sim::Machine> machine;
    try {
        machine = std::make_unique<hal_sim::Machine>(config);
    } catch (const hal_sim::ConfigError& e) {
        fmt::print(err, "{}: cannot build the machine from {}: {}\n", path, scenario.memory_source,
                   e.what());
        return kExitUsage;
    }
    machine->com1().set_sink([&](std::string_view, std::string_view line) {
        if (!options.quiet) {
            fmt::print(out, "{}\n", line);
        }
        if (com1_file) {
            fmt::print(com1_file.get(), "{}\n", line);
        }
    });

    hal_sim::RunResult result = machine->run();

    fmt::print(out, "== report\n");
    fmt::print(out, "scenario  {}\n", path);
    fmt::print(out, "memory    {}\n", scenario.memory_source);
    fmt::print(out, "cpus      {}\n", config.cpus);
    fmt::print(out, "seed      {}\n", config.seed);
    fmt::print(out, "verdict   {}\n", hal_sim::describe(result.verdict));
    if (result.verdict != hal_sim::Verdict::Success) {
        fmt::print(err, "{}: run failed: {}: {}\n", path, hal_sim::describe(result.verdict),
                   result.detail);
        return kExitFailed;
    }
    return kExitOk;
}

} // namespace duet
