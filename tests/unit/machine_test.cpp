// The simulated machine itself: time, interrupt delivery, IPIs, stuck machines, faults and
// determinism. Each test boots a small kernel of its own through hal_sim::KernelEntry.

#include "test_support.hpp"

#include <core/boot/boot.hpp>
#include <core/cpu.hpp>
#include <core/sync/spinlock.hpp>
#include <hal/hal.hpp>
#include <hal_sim/fiber.hpp>
#include <hal_sim/kernel_image.hpp>
#include <hal_sim/machine.hpp>

#include <gtest/gtest.h>

#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cstring>
#include <set>
#include <string>
#include <vector>

namespace {

using hal_sim::Machine;
using hal_sim::MachineConfig;
using hal_sim::Verdict;

// What the test kernels record. Reset by each test.
struct Record {
    std::vector<uint64_t> timer_at;                    // now_ns() in each on_timer()
    std::vector<std::pair<uint32_t, uint64_t>> ipi_at; // (cpu, now_ns()) in each on_ipi()
    std::vector<uint32_t> order;                       // CPUs in the order they did something
    uint64_t value = 0;
};
Record g;

void record_timer() {
    g.timer_at.push_back(hal::now_ns());
}
void record_ipi(hal::IpiKind) {
    g.ipi_at.emplace_back(hal::cpu_index(), hal::now_ns());
}
[[noreturn]] void idle_forever() {
    for (;;) {
        hal::wait_for_interrupt();
    }
}

// Gives the calling CPU its core::Cpu entry, as the core's bring-up does (spinlocks need it).
void install_cpu(uint32_t index) {
    core::cpu(index).index = index;
    hal::set_this_cpu(&core::cpu(index));
}

MachineConfig config_for(void (*boot)(const core::BootInfo&), void (*ap)() = &idle_forever,
                         uint32_t cpus = 1) {
    g = Record{};
    MachineConfig c;
    c.cpus = cpus;
    c.memory = duet::test::fixture("qemu-q35-2g");
    c.kernel = {boot, ap, &record_timer, &record_ipi};
    return c;
}

TEST(Machine, TimerFiresAtItsDeadlineOnAnIdleCpu) {
    Machine m(config_for([](const core::BootInfo&) {
        hal::timer_arm(1'000'000);
        hal::wait_for_interrupt();
        g.value = hal::now_ns();
        hal::halt_machine(hal::ExitCode::Success);
    }));
    auto r = m.run();
    ASSERT_EQ(r.verdict, Verdict::Success) << r.detail;
    const uint64_t entry = m.config().costs.interrupt;
    ASSERT_EQ(g.timer_at.size(), 1u);
    EXPECT_EQ(g.timer_at[0], 1'000'000 + entry); // the idle CPU jumped to the event
    EXPECT_EQ(g.value, 1'000'000 + entry);
}

TEST(Machine, InterruptsWaitWhileDisabledAndArriveWhenEnabled) {
    Machine m(config_for([](const core::BootInfo&) {
        hal::IrqFlags f = hal::irq_save(); // interrupts were off at entry: stays off
        hal::timer_arm(1'000);
        hal::cpu_work(50'000); // the deadline passes with interrupts off
        g.value = g.timer_at.size();
        hal::irq_restore(1); // enabling delivers the pending tick at once
        (void)f;
        hal::halt_machine(hal::ExitCode::Success);
    }));
    auto r = m.run();
    ASSERT_EQ(r.verdict, Verdict::Success) << r.detail;
    EXPECT_EQ(g.value, 0u) << "a tick was delivered with interrupts off";
    ASSERT_EQ(g.timer_at.size(), 1u);
    EXPECT_EQ(g.timer_at[0], 50'000 + m.config().costs.interrupt);
}

TEST(Machine, WorkIsInterruptedAtTheDeadlineAndGoesOn) {
    Machine m(config_for([](const core::BootInfo&) {
        hal::irq_restore(1);
        hal::timer_arm(3'000);
        hal::cpu_work(10'000);
        g.value = hal::now_ns();
        hal::halt_machine(hal::ExitCode::Success);
    }));
    auto r = m.run();
    ASSERT_EQ(r.verdict, Verdict::Success) << r.detail;
    const uint64_t entry = m.config().costs.interrupt;
    ASSERT_EQ(g.timer_at.size(), 1u);
    EXPECT_EQ(g.timer_at[0], 3'000 + entry);
    EXPECT_EQ(g.value, 10'000 + entry) << "the work must be done in full, plus the interrupt";
}

TEST(Machine, IpiReachesAnIdleCpuAfterTheLatency) {
    Machine m(config_for(
        [](const core::BootInfo&) {
            hal::release_secondary_cpus();
            hal::cpu_work(5'000);
            hal::send_ipi(1, hal::IpiKind::Reschedule);
            while (g.ipi_at.empty()) {
                hal::cpu_relax();
            }
            hal::halt_machine(hal::ExitCode::Success);
        },
        &idle_forever, 2));
    auto r = m.run();
    ASSERT_EQ(r.verdict, Verdict::Success) << r.detail;
    ASSERT_EQ(g.ipi_at.size(), 1u);
    EXPECT_EQ(g.ipi_at[0].first, 1u);
    const auto& costs = m.config().costs;
    EXPECT_EQ(g.ipi_at[0].second, 5'000 + costs.ipi_latency + costs.interrupt);
}

TEST(Machine, TheCpuFurthestBehindStepsNext) {
    // Two CPUs doing work of different lengths: their steps interleave by virtual time.
    Machine m(config_for(
        [](const core::BootInfo&) {
            hal::release_secondary_cpus();
            for (int i = 0; i < 4; ++i) {
                hal::cpu_work(3'000);
                g.order.push_back(0);
            }
            while (g.order.size() < 8) {
                hal::cpu_relax();
            }
            hal::halt_machine(hal::ExitCode::Success);
        },
        [] {
            for (int i = 0; i < 4; ++i) {
                hal::cpu_work(1'000);
                g.order.push_back(1);
            }
            idle_forever();
        },
        2));
    auto r = m.run();
    ASSERT_EQ(r.verdict, Verdict::Success) << r.detail;
    // cpu 1 finishes its work at 1, 2, 3, 4 us; cpu 0 at 3, 6, 9, 12 us. At 3 us both are
    // done: either order is fine, so compare what is fixed.
    ASSERT_EQ(g.order.size(), 8u);
    EXPECT_EQ(g.order[0], 1u);
    EXPECT_EQ(g.order[1], 1u);
    EXPECT_EQ(g.order[6], 0u);
    EXPECT_EQ(g.order[7], 0u);
}

// The executor keeps each CPU's ready time in its heap, entered whenever it changes: an idle
// CPU that another CPU's IPI makes ready, while a third CPU is still behind, runs in its turn
// by virtual time, not as soon as the IPI is sent. Each CPU notes the time it acts at: in the
// order they act, the times never go back.
std::vector<std::pair<uint32_t, uint64_t>> g_acts;
void note_act() {
    g_acts.emplace_back(hal::cpu_index(), hal::now_ns());
}

TEST(Machine, AnIdleCpuWokenByAnIpiRunsInItsTurnByVirtualTime) {
    g_acts.clear();
    MachineConfig c = config_for(
        [](const core::BootInfo&) {
            hal::release_secondary_cpus();
            hal::cpu_work(10'000); // cpu 1 has not run yet: it is at 0
            hal::send_ipi(2, hal::IpiKind::Reschedule);
            hal::cpu_work(100'000);
            hal::halt_machine(hal::ExitCode::Success);
        },
        [] {
            if (hal::cpu_index() == 1) {
                for (int i = 0; i < 10; ++i) {
                    note_act();
                    hal::cpu_work(5'000);
                }
            }
            idle_forever();
        },
        3);
    c.kernel.on_ipi = [](hal::IpiKind) { note_act(); };
    Machine m(c);
    auto r = m.run();
    ASSERT_EQ(r.verdict, Verdict::Success) << r.detail;
    const auto& costs = m.config().costs;
    int woken = 0;
    for (size_t i = 0; i < g_acts.size(); ++i) {
        auto [cpu, at] = g_acts[i];
        if (cpu == 2) {
            ++woken;
            EXPECT_EQ(at, 10'000 + costs.ipi_latency + costs.interrupt);
        }
        if (i > 0) {
            EXPECT_LE(g_acts[i - 1].second, at) << "cpu " << cpu << " acted out of turn";
        }
    }
    EXPECT_EQ(woken, 1);
    EXPECT_EQ(g_acts.size(), 11u);
}

// A StackArena installs the guard pages of a whole slab at once, for stacks of the slab's
// size: a stack of another size carved from the rest of the slab still gets its own.
TEST(StackArenaDeathTest, EveryStackHasItsGuardPageWhateverItsSize) {
    hal_sim::StackArena arena;
    std::vector<hal_sim::FiberStack> stacks;
    stacks.push_back(arena.carve(16 * 1024));
    stacks.push_back(arena.carve(16 * 1024));
    stacks.push_back(arena.carve(40 * 1024)); // the same slab, another size
    stacks.push_back(arena.carve(16 * 1024));
    for (const hal_sim::FiberStack& s : stacks) {
        auto* bottom = static_cast<volatile std::byte*>(const_cast<void*>(s.bounds().bottom));
        bottom[0] = std::byte{1}; // the stack itself is writable, to the last byte
        EXPECT_EQ(static_cast<int>(bottom[0]), 1);
        EXPECT_TRUE(s.in_guard(const_cast<std::byte*>(bottom - 1)));
        EXPECT_DEATH(bottom[-1] = std::byte{1}, "");
    }
}

// A machine that filled a slab of host stacks has the top pages of the next slab's stacks
// given memory ahead, in one system call, where the host allows it (process_madvise on this
// process, Linux 6.13 on); the stacks are whole and guarded either way.
TEST(StackArena, TheTopPagesOfALaterSlabAreGivenMemoryAhead) {
    size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    int pidfd = static_cast<int>(syscall(SYS_pidfd_open, getpid(), 0));
    void* probe = mmap(nullptr, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    iovec one{probe, page};
    bool host_can = pidfd >= 0 && syscall(SYS_process_madvise, pidfd, &one, 1,
                                          23 /*MADV_POPULATE_WRITE*/, 0) == static_cast<long>(page);
    munmap(probe, page);
    if (pidfd >= 0) {
        close(pidfd);
    }
    hal_sim::StackArena arena;
    std::vector<hal_sim::FiberStack> stacks;
    for (int i = 0; i < 3 * 64; ++i) {
        stacks.push_back(arena.carve(16 * 1024));
    }
    for (size_t i = 0; i < stacks.size(); ++i) {
        auto* top = static_cast<std::byte*>(stacks[i].top()) - page;
        unsigned char resident = 0;
        ASSERT_EQ(mincore(top, page, &resident), 0);
        if (i >= 64 && host_can) {
            EXPECT_TRUE(resident & 1) << "stack " << i;
        } else if (i < 64) {
            EXPECT_FALSE(resident & 1) << "stack " << i << ": the first slab is not populated";
        }
        auto* bottom =
            static_cast<volatile std::byte*>(const_cast<void*>(stacks[i].bounds().bottom));
        bottom[0] = std::byte{1};
        static_cast<volatile std::byte*>(stacks[i].top())[-1] = std::byte{1};
        EXPECT_TRUE(stacks[i].in_guard(const_cast<std::byte*>(bottom - 1)));
    }
}

uint64_t recurse(uint64_t n);

hal::ArchContext g_boot_ctx;
hal::ArchContext g_thread_ctx;

TEST(Machine, ContextSwitchKeepsEachContextsInterruptState) {
    Machine m(config_for([](const core::BootInfo&) {
        hal::context_init(
            g_thread_ctx, hal::VirtAddr(0), 64 * 1024,
            [](void* arg) {
                auto* rounds = static_cast<uint64_t*>(arg);
                // A new context starts with interrupts off; its entry turns them on.
                EXPECT_FALSE(hal::irq_enabled());
                hal::irq_enable();
                for (;;) {
                    EXPECT_TRUE(hal::irq_enabled());
                    ++*rounds;
                    hal::context_switch(g_thread_ctx, g_boot_ctx);
                }
            },
            &g.value, "worker");
        for (int i = 0; i < 5; ++i) {
            EXPECT_FALSE(hal::irq_enabled()); // the boot context runs with interrupts off
            hal::context_switch(g_boot_ctx, g_thread_ctx);
        }
        hal::halt_machine(hal::ExitCode::Success);
    }));
    auto r = m.run();
    ASSERT_EQ(r.verdict, Verdict::Success) << r.detail;
    EXPECT_EQ(g.value, 5u);
    EXPECT_EQ(m.cpu(0).context_switches, 10u);
    EXPECT_EQ(m.cpu(0).clock_ns, 10 * m.config().costs.context_switch);
}

// Leaves its context for good from a deep frame, as an exiting thread leaves from the middle
// of a switch.
[[gnu::noinline]] void leave_from_a_deep_frame() {
    volatile char frame[4096];
    frame[0] = 1;
    g.value = frame[0];
    hal::context_switch(g_thread_ctx, g_boot_ctx); // never resumed
}

// A released context's host stack goes to the next context, which must be able to use all of
// it. In sanitizer builds the frames the last context never returned from left their
// AddressSanitizer poison behind, and the next context's frames were reported as stack
// underflows (the fault sweep found it, seed 21).
TEST(Machine, AReleasedContextsStackIsWhollyUsableByTheNextOne) {
    Machine m(config_for([](const core::BootInfo&) {
        hal::context_init(
            g_thread_ctx, hal::VirtAddr(0), 64 * 1024, [](void*) { leave_from_a_deep_frame(); },
            nullptr, "leaver");
        hal::context_switch(g_boot_ctx, g_thread_ctx);
        hal::context_release(g_thread_ctx);
        hal::context_init(
            g_thread_ctx, hal::VirtAddr(0), 64 * 1024,
            [](void*) {
                volatile char big[32 * 1024];
                for (size_t i = 0; i < sizeof big; i += 8) {
                    big[i] = 1;
                }
                g.value = big[8];
                hal::context_switch(g_thread_ctx, g_boot_ctx);
            },
            nullptr, "next");
        hal::context_switch(g_boot_ctx, g_thread_ctx);
        hal::halt_machine(hal::ExitCode::Success);
    }));
    auto r = m.run();
    EXPECT_EQ(r.verdict, Verdict::Success) << r.detail;
    EXPECT_EQ(g.value, 1u);
}

TEST(Machine, TimerPreemptsAThreadAndTheHandlerCanSwitch) {
    // The tick handler switches from the worker back to the boot context, as a scheduler
    // preempting at the end of a time slice would.
    MachineConfig c = config_for([](const core::BootInfo&) {
        hal::context_init(
            g_thread_ctx, hal::VirtAddr(0), 64 * 1024,
            [](void*) {
                hal::irq_enable();
                hal::timer_arm(hal::now_ns() + 10'000);
                for (;;) {
                    hal::cpu_work(1'000);
                    ++g.value;
                }
            },
            nullptr, "worker");
        hal::context_switch(g_boot_ctx, g_thread_ctx);
        // Back here from the timer handler, inside the interrupted worker's interrupt.
        g.order.push_back(static_cast<uint32_t>(g.value));
        hal::halt_machine(hal::ExitCode::Success);
    });
    c.kernel.on_timer = [] { hal::context_switch(g_thread_ctx, g_boot_ctx); };
    Machine m(c);
    auto r = m.run();
    ASSERT_EQ(r.verdict, Verdict::Success) << r.detail;
    ASSERT_EQ(g.order.size(), 1u);
    EXPECT_EQ(g.order[0], 9u); // 10 us of slice, 1 us per round, the switch cost first
}

TEST(Machine, ThreadStackOverflowNamesTheThread) {
#ifdef DUET_SANITIZE
    GTEST_SKIP() << "AddressSanitizer reports the overflow itself, before the guard page";
#endif
    Machine m(config_for([](const core::BootInfo&) {
        hal::context_init(
            g_thread_ctx, hal::VirtAddr(0), 16 * 1024, [](void*) { g.value = recurse(0); }, nullptr,
            "deep-thinker");
        hal::context_switch(g_boot_ctx, g_thread_ctx);
        hal::halt_machine(hal::ExitCode::Success);
    }));
    auto r = m.run();
    EXPECT_EQ(r.verdict, Verdict::StackOverflow);
    EXPECT_EQ(r.detail, "kernel stack overflow on cpu 0: deep-thinker ran into its guard page");
}

TEST(Machine, DeadlockIsReportedWithEachCpu) {
    Machine m(config_for(
        [](const core::BootInfo&) {
            hal::release_secondary_cpus();
            idle_forever();
        },
        &idle_forever, 2));
    auto r = m.run();
    EXPECT_EQ(r.verdict, Verdict::Deadlock);
    EXPECT_NE(r.detail.find("cpu 0: idle, waiting for an interrupt"), std::string::npos)
        << r.detail;
    EXPECT_NE(r.detail.find("cpu 1: idle"), std::string::npos) << r.detail;
    EXPECT_NE(r.detail.find("nothing pending"), std::string::npos) << r.detail;
}

core::SpinLock g_lock("test.lock", core::LockRank::Test);

TEST(Machine, LivelockNamesTheLockAndItsHolder) {
    MachineConfig c = config_for(
        [](const core::BootInfo&) {
            install_cpu(0);
            g_lock.lock(); // and never lets go, while looking busy
            hal::release_secondary_cpus();
            for (;;) {
                hal::cpu_work(1'000'000);
            }
        },
        [] {
            install_cpu(1);
            g_lock.lock();
            idle_forever();
        },
        2);
    c.livelock_ns = 5'000'000;
    Machine m(c);
    auto r = m.run();
    EXPECT_EQ(r.verdict, Verdict::Livelock);
    EXPECT_NE(r.detail.find("cpu 1 spun for"), std::string::npos) << r.detail;
    EXPECT_NE(r.detail.find("waiting for spinlock 'test.lock' held by cpu 0"), std::string::npos)
        << r.detail;
}

// Lock ranks: every acquisition is checked against the locks the CPU holds, so an order that
// could deadlock stops the kernel the first time it is taken, naming both locks. (The locks
// live on the boot stack: a panicking test leaves them taken.)
struct RankedLocks {
    core::SpinLock frames{"test.frames", core::LockRank::Frames};
    core::SpinLock heap{"test.heap", core::LockRank::Heap};
    core::SpinLock heap_too{"test.heap2", core::LockRank::Heap};
};

TEST(Machine, LocksTakenInRankOrderAndReleasedInAnyOrderAreFine) {
    Machine m(config_for([](const core::BootInfo&) {
        install_cpu(0);
        RankedLocks l;
        l.heap.lock();
        l.frames.lock();
        l.heap.unlock(); // not last in, first out: ranks are a set
        l.frames.unlock();
        l.heap_too.lock();
        l.heap_too.unlock();
        l.frames.lock();
        l.frames.unlock();
        hal::halt_machine(core::cpu(0).locks.ranks_held == 0 ? hal::ExitCode::Success
                                                             : hal::ExitCode::Failure);
    }));
    auto r = m.run();
    EXPECT_EQ(r.verdict, Verdict::Success) << r.detail << m.com1().transcript();
}

TEST(Machine, ALockTakenOutOfRankOrderPanicsNamingBothLocks) {
    Machine m(config_for([](const core::BootInfo&) {
        install_cpu(0);
        RankedLocks l;
        l.frames.lock();
        l.heap.lock(); // heap ranks below frames: the heap takes frames, never the reverse
        hal::halt_machine(hal::ExitCode::Success);
    }));
    auto r = m.run();
    EXPECT_EQ(r.verdict, Verdict::Panic);
    EXPECT_NE(m.com1().transcript().find("panic: lock order: cpu 0 takes 'test.heap' (rank heap) "
                                         "while holding 'test.frames' (rank frames)"),
              std::string::npos)
        << m.com1().transcript();
}

TEST(Machine, TwoLocksOfOneRankAreNeverHeldTogether) {
    Machine m(config_for([](const core::BootInfo&) {
        install_cpu(0);
        RankedLocks l;
        l.heap.lock();
        l.heap_too.lock();
        hal::halt_machine(hal::ExitCode::Success);
    }));
    auto r = m.run();
    EXPECT_EQ(r.verdict, Verdict::Panic);
    EXPECT_NE(m.com1().transcript().find("takes 'test.heap2' (rank heap) while holding "
                                         "'test.heap' (rank heap)"),
              std::string::npos)
        << m.com1().transcript();
}

// A kernel loop with no preemption point would never give the executor back: the watchdog
// (host CPU time per step) ends the run instead of hanging the host, naming the CPU.
TEST(Machine, AKernelLoopWithoutPreemptionPointsStopsAsAHang) {
    MachineConfig c = config_for([](const core::BootInfo&) {
        volatile uint64_t spins = 0;
        for (;;) {
            spins = spins + 1; // no cpu_relax(): the bug
        }
    });
    c.watchdog_ns = 200'000'000;
    Machine m(c);
    auto r = m.run();
    EXPECT_EQ(r.verdict, Verdict::Hang);
    EXPECT_NE(r.detail.find("cpu 0 (cpu 0 boot stack) ran for 0.200000000 s of host CPU time "
                            "without reaching a preemption point"),
              std::string::npos)
        << r.detail;
    // The machine stays usable for what comes after: the report, another machine.
    Machine next(
        config_for([](const core::BootInfo&) { hal::halt_machine(hal::ExitCode::Success); }));
    EXPECT_EQ(next.run().verdict, Verdict::Success);
}

TEST(Machine, TouchingReservedMemoryStopsTheRunWithTheAddress) {
    Machine m(config_for([](const core::BootInfo&) {
        auto* p = static_cast<volatile uint32_t*>(hal::phys_to_virt(hal::PhysAddr(0xb0000010)));
        *p = 1;
        hal::halt_machine(hal::ExitCode::Success);
    }));
    auto r = m.run();
    EXPECT_EQ(r.verdict, Verdict::MemoryFault);
    EXPECT_EQ(r.detail, "cpu 0 (cpu 0 boot stack) wrote physical address 0xb0000010, which is "
                        "reserved (E820 type 2, [0xb0000000, 0xc0000000))");
}

TEST(Machine, ReadingAbsentMemoryIsReportedToo) {
    Machine m(config_for([](const core::BootInfo&) {
        auto* p = static_cast<volatile uint32_t*>(hal::phys_to_virt(hal::PhysAddr(0xc0000000)));
        g.value = *p;
        hal::halt_machine(hal::ExitCode::Success);
    }));
    auto r = m.run();
    EXPECT_EQ(r.verdict, Verdict::MemoryFault);
    EXPECT_NE(r.detail.find("read physical address 0xc0000000, which is absent"), std::string::npos)
        << r.detail;
}

// Recurses until the stack runs out (the bound is never reached: it only keeps the compiler
// from calling the recursion infinite).
__attribute__((noinline)) uint64_t recurse(uint64_t n) {
    volatile char pad[512];
    pad[0] = static_cast<char>(n);
    if (n > (1ull << 40)) {
        return 0;
    }
    return recurse(n + 1) + pad[0];
}

TEST(Machine, StackOverflowHitsTheGuardPageAndNamesTheStack) {
#ifdef DUET_SANITIZE
    GTEST_SKIP() << "AddressSanitizer reports the overflow itself, before the guard page";
#endif
    Machine m(config_for([](const core::BootInfo&) {
        g.value = recurse(0);
        hal::halt_machine(hal::ExitCode::Success);
    }));
    auto r = m.run();
    EXPECT_EQ(r.verdict, Verdict::StackOverflow);
    EXPECT_NE(r.detail.find("kernel stack overflow on cpu 0: cpu 0 boot stack"), std::string::npos)
        << r.detail;
    // The process survives and can boot another machine.
    Machine again(
        config_for([](const core::BootInfo&) { hal::halt_machine(hal::ExitCode::Success); }));
    EXPECT_EQ(again.run().verdict, Verdict::Success);
}

TEST(Machine, TimeLimitStopsARunawayKernel) {
    MachineConfig c = config_for([](const core::BootInfo&) {
        for (;;) {
            hal::cpu_work(1'000'000);
        }
    });
    c.time_limit_ns = 50'000'000;
    Machine m(c);
    EXPECT_EQ(m.run().verdict, Verdict::TimeLimit);
}

TEST(Machine, StopAtEndsARunSuccessfullyAtThatTime) {
    MachineConfig c = config_for([](const core::BootInfo&) {
        for (;;) {
            hal::cpu_work(100'000);
        }
    });
    c.stop_at_ns = 1'000'000;
    Machine m(c);
    auto r = m.run();
    EXPECT_EQ(r.verdict, Verdict::Success) << r.detail;
    EXPECT_EQ(m.cpu(0).clock_ns, 1'000'000u);
}

TEST(Machine, IdleTimeIsAccounted) {
    Machine m(config_for([](const core::BootInfo&) {
        hal::cpu_work(1'000);
        hal::timer_arm(11'000);
        hal::wait_for_interrupt();
        hal::halt_machine(hal::ExitCode::Success);
    }));
    ASSERT_EQ(m.run().verdict, Verdict::Success);
    EXPECT_EQ(m.cpu(0).idle_ns, 10'000u);
}

TEST(Machine, InjectedFaultsAreSeededAndLogged) {
    auto run = [](uint64_t seed) {
        MachineConfig c = config_for([](const core::BootInfo&) {
            for (int i = 0; i < 64; ++i) {
                g.value = g.value * 2 + (hal::inject_fault(hal::FaultPoint::FrameAlloc) ? 1 : 0);
            }
            hal::halt_machine(hal::ExitCode::Success);
        });
        c.seed = seed;
        c.faults.frame_alloc = 0.5;
        Machine m(c);
        m.run();
        return std::make_pair(g.value, m.events());
    };
    auto [a, events_a] = run(7);
    auto [b, events_b] = run(7);
    auto [other, events_other] = run(8);
    EXPECT_EQ(a, b);
    EXPECT_EQ(events_a, events_b);
    EXPECT_NE(a, other);
    EXPECT_EQ(events_a.size(), static_cast<size_t>(__builtin_popcountll(a)));
    ASSERT_FALSE(events_a.empty());
    EXPECT_NE(events_a[0].find("fault: frame_alloc"), std::string::npos) << events_a[0];
}

TEST(Machine, DisarmingIsNeverALateTimer) {
    MachineConfig c = config_for([](const core::BootInfo&) {
        hal::irq_restore(1);
        hal::timer_arm(UINT64_MAX);
        hal::cpu_work(1'000'000);
        hal::halt_machine(hal::ExitCode::Success);
    });
    c.faults.timer_late = 1;
    Machine m(c);
    ASSERT_EQ(m.run().verdict, Verdict::Success);
    EXPECT_TRUE(g.timer_at.empty()) << "a disarmed timer fired at " << g.timer_at[0];
    EXPECT_TRUE(m.events().empty());
}

TEST(Machine, LateTicksAndDuplicatedIpisAreInjected) {
    MachineConfig c = config_for(
        [](const core::BootInfo&) {
            hal::release_secondary_cpus();
            hal::send_ipi(1, hal::IpiKind::Reschedule);
            hal::timer_arm(1'000);
            hal::wait_for_interrupt();
            while (g.ipi_at.size() < 2) {
                hal::cpu_relax();
            }
            hal::halt_machine(hal::ExitCode::Success);
        },
        &idle_forever, 2);
    c.faults.timer_late = 1;
    c.faults.ipi_duplicate = 1;
    c.faults.late_max_ns = 10'000;
    Machine m(c);
    auto r = m.run();
    ASSERT_EQ(r.verdict, Verdict::Success) << r.detail;
    ASSERT_EQ(g.timer_at.size(), 1u);
    EXPECT_GT(g.timer_at[0], 1'000 + m.config().costs.interrupt);
    EXPECT_EQ(g.ipi_at.size(), 2u);
    EXPECT_EQ(m.events().size(), 2u);
}

// The core's own SMP bring-up is the racy workload: CPUs come online in an order decided by
// the seeded tie-breaks between CPUs at the same virtual time.
std::string boot_core(uint32_t cpus, uint64_t seed,
                      hal_sim::Firmware firmware = hal_sim::Firmware::BootbootBios) {
    MachineConfig c;
    c.cpus = cpus;
    c.seed = seed;
    c.firmware = firmware;
    c.memory = duet::test::fixture("qemu-q35-2g");
    Machine m(c);
    auto r = m.run();
    EXPECT_EQ(r.verdict, Verdict::Success) << r.detail;
    return m.com1().transcript();
}

// --- Kernel stacks' translations (contexts.cpp): each CPU caches the top page of the stacks it
// wrote a first frame on or resumed a context on, until it flushes the page. ---

// A kernel stack of four pages in the kernel half, mapped by tables each test kernel builds in
// simulated RAM (at 512 MiB, which nothing else uses in these machines).
namespace stack_tables {
constexpr uint64_t kPml4 = 0x2000'0000, kPdpt = kPml4 + 0x1000, kPd = kPml4 + 0x2000,
                   kPt = kPml4 + 0x3000;
constexpr uint64_t kFrames = 0x2010'0000; // the stack's four frames: the top page's is 0x20103000
constexpr uint64_t kBottom = 0xFFFF'FFFF'C000'1000;
constexpr uint64_t kTop = kBottom + 4 * 0x1000;
constexpr uint64_t kTopPage = kTop - 0x1000;
constexpr uint64_t kPresentWritable = 3;

uint64_t& entry(uint64_t table, unsigned index) {
    return static_cast<uint64_t*>(hal::phys_to_virt(hal::PhysAddr(table)))[index];
}
// Maps the stack's top page to `frame` (0: unmaps it), without a flush.
void map_top(uint64_t frame) {
    entry(kPt, static_cast<unsigned>((kTopPage >> 12) & 511)) =
        frame != 0 ? frame | kPresentWritable : 0;
}
// Builds the tables, maps the stack and loads them.
void build() {
    for (uint64_t t : {kPml4, kPdpt, kPd, kPt}) {
        std::memset(hal::phys_to_virt(hal::PhysAddr(t)), 0, 0x1000);
    }
    entry(kPml4, 511) = kPdpt | kPresentWritable;
    entry(kPdpt, 511) = kPd | kPresentWritable;
    entry(kPd, static_cast<unsigned>((kBottom >> 21) & 511)) = kPt | kPresentWritable;
    for (uint64_t i = 0; i < 4; ++i) {
        entry(kPt, static_cast<unsigned>(((kBottom >> 12) + i) & 511)) =
            (kFrames + i * 0x1000) | kPresentWritable;
    }
    hal::load_page_table(hal::PhysAddr(kPml4));
}
constexpr uint64_t kOtherFrame = kFrames + 8 * 0x1000; // where the top page is mapped again

// A context on that stack, `self`, that counts its runs and switches back to `back`, for ever.
struct Counter {
    hal::ArchContext* self;
    hal::ArchContext* back;
};
Counter g_counter{&g_thread_ctx, &g_boot_ctx};
void init_counter(Counter& counter = g_counter, const char* name = "counter") {
    hal::context_init(
        *counter.self, hal::VirtAddr(kBottom), kTop - kBottom,
        [](void* arg) {
            auto& c = *static_cast<Counter*>(arg);
            for (;;) {
                ++g.value;
                hal::context_switch(*c.self, *c.back);
            }
        },
        &counter, name);
}
} // namespace stack_tables

TEST(Machine, ACpuResumesAThreadThroughItsCachedTranslationUntilItFlushesThePage) {
    using namespace stack_tables;
    Machine m(config_for([](const core::BootInfo&) {
        build();
        init_counter();
        hal::context_switch(g_boot_ctx, g_thread_ctx);
        // Remapped without a flush: this CPU still reaches the frame the thread's stack is in,
        // as the machine's TLB would, and the thread runs on.
        map_top(kOtherFrame);
        hal::context_switch(g_boot_ctx, g_thread_ctx);
        // Flushed: it reaches the other frame, where the thread's stack is not.
        hal::flush_tlb_page(hal::VirtAddr(kTopPage));
        hal::context_switch(g_boot_ctx, g_thread_ctx);
        hal::halt_machine(hal::ExitCode::Success);
    }));
    auto r = m.run();
    EXPECT_EQ(r.verdict, Verdict::StaleTranslation) << r.detail;
    EXPECT_EQ(g.value, 2u) << "ran twice, and not the third time";
    EXPECT_EQ(r.detail, "cpu 0 resumed counter through a stale translation of its kernel stack: "
                        "its top page 0xffffffffc0004000 was written in frame 0x20103000 and "
                        "this CPU reaches it in frame 0x20108000, the tables map it to frame "
                        "0x20108000; the tables changed since cpu 0 wrote its first frame: that "
                        "CPU wrote through a stale translation (a missing INVLPG there), or the "
                        "stack was mapped again under the thread. On the machine it resumes on "
                        "another frame's contents");
}

// What spawn() got wrong on QEMU: a first frame written through a CPU's stale translation of a
// stack slot that was mapped again since.
void write_first_frame_after_a_remap(bool flush_first) {
    using namespace stack_tables;
    build();
    init_counter();
    hal::context_switch(g_boot_ctx, g_thread_ctx); // this CPU caches the slot
    hal::context_release(g_thread_ctx);
    map_top(kOtherFrame); // the slot mapped again, to other frames
    if (flush_first) {
        hal::flush_tlb_page(hal::VirtAddr(kTopPage));
    }
    init_counter();
    // Another CPU would reach the slot through the tables: this one too, once flushed.
    hal::flush_tlb_page(hal::VirtAddr(kTopPage));
    hal::context_switch(g_boot_ctx, g_thread_ctx);
    hal::halt_machine(hal::ExitCode::Success);
}

TEST(Machine, AFirstFrameWrittenThroughAStaleTranslationIsFoundWhereTheThreadRuns) {
    Machine m(config_for(
        [](const core::BootInfo&) { write_first_frame_after_a_remap(/*flush_first=*/false); }));
    auto r = m.run();
    EXPECT_EQ(r.verdict, Verdict::StaleTranslation) << r.detail;
    EXPECT_EQ(g.value, 1u) << "only the first context ran";
    EXPECT_NE(r.detail.find("written in frame 0x20103000 and this CPU reaches it in frame "
                            "0x20108000"),
              std::string::npos)
        << r.detail;
}

TEST(Machine, AFirstFrameWrittenAfterTheFlushRunsWherever) {
    Machine m(config_for(
        [](const core::BootInfo&) { write_first_frame_after_a_remap(/*flush_first=*/true); }));
    auto r = m.run();
    EXPECT_EQ(r.verdict, Verdict::Success) << r.detail;
    EXPECT_EQ(g.value, 2u);
}

// Two CPUs: the second resumes a thread on a stack slot it cached before the first mapped the
// slot again (flushing only itself) and wrote a new thread's first frame there. The stale side
// is the resuming CPU's TLB.
hal::ArchContext g_ap_boot_ctx;
hal::ArchContext g_ap_thread_ctx;
stack_tables::Counter g_ap_counter{&g_ap_thread_ctx, &g_ap_boot_ctx};
int g_stage = 0;

void wait_for_stage(int stage) {
    while (__atomic_load_n(&g_stage, __ATOMIC_ACQUIRE) != stage) {
        hal::cpu_relax();
    }
}

TEST(Machine, ACpuThatCachedAStackSlotResumesANewThreadThroughTheOldFrame) {
    using namespace stack_tables;
    g_stage = 0;
    Machine m(config_for(
        [](const core::BootInfo&) {
            build();
            __atomic_store_n(&g_stage, 1, __ATOMIC_RELEASE);
            hal::release_secondary_cpus();
            wait_for_stage(2);
            hal::context_release(g_ap_thread_ctx);
            map_top(kOtherFrame);
            hal::flush_tlb_page(hal::VirtAddr(kTopPage)); // this CPU only: no shootdown
            init_counter(g_ap_counter, "second");
            __atomic_store_n(&g_stage, 3, __ATOMIC_RELEASE);
            for (;;) {
                hal::cpu_relax();
            }
        },
        [] {
            wait_for_stage(1);
            hal::load_page_table(hal::PhysAddr(kPml4));
            init_counter(g_ap_counter, "first");
            hal::context_switch(g_ap_boot_ctx, g_ap_thread_ctx); // caches the slot
            __atomic_store_n(&g_stage, 2, __ATOMIC_RELEASE);
            wait_for_stage(3);
            hal::context_switch(g_ap_boot_ctx, g_ap_thread_ctx);
            hal::halt_machine(hal::ExitCode::Success);
        },
        2));
    auto r = m.run();
    EXPECT_EQ(r.verdict, Verdict::StaleTranslation) << r.detail;
    EXPECT_EQ(g.value, 1u) << "the first thread ran, the second did not";
    EXPECT_EQ(r.detail, "cpu 1 resumed second through a stale translation of its kernel stack: "
                        "its top page 0xffffffffc0004000 was written in frame 0x20108000 and "
                        "this CPU reaches it in frame 0x20103000, the tables map it to frame "
                        "0x20108000; cpu 1's TLB still holds an earlier frame of the page: a "
                        "missing INVLPG or TLB shootdown there. On the machine it resumes on "
                        "another frame's contents");
}

TEST(Machine, AThreadResumedOnAnUnmappedKernelStackIsAMemoryFault) {
    using namespace stack_tables;
    Machine m(config_for([](const core::BootInfo&) {
        build();
        init_counter();
        hal::context_switch(g_boot_ctx, g_thread_ctx);
        map_top(0);
        hal::flush_tlb_all();
        hal::context_switch(g_boot_ctx, g_thread_ctx);
        hal::halt_machine(hal::ExitCode::Success);
    }));
    auto r = m.run();
    EXPECT_EQ(r.verdict, Verdict::MemoryFault) << r.detail;
    EXPECT_EQ(g.value, 1u);
    EXPECT_NE(r.detail.find("cpu 0 resumed counter on a kernel stack its tables do not map "
                            "(top page 0xffffffffc0004000)"),
              std::string::npos)
        << r.detail;
}

TEST(Determinism, SameSeedSameBytes) {
    EXPECT_EQ(boot_core(8, 42), boot_core(8, 42));
}

TEST(Determinism, DifferentSeedsExploreDifferentInterleavings) {
    std::set<std::string> seen;
    for (uint64_t seed = 1; seed <= 8; ++seed) {
        seen.insert(boot_core(8, seed));
    }
    EXPECT_GE(seen.size(), 4u) << "eight seeds gave only " << seen.size() << " orders";
}

TEST(Determinism, EveryMachineBootsAFreshKernel) {
    EXPECT_GT(hal_sim::kernel_image_writable_bytes(), 0u);
    // Without the reload, the second boot would find the first one's CPUs still online.
    std::string first = boot_core(4, 3);
    std::string second = boot_core(4, 3);
    EXPECT_EQ(first, second);
    EXPECT_NE(second.find("smp: 4 cpus online"), std::string::npos) << second;
}

TEST(Machine, TwoHundredFiftySixCpusAllComeOnlineUnderDuetsLoader) {
    std::string out = boot_core(256, 1, hal_sim::Firmware::Duet);
    EXPECT_NE(out.find("smp: 256 cpus online"), std::string::npos) << out;
}

TEST(Machine, TheBiosLoaderStartsOnly255OfThem) {
    // As the real one: it counts at most 255 cores in the MADT; the last CPU never runs.
    std::string out = boot_core(256, 1);
    EXPECT_NE(out.find("boot: bootboot protocol 1, 255 cores"), std::string::npos) << out;
    EXPECT_NE(out.find("smp: 255 cpus online"), std::string::npos) << out;
}

} // namespace
