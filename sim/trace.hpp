#pragma once

// Schedule traces: what `duet run --trace FILE` records (the kernel's switches and wake-ups,
// the free-frame and heap counters, injected faults, failed expectations) and the two files
// it writes. docs/debugging.md describes both formats.
//
// - ftrace text, which the Perfetto UI opens with one lane per CPU: `sched_switch` and
//   `sched_waking` lines, counters and instants as `tracing_mark_write` lines in atrace's
//   `C|pid|name|value` and `N|pid|track|name` forms, sorted by time.
// - com1: the `trace: ...` lines the bare-metal kernel prints on COM1 for the same events
//   (hal/x86_64-baremetal/lib/trace.cpp), in the order they happened; tools/com1-to-trace
//   turns either into the same ftrace text.

#include "report.hpp"

#include <hal_sim/machine.hpp>
#include <hal_sim/trace.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace duet {

class TraceLog {
public:
    // Copies what `record` points to.
    void add(const hal_sim::TraceRecord& record);
    // Something that happened at `ns` on `cpu`, shown on the track `track`.
    void instant(uint64_t ns, uint32_t cpu, std::string_view track, std::string_view text);

    size_t size() const { return m_events.size(); }

    // The trace as ftrace text; `title` goes into its header.
    std::string ftrace(std::string_view title) const;
    // The events as the bare-metal kernel prints them on COM1.
    std::string com1() const;

private:
    struct Thread {
        std::string name;
        uint32_t pid = 0;
        uint8_t priority = 0;
        char state = 'R';
    };
    struct Event {
        hal_sim::TraceRecord::Kind kind;
        uint32_t cpu;
        uint64_t ns;
        Thread prev;
        Thread next;
        uint32_t target_cpu = 0;
        std::string track;
        std::string name;
        uint64_t value = 0;
    };
    std::vector<Event> m_events;
};

// The end of a run in the trace: an instant for a verdict other than success and for each
// failed expectation, at `end_ns` on CPU 0. Then the trace file's contents in `format`
// ("ftrace" or "com1").
std::string finish_trace(TraceLog& trace, std::string_view format, std::string_view title,
                         uint64_t end_ns, const hal_sim::RunResult& result,
                         const std::vector<ExpectationResult>& checked);

// The ftrace text's header, with `title` as one comment line.
std::string ftrace_header(std::string_view title);

// A thread or counter name as a trace field: characters that would end the field (blanks,
// '=', '|', control characters) become '_', and an empty name is "_".
std::string trace_field(std::string_view name);

} // namespace duet
