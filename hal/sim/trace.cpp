// hal/trace.hpp, simulator side: the event goes to the running machine's trace sink, if it
// has one, with the CPU's index and virtual time; an exiting thread's summary to its exit sink. No
// time passes and no preemption point is reached, so a traced run is the same run.

#include <hal/trace.hpp>
#include <hal_sim/machine.hpp>
#include <hal_sim/race.hpp>
#include <hal_sim/trace.hpp>

namespace hal {

namespace {

void record(hal_sim::TraceRecord& r) {
    hal_sim::race::SimulatorCode sim;
    hal_sim::Machine* m = hal_sim::Machine::current();
    if (m != nullptr) {
        m->trace(r);
    }
}

} // namespace

void trace_switch(const TraceThread& prev, const TraceThread& next) {
    hal_sim::TraceRecord r;
    r.kind = hal_sim::TraceRecord::Kind::Switch;
    r.prev = prev;
    r.next = next;
    record(r);
}

void trace_waking(const TraceThread& thread, uint32_t target_cpu) {
    hal_sim::TraceRecord r;
    r.kind = hal_sim::TraceRecord::Kind::Waking;
    r.next = thread;
    r.target_cpu = target_cpu;
    record(r);
}

void trace_counter(const char* name, uint64_t value) {
    hal_sim::TraceRecord r;
    r.kind = hal_sim::TraceRecord::Kind::Counter;
    r.name = name;
    r.value = value;
    record(r);
}

void thread_exited(const ThreadSummary& summary) {
    hal_sim::race::SimulatorCode sim;
    hal_sim::Machine* m = hal_sim::Machine::current();
    if (m != nullptr) {
        m->thread_exited(summary);
    }
}

} // namespace hal
