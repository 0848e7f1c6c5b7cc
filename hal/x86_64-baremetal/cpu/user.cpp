// User mode on x86_64: the HAL's enter_user, set_kernel_stack and user copies, the system-call
// and user-fault glue into the core, and each CPU's SYSCALL/SMEP/SMAP set-up.
//
// Entering the kernel from ring 3 always swaps GS (SWAPGS) so that %gs reaches the per-CPU
// block: in the SYSCALL entry, and in the interrupt and exception entries when the saved CS is
// a user one. The user's own GS base is always 0 (nothing lets a program set it yet).

#include "cpu/user.hpp"

#include "cpu/gdt.hpp"
#include "cpu/percpu.hpp"
#include "cpu/vectors.hpp"
#include "cpu/x86.hpp"

#include <core/lib/compiler.hpp>
#include <core/user/process.hpp>
#include <hal/irq.hpp>
#include <hal/user.hpp>

extern "C" {
[[noreturn]] void x86_enter_user(uint64_t entry, uint64_t stack_top, uint64_t arg);
void x86_syscall_entry();
void x86_user_fault_trampoline();
uint64_t x86_copy_user(void* dst, const void* src, uint64_t bytes);
extern const char x86_copy_user_access[];
extern const char x86_copy_user_fixup[];

// Read by x86_copy_user: STAC and CLAC are invalid opcodes without SMAP.
bool x86_smap_enabled = false;
}

namespace {

constexpr uint64_t kUserEnd = 0x0000'8000'0000'0000;
constexpr uint64_t kRflagsFmask = (1u << 8) | (1u << 9) | (1u << 10) | (1u << 18); // TF IF DF AC
constexpr uint64_t kRflagsReserved = 1u << 1;
constexpr uint8_t kMachineCheck = 18;
// Room for the core::user::UserFault a user fault leaves at the top of the kernel stack.
constexpr uint64_t kFaultArea = 64;
static_assert(sizeof(core::user::UserFault) <= kFaultArea);

bool s_smep = false;

// Instructions that may fault on a user address, and where each resumes when it does.
struct Fixup {
    const char* access;
    const char* resume;
};
const Fixup kFixups[] = {
    {x86_copy_user_access, x86_copy_user_fixup},
};

bool user_range(uint64_t va, size_t bytes) {
    return va < kUserEnd && bytes <= kUserEnd - va;
}

} // namespace

namespace x86_user {

void init_this_cpu() {
    x86::wrmsr(x86::kMsrEfer, x86::rdmsr(x86::kMsrEfer) | x86::kEferSce);
    // SYSCALL: CS = kKernelCode, SS = kKernelCode + 8. SYSRET: SS = kUserBase + 8, CS =
    // kUserBase + 16, both with RPL 3 (cpu/gdt.hpp).
    x86::wrmsr(x86::kMsrStar,
               (uint64_t{x86_gdt::kUserBase} << 48) | (uint64_t{x86_gdt::kKernelCode} << 32));
    x86::wrmsr(x86::kMsrLstar, reinterpret_cast<uint64_t>(&x86_syscall_entry));
    x86::wrmsr(x86::kMsrFmask, kRflagsFmask);
    x86::wrmsr(x86::kMsrKernelGsBase, 0);
    uint64_t cr4 = x86::read_cr4();
    bool smep = false;
    bool smap = false;
    bool umip = false;
    if (x86::cpuid(0).eax >= 7) {
        x86::CpuidResult leaf7 = x86::cpuid(7, 0);
        smep = (leaf7.ebx & (1u << 7)) != 0;
        smap = (leaf7.ebx & (1u << 20)) != 0;
        umip = (leaf7.ecx & (1u << 2)) != 0;
    }
    // SGDT, SIDT, SLDT, SMSW and STR fault in ring 3: they would show a program where the
    // kernel's tables are.
    if (umip) {
        cr4 |= x86::kCr4Umip;
    }
    if (smep) {
        cr4 |= x86::kCr4Smep;
    }
    if (smap) {
        cr4 |= x86::kCr4Smap;
    }
    x86::write_cr4(cr4);
    // NOTE: every CPU of a machine reports the same features; the last one to get here wins.
    s_smep = smep;
    x86_smap_enabled = smap;
    x86_percpu::this_block().user_ready = true;
}

bool redirect_fault(ExceptionFrame* frame, uint64_t cr2) {
    if ((frame->cs & 3) == 3) {
        if (frame->vector == x86_vectors::kNmi || frame->vector == kMachineCheck) {
            return false;
        }
        // The thread's kernel stack is empty while it runs in user mode: the fault's
        // description goes at its top, and the trampoline runs below it.
        uint64_t top = x86_percpu::this_block().kernel_rsp;
        auto* fault = reinterpret_cast<core::user::UserFault*>(top - kFaultArea);
        fault->vector = static_cast<uint32_t>(frame->vector);
        fault->error_code = static_cast<uint32_t>(frame->error);
        fault->address = hal::VirtAddr(frame->vector == x86_vectors::kPageFault ? cr2 : 0);
        fault->ip = frame->rip;
        frame->rip = reinterpret_cast<uint64_t>(&x86_user_fault_trampoline);
        frame->cs = x86_gdt::kKernelCode;
        frame->rflags = kRflagsReserved; // interrupts stay off
        frame->rsp = top - kFaultArea;
        frame->ss = x86_gdt::kKernelData;
        return true;
    }
    if (frame->vector == x86_vectors::kPageFault && cr2 < kUserEnd) {
        for (const Fixup& f : kFixups) {
            if (frame->rip == reinterpret_cast<uint64_t>(f.access)) {
                frame->rip = reinterpret_cast<uint64_t>(f.resume);
                return true;
            }
        }
    }
    return false;
}

} // namespace x86_user

// NOTE: the entry pops the arguments back into their registers: what on_syscall() writes
// into them goes back to user mode (the IPC calls' out registers).
extern "C" int64_t x86_syscall(core::user::SyscallArgs* args) {
    int64_t result = core::user::on_syscall(*args);
    // The IRETQ frame the entry built lies right above the arguments: RIP first.
    uint64_t rip = reinterpret_cast<const uint64_t*>(args + 1)[0];
    if (rip >= kUserEnd) {
        // SYSCALL as the last instruction below the end of the user half: there is no user
        // address to return to (user_entry.S would not SYSRET to it either).
        (void)hal::irq_save();
        core::user::on_user_fault({.vector = 13, .error_code = 0, .address = {}, .ip = rip});
    }
    return result;
}

extern "C" [[noreturn]] void x86_user_fault_exit(const core::user::UserFault* fault) {
    core::user::on_user_fault(*fault);
}

namespace hal {

void enter_user(VirtAddr entry, VirtAddr stack_top, uint64_t arg) {
    x86_enter_user(entry.value(), stack_top.value(), arg);
}

void set_kernel_stack(VirtAddr top) {
    x86_percpu::Block& b = x86_percpu::this_block();
    b.kernel_rsp = top.value();
    x86_gdt::set_kernel_stack(b.index, top.value());
}

bool copy_from_user(void* dst, VirtAddr src, size_t bytes) {
    if (!user_range(src.value(), bytes)) {
        return false;
    }
    return bytes == 0 || x86_copy_user(dst, reinterpret_cast<const void*>(src.value()), bytes) == 0;
}

bool copy_to_user(VirtAddr dst, const void* src, size_t bytes) {
    if (!user_range(dst.value(), bytes)) {
        return false;
    }
    return bytes == 0 || x86_copy_user(reinterpret_cast<void*>(dst.value()), src, bytes) == 0;
}

bool user_protection_smep() {
    return s_smep;
}

bool user_protection_smap() {
    return x86_smap_enabled;
}

} // namespace hal
