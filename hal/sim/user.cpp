// User memory and user mode in the simulator. The kernel's user copies check every page they
// touch by walking the calling CPU's tables with the user's rights (the simulated MMU), so a
// bad pointer is refused by the same rules as on the machine: not present, not user, not
// writable for a write, outside the user half or non-canonical.

#include <hal_sim/machine.hpp>
#include <hal_sim/mmu.hpp>

#include <core/lib/log.hpp>

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
// walk allows the access; false at the first piece it refuses.
template <typename Fn>
bool each_user_piece(uint64_t va, size_t bytes, hal_sim::AccessKind kind, Fn fn) {
    if (bytes == 0) {
        return true;
    }
    if (va >= kUserEnd || bytes > kUserEnd - va) {
        return false;
    }
    hal_sim::Machine& m = machine();
    const hal_sim::MmuState& mmu = m.current_cpu().mmu;
    size_t done = 0;
    while (done < bytes) {
        uint64_t at = va + done;
        size_t piece = kPage - at % kPage;
        if (piece > bytes - done) {
            piece = bytes - done;
        }
        hal_sim::WalkResult r = hal_sim::walk(m.ram(), mmu, at, kind, hal_sim::Privilege::User,
                                              {.set_accessed_dirty = true});
        if (!r.ok()) {
            return false;
        }
        fn(static_cast<uint8_t*>(hal::phys_to_virt(hal::PhysAddr(r.pa))), done, piece);
        done += piece;
    }
    return true;
}

} // namespace

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

// FIXME: user programs linked into the simulator and run in their fiber (ARCHITECTURE.md,
// docs/user-space.md) are not built yet: a process started here stops the run with this.
void enter_user(VirtAddr entry, VirtAddr, uint64_t) {
    core::LogLine("panic")
        .str("user mode is not modelled in the simulator yet (entry ")
        .hex(entry.value(), 0)
        .chr(')');
    halt_machine(ExitCode::Panic);
}

bool user_protection_smep() {
    return machine().current_cpu().mmu.smep;
}

bool user_protection_smap() {
    return machine().current_cpu().mmu.smap;
}

} // namespace hal
