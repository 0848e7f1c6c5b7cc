#pragma once

// The simulated machine: CPUs as fibers on one host thread, RAM modelled from an E820 map,
// a fake COM1 and the firmware that hands the core its BOOTBOOT information block.

#include <hal/cpu.hpp>
#include <hal/firmware/boot_area.hpp>
#include <hal/types.hpp>
#include <hal_sim/com1.hpp>
#include <hal_sim/fiber.hpp>
#include <hal_sim/physical_memory.hpp>

#include <core/boot/boot.hpp>

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace hal_sim {

struct MachineConfig {
    uint32_t cpus = 1;
    std::vector<firmware::E820Entry> memory;
    // The environment page's text; the real loaders write "// N/A" when there is no config.
    std::string environment = "// N/A";
    // BOOTBOOT datetime (BCD). Fixed, so that runs are reproducible.
    std::array<uint8_t, 8> datetime{0x20, 0x26, 0x01, 0x01, 0x00, 0x00, 0x00, 0x00};
    uint64_t seed = 0;
};

enum class Verdict {
    Success, // the kernel stopped the machine with ExitCode::Success
    Failure, // the kernel stopped it with ExitCode::Failure
    Panic,   // the kernel stopped it with ExitCode::Panic
    Stuck,   // no CPU can run and nothing is pending
};

const char* describe(Verdict v);

struct RunResult {
    Verdict verdict = Verdict::Stuck;
    std::string detail; // why, for anything but Success
};

struct SimCpu {
    enum class State {
        Running, // has work; the executor may resume it
        Idle,    // waits for an interrupt
    };

    uint32_t index = 0;
    State state = State::Running;
    fctx::fcontext_t resume = nullptr;   // where this CPU continues
    fctx::fcontext_t executor = nullptr; // where it returns to at a preemption point
    FiberStack boot_stack;               // the stack its firmware entry runs on
    bool irq_enabled = false;
    core::Cpu* cpu_data = nullptr;
    uint64_t clock_ns = 0;
};

class Machine {
public:
    // Builds the machine and lets its firmware write the boot information into RAM.
    // Throws ConfigError if the configuration cannot be built.
    explicit Machine(MachineConfig config);
    Machine(const Machine&) = delete;
    Machine& operator=(const Machine&) = delete;
    ~Machine();

    // Powers the machine on and runs it until the kernel stops it or it gets stuck.
    RunResult run();

    // The machine whose run() is on the stack, or null.
    static Machine* current();

    const MachineConfig& config() const { return m_config; }
    Com1& com1() { return m_com1; }
    PhysicalMemory& ram() { return m_ram; }
    const firmware::BootPlan& boot_plan() const { return m_plan; }
    const core::BootInfo& boot_info() const { return m_boot_info; }
    uint32_t cpu_count() const { return static_cast<uint32_t>(m_cpus.size()); }

    // The CPU whose fiber is running. Only valid inside run().
    SimCpu& current_cpu() { return *m_current; }

    // For tests: makes CPU `cpu` of this machine current outside run(), so that core code
    // that never waits (bookkeeping on one CPU: allocators, parsers) can be called directly.
    // Reaching a preemption point inside such a scope is a test bug and aborts.
    class CpuScope {
    public:
        CpuScope(Machine& machine, uint32_t cpu);
        CpuScope(const CpuScope&) = delete;
        CpuScope& operator=(const CpuScope&) = delete;
        ~CpuScope();
    };

    // Called on a CPU's fiber: returns control to the executor; comes back when the executor
    // resumes this CPU.
    void yield_to_executor();
    // Called on a CPU's fiber: marks the CPU idle until an interrupt and yields.
    void idle();
    // Called on a CPU's fiber: stops the whole machine. Never comes back.
    [[noreturn]] void halt(hal::ExitCode code);

private:
    static void cpu_entry(fctx::transfer_t from);
    void write_boot_information();
    SimCpu* pick_next();

    MachineConfig m_config;
    PhysicalMemory m_ram;
    firmware::BootPlan m_plan;
    core::BootInfo m_boot_info{};
    Com1 m_com1;
    std::vector<std::unique_ptr<SimCpu>> m_cpus;
    SimCpu* m_current = nullptr;
    bool m_halted = false;
    bool m_borrowed = false; // a CpuScope is active
    RunResult m_result;
};

} // namespace hal_sim
