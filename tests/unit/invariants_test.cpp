// The simulator's invariant checks (core/invariants.hpp): quiet on a healthy kernel, and each
// kind of corruption a kernel bug would leave is reported, naming the thread. The corruptions
// are planted between executor steps, where the checks run.

#include <run.hpp>
#include <scenario.hpp>

#include <core/cpu.hpp>
#include <core/invariants.hpp>
#include <core/mm/heap.hpp>
#include <core/sched/scheduler.hpp>
#include <core/sched/thread.hpp>
#include <hal_sim/machine.hpp>

#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <memory>
#include <string>

namespace {

using core::sched::Thread;
using core::sched::ThreadState;
using hal_sim::Machine;
using hal_sim::Verdict;

// Two CPUs: workers that yield (runnable, queued), a waiter blocked on an event (in no queue,
// no timer) and a sleeper; the signaller wakes the waiter late.
constexpr const char* kScenario = R"(
machine cpus=2
memory preset=qemu-q35-2g
program worker
  repeat 200
    compute 50us
    yield
program waiter
  wait go
program sleeper
  repeat 20
    sleep 1ms
program signaller
  sleep 15ms
  signal go
spawn worker count=4
spawn waiter
spawn sleeper
spawn signaller
)";

std::unique_ptr<Machine> machine(uint64_t check_every) {
    duet::RunOptions options;
    options.check_every = check_every;
    return std::make_unique<Machine>(
        duet::machine_config(duet::parse_scenario(kScenario, "invariants.scn"), options));
}

// A live workload thread of program `name` for which `pick` holds, or null.
Thread* find_thread(const char* name, const std::function<bool(const Thread&)>& pick) {
    for (uint32_t slot = 1; slot < core::sched::thread_slots(); ++slot) {
        Thread* t = core::sched::thread_at(slot);
        if (t != nullptr && !t->idle && std::strcmp(t->name, name) == 0 && pick(*t)) {
            return t;
        }
    }
    return nullptr;
}

// Steps `m` until `find` returns a thread (checking invariants as it goes); null if the run
// ends first.
Thread* step_until(Machine& m, const std::function<Thread*()>& find) {
    while (m.step()) {
        if (Thread* t = find()) {
            return t;
        }
    }
    return nullptr;
}

std::string check_now() {
    core::InvariantReport report;
    return core::check_invariants(report) ? std::string() : std::string(report.text());
}

TEST(Invariants, HoldAfterEveryStepOfAHealthyRun) {
    auto m = machine(1);
    auto r = m->run();
    EXPECT_EQ(r.verdict, Verdict::Success) << r.detail;
    EXPECT_EQ(m->invariant_checks(), m->executor_steps()); // every step but the last, and the end
    EXPECT_GT(m->invariant_checks(), 1000u);
}

TEST(Invariants, ARunnableThreadInNoQueueIsALostThread) {
    auto m = machine(1);
    Thread* waiter = step_until(*m, [] {
        return find_thread("waiter", [](const Thread& t) {
            return t.state == ThreadState::Blocked && !t.in_timer && !t.on_cpu;
        });
    });
    ASSERT_NE(waiter, nullptr) << m->result().detail;
    EXPECT_EQ(check_now(), "");
    // A wake-up that forgets to queue the thread it made runnable.
    waiter->state = ThreadState::Runnable;
    std::string why = check_now();
    EXPECT_NE(why.find("run queues: thread " + std::to_string(waiter->number) +
                       " 'waiter' is runnable but in no run queue"),
              std::string::npos)
        << why;
    // The machine stops at its next check, with the report as its verdict.
    while (m->step()) {
    }
    EXPECT_EQ(m->result().verdict, Verdict::Invariant);
    EXPECT_NE(m->result().detail.find("'waiter' is runnable but in no run queue\n(found after "
                                      "executor step "),
              std::string::npos)
        << m->result().detail;
}

TEST(Invariants, AQueuedThreadMustBeRunnable) {
    auto m = machine(1);
    Thread* worker = step_until(
        *m, [] { return find_thread("worker", [](const Thread& t) { return t.link.queued; }); });
    ASSERT_NE(worker, nullptr) << m->result().detail;
    worker->state = ThreadState::Blocked; // blocked, but left in its run queue
    std::string why = check_now();
    EXPECT_NE(why.find("'worker' is in cpu "), std::string::npos) << why;
    EXPECT_NE(why.find("'s run queue but blocked"), std::string::npos) << why;
}

TEST(Invariants, ARunQueueWhoseCountDisagreesWithItsLists) {
    auto m = machine(1);
    Thread* worker = step_until(
        *m, [] { return find_thread("worker", [](const Thread& t) { return t.link.queued; }); });
    ASSERT_NE(worker, nullptr);
    worker->link.queued = false; // in the list, not marked as being there
    std::string why = check_now();
    EXPECT_NE(why.find("a thread in the list is not marked as queued in it"), std::string::npos)
        << why;
}

TEST(Invariants, ASleeperOutOfDeadlineOrderOrAwake) {
    auto m = machine(1);
    Thread* sleeper = step_until(
        *m, [] { return find_thread("sleeper", [](const Thread& t) { return t.in_timer; }); });
    ASSERT_NE(sleeper, nullptr);
    sleeper->state = ThreadState::Running;
    std::string why = check_now();
    EXPECT_NE(
        why.find("timers: thread " + std::to_string(sleeper->number) + " 'sleeper' is in cpu "),
        std::string::npos)
        << why;
    EXPECT_NE(why.find("'s sleepers but running"), std::string::npos) << why;
}

TEST(Invariants, ALastSleeperThatIsNotTheListsLast) {
    auto m = machine(1);
    Thread* sleeper = step_until(
        *m, [] { return find_thread("sleeper", [](const Thread& t) { return t.in_timer; }); });
    ASSERT_NE(sleeper, nullptr);
    core::Cpu& c = core::cpu(sleeper->cpu);
    ASSERT_NE(c.sched.sleepers.last, nullptr);
    c.sched.sleepers.last = nullptr; // a later sleep would be lost behind it
    std::string why = check_now();
    EXPECT_NE(why.find("'s last sleeper is not the list's last"), std::string::npos) << why;
}

TEST(Invariants, AWriteAfterFreeIntoAHeapFreeListIsFound) {
    auto m = machine(1);
    // Run until the kernel's heap is up, then borrow CPU 0 between steps to use it.
    while (m->step() && !core::mm::heap().ready()) {
    }
    ASSERT_TRUE(core::mm::heap().ready());
    void* kept = nullptr;
    {
        Machine::CpuScope scope(*m, 0);
        // A few objects through this CPU's list, so that the list is longer than two.
        void* objs[4];
        for (void*& p : objs) {
            p = core::mm::kmalloc(64);
        }
        for (void* p : objs) {
            core::mm::kfree(p);
        }
        kept = core::mm::kmalloc(64);
        void* freed = core::mm::kmalloc(64);
        core::mm::kfree(freed);
        EXPECT_EQ(check_now(), "");
        // The freed object's first word links this CPU's list: a stale pointer written
        // through it splices a live object into the list.
        *static_cast<void**>(freed) = kept;
        *static_cast<void**>(kept) = nullptr;
    }
    std::string why = check_now();
    EXPECT_NE(why.find("heap: the chunks, slabs and per-CPU lists disagree"), std::string::npos)
        << why;
}

TEST(Invariants, CheckingIsOffWithZero) {
    auto m = machine(0);
    auto r = m->run();
    EXPECT_EQ(r.verdict, Verdict::Success) << r.detail;
    EXPECT_EQ(m->invariant_checks(), 0u);
}

} // namespace
