#pragma once

// Compiling a scenario's programs and spawns into the kernel's workload format
// (core/include/core/workload/workload.hpp), which the simulated firmware passes to the kernel
// in the initrd as sys/workload.

#include <core/workload/workload.hpp>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace duet {

class WorkloadBuilder {
public:
    bool empty() const { return m_programs.empty() && m_spawns.empty(); }
    bool has_program(const std::string& name) const { return m_index.count(name) != 0; }

    // Programs are numbered in the order they are declared.
    void begin_program(const std::string& name);
    void end_program();
    // Buffer names are the current program's own; false when it has no slot left.
    bool slot(const std::string& name, uint16_t* index);
    bool known_slot(const std::string& name) const;
    // Mutex and event names are the workload's; false when there are too many.
    bool mutex(const std::string& name, uint16_t* index);
    bool event(const std::string& name, uint16_t* index);

    size_t emit(const core::workload::Instruction& in);
    size_t position() const { return m_code.size(); }
    core::workload::Instruction& at(size_t i) { return m_code[i]; }

    // A Spawn instruction or statement naming a program that may be declared later.
    void spawn_in_program(size_t instruction, const std::string& program, int line, int col);
    void spawn_at_start(const std::string& program, uint32_t count, uint8_t priority, uint32_t cpu,
                        int line, int col);

    struct Unresolved {
        std::string program;
        int line;
        int col;
    };
    // Resolves program names; returns the first that names no program, if any.
    const Unresolved* resolve();

    std::vector<uint8_t> blob() const;
    uint64_t thread_programs() const { return m_programs.size(); }
    // The fewest CPUs the spawns' affinities need (1 without any).
    uint32_t min_cpus() const {
        uint32_t n = 1;
        for (const auto& s : m_spawns) {
            if (s.cpu != ~0u && s.cpu + 1 > n) {
                n = s.cpu + 1;
            }
        }
        return n;
    }

private:
    struct Fixup {
        size_t instruction; // SIZE_MAX: the spawn record `spawn`
        size_t spawn;
        Unresolved where;
    };
    std::vector<core::workload::Program> m_programs;
    std::map<std::string, uint32_t> m_index;
    std::vector<core::workload::Spawn> m_spawns;
    std::vector<core::workload::Instruction> m_code;
    std::map<std::string, uint16_t> m_slots; // of the program being compiled
    std::map<std::string, uint16_t> m_mutexes;
    std::map<std::string, uint16_t> m_events;
    std::vector<Fixup> m_fixups;
};

} // namespace duet
