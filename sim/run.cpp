#include "run.hpp"
#include "scenario.hpp"
#include "source_error.hpp"

#include <hal_sim/error.hpp>
#include <hal_sim/machine.hpp>

#include <fmt/format.h>

#include <memory>

namespace duet {

namespace {

// FNV-1a, 64 bits: a digest of everything a run printed, to compare runs at a glance.
class Digest {
public:
    void add(std::string_view s) {
        for (unsigned char c : s) {
            m_h = (m_h ^ c) * 0x100000001b3ull;
        }
        m_h = (m_h ^ 0xff) * 0x100000001b3ull; // separator
    }
    uint64_t value() const { return m_h; }

private:
    uint64_t m_h = 0xcbf29ce484222325ull;
};

std::string seconds(uint64_t ns) {
    return fmt::format("{}.{:09}", ns / 1'000'000'000, ns % 1'000'000'000);
}

} // namespace

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
        for (const auto& [name, value] : options.faults) {
            std::string e = set_fault(scenario.faults, name, value);
            if (!e.empty()) {
                fmt::print(err, "duet: --fault {}={}: {}\n", name, value, e);
                return kExitUsage;
            }
        }
    } catch (const SourceError& e) {
        fmt::print(err, "{}\n", e.what());
        return kExitUsage;
    }
    config.cpus = options.cpus.value_or(scenario.cpus);
    config.seed = options.seed.value_or(scenario.seed);
    config.memory = scenario.memory;
    config.faults = scenario.faults;
    config.costs = scenario.costs;
    config.livelock_ns = scenario.livelock_ns;
    config.time_limit_ns = scenario.time_limit_ns;

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
    hal_sim::Machine* m = machine.get();
    if (options.timestamps) {
        m->com1().set_tagger([m] {
            const hal_sim::SimCpu& cpu = m->current_cpu();
            return fmt::format("[{} cpu {}] ", seconds(cpu.clock_ns), cpu.index);
        });
    }
    Digest digest;
    m->com1().set_sink([&](std::string_view tag, std::string_view line) {
        digest.add(line);
        if (!options.quiet) {
            fmt::print(out, "{}{}\n", tag, line);
        }
        if (com1_file) {
            fmt::print(com1_file.get(), "{}{}\n", tag, line);
        }
    });
    m->set_event_sink([&](const std::string& line) {
        digest.add(line);
        if (!options.quiet) {
            fmt::print(out, "sim: {}\n", line);
        }
    });

    hal_sim::RunResult result = m->run();
    uint64_t virtual_ns = 0;
    for (uint32_t i = 0; i < m->cpu_count(); ++i) {
        virtual_ns = std::max(virtual_ns, m->cpu(i).clock_ns);
    }
    digest.add(hal_sim::describe(result.verdict));
    digest.add(result.detail);

    fmt::print(out, "== report\n");
    fmt::print(out, "scenario  {}\n", path);
    fmt::print(out, "memory    {}\n", scenario.memory_source);
    fmt::print(out, "cpus      {}\n", config.cpus);
    fmt::print(out, "seed      {}\n", config.seed);
    fmt::print(out, "verdict   {}\n", hal_sim::describe(result.verdict));
    fmt::print(out, "time      {} s virtual, {} executor steps\n", seconds(virtual_ns),
               m->executor_steps());
    fmt::print(out, "faults    {} injected\n", m->events().size());
    fmt::print(out, "digest    {:016x}\n", digest.value());
    if (result.verdict != hal_sim::Verdict::Success) {
        fmt::print(err, "{}: run failed (seed {}): {}: {}\n", path, config.seed,
                   hal_sim::describe(result.verdict), result.detail);
        return kExitFailed;
    }
    return kExitOk;
}

} // namespace duet
