// The scheduler's policy rules (core/include/core/sched/policy.hpp), each driven directly, and
// the sleeper list. Every test here fails if its rule is changed: each was checked by breaking
// the rule once (docs/scheduler.md lists the breaks and what catches them).

#include <core/lib/limits.hpp>
#include <core/sched/cpu_sched.hpp>
#include <core/sched/policy.hpp>

#include <gtest/gtest.h>

#include <vector>

namespace {

using namespace core::sched;
using policy::Requeue;

// Queues the threads' links in `q`.
void fill(RunQueue& q, std::vector<Thread>& threads) {
    for (Thread& t : threads) {
        q.push_back(&t.link);
    }
}

std::vector<Thread> threads_of(std::initializer_list<uint8_t> priorities) {
    std::vector<Thread> ts(priorities.size());
    size_t i = 0;
    for (uint8_t p : priorities) {
        ts[i++].link.priority = p;
    }
    return ts;
}

// --- Rounds. ---

TEST(SchedPolicyRounds, ARoundEndsWhenTheActiveQueueRunsDry) {
    RunQueue active(0), expired(1);
    EXPECT_FALSE(policy::round_ends(active, expired)) << "nothing anywhere: stay";
    auto waiting = threads_of({4});
    fill(expired, waiting);
    EXPECT_TRUE(policy::round_ends(active, expired));
}

TEST(SchedPolicyRounds, AHigherPriorityInTheExpiredQueueEndsTheRoundAtOnce) {
    // A priority-3 thread that used its slice must not wait behind a priority-1 thread that
    // still has its turn: without this rule a priority-1 thread takes a third of a CPU from
    // two priority-3 ones.
    RunQueue active(0), expired(1);
    auto low = threads_of({1});
    auto high = threads_of({3});
    fill(active, low);
    fill(expired, high);
    EXPECT_TRUE(policy::round_ends(active, expired));
}

TEST(SchedPolicyRounds, EqualOrLowerPrioritiesInTheExpiredQueueWaitForTheNextRound) {
    RunQueue active(0), expired(1);
    auto now = threads_of({3});
    auto later = threads_of({3, 1});
    fill(active, now);
    fill(expired, later);
    EXPECT_FALSE(policy::round_ends(active, expired));
    RunQueue empty_expired(1);
    EXPECT_FALSE(policy::round_ends(active, empty_expired));
}

TEST(SchedPolicyRounds, AThreadThatUsedItsTurnWaitsForTheRoundAfterItsOwnAndItsCpus) {
    EXPECT_EQ(policy::next_round(5, 9), 10u) << "behind its CPU: the CPU's next round";
    EXPECT_EQ(policy::next_round(9, 5), 10u) << "ahead of its CPU: its own next round";
    EXPECT_EQ(policy::next_round(7, 7), 8u);
}

TEST(SchedPolicyRounds, AQueuedThreadJoinsItsCpusRoundAndEarnsNoCreditForTimeAway) {
    EXPECT_EQ(policy::joining_round(2, 9), 9u) << "asleep for rounds: no credit";
    EXPECT_EQ(policy::joining_round(12, 9), 12u) << "ahead: keeps its debt";
}

// --- Where a thread goes when it stops running. ---

TEST(SchedPolicyRequeue, APreemptedThreadGoesOnFirstInItsRound) {
    EXPECT_EQ(policy::requeue(/*yielded=*/false, /*slice_used=*/false), Requeue::FrontOfActive);
}

TEST(SchedPolicyRequeue, AYieldingThreadGivesUpItsTurn) {
    EXPECT_EQ(policy::requeue(/*yielded=*/true, /*slice_used=*/false), Requeue::BackOfExpired);
}

TEST(SchedPolicyRequeue, AThreadWhoseSliceRanOutWaitsForTheNextRound) {
    EXPECT_EQ(policy::requeue(/*yielded=*/false, /*slice_used=*/true), Requeue::BackOfExpired);
    EXPECT_EQ(policy::requeue(/*yielded=*/true, /*slice_used=*/true), Requeue::BackOfExpired);
}

// --- Slices and preemption. ---

TEST(SchedPolicySlices, FewThreadsGetTheWholeSlice) {
    EXPECT_EQ(policy::slice_among(1, 4'000'000, 1'000'000), 4'000'000u);
    EXPECT_EQ(policy::slice_among(2, 4'000'000, 1'000'000), 4'000'000u);
}

TEST(SchedPolicySlices, ACrowdedCpuDividesTwoSlicesAmongItsThreads) {
    EXPECT_EQ(policy::slice_among(3, 4'000'000, 1'000'000), 2'666'666u);
    EXPECT_EQ(policy::slice_among(4, 4'000'000, 1'000'000), 2'000'000u);
    EXPECT_EQ(policy::slice_among(8, 4'000'000, 250'000), 1'000'000u);
}

TEST(SchedPolicySlices, NoSliceIsShorterThanATick) {
    EXPECT_EQ(policy::slice_among(9, 4'000'000, 1'000'000), 1'000'000u);
    EXPECT_EQ(policy::slice_among(10'000, 4'000'000, 1'000'000), 1'000'000u);
}

TEST(SchedPolicySlices, ASliceEndGivesWayToAnEqualOrHigherPriorityInEitherQueue) {
    EXPECT_TRUE(policy::slice_end_preempts(/*active_top=*/4, /*expired_top=*/-1, 4));
    EXPECT_TRUE(policy::slice_end_preempts(-1, 4, 4));
    EXPECT_TRUE(policy::slice_end_preempts(6, -1, 4));
    EXPECT_TRUE(policy::slice_end_preempts(-1, 6, 4));
}

TEST(SchedPolicySlices, ASliceEndWithOnlyLowerPrioritiesWaitingKeepsTheCpu) {
    EXPECT_FALSE(policy::slice_end_preempts(-1, -1, 4));
    EXPECT_FALSE(policy::slice_end_preempts(3, 2, 4));
}

TEST(SchedPolicyWakeups, AWakeUpPreemptsAnIdleCpuOrALowerPriority) {
    EXPECT_TRUE(policy::wakeup_preempts(/*cpu_idle=*/true, 0, 0));
    EXPECT_TRUE(policy::wakeup_preempts(false, 5, 4));
}

TEST(SchedPolicyWakeups, AWakeUpWaitsBehindAnEqualOrHigherPriority) {
    EXPECT_FALSE(policy::wakeup_preempts(false, 4, 4));
    EXPECT_FALSE(policy::wakeup_preempts(false, 3, 4));
}

// --- Placement. ---

struct IdleCpus {
    uint64_t words[core::kMaxCpus / 64] = {};
    IdleCpus(std::initializer_list<uint32_t> idle) {
        for (uint32_t c : idle) {
            words[c / 64] |= uint64_t{1} << (c % 64);
        }
    }
};

// Where a thread that last ran on `last` goes, woken by CPU `self` of `cpus`.
uint32_t place(uint32_t last, uint32_t self, uint32_t cpus, const IdleCpus& idle,
               uint32_t affinity = kAnyCpu) {
    Thread t;
    t.cpu = last;
    t.affinity = affinity;
    return policy::place(t, self, cpus, idle.words);
}

TEST(SchedPolicyPlacement, AffinityWinsOverAnIdleCpu) {
    IdleCpus idle{0, 1, 2};
    EXPECT_EQ(place(1, 0, 4, idle, /*affinity=*/3), 3u);
}

TEST(SchedPolicyPlacement, AThreadGoesBackToItsLastCpuIfThatIsIdle) {
    IdleCpus idle{1, 2};
    EXPECT_EQ(place(2, /*self=*/1, 4, idle), 2u);
}

TEST(SchedPolicyPlacement, ElseToTheWakersCpuIfThatIsIdle) {
    IdleCpus idle{0, 1};
    EXPECT_EQ(place(2, /*self=*/1, 4, idle), 1u);
}

TEST(SchedPolicyPlacement, ElseToTheFirstIdleCpu) {
    IdleCpus idle{70, 200};
    EXPECT_EQ(place(2, /*self=*/1, 256, idle), 70u);
}

TEST(SchedPolicyPlacement, WithNoCpuIdleItStaysWithItsLastCpu) {
    IdleCpus idle{};
    EXPECT_EQ(place(2, /*self=*/1, 4, idle), 2u);
}

TEST(SchedPolicyPlacement, IdleBitsBeyondTheMachineAreIgnored) {
    IdleCpus idle{5};
    EXPECT_EQ(place(2, /*self=*/1, 4, idle), 2u);
}

TEST(SchedPolicyPlacement, ALastCpuOutOfRangeCountsAsTheWakers) {
    IdleCpus idle{1};
    EXPECT_EQ(place(9, /*self=*/1, 4, idle), 1u);
    IdleCpus none{};
    EXPECT_EQ(place(9, /*self=*/1, 4, none), 1u);
}

TEST(SchedPolicyPlacement, ABusyCpuKicksTheFirstIdleCpuButItself) {
    EXPECT_EQ(policy::idle_to_kick(0, 4, IdleCpus{2, 3}.words), 2u);
    EXPECT_EQ(policy::idle_to_kick(2, 4, IdleCpus{2, 3}.words), 3u);
    EXPECT_EQ(policy::idle_to_kick(64, 256, IdleCpus{64, 130}.words), 130u);
}

TEST(SchedPolicyPlacement, NoIdleCpuOrOnlyOnesBeyondTheMachineMeansNoKick) {
    EXPECT_EQ(policy::idle_to_kick(1, 4, IdleCpus{}.words), 4u);
    EXPECT_EQ(policy::idle_to_kick(1, 4, IdleCpus{1}.words), 4u);
    EXPECT_EQ(policy::idle_to_kick(1, 4, IdleCpus{5}.words), 4u);
}

// --- Stealing. ---

TEST(SchedPolicySteal, BalancingTakesOnlyFromACpuWithMarginMoreThreads) {
    EXPECT_TRUE(policy::may_steal_from(/*theirs=*/5, /*mine=*/3, /*margin=*/2, policy::kAnyRound));
    EXPECT_FALSE(policy::may_steal_from(4, 3, 2, policy::kAnyRound));
    EXPECT_TRUE(policy::may_steal_from(1, 0, 1, policy::kAnyRound)) << "an idle CPU takes one";
    EXPECT_FALSE(policy::may_steal_from(1, 1, 1, policy::kAnyRound));
}

TEST(SchedPolicySteal, BehindRoundThreadsComeFromAnyCpuNotLighterThanThisOneWillBe) {
    EXPECT_TRUE(policy::may_steal_from(/*theirs=*/2, /*mine=*/3, 0, /*below_round=*/8));
    EXPECT_FALSE(policy::may_steal_from(1, 3, 0, 8));
}

TEST(SchedPolicySteal, ABehindRoundStealThatWouldUnbalanceTheCpusIsAnExchange) {
    EXPECT_TRUE(policy::steal_swaps(/*theirs=*/2, /*mine=*/3, /*below_round=*/8))
        << "taking alone would leave 4 and 1";
    EXPECT_TRUE(policy::steal_swaps(3, 3, 8));
    EXPECT_FALSE(policy::steal_swaps(3, 2, 8)) << "3 and 2 become 3 and 2 by taking alone";
    EXPECT_FALSE(policy::steal_swaps(1, 0, 8));
    EXPECT_FALSE(policy::steal_swaps(3, 3, policy::kAnyRound)) << "balancing never gives back";
}

TEST(SchedPolicySteal, OnlyAThreadItsAffinityAllowsBehindTheRoundAndOffItsCpu) {
    Thread t;
    t.round = 4;
    EXPECT_TRUE(policy::may_take(t, /*self=*/2, /*below_round=*/5));
    EXPECT_FALSE(policy::may_take(t, 2, 4)) << "not behind the round";
    EXPECT_TRUE(policy::may_take(t, 2, policy::kAnyRound));
    t.affinity = 1;
    EXPECT_FALSE(policy::may_take(t, 2, 5)) << "pinned elsewhere";
    t.affinity = 2;
    EXPECT_TRUE(policy::may_take(t, 2, 5));
    t.on_cpu = true;
    EXPECT_FALSE(policy::may_take(t, 2, 5)) << "still switching away on its old CPU";
}

TEST(SchedPolicySteal, AStealTakesTheThreadFurthestBehind) {
    Thread a, b, c;
    a.round = 7;
    b.round = 3;
    c.round = 3;
    EXPECT_TRUE(policy::steals_before(a, nullptr));
    EXPECT_TRUE(policy::steals_before(b, &a));
    EXPECT_FALSE(policy::steals_before(a, &b));
    EXPECT_FALSE(policy::steals_before(c, &b)) << "ties keep the first found";
}

// --- Sleepers and the timer. ---

std::vector<Thread*> order(const Sleepers& s) {
    std::vector<Thread*> out;
    for (Thread* t = s.first; t != nullptr; t = t->timer_next) {
        out.push_back(t);
    }
    return out;
}

TEST(SchedSleepers, SleepersAreKeptInDeadlineOrderAndEqualDeadlinesInArrivalOrder) {
    Thread a, b, c, d;
    a.wake_at = 300;
    b.wake_at = 100;
    c.wake_at = 300;
    d.wake_at = 200;
    Sleepers s;
    EXPECT_TRUE(s.insert(&a)) << "the first sleeper is new first";
    EXPECT_TRUE(s.insert(&b)) << "an earlier deadline is new first";
    EXPECT_FALSE(s.insert(&c));
    EXPECT_FALSE(s.insert(&d));
    EXPECT_EQ(order(s), (std::vector<Thread*>{&b, &d, &a, &c}));
    EXPECT_TRUE(a.in_timer && b.in_timer && c.in_timer && d.in_timer);
}

TEST(SchedSleepers, ASleeperWakesAtItsDeadlineAndNotBefore) {
    Thread a, b, c;
    a.wake_at = 100;
    b.wake_at = 100;
    c.wake_at = 250;
    Sleepers s;
    (void)s.insert(&a);
    (void)s.insert(&b);
    (void)s.insert(&c);
    EXPECT_EQ(s.pop_due(99), nullptr);
    EXPECT_EQ(s.pop_due(100), &a);
    EXPECT_FALSE(a.in_timer);
    EXPECT_EQ(a.timer_next, nullptr);
    EXPECT_EQ(s.pop_due(100), &b);
    EXPECT_EQ(s.pop_due(249), nullptr);
    EXPECT_EQ(s.pop_due(1000), &c);
    EXPECT_EQ(s.pop_due(1000), nullptr);
    EXPECT_EQ(s.first, nullptr);
}

// The shortcut that appends a sleeper due no earlier than the last one must give the order the
// walk gives, and `last` must follow every change, an emptied list included.
TEST(SchedSleepers, TheLastSleeperIsKeptThroughEveryInsertAndPop) {
    Thread a, b, c, d, e;
    a.wake_at = 200;
    b.wake_at = 200; // equal to the last: after it
    c.wake_at = 150; // before the last: walks
    d.wake_at = 500; // after the last: appended
    e.wake_at = 500;
    Sleepers s;
    (void)s.insert(&a);
    EXPECT_EQ(s.last, &a);
    EXPECT_FALSE(s.insert(&b));
    EXPECT_EQ(s.last, &b);
    EXPECT_TRUE(s.insert(&c));
    EXPECT_EQ(s.last, &b) << "a sleeper placed before the last leaves it last";
    EXPECT_FALSE(s.insert(&d));
    EXPECT_FALSE(s.insert(&e));
    EXPECT_EQ(order(s), (std::vector<Thread*>{&c, &a, &b, &d, &e}));
    EXPECT_EQ(s.last, &e);
    EXPECT_EQ(e.timer_next, nullptr);
    while (s.pop_due(1000) != nullptr) {
    }
    EXPECT_EQ(s.first, nullptr);
    EXPECT_EQ(s.last, nullptr) << "an emptied list has no last sleeper";
    a.wake_at = 50;
    EXPECT_TRUE(s.insert(&a)) << "a list emptied by pops takes a sleeper as its first";
    EXPECT_EQ(order(s), (std::vector<Thread*>{&a}));
    EXPECT_EQ(s.last, &a);
}

TEST(SchedTimer, ARunningThreadNeedsTheNextTickOrAnEarlierSleeper) {
    EXPECT_EQ(policy::timer_due(/*now=*/1000, policy::kNever, /*thread_runs=*/true, 250), 1250u);
    EXPECT_EQ(policy::timer_due(1000, 1100, true, 250), 1100u);
    EXPECT_EQ(policy::timer_due(1000, 5000, true, 250), 1250u);
}

TEST(SchedTimer, AnIdleCpuTakesNoTicksOnlyItsFirstSleeper) {
    EXPECT_EQ(policy::timer_due(1000, 5000, /*thread_runs=*/false, 250), 5000u);
    EXPECT_EQ(policy::timer_due(1000, policy::kNever, false, 250), policy::kNever);
}

TEST(SchedTimer, AnArmedTickStaysIfItComesInTimeAndIsStillAhead) {
    EXPECT_TRUE(policy::timer_stays(/*armed=*/1200, /*now=*/1000, /*due=*/1250, true));
    EXPECT_TRUE(policy::timer_stays(1250, 1000, 1250, true));
    EXPECT_FALSE(policy::timer_stays(1300, 1000, 1250, true)) << "too late for what is due";
    EXPECT_FALSE(policy::timer_stays(1000, 1000, 1250, true)) << "not ahead: it has fired";
}

TEST(SchedTimer, AnIdleCpusTimerIsReArmedUnlessExactlyDue) {
    EXPECT_FALSE(policy::timer_stays(1200, 1000, 5000, /*thread_runs=*/false))
        << "an idle CPU must not wake for a tick it does not need";
    EXPECT_TRUE(policy::timer_stays(5000, 1000, 5000, false));
}

} // namespace
