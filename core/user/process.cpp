// Processes: the table, loading a program into a new address space, its threads' first entry
// into user mode, the address-space switch, and the end of a thread and of a process (exit,
// kill, reaping).
//
// Ending a process with several threads: the thread that ends it (exit, a fault) sets `dying`
// and stops the others where they wait (cancel_others()); every other thread ends on its way
// back to user mode (the system-call return, on_return_to_user()), and the last to end closes
// the handles and marks the process Dead. wait() joins them all.

#include <core/cpu.hpp>
#include <core/lib/atomic.hpp>
#include <core/lib/log.hpp>
#include <core/mm/kernel_space.hpp>
#include <core/mm/physical_memory.hpp>
#include <core/sync/spinlock.hpp>
#include <core/user/abi.hpp>
#include <core/user/process.hpp>

#include <hal/cpu.hpp>
#include <hal/mmu.hpp>
#include <hal/time.hpp>
#include <hal/user.hpp>

namespace core::user {

namespace {

SpinLock s_lock("processes", LockRank::Processes);
Process s_processes[kMaxProcesses];
struct ProcessLock {
    SpinLock lock{"process", LockRank::Process};
};
ProcessLock s_process_locks[kMaxProcesses];
uint32_t s_last_id = 0; // under s_lock
Stats s_stats;          // atomics

constexpr uint64_t kPage = mm::kFrameSize;

Process* alloc_process() {
    auto guard = s_lock.lock_irqsave();
    for (Process& p : s_processes) {
        if (p.state == ProcessState::Free) {
            p = Process{};
            p.id = ++s_last_id;
            p.state = ProcessState::Loaded;
            return &p;
        }
    }
    return nullptr;
}

void free_process(Process* p) {
    auto guard = s_lock.lock_irqsave();
    *p = Process{};
}

uint32_t process_number(const Process* p) {
    return static_cast<uint32_t>(p - s_processes) + 1;
}

Process* process_of(const sched::Thread& t) {
    return t.process != 0 ? &s_processes[t.process - 1] : nullptr;
}

UserThread* thread_of(const sched::Thread& t) {
    return t.process != 0 ? &s_processes[t.process - 1].threads[t.process_thread] : nullptr;
}

bool dying(const Process* p) {
    return atomic::load<atomic::seq_cst>(&p->dying);
}

void count(uint64_t* counter) {
    atomic::fetch_add<atomic::relaxed>(counter, uint64_t{1});
}

// Maps the pages of segment `s` as fresh owned frames with its rights and copies its file
// bytes into them through the direct map (the kernel never touches user pages by their user
// address, so SMAP needs no exception here).
Result<void> load_segment(mm::AddressSpace& space, const elf::Segment& s, const uint8_t* file) {
    mm::PageFlags flags;
    flags.user = true;
    flags.writable = (s.flags & elf::kWrite) != 0;
    flags.executable = (s.flags & elf::kExecute) != 0;
    uint64_t first = s.vaddr / kPage * kPage;
    uint64_t end = (s.vaddr + s.memsz + kPage - 1) / kPage * kPage;
    uint64_t file_end = s.vaddr + s.filesz;
    for (uint64_t va = first; va < end; va += kPage) {
        // NOTE: a new mapping where nothing was, in tables no CPU has loaded: nothing to flush.
        mm::FlushToken token = TRY(space.map_new(hal::VirtAddr(va), flags, mm::FrameOwner::User));
        token.ignore();
        uint64_t from = va > s.vaddr ? va : s.vaddr;
        uint64_t to = va + kPage < file_end ? va + kPage : file_end;
        if (from < to) {
            mm::Translation t = TRY(space.translate(hal::VirtAddr(va)));
            auto* page = static_cast<uint8_t*>(hal::phys_to_virt(t.frame));
            __builtin_memcpy(page + (from - va), file + s.offset + (from - s.vaddr), to - from);
        }
    }
    return {};
}

Result<void> map_stack(mm::AddressSpace& space) {
    mm::PageFlags flags;
    flags.user = true;
    flags.writable = true;
    for (uint64_t va = duet_abi::kStackTop - duet_abi::kStackBytes; va < duet_abi::kStackTop;
         va += kPage) {
        mm::FlushToken token = TRY(space.map_new(hal::VirtAddr(va), flags, mm::FrameOwner::User));
        token.ignore();
    }
    return {};
}

// The argument block: read-only, never executable, its bytes copied in through the direct map.
Result<void> map_arguments(mm::AddressSpace& space, const uint8_t* args, size_t size) {
    mm::PageFlags flags;
    flags.user = true;
    for (uint64_t done = 0; done < size; done += kPage) {
        hal::VirtAddr va(duet_abi::kArgumentBase + done);
        mm::FlushToken token = TRY(space.map_new(va, flags, mm::FrameOwner::User));
        token.ignore();
        mm::Translation t = TRY(space.translate(va));
        uint64_t n = size - done < kPage ? size - done : kPage;
        __builtin_memcpy(hal::phys_to_virt(t.frame), args + done, n);
    }
    return {};
}

void copy_name(char* dst, const char* src) {
    size_t n = 0;
    for (; src[n] != '\0' && n + 1 < kProcessNameLength; ++n) {
        dst[n] = src[n];
    }
    dst[n] = '\0';
}

[[noreturn]] void end_thread(Process* p, UserThread* t);

// A process's thread: installs its address space on its CPU and leaves for user mode.
void thread_main(void* arg) {
    auto* t = static_cast<UserThread*>(arg);
    Process* p = t->process;
    {
        InterruptGuard irq;
        sched::Thread* me = sched::current();
        me->process = process_number(p);
        me->process_thread = static_cast<uint8_t>(t - p->threads);
        atomic::store<atomic::seq_cst>(&t->runner, me);
        // NOTE: from here on the switch path keeps the address space loaded whenever this
        // thread runs; this first time it is this thread's own doing.
        switch_to(this_cpu(), *me);
    }
    // A thread started as its process began to end never gets to user mode. (The one ending
    // it either saw `runner` above, or this sees `dying`.)
    if (dying(p)) {
        (void)hal::irq_save();
        end_thread(p, t);
    }
    if (t == &p->threads[0] && p->entered_user_at == 0) {
        p->entered_user_at = hal::cycle_count(); // the first thread (slot 0 may be taken again)
    }
    hal::enter_user(hal::VirtAddr(t->entry), hal::VirtAddr(t->stack_top), t->arg);
}

// Starts a thread of `p` in a free slot (or one whose thread has ended, joined first): its
// slot number. CapacityExceeded if kMaxThreads are live; InvalidArgument once `p` is ending.
Result<uint32_t> start_thread(Process* p, uint64_t entry, uint64_t stack_top, uint64_t arg) {
    UserThread* t = nullptr;
    sched::ThreadId ended;
    {
        auto guard = lock_of(p).lock_irqsave();
        if (dying(p)) {
            return Error::InvalidArgument;
        }
        for (UserThread& u : p->threads) {
            if (u.state == ThreadSlot::Free) {
                t = &u;
                break;
            }
            if (t == nullptr && u.state == ThreadSlot::Ended && u.id.valid()) {
                t = &u; // a free slot is better: no join
            }
        }
        if (t == nullptr) {
            return Error::CapacityExceeded;
        }
        ended = t->id;
        *t = UserThread{};
        t->process = p;
        t->state = ThreadSlot::Live;
        atomic::store<atomic::relaxed>(&p->live_threads, p->live_threads + 1);
    }
    if (ended.valid()) {
        // NOTE: it has ended: this only waits for it to leave its CPU.
        if (auto code = sched::join(ended); !code.ok()) {
            panic_error("joining a process's ended thread", code.error());
        }
    }
    t->entry = entry;
    t->stack_top = stack_top;
    t->arg = arg;
    sched::SpawnOptions options;
    options.name = p->name;
    auto id = sched::spawn(&thread_main, t, options);
    if (!id.ok()) {
        auto guard = lock_of(p).lock_irqsave();
        t->state = ThreadSlot::Free;
        atomic::store<atomic::relaxed>(&p->live_threads, p->live_threads - 1);
        return id.error();
    }
    t->id = id.value();
    return static_cast<uint32_t>(t - p->threads);
}

} // namespace

Result<Process*> create(const char* name, const uint8_t* file, size_t size, CreateError* why,
                        const uint8_t* args, size_t args_size, const char* program) {
    *why = CreateError{};
    if (args_size > duet_abi::kMaxArgumentBytes) {
        why->error = Error::InvalidArgument;
        return Error::InvalidArgument;
    }
    elf::Image image;
    if (elf::Error e = elf::parse(file, size, &image); e != elf::Error::None) {
        why->error = Error::InvalidArgument;
        why->elf = e;
        return Error::InvalidArgument;
    }
    Process* p = alloc_process();
    if (p == nullptr) {
        why->error = Error::CapacityExceeded;
        return Error::CapacityExceeded;
    }
    copy_name(p->name, name);
    copy_name(p->program, program != nullptr ? program : name);
    p->entry = image.entry;
    auto space =
        mm::AddressSpace::create(mm::FrameSource(mm::frames()), mm::kernel_space().space());
    if (!space.ok()) {
        why->error = space.error();
        free_process(p);
        return space.error();
    }
    p->space = space.value();
    Result<void> loaded = map_stack(p->space);
    for (size_t i = 0; i < image.count && loaded.ok(); ++i) {
        loaded = load_segment(p->space, image.segments[i], file);
    }
    if (loaded.ok() && args_size != 0) {
        loaded = map_arguments(p->space, args, args_size);
    }
    if (!loaded.ok()) {
        why->error = loaded.error();
        p->space.destroy();
        free_process(p);
        return loaded.error();
    }
    count(&s_stats.created);
    return p;
}

Result<void> start(Process* p) {
    if (p == nullptr || p->state != ProcessState::Loaded) {
        return Error::InvalidArgument;
    }
    // NOTE: Running first: the thread may end (and mark the process Dead) before spawn returns.
    p->state = ProcessState::Running;
    if (auto started = start_thread(p, p->entry, duet_abi::kStackTop, 0); !started.ok()) {
        p->state = ProcessState::Loaded;
        return started.error();
    }
    count(&s_stats.started);
    return {};
}

ExitStatus wait(Process* p) {
    ExitStatus status;
    // NOTE: an atomic load: the process's last thread may be marking it Dead on another CPU
    // (end_thread()). Either state means threads to join.
    ProcessState state = atomic::load<atomic::acquire>(&p->state);
    if (state == ProcessState::Running || state == ProcessState::Dead) {
        // Joins every thread, until none is left to join: a thread is started only by another
        // that is live (and so not joined yet), which records the new one before it ends.
        for (;;) {
            sched::ThreadId next;
            {
                auto guard = lock_of(p).lock_irqsave();
                for (UserThread& u : p->threads) {
                    if (u.id.valid()) {
                        next = u.id;
                        u.id = sched::ThreadId{};
                        break;
                    }
                }
            }
            if (!next.valid()) {
                break;
            }
            if (auto code = sched::join(next); !code.ok()) {
                panic_error("waiting for a process's thread", code.error());
            }
        }
        ASSERT(p->state == ProcessState::Dead);
        status.code = p->exit_code;
        status.killed = p->killed;
    }
    status.syscalls = p->syscalls;
    status.cycles = p->ended_at - p->entered_user_at;
    ipc::process_ended(p); // nothing left to close unless it never ran
    // NOTE: the thread is off its CPU (join waited for that), and the switch away from it
    // loaded another address space first: no CPU has this one loaded any more.
    p->space.destroy();
    free_process(p);
    return status;
}

Process* current() {
    sched::Thread* t = sched::current();
    return t != nullptr ? process_of(*t) : nullptr;
}

const UserThread* user_thread_of(const sched::Thread& t) {
    return thread_of(t);
}

SpinLock& lock_of(const Process* p) {
    return s_process_locks[p - s_processes].lock;
}

const Process* process_by_number(uint32_t number) {
    if (number == 0 || number > kMaxProcesses) {
        return nullptr;
    }
    const Process* p = &s_processes[number - 1];
    return p->state == ProcessState::Free ? nullptr : p;
}

Stats stats() {
    Stats s;
    s.created = atomic::load<atomic::relaxed>(&s_stats.created);
    s.started = atomic::load<atomic::relaxed>(&s_stats.started);
    s.exited = atomic::load<atomic::relaxed>(&s_stats.exited);
    s.failed = atomic::load<atomic::relaxed>(&s_stats.failed);
    s.killed = atomic::load<atomic::relaxed>(&s_stats.killed);
    s.syscalls = atomic::load<atomic::relaxed>(&s_stats.syscalls);
    s.bad_addresses = atomic::load<atomic::relaxed>(&s_stats.bad_addresses);
    return s;
}

void switch_to(Cpu& me, const sched::Thread& next) {
    Process* p = process_of(next);
    hal::PhysAddr want = p != nullptr ? p->space.pml4() : hal::PhysAddr();
    if (want != me.user_pml4) {
        // NOTE: published before CR3 is loaded, as TLB shootdowns read it (mm/shootdown.hpp).
        atomic::store<atomic::seq_cst>(&me.user_pml4, want);
        if (want == hal::PhysAddr()) {
            mm::kernel_space().activate();
        } else {
            hal::load_page_table(want);
        }
    }
    if (p != nullptr) {
        hal::set_kernel_stack(next.stack.top);
    }
}

// --- system calls ---------------------------------------------------------------------------

namespace {

// Ends the calling thread `t` of `p`; the last one to end ends the process.
[[noreturn]] void end_thread(Process* p, UserThread* t) {
    // The caller it owes a reply gets PeerGone.
    ipc::thread_ended(t);
    atomic::fetch_add<atomic::relaxed>(&p->syscalls, t->syscalls);
    atomic::fetch_add<atomic::relaxed>(&s_stats.syscalls, t->syscalls);
    bool last = false;
    {
        auto guard = lock_of(p).lock_irqsave();
        // NOTE: an atomic store: cancel_others() reads it on another CPU without the lock.
        atomic::store<atomic::release>(&t->state, ThreadSlot::Ended);
        atomic::store<atomic::relaxed>(&p->live_threads, p->live_threads - 1);
        last = p->live_threads == 0;
    }
    if (last) {
        p->ended_at = hal::cycle_count();
        // Its peers: waiters on endpoints that lose their last receiver or caller with its
        // handles get PeerGone.
        ipc::process_ended(p);
        atomic::store<atomic::release>(&p->state, ProcessState::Dead);
        count(p->killed ? &s_stats.killed : &s_stats.exited);
        if (!p->killed && p->exit_code != 0) {
            count(&s_stats.failed);
        }
    }
    sched::exit(p->exit_code);
}

// Stops every other live thread of `p` (now dying) where it waits: in an IPC queue, or asleep.
// The others are running or on their way: they end on their next return towards user mode.
void cancel_others(Process* p, const UserThread* me) {
    ipc::stop_waiters(p);
    for (UserThread& u : p->threads) {
        if (&u == me) {
            continue;
        }
        for (;;) {
            sched::Thread* runner = atomic::load<atomic::seq_cst>(&u.runner);
            ipc::BlockedIn in = atomic::load<atomic::seq_cst>(&u.ipc.blocked_in);
            if (runner == nullptr || atomic::load<atomic::acquire>(&u.state) != ThreadSlot::Live) {
                break; // not started yet (it sees `dying` first), or ended
            }
            if (in != ipc::BlockedIn::Sleep) {
                break;
            }
            // NOTE: on its way into the sleep or out of it: it sees `dying` under its run
            // queue's lock on the way in, and is found asleep otherwise.
            if (sched::cancel_sleep(runner)) {
                break;
            }
            sched::yield();
        }
    }
}

// Ends `p` with `code` from its thread `t` (exit, or killed by a fault): the first to end it
// sets the code; every thread ends.
[[noreturn]] void exit_process(Process* p, UserThread* t, int code, bool killed) {
    bool first = false;
    {
        auto guard = lock_of(p).lock_irqsave();
        if (!dying(p)) {
            p->exit_code = code;
            p->killed = killed;
            atomic::store<atomic::seq_cst>(&p->dying, true);
            first = p->live_threads > 1;
        }
    }
    if (first) {
        // NOTE: a fault comes here with interrupts off; stopping the others may yield.
        hal::irq_enable();
        cancel_others(p, t);
        (void)hal::irq_save();
    }
    end_thread(p, t);
}

int64_t error(duet_abi::Errno e) {
    return -static_cast<int64_t>(e);
}

int64_t sys_log_write(Process* p, uint64_t buf, uint64_t len) {
    if (len > duet_abi::kMaxLogBytes) {
        return error(duet_abi::InvalidArgument);
    }
    char text[duet_abi::kMaxLogBytes + 1];
    if (!hal::copy_from_user(text, hal::VirtAddr(buf), len)) {
        count(&s_stats.bad_addresses);
        return error(duet_abi::BadAddress);
    }
    size_t n = len;
    if (n > 0 && text[n - 1] == '\n') {
        --n;
    }
    for (size_t i = 0; i < n; ++i) {
        if (text[i] < 0x20 || text[i] > 0x7e) {
            text[i] = '?';
        }
    }
    text[n] = '\0';
    // NOTE: a log line holds about 110 characters: a longer text is cut there.
    LogLine("user").str(p->name).str(": ").str(text);
    return static_cast<int64_t>(len);
}

// map() and unmap()'s range: whole pages inside the window for anonymous memory.
bool map_range_ok(uint64_t addr, uint64_t bytes) {
    return addr % kPage == 0 && bytes % kPage == 0 && bytes > 0 && addr >= duet_abi::kMapBase &&
           addr < duet_abi::kMapEnd && bytes <= duet_abi::kMapEnd - addr;
}

// Unmaps `pages` pages from `addr` and frees their frames once every CPU that has the process's
// tables loaded has flushed them (mm::SharedUnmap): each batch's tables change under the
// process's lock, its TLB shootdown waits without it, interrupts on, as other CPUs may be
// spinning for that lock with interrupts off. A page a sibling thread unmapped meanwhile is
// skipped (and was counted off by that thread).
void unmap_pages(Process* p, uint64_t addr, uint64_t pages) {
    for (uint64_t done = 0; done < pages; done += mm::SharedUnmap::kMaxPages) {
        uint64_t n =
            pages - done < mm::SharedUnmap::kMaxPages ? pages - done : mm::SharedUnmap::kMaxPages;
        mm::SharedUnmap batch;
        {
            auto guard = lock_of(p).lock_irqsave();
            p->mapped_pages -= batch.take(p->space, hal::VirtAddr(addr + done * kPage), n);
        }
        batch.release(p->space);
    }
}

// NOTE: map() only adds mappings where there were none: no TLB holds them, so the local
// flush of each new page (a page table's change) is enough.
int64_t sys_map(Process* p, uint64_t addr, uint64_t bytes, uint64_t flags) {
    if (!map_range_ok(addr, bytes) || (flags & ~duet_abi::kMapWritable) != 0) {
        return error(duet_abi::InvalidArgument);
    }
    uint64_t mapped = 0;
    bool failed = false;
    {
        // The process's threads map and unmap one at a time.
        auto guard = lock_of(p).lock_irqsave();
        uint64_t pages = bytes / kPage;
        if (pages > duet_abi::kMaxMappedBytes / kPage - p->mapped_pages) {
            return error(duet_abi::NoResources);
        }
        for (uint64_t va = addr; va < addr + bytes; va += kPage) {
            if (p->space.translate(hal::VirtAddr(va)).ok()) {
                return error(duet_abi::InvalidArgument); // something is mapped there already
            }
        }
        mm::PageFlags page_flags;
        page_flags.user = true;
        page_flags.writable = (flags & duet_abi::kMapWritable) != 0;
        for (uint64_t va = addr; va < addr + bytes; va += kPage) {
            auto token = p->space.map_new(hal::VirtAddr(va), page_flags, mm::FrameOwner::User);
            if (!token.ok()) {
                failed = true;
                break;
            }
            token.value().flush();
            ++mapped;
        }
        p->mapped_pages += mapped;
    }
    if (failed) {
        // NOTE: another thread may have touched the pages already: they go back as unmap()'s
        // do, counted as mapped until then.
        unmap_pages(p, addr, mapped);
        return error(duet_abi::NoResources);
    }
    return static_cast<int64_t>(addr);
}

int64_t sys_unmap(Process* p, uint64_t addr, uint64_t bytes) {
    if (!map_range_ok(addr, bytes)) {
        return error(duet_abi::InvalidArgument);
    }
    {
        auto guard = lock_of(p).lock_irqsave();
        for (uint64_t va = addr; va < addr + bytes; va += kPage) {
            if (!p->space.translate(hal::VirtAddr(va)).ok()) {
                return error(duet_abi::InvalidArgument); // not mapped: nothing is unmapped
            }
        }
    }
    unmap_pages(p, addr, bytes / kPage);
    return 0;
}

int64_t sys_sleep(Process* p, UserThread* t, uint64_t ns) {
    if (ns > duet_abi::kMaxSleepNs) {
        return error(duet_abi::InvalidArgument);
    }
    // Marked first, so that a thread ending the process finds it (cancel_others()).
    atomic::store<atomic::seq_cst>(&t->ipc.blocked_in, ipc::BlockedIn::Sleep);
    sched::sleep_for(ns, &p->dying);
    atomic::store<atomic::seq_cst>(&t->ipc.blocked_in, ipc::BlockedIn::Nothing);
    return 0;
}

int64_t sys_thread_start(Process* p, uint64_t entry, uint64_t stack_top, uint64_t arg) {
    constexpr uint64_t kUserEnd = uint64_t{1} << 47;
    if (entry == 0 || entry >= kUserEnd || stack_top == 0 || stack_top > kUserEnd ||
        stack_top % 16 != 0) {
        return error(duet_abi::InvalidArgument);
    }
    auto number = start_thread(p, entry, stack_top, arg);
    if (!number.ok()) {
        // NOTE: InvalidArgument once the process is ending: the caller ends on its way back.
        return error(number.error() == Error::InvalidArgument ? duet_abi::InvalidArgument
                                                              : duet_abi::NoResources);
    }
    return number.value();
}

int64_t dispatch(Process* p, UserThread* t, SyscallArgs& call) {
    switch (call.number) {
    case duet_abi::SysExit:
        exit_process(p, t, static_cast<int>(call.args[0]), false);
    case duet_abi::SysThreadExit:
        end_thread(p, t);
    case duet_abi::SysThreadStart:
        return sys_thread_start(p, call.args[0], call.args[1], call.args[2]);
    case duet_abi::SysYield:
        sched::yield();
        return 0;
    case duet_abi::SysSleep:
        return sys_sleep(p, t, call.args[0]);
    case duet_abi::SysLogWrite:
        return sys_log_write(p, call.args[0], call.args[1]);
    case duet_abi::SysMap:
        return sys_map(p, call.args[0], call.args[1], call.args[2]);
    case duet_abi::SysUnmap:
        return sys_unmap(p, call.args[0], call.args[1]);
    default:
        break;
    }
    if (call.number >= duet_abi::SysEndpointCreate && call.number <= duet_abi::SysHandleClose) {
        int64_t result = ipc::on_syscall(t, call);
        if (result == error(duet_abi::BadAddress)) {
            count(&s_stats.bad_addresses);
        }
        return result;
    }
    return error(duet_abi::NoSuchCall);
}

} // namespace

int64_t on_syscall(SyscallArgs& call) {
    sched::Thread* me = sched::current();
    Process* p = me != nullptr ? process_of(*me) : nullptr;
    if (p == nullptr) {
        panic("a system call from a kernel thread");
    }
    UserThread* t = thread_of(*me);
    // NOTE: counted by the thread, without atomics, and into the totals as it ends.
    ++t->syscalls;
    int64_t result = dispatch(p, t, call);
    // Its process is ending (another thread exited or faulted): it ends instead of going back.
    if (dying(p)) {
        (void)hal::irq_save();
        end_thread(p, t);
    }
    return result;
}

void on_return_to_user() {
    sched::Thread* me = sched::current();
    Process* p = me != nullptr ? process_of(*me) : nullptr;
    if (p != nullptr && dying(p)) {
        end_thread(p, thread_of(*me));
    }
}

// --- faults ---------------------------------------------------------------------------------

namespace {

constexpr uint32_t kVectorGeneralProtection = 13;
constexpr uint32_t kVectorPageFault = 14;

const char* access_name(uint32_t code) {
    if (code & (1u << 4)) {
        return "user fetch";
    }
    return (code & (1u << 1)) ? "user write" : "user read";
}

} // namespace

void on_user_fault(const UserFault& fault) {
    Process* p = current();
    if (p == nullptr) {
        panic("a user-mode fault on a kernel thread");
    }
    sched::Thread* t = sched::current();
    if (dying(p)) {
        end_thread(p, thread_of(*t)); // killed already (another thread's fault or exit)
    }
    LogLine line("user");
    line.str("killed '").str(p->name).str("' (process ").dec(p->id).str(", thread ").dec(t->number);
    if (t->process_thread != 0) {
        // NOTE: which of the process's threads, short: the line holds 112 bytes.
        line.str(" #").dec(t->process_thread);
    }
    line.str("): ");
    if (fault.vector == kVectorPageFault) {
        line.str(access_name(fault.error_code))
            .str(" at ")
            .hex(fault.address.value())
            .str((fault.error_code & 1u) ? ", protection" : ", not present");
    } else if (fault.vector == kVectorGeneralProtection) {
        line.str("general protection fault");
    } else {
        line.str("exception ").dec(fault.vector);
    }
    line.str(", ip ").hex(fault.ip, 0);
    line.end();
    exit_process(p, thread_of(*t), -1, true);
}

} // namespace core::user
