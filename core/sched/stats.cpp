// The scheduler's statistics: per-CPU counters and histograms (run delays, wake-up latencies),
// thread counts, and the sums behind Jain's fairness index. Read after a run for the report.

#include "internal.hpp"

#include <core/lib/atomic.hpp>
#include <core/sched/trace.hpp>

#include <hal/race.hpp>
#include <hal/trace.hpp>

namespace core::sched {

using namespace detail;

namespace {

uint64_t s_spawn_failures = 0;

// A thread's share of one CPU since it was due to start, in 1/65536ths.
uint64_t cpu_share(uint64_t run_ns, uint64_t lifetime_ns) {
    if (lifetime_ns == 0) {
        return 0;
    }
    uint64_t share = (run_ns << 16) / lifetime_ns;
    return share > 65536 ? 65536 : share;
}

// A percentile over every CPU's histogram of one kind, without merging them in memory.
uint64_t percentile(Histogram CpuHistograms::*which, uint32_t permille) {
    uint64_t total = 0;
    uint64_t max = 0;
    for (uint32_t c = 0; c < g_cpu_count; ++c) {
        if (const CpuHistograms* h = cpu(c).sched.histograms; h != nullptr) {
            total += (h->*which).total();
            max = (h->*which).max > max ? (h->*which).max : max;
        }
    }
    if (total == 0) {
        return 0;
    }
    uint64_t need = total * permille / 1000;
    need = need == 0 ? 1 : need;
    uint64_t seen = 0;
    for (unsigned i = 0; i < Histogram::kBuckets; ++i) {
        for (uint32_t c = 0; c < g_cpu_count; ++c) {
            if (const CpuHistograms* h = cpu(c).sched.histograms; h != nullptr) {
                seen += (h->*which).counts[i];
            }
        }
        if (seen >= need) {
            // The bucket's upper bound, but never above the largest sample.
            uint64_t upper = Histogram::bound(i);
            return upper < max ? upper : max;
        }
    }
    return max;
}

uint64_t maximum(Histogram CpuHistograms::*which) {
    uint64_t max = 0;
    for (uint32_t c = 0; c < g_cpu_count; ++c) {
        if (const CpuHistograms* h = cpu(c).sched.histograms; h != nullptr) {
            uint64_t m = (h->*which).max;
            max = m > max ? m : max;
        }
    }
    return max;
}

} // namespace

namespace detail {

void count_spawn_failure() {
    atomic::fetch_add<atomic::relaxed>(&s_spawn_failures, 1);
}

void record_exit_stats(Thread* t, uint64_t now, int code) {
    CpuHistograms& mine = *this_cpu().sched.histograms;
    ++mine.exits;
    // NOTE: integers only (Jain's index is worked out by the reader): the kernel is built
    // without floating point.
    if (t->cpu_bound && now > t->share_from_ns) {
        uint64_t share = cpu_share(t->run_ns, now - t->share_from_ns);
        mine.fair_sum += share;
        mine.fair_sum_sq += share * share;
        ++mine.fair_n;
    }
    // Its slot is reused once it is joined: what it did goes to the backend now.
    hal::ThreadSummary summary;
    summary.name = t->name;
    summary.pid = trace::pid(*t);
    summary.priority = t->link.priority;
    summary.cpu = t->cpu;
    summary.exit_code = code;
    summary.run_ns = t->run_ns;
    summary.run_delay_ns = t->run_delay_ns;
    summary.wakeups = t->wakeups;
    summary.preemptions = t->preemptions;
    summary.migrations = t->migrations;
    hal::thread_exited(summary);
}

} // namespace detail

uint64_t Histogram::total() const {
    uint64_t n = 0;
    for (uint64_t c : counts) {
        n += c;
    }
    return n;
}

uint64_t Histogram::bound(unsigned i) {
    if (i < kSub) {
        return i;
    }
    unsigned msb = i / kSub + 3;
    uint64_t sub = i % kSub;
    // NOTE: the last bucket's bound wraps to 2^64 - 1, as it should.
    return ((uint64_t{kSub} + sub + 1) << (msb - 4)) - 1;
}

uint64_t Histogram::percentile(uint32_t permille) const {
    uint64_t need = total() * permille / 1000;
    need = need == 0 ? 1 : need;
    uint64_t seen = 0;
    for (unsigned i = 0; i < kBuckets; ++i) {
        seen += counts[i];
        if (seen >= need) {
            return bound(i) < max ? bound(i) : max;
        }
    }
    return 0;
}

Stats stats(uint64_t now) {
    // NOTE: a snapshot while the other CPUs go on (init's last report): their counters and
    // threads are read without their locks on purpose, and may be a step apart.
    hal::RacyReads racy;
    Stats s;
    uint32_t most = 0;
    uint32_t least = ~0u;
    for (uint32_t i = 0; i < g_cpu_count; ++i) {
        const CpuSched& cs = cpu(i).sched;
        s.context_switches += cs.switches;
        s.preemptions += cs.preemptions;
        s.migrations += cs.migrations;
        s.wakeups += cs.wakeups;
        s.steals += cs.steals;
        s.handoffs += cs.handoffs;
        uint32_t load = cs.load();
        most = load > most ? load : most;
        least = load < least ? load : least;
    }
    s.max_runnable = most;
    s.min_runnable = g_cpu_count == 0 ? 0 : least;
    s.threads_created = threads_created();
    s.spawn_failures = s_spawn_failures;
    s.run_delay_p50 = percentile(&CpuHistograms::run_delay, 500);
    s.run_delay_p99 = percentile(&CpuHistograms::run_delay, 990);
    s.wakeup_latency_p50 = percentile(&CpuHistograms::wakeup_latency, 500);
    s.wakeup_latency_p99 = percentile(&CpuHistograms::wakeup_latency, 990);
    s.wakeup_latency_max = maximum(&CpuHistograms::wakeup_latency);
    uint64_t sum = 0;
    uint64_t sum_sq = 0;
    uint64_t n = 0;
    for (uint32_t i = 0; i < g_cpu_count; ++i) {
        const CpuHistograms& h = *cpu(i).sched.histograms;
        s.threads_exited += h.exits;
        sum += h.fair_sum;
        sum_sq += h.fair_sum_sq;
        n += h.fair_n;
    }
    // Live CPU-bound threads count with their share so far; a running one with its current
    // stint up to `now`.
    for_each_thread([&](const Thread& t) {
        if (t.idle || t.state == ThreadState::Exited) {
            return;
        }
        ++s.threads_live;
        uint64_t run = t.run_ns;
        if (t.state == ThreadState::Running && now > t.last_in_ns) {
            run += now - t.last_in_ns;
        }
        if (t.cpu_bound && now > t.share_from_ns) {
            uint64_t share = cpu_share(run, now - t.share_from_ns);
            sum += share;
            sum_sq += share * share;
            ++n;
        }
    });

    s.fair_threads = n;
    s.fair_share_sum = sum;
    s.fair_share_sum_sq = sum_sq;
    return s;
}

CpuCounters cpu_counters(uint32_t index) {
    hal::RacyReads racy; // as in stats()
    const CpuSched& cs = cpu(index).sched;
    return {cs.switches, cs.preemptions, cs.migrations, cs.steals, cs.handoffs};
}

} // namespace core::sched
