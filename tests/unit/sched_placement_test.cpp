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

TEST(SchedPlacement, ABehindRoundStealFromACpuNoBusierGivesAThreadBack) {
    auto m = machine();
    ASSERT_TRUE(until_cpu1_is_crowded(*m)) << m->result().detail;
    Machine::CpuScope scope(*m, 0);
    core::sched::CpuSched& cs0 = core::cpu(0).sched;
    core::sched::CpuSched& cs1 = core::cpu(1).sched;
    cs0.round = 50;
    cs1.round = 50;
    // CPU 0 gets (by hand) just enough of CPU 1's queued threads to be as busy as CPU 1 or one
    // busier, all of them past this round; those that stay on CPU 1 are behind it.
    std::vector<Thread*> queued = queued_on(1);
    size_t move = (cs1.load() - cs0.load() + 1) / 2;
    ASSERT_LT(move, queued.size());
    for (size_t i = 0; i < queued.size(); ++i) {
        Thread* t = queued[i];
        t->affinity = core::sched::kAnyCpu;
        if (i < move) {
            cs1.queues[t->link.queue].remove(&t->link);
            t->round = 60;
            cs0.expired().push_back(&t->link);
        } else {
            t->round = 40;
        }
    }
    // What the scheduler keeps beside its queues, put right for the changes made by hand: the
    // loads steal() compares, and the floor under the rounds of each CPU's queued threads.
    cs0.round_floor = 60;
    cs1.round_floor = 40;
    core::sched::detail::publish_load(0, cs0);
    core::sched::detail::publish_load(1, cs1);
    uint32_t load0 = cs0.load();
    uint32_t load1 = cs1.load();
    ASSERT_TRUE(load0 == load1 || load0 == load1 + 1) << load0 << " and " << load1;
    EXPECT_EQ(core::sched::detail::steal(0, 0, /*below_round=*/51), 1u);
    EXPECT_EQ(cs0.load(), load0) << "a steal of a turn must not move load";
    EXPECT_EQ(cs1.load(), load1);
    size_t behind_on_0 = 0;
    for (Thread* t : queued_on(0)) {
        behind_on_0 += t->round < 51 ? 1 : 0;
    }
    EXPECT_EQ(behind_on_0, 1u) << "CPU 0 took no thread behind the round";
    size_t ahead_on_1 = 0;
    for (Thread* t : queued_on(1)) {
        ahead_on_1 += t->round == 60 ? 1 : 0;
    }
    EXPECT_EQ(ahead_on_1, 1u) << "CPU 1 got no thread back";
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
