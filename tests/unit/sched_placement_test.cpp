// Where the scheduler applies its placement rules, on a booted machine stopped between executor
// steps: which queued thread a steal takes, and the round a woken thread joins. The rules
// themselves are tested in sched_policy_test.cpp; these fail if the scheduler stops asking them
// (a steal that takes the first thread it finds; a wake-up that keeps a sleeper's old round).

#include <run.hpp>
#include <scenario.hpp>

#include "../../core/sched/internal.hpp"

#include <core/cpu.hpp>
#include <core/sched/scheduler.hpp>
#include <core/sched/thread.hpp>
#include <hal_sim/machine.hpp>

#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <vector>

namespace {

using core::sched::Thread;
using core::sched::ThreadState;
using hal_sim::Machine;

// Two CPUs. Six workers pinned to CPU 1 keep its queue full; a waiter blocks on an event that
// nobody signals.
constexpr const char* kScenario = R"(
machine cpus=2
memory preset=qemu-q35-2g
run until=50ms
program worker
  repeat 1000
    compute 1ms
program waiter
  wait never
spawn worker count=6 cpu=1
spawn waiter cpu=0
)";

std::unique_ptr<Machine> machine() {
    return std::make_unique<Machine>(
        duet::machine_config(duet::parse_scenario(kScenario, "placement.scn"), {}));
}

// The threads queued on `cpu`, active queue first, in queue order.
std::vector<Thread*> queued_on(uint32_t cpu) {
    core::sched::CpuSched& cs = core::cpu(cpu).sched;
    std::vector<Thread*> out;
    for (core::sched::RunQueue* q : {&cs.active(), &cs.expired()}) {
        for (unsigned level = 0; level < core::sched::kPriorityLevels; ++level) {
            for (core::sched::RunLink* l = q->first(level); l != nullptr; l = l->next) {
                out.push_back(reinterpret_cast<Thread*>(l));
            }
        }
    }
    return out;
}

// Steps `m` until CPU 1 has at least four workers queued and no run-queue lock is held.
bool until_cpu1_is_crowded(Machine& m) {
    while (m.step()) {
        if (queued_on(1).size() >= 4 && !core::cpu(0).sched.lock.is_locked() &&
            !core::cpu(1).sched.lock.is_locked()) {
            return true;
        }
    }
    return false;
}

TEST(SchedPlacement, AStealTakesTheQueuedThreadFurthestBehind) {
    auto m = machine();
    ASSERT_TRUE(until_cpu1_is_crowded(*m)) << m->result().detail;
    Machine::CpuScope scope(*m, 0);
    std::vector<Thread*> queued = queued_on(1);
    // Free to move, all level in their rounds but one late in the queue, which is behind.
    for (Thread* t : queued) {
        t->affinity = core::sched::kAnyCpu;
        t->round = 50;
    }
    Thread* behind = queued[queued.size() - 2];
    behind->round = 40;
    uint32_t from = core::sched::detail::steal(0, 0, core::sched::policy::kAnyRound);
    EXPECT_EQ(from, 1u);
    std::vector<Thread*> now_on_0 = queued_on(0);
    ASSERT_EQ(now_on_0.size(), 1u);
    EXPECT_EQ(now_on_0[0], behind) << "took '" << now_on_0[0]->name << "' of round "
                                   << now_on_0[0]->round << ", not the one of round 40";
    EXPECT_EQ(queued_on(1).size(), queued.size() - 1);
}

TEST(SchedPlacement, AStealForABehindRoundTakesOnlyThreadsBehindIt) {
    auto m = machine();
    ASSERT_TRUE(until_cpu1_is_crowded(*m)) << m->result().detail;
    Machine::CpuScope scope(*m, 0);
    for (Thread* t : queued_on(1)) {
        t->affinity = core::sched::kAnyCpu;
        t->round = 50;
    }
    EXPECT_EQ(core::sched::detail::steal(0, 0, /*below_round=*/50), core::sched::detail::kNoCpu);
    EXPECT_TRUE(queued_on(0).empty());
}

TEST(SchedPlacement, AWokenThreadJoinsItsNewCpusRound) {
    auto m = machine();
    ASSERT_TRUE(until_cpu1_is_crowded(*m)) << m->result().detail;
    Thread* waiter = nullptr;
    for (uint32_t slot = 1; slot < core::sched::thread_slots(); ++slot) {
        Thread* t = core::sched::thread_at(slot);
        if (t != nullptr && std::strcmp(t->name, "waiter") == 0 &&
            t->state == ThreadState::Blocked && !t->on_cpu) {
            waiter = t;
        }
    }
    ASSERT_NE(waiter, nullptr);
    Machine::CpuScope scope(*m, 0);
    core::sched::CpuSched& target = core::cpu(0).sched;
    target.round = 30;
    waiter->round = 2; // asleep for many rounds: no credit for them
    ASSERT_TRUE(core::sched::wake(waiter));
    EXPECT_EQ(waiter->round, 30u);
    std::vector<Thread*> on_0 = queued_on(0);
    ASSERT_EQ(on_0.size(), 1u);
    EXPECT_EQ(on_0[0], waiter);
}

} // namespace
