// User memory and user mode in the simulator. The kernel's user copies check every page they
// touch by walking the calling CPU's tables with the user's rights (the simulated MMU), so a
// bad pointer is refused by the same rules as on the machine: not present, not user, not
// writable for a write, outside the user half or non-canonical. Those walks, and the user
// program's own accesses, go through the CPU's TLB (hal_sim::user_walk): a translation stays
// cached until a flush drops it, as on the machine.
//
// User mode: a user program is host code linked into the simulator (user/), run by
// hal::enter_user() in its thread's fiber with the CPU marked in user mode. Its system calls
// come through duet_sim_syscall(), which switches to kernel mode and calls the core's
// dispatcher, as the SYSCALL entry does on the machine; its computation (duet_sim_user_compute)
// takes virtual time in user mode, interrupted and preempted as ring 3 is; its accesses to its own
// memory (duet_sim_user_store/load64) walk the process's tables with the user's rights, and a
// refused one kills the process through core::user::on_user_fault(), as a fault in ring 3 does.

#include <hal_sim/machine.hpp>
#include <hal_sim/mmu.hpp>
#include <hal_sim/race.hpp>

#include <core/lib/log.hpp>
#include <core/user/abi.hpp>
#include <core/user/process.hpp>
#include <duet/host_programs.hpp>

#include <hal/mmu.hpp>
#include <hal/stop.hpp>
#include <hal/user.hpp>

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace {

constexpr uint64_t kPage = 4096;
constexpr uint64_t kUserEnd = 0x0000'8000'0000'0000;

hal_sim::Machine& machine() {
    hal_sim::Machine* m = hal_sim::Machine::current();
    if (m == nullptr) [[unlikely]] {
        std::fputs("duet: a user-memory function was called outside a simulated CPU\n", stderr);
        std::abort();
    }
    return *m;
}

// Calls fn(host pointer, offset, bytes) for each page-sized piece of [va, va + bytes) once the
// calling CPU's TLB or its walk allows the access; false at the first piece it refuses.
template <typename Fn>
bool each_user_piece(uint64_t va, size_t bytes, hal_sim::AccessKind kind, Fn fn) {
    if (bytes == 0) {
        return true;
    }
    if (va >= kUserEnd || bytes > kUserEnd - va) {
        return false;
    }
    hal_sim::Machine& m = machine();
    hal_sim::MmuState& mmu = m.current_cpu().mmu;
    size_t done = 0;
    while (done < bytes) {
        uint64_t at = va + done;
        size_t piece = kPage - at % kPage;
        if (piece > bytes - done) {
            piece = bytes - done;
        }
        hal_sim::WalkResult r = hal_sim::user_walk(m.ram(), mmu, at, kind);
        if (!r.ok()) {
            return false;
        }
        fn(static_cast<uint8_t*>(hal::phys_to_virt(hal::PhysAddr(r.pa))), done, piece);
        done += piece;
    }
    return true;
}

[[noreturn]] void abort_in_user_mode(const char* what) {
    std::fprintf(stderr, "duet: user mode: %s\n", what);
    std::abort();
}

hal_sim::SimCpu& user_cpu(const char* what) {
    hal_sim::SimCpu& cpu = machine().current_cpu();
    if (!cpu.user_mode) {
        abort_in_user_mode(what);
    }
    return cpu;
}

// A user access that faulted: the same report and end as a fault in ring 3 on the machine
// (the simulator has no user instruction pointer: ip 0).
[[noreturn]] void user_fault(hal_sim::SimCpu& cpu, uint64_t va, const hal_sim::WalkResult& r) {
    cpu.user_mode = false;
    (void)hal::irq_save();
    core::user::UserFault fault;
    if (r.status == hal_sim::WalkStatus::PageFault) {
        cpu.mmu.cr2 = va;
        ++cpu.mmu.page_faults;
        fault.vector = 14;
        fault.error_code = r.error_code;
        fault.address = hal::VirtAddr(va);
    } else {
        fault.vector = 13; // a non-canonical address
    }
    core::user::on_user_fault(fault);
}

// A modelled access by the user program to [va, va + bytes): fn(host pointer, offset, n) per
// page once the CPU's TLB or its walk allows it; a refusal kills the process.
template <typename Fn>
void user_access(uint64_t va, size_t bytes, hal_sim::AccessKind kind, Fn fn) {
    hal_sim::SimCpu& cpu = user_cpu("a user memory access in kernel mode");
    size_t done = 0;
    while (done < bytes) {
        uint64_t at = va + done;
        size_t piece = kPage - at % kPage;
        if (piece > bytes - done) {
            piece = bytes - done;
        }
        hal_sim::WalkResult r = hal_sim::user_walk(machine().ram(), cpu.mmu, at, kind);
        if (!r.ok()) {
            user_fault(cpu, at, r);
        }
        fn(static_cast<uint8_t*>(hal::phys_to_virt(hal::PhysAddr(r.pa))), done, piece);
        done += piece;
    }
}

} // namespace

extern "C" int64_t duet_sim_syscall(uint64_t number, uint64_t* args) {
    user_cpu("a system call from kernel mode").user_mode = false;
    core::user::SyscallArgs call;
    call.number = number;
    for (int i = 0; i < 6; ++i) {
        call.args[i] = args[i];
    }
    int64_t result = core::user::on_syscall(call);
    // As the machine's entry restores the argument registers: with what the call left there.
    for (int i = 0; i < 6; ++i) {
        args[i] = call.args[i];
    }
    // NOTE: the thread may have moved to another CPU while it waited in the kernel.
    machine().current_cpu().user_mode = true;
    return result;
}

extern "C" void duet_sim_user_compute(uint64_t ns) {
    user_cpu("user computation in kernel mode");
    // As hal::cpu_work(): the executor's code, which the interrupts it delivers leave for the
    // kernel's (race::KernelCode).
    hal_sim::race::SimulatorCode sim;
    // The CPU works in user mode: its timer interrupts come, and may preempt the program, as
    // they do in ring 3 (deliver_pending() enters the kernel and comes back to user mode).
    machine().cpu_work(ns);
}

extern "C" void duet_sim_user_store(uint64_t va, const void* src, uint64_t bytes) {
    const auto* in = static_cast<const uint8_t*>(src);
    user_access(va, bytes, hal_sim::AccessKind::Write,
                [&](uint8_t* p, size_t offset, size_t n) { std::memcpy(p, in + offset, n); });
}

extern "C" void duet_sim_user_load(uint64_t va, void* dst, uint64_t bytes) {
    auto* out = static_cast<uint8_t*>(dst);
    user_access(va, bytes, hal_sim::AccessKind::Read,
                [&](uint8_t* p, size_t offset, size_t n) { std::memcpy(out + offset, p, n); });
}

extern "C" uint64_t duet_sim_user_load64(uint64_t va) {
    uint64_t value = 0;
    auto* out = reinterpret_cast<uint8_t*>(&value);
    user_access(
        va, sizeof value, hal_sim::AccessKind::Read,
        [&](const uint8_t* p, size_t offset, size_t n) { std::memcpy(out + offset, p, n); });
    return value;
}

namespace hal {

bool copy_from_user(void* dst, VirtAddr src, size_t bytes) {
    auto* out = static_cast<uint8_t*>(dst);
    return each_user_piece(
        src.value(), bytes, hal_sim::AccessKind::Read,
        [&](const uint8_t* p, size_t offset, size_t n) { std::memcpy(out + offset, p, n); });
}

bool copy_to_user(VirtAddr dst, const void* src, size_t bytes) {
    const auto* in = static_cast<const uint8_t*>(src);
    return each_user_piece(
        dst.value(), bytes, hal_sim::AccessKind::Write,
        [&](uint8_t* p, size_t offset, size_t n) { std::memcpy(p, in + offset, n); });
}

void set_kernel_stack(VirtAddr) {
    // NOTE: a fiber enters the kernel on its own host stack; nothing to switch.
}

void enter_user(VirtAddr entry, VirtAddr, uint64_t arg) {
    core::user::Process* p = core::user::current();
    if (p != nullptr && entry.value() != p->entry) {
        // A thread the program started (thread_start): `entry` is a host function of its
        // host build (user/include/duet/syscall.hpp, duet::start_thread), called as the
        // machine's code is entered, with `arg` in the first argument register. It ends the
        // thread when it returns, as the machine's trampoline does.
        machine().current_cpu().user_mode = true;
        reinterpret_cast<void (*)(uint64_t)>(entry.value())(arg);
        uint64_t args[6] = {};
        duet_sim_syscall(duet_abi::SysThreadExit, args);
        abort_in_user_mode("thread_exit returned");
    }
    duet_user::HostMain program = p != nullptr ? duet_user::find_host_program(p->program) : nullptr;
    if (program == nullptr) {
        core::LogLine("panic")
            .str("no host build of the user program '")
            .str(p != nullptr ? p->program : "?")
            .str("' is linked into the simulator");
        halt_machine(ExitCode::Panic);
    }
    machine().current_cpu().user_mode = true;
    // What user/runtime/start.S does on the machine: main()'s result is the exit code.
    int code = program();
    uint64_t args[6] = {static_cast<uint64_t>(static_cast<int64_t>(code)), 0, 0, 0, 0, 0};
    duet_sim_syscall(duet_abi::SysExit, args);
    abort_in_user_mode("exit returned");
}

bool user_protection_smep() {
    return machine().current_cpu().mmu.smep;
}

bool user_protection_smap() {
    return machine().current_cpu().mmu.smap;
}

} // namespace hal
