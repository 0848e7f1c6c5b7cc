#include <hal_sim/fiber.hpp>
#include <hal_sim/race.hpp>

#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <new>
#include <span>
#include <utility>

#ifdef DUET_SANITIZE
#include <sanitizer/asan_interface.h>
#endif

namespace hal_sim {

FiberStack::FiberStack(size_t size) {
    size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    m_size = (size + page - 1) / page * page;
    m_guard = page;
    void* p = mmap(nullptr, m_guard + m_size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) {
        throw std::bad_alloc();
    }
    m_base = static_cast<std::byte*>(p);
    m_owned = true;
    mprotect(m_base, m_guard, PROT_NONE);
#ifdef DUET_SANITIZE
    // A new mapping may reuse the addresses of an old fiber stack whose frames AddressSanitizer
    // still has poisoned.
    ASAN_UNPOISON_MEMORY_REGION(m_base + m_guard, m_size);
#endif
}

namespace {

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102 // Linux 6.13
#endif

// Makes [base, base + bytes) fault on any access. A guard region (Linux 6.13 on) marks the
// page tables and leaves the mapping whole; mprotect() splits it in three, so that a machine
// with 10,000 threads had 20,000 host mappings to build and tear down (and the host's limit
// is 65,530).
void install_guard(std::byte* base, size_t bytes) {
    static bool s_guard_regions = true; // until the host refuses one
    if (s_guard_regions && madvise(base, bytes, MADV_GUARD_INSTALL) == 0) {
        return;
    }
    s_guard_regions = false;
    mprotect(base, bytes, PROT_NONE);
}

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 // Linux 5.14
#endif

// Gives every range in `ranges` the same advice with one system call: process_madvise() on
// this process (Linux 6.13 on, for advice beyond the few it always took). False if the host
// refused.
bool advise_all(std::span<iovec> ranges, int advice) {
    // NOTE: per process: a child forked from a process that made one must not use its pidfd.
    static pid_t s_pid = 0;
    static int s_pidfd = -1;
    if (s_pid != getpid()) {
        s_pid = getpid();
        s_pidfd = static_cast<int>(syscall(SYS_pidfd_open, s_pid, 0));
    }
    size_t bytes = 0;
    for (const iovec& r : ranges) {
        bytes += r.iov_len;
    }
    long done = s_pidfd < 0 ? -1
                            : syscall(SYS_process_madvise, s_pidfd, ranges.data(), ranges.size(),
                                      advice, 0);
    return done == static_cast<long>(bytes);
}

} // namespace

FiberStack::FiberStack(std::byte* base, size_t guard, size_t size, bool guarded)
    : m_base(base), m_guard(guard), m_size(size) {
    if (!guarded) {
        install_guard(m_base, m_guard);
    }
#ifdef DUET_SANITIZE
    ASAN_UNPOISON_MEMORY_REGION(m_base + m_guard, m_size);
#endif
}

FiberStack::FiberStack(FiberStack&& other) noexcept
    : m_base(std::exchange(other.m_base, nullptr)), m_guard(std::exchange(other.m_guard, 0)),
      m_size(std::exchange(other.m_size, 0)),
      m_race_fiber(std::exchange(other.m_race_fiber, nullptr)),
      m_used(std::exchange(other.m_used, false)), m_owned(std::exchange(other.m_owned, false)) {}

FiberStack& FiberStack::operator=(FiberStack&& other) noexcept {
    if (this != &other) {
        this->~FiberStack();
        new (this) FiberStack(std::move(other));
    }
    return *this;
}

namespace {

// Before a stack's memory goes back to the host: AddressSanitizer keeps the poison of the
// frames its fibers never returned from, and a later mapping at the same addresses (another
// machine's simulated RAM, in a process that builds many) was reported as a stack overflow.
void forget_poison([[maybe_unused]] std::byte* base, [[maybe_unused]] size_t bytes) {
#ifdef DUET_SANITIZE
    ASAN_UNPOISON_MEMORY_REGION(base, bytes);
#endif
}

} // namespace

FiberStack::~FiberStack() {
    end_race_fiber();
    if (m_owned) {
        forget_poison(m_base, m_guard + m_size);
        munmap(m_base, m_guard + m_size);
    }
}

void* FiberStack::new_race_fiber(const char* name) {
    if (!race::kBuilt) {
        return nullptr;
    }
    end_race_fiber();
    if (m_used) {
        // NOTE: ThreadSanitizer keeps the old fiber's accesses to this stack, and the new one,
        // created by whichever CPU starts a thread, is not ordered after them (the host stack's
        // reuse is the simulator's, not the kernel's): they were reported as races. Mapping
        // the stack afresh makes ThreadSanitizer forget them, as it does for a thread's stack.
        void* p = mmap(m_base + m_guard, m_size, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0);
        if (p == MAP_FAILED) {
            throw std::bad_alloc();
        }
    }
    m_used = true;
    m_race_fiber = race::create_fiber(name);
    return m_race_fiber;
}

void FiberStack::end_race_fiber() {
    if (m_race_fiber != nullptr) {
        race::destroy_fiber(std::exchange(m_race_fiber, nullptr));
    }
}

StackArena::~StackArena() {
    for (const Slab& slab : m_slabs) {
        forget_poison(slab.base, slab.bytes);
        munmap(slab.base, slab.bytes);
    }
}

FiberStack StackArena::carve(size_t size) {
    size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    size_t bytes = page + (size + page - 1) / page * page; // the guard page, then the stack
    if (bytes > m_left) {
        size_t slab = bytes * kStacksPerSlab;
        void* p = mmap(nullptr, slab, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (p == MAP_FAILED) {
            throw std::bad_alloc();
        }
        m_slabs.push_back({static_cast<std::byte*>(p), slab});
        m_next = static_cast<std::byte*>(p);
        m_left = slab;
        // The guard pages of every stack the slab will hold, at once: one system call a slab
        // instead of one a stack (3.4 us each on a virtualised host, 34 ms for 10,000 threads).
        iovec pages[kStacksPerSlab];
        for (size_t i = 0; i < kStacksPerSlab; ++i) {
            pages[i] = {m_next + i * bytes, page};
        }
        m_slab_stride = advise_all(pages, MADV_GUARD_INSTALL) ? bytes : 0;
        // A machine that filled a slab already will likely fill this one: the top page of each
        // stack, which its first context's start writes, is given memory by one call instead
        // of a page fault each (on a virtualised host, a fault cost about 1.5 times a page
        // populated so).
        if (m_slabs.size() > 1) {
            for (size_t i = 0; i < kStacksPerSlab; ++i) {
                pages[i] = {m_next + (i + 1) * bytes - page, page};
            }
            advise_all(pages, MADV_POPULATE_WRITE); // a hint: faults do the same otherwise
        }
    }
    std::byte* base = m_next;
    m_next += bytes;
    m_left -= bytes;
    // A stack of another size carved from the rest of the slab has its guard page elsewhere.
    bool guarded = bytes == m_slab_stride && (base - m_slabs.back().base) % bytes == 0;
    return FiberStack(base, page, bytes - page, guarded);
}

bool FiberStack::in_guard(const void* addr) const {
    auto* a = static_cast<const std::byte*>(addr);
    return m_base != nullptr && a >= m_base && a < m_base + m_guard;
}

} // namespace hal_sim
