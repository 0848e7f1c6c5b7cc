#pragma once

// What the simulated machine records for a schedule trace: the kernel's events (hal/trace.hpp)
// and the machine's own (injected faults), each with the CPU and the virtual time it happened
// at. sim/trace.hpp turns them into a trace file.

#include <hal/trace.hpp>

#include <cstdint>
#include <string_view>

namespace hal_sim {

struct TraceRecord {
    enum class Kind : uint8_t {
        Switch,  // prev -> next
        Waking,  // `next` becomes runnable on `target_cpu`
        Counter, // `name` = `value`
        Instant, // something happened: `name` says what, on the track `track`
    };
    Kind kind = Kind::Instant;
    uint32_t cpu = 0;
    uint64_t ns = 0;
    hal::TraceThread prev;
    hal::TraceThread next;
    uint32_t target_cpu = 0;
    // NOTE: the views (and the threads' names) are only valid during the sink's call.
    std::string_view track;
    std::string_view name;
    uint64_t value = 0;
};

} // namespace hal_sim
