#pragma once

// Compiling a scenario's `process` blocks (docs/scenarios.md, "Processes") into what the
// kernel's init thread starts: one script a block (user/include/duet/script.hpp), run in ring 3
// by the user program `script`, and a sys/programs line a process, with its name, its script
// and its handles. The same initrd boots on QEMU (`duet initrd`).

#include "text.hpp"

#include <duet/script.hpp>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace duet {

// A line of an indented block, as the scenario parser hands it over.
struct BlockLine {
    int indent;
    std::vector<Token> tokens;
    int line;
};

class ProcessBuilder {
public:
    // The kernel's limits (core/user): processes at once, named objects, handles a process.
    static constexpr uint32_t kMaxProcesses = 64;
    static constexpr size_t kMaxObjects = 16;
    static constexpr size_t kMaxHandles = 16;
    static constexpr size_t kNameLength = 15;

    bool empty() const { return m_processes.empty(); }
    uint32_t process_count() const;

    // `process NAME [count=N] [serve=EP,...] [call=EP,...] [signal=N,...] [wait=N,...]` and its
    // block. Throws SourceError at the place of a mistake.
    void add(const std::string& path, const std::vector<Token>& header,
             const std::vector<BlockLine>& block, int line);
    // Once every block is in: resolves other processes' regions; warnings (an endpoint nobody
    // serves...) are appended as `file:line: warning: ...`. Throws SourceError.
    void finish(const std::string& path, std::vector<std::string>& warnings);

    // The initrd's files: user/script, sys/scripts/NAME, sys/programs.
    std::vector<std::pair<std::string, std::vector<uint8_t>>> files() const;

    struct Region {
        uint64_t address = 0;
        uint64_t bytes = 0;
    };
    struct Grant {
        std::string kind; // serve, call, signal, wait
        std::string object;
    };
    struct Fixup {
        size_t instruction;
        std::string process;
        std::string region;
        int line;
        int col;
    };
    struct Process {
        std::string name;
        int line = 0;
        uint32_t count = 1;
        std::vector<Grant> grants; // handle 1 first
        std::vector<duet_script::Instruction> code;
        std::string text;
        std::map<std::string, Region> regions;
        std::vector<Fixup> fixups; // addresses in other processes' regions
    };
    const std::vector<Process>& processes() const { return m_processes; }

private:
    std::vector<Process> m_processes;
    std::map<std::string, std::string> m_object_types; // name -> endpoint or notification
};

// The user program that runs the scripts, as built for ring 3 (embedded in the simulator).
std::vector<uint8_t> script_program();

} // namespace duet
