// hal/trace.hpp on bare metal: one line on COM1 per event, whole lines under the console's
// lock (core::LogLine), which tools/com1-to-trace turns into the trace file the simulator
// writes. Fields are separated by single spaces; the time is hal::now_ns() on the calling CPU:
//   trace: NS CPU S PREV_PID PREV_PRIO PREV_STATE PREV_NAME NEXT_PID NEXT_PRIO NEXT_NAME
//   trace: NS CPU W PID PRIO TARGET_CPU NAME
//   trace: NS CPU C NAME VALUE
// NOTE: a switch line is at most about 105 bytes, inside LogLine's 112.

#include <core/lib/log.hpp>

#include <hal/cpu.hpp>
#include <hal/time.hpp>
#include <hal/trace.hpp>

namespace hal {

namespace {

// A name as one field: blanks become '_', and an empty name is "_".
void name_field(core::LogLine& line, const char* name) {
    if (*name == '\0') {
        line.chr('_');
    }
    for (; *name != '\0'; ++name) {
        char c = *name;
        line.chr(c == ' ' || c == '\t' || c == '\n' || c == '\r' ? '_' : c);
    }
}

void thread_fields(core::LogLine& line, const TraceThread& t) {
    line.dec(t.pid).chr(' ').dec(t.priority).chr(' ');
}

void start(core::LogLine& line, char kind) {
    line.dec(now_ns()).chr(' ').dec(cpu_index()).chr(' ').chr(kind).chr(' ');
}

} // namespace

void trace_switch(const TraceThread& prev, const TraceThread& next) {
    core::LogLine line("trace");
    start(line, 'S');
    thread_fields(line, prev);
    line.chr(prev.state).chr(' ');
    name_field(line, prev.name);
    line.chr(' ');
    thread_fields(line, next);
    name_field(line, next.name);
}

void trace_waking(const TraceThread& thread, uint32_t target_cpu) {
    core::LogLine line("trace");
    start(line, 'W');
    thread_fields(line, thread);
    line.dec(target_cpu).chr(' ');
    name_field(line, thread.name);
}

void trace_counter(const char* name, uint64_t value) {
    core::LogLine line("trace");
    start(line, 'C');
    name_field(line, name);
    line.chr(' ').dec(value);
}

// NOTE: the report that keeps these is the simulator's; nothing on COM1 asks for them.
void thread_exited(const ThreadSummary&) {}

} // namespace hal
