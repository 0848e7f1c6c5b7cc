// Handles and IPC: the object tables, handle tables, and the IPC system calls.
//
// Blocking follows the scheduler's protocol: under the object's lock a thread queues itself and
// marks itself blocked; after the lock is released it schedules (or hands its CPU to the thread
// it woke). Whoever completes the operation fills in the blocked thread's IpcState, sets `done`
// and wakes it.
//
// A process's threads share its handle table, under the process's lock (lock_of()). An
// operation looks its handle up under that lock and takes a reference to the object, which it
// holds until it returns: a sibling that closes the handle meanwhile cannot free the object
// from under it. (A process's only live thread needs neither: lookup().) A thread of a process
// that is ending is taken out of the queue it waits in (stop_waiters()), or is kept from
// queuing: it checks Process::dying under the object's lock.

#include <core/cpu.hpp>
#include <core/lib/atomic.hpp>
#include <core/lib/panic.hpp>
#include <core/sched/scheduler.hpp>
#include <core/sync/spinlock.hpp>
#include <core/user/ipc.hpp>
#include <core/user/process.hpp>

#include <hal/time.hpp>
#include <hal/user.hpp>

namespace core::user::ipc {

namespace {

// A queue of blocked threads, linked through IpcState::next.
struct ThreadQueue {
    UserThread* head = nullptr;
    UserThread* tail = nullptr;

    void push(UserThread* t) {
        t->ipc.next = nullptr;
        if (tail != nullptr) {
            tail->ipc.next = t;
        } else {
            head = t;
        }
        tail = t;
    }
    UserThread* pop() {
        UserThread* t = head;
        if (t != nullptr) {
            head = t->ipc.next;
            if (head == nullptr) {
                tail = nullptr;
            }
            t->ipc.next = nullptr;
        }
        return t;
    }
    // Takes every thread of process `p` out, onto the front of the list `out` (linked through
    // IpcState::next), keeping the others in order.
    void take_process(const Process* p, UserThread** out) {
        UserThread** link = &head;
        tail = nullptr;
        while (UserThread* t = *link) {
            if (t->process == p) {
                *link = t->ipc.next;
                t->ipc.next = *out;
                *out = t;
            } else {
                tail = t;
                link = &t->ipc.next;
            }
        }
    }
    // Takes the whole queue (to complete every waiter after the lock is released).
    UserThread* take_all() {
        UserThread* t = head;
        head = nullptr;
        tail = nullptr;
        return t;
    }
};

constexpr size_t kObjectName = 16;

struct Endpoint {
    SpinLock lock{"ipc.endpoint", LockRank::IpcObject};
    uint32_t refs = 0;           // atomic; from 0 to 1 under s_table (create())
    char name[kObjectName] = {}; // for reports: set_name()
    // Under `lock`: handles with each right, callers waiting for a receiver, receivers waiting
    // for a call.
    uint32_t callers = 0;
    uint32_t receivers = 0;
    ThreadQueue sending;
    ThreadQueue receiving;
};

struct Notification {
    SpinLock lock{"ipc.notification", LockRank::IpcObject};
    uint32_t refs = 0; // as Endpoint::refs
    char name[kObjectName] = {};
    uint64_t bits = 0;       // under `lock`
    uint32_t signallers = 0; // under `lock`: handles with the signal right
    ThreadQueue waiting;     // under `lock`
};

SpinLock s_table("ipc.table", LockRank::IpcTable);
Endpoint s_endpoints[kMaxEndpoints];
Notification s_notifications[kMaxNotifications];

// Counters (atomics).
uint64_t s_calls = 0;
uint64_t s_peer_gone = 0;
// Every call's round trip. NOTE: one lock for every CPU, taken once a call: a histogram a
// CPU (8 KiB each) would spare it, at a cost in memory no run has needed yet.
SpinLock s_round_trip_lock("ipc.round_trips", LockRank::IpcTable);
sched::Histogram s_round_trips;

uint32_t* refs_of(ObjectRef ref) {
    return ref.type == ObjectType::Endpoint ? &s_endpoints[ref.index].refs
                                            : &s_notifications[ref.index].refs;
}

// NOTE: only by a holder of a reference (a handle's, the kernel's): the count is not 0, so the
// slot cannot be taken by create() meanwhile, and no lock is needed.
void add_ref(ObjectRef ref) {
    atomic::fetch_add<atomic::relaxed>(refs_of(ref), uint32_t{1});
}

// Under an object's lock: whether `t`'s process is ending. The thread that ends it sets
// `dying` before it takes each object's lock to take its threads out (stop_waiters()), so a
// thread either sees it here or is found queued there.
bool dying(const UserThread* t) {
    return atomic::load<atomic::relaxed>(&t->process->dying);
}

// Under the object's lock, as `t` queues itself: what it is blocked in, for reports.
void mark(UserThread* t, BlockedIn in, uint16_t index) {
    t->ipc.blocked_on = index;
    atomic::store<atomic::relaxed>(&t->ipc.blocked_in, in);
}

void unmark(UserThread* t) {
    atomic::store<atomic::relaxed>(&t->ipc.blocked_in, BlockedIn::Nothing);
}

int64_t error(duet_abi::Errno e) {
    return -static_cast<int64_t>(e);
}

// Completes blocked thread `t`'s operation with `result` and wakes it. No lock held.
void complete(UserThread* t, int64_t result) {
    if (result == error(duet_abi::PeerGone)) {
        atomic::fetch_add<atomic::relaxed>(&s_peer_gone, uint64_t{1});
    }
    t->ipc.result = result;
    atomic::store<atomic::release>(&t->ipc.done, true);
    sched::wake(t->runner);
}

void complete_all(UserThread* list, int64_t result) {
    while (list != nullptr) {
        UserThread* next = list->ipc.next;
        list->ipc.next = nullptr;
        complete(list, result);
        list = next;
    }
}

// The calling thread waits until its operation is completed: it has marked itself blocked
// (interrupts off since) and released the object's lock. With `to`, it hands its CPU to that
// thread, which it has just woken the operation's way (its `done` set).
void block_until_done(UserThread* me, UserThread* to) {
    if (to != nullptr) {
        sched::handoff(to->runner);
    } else {
        sched::schedule();
    }
    // NOTE: nothing else wakes a thread blocked here; if something did, it waits again.
    while (!atomic::load<atomic::acquire>(&me->ipc.done)) {
        sched::schedule();
    }
}

// A handle looked up: its object's index, and a reference to the object, held until the
// operation returns, when a sibling thread may close the handle meanwhile.
class Held {
public:
    Held() = default;
    Held(const Held&) = delete;
    Held& operator=(const Held&) = delete;
    ~Held() {
        if (m_ref.type != ObjectType::None) {
            release(m_ref);
        }
    }
    uint16_t index() const { return m_index; }

private:
    friend int64_t lookup(UserThread*, uint64_t, ObjectType, uint8_t, Held*);
    uint16_t m_index = 0;
    ObjectRef m_ref; // none when the caller is its process's only live thread
};

// Checks handle `h` of `t`'s process: 0, or minus the error. The object goes into `out`.
int64_t lookup(UserThread* t, uint64_t h, ObjectType type, uint8_t right, Held* out) {
    if (h == 0 || h > kMaxHandles) {
        return error(duet_abi::BadHandle);
    }
    Process* p = t->process;
    // NOTE: the process's only live thread is the only one that can change its table (or
    // start a thread) now, so it needs neither the lock nor a reference: one-thread processes
    // pay for neither.
    bool alone = atomic::load<atomic::relaxed>(&p->live_threads) == 1;
    auto take = [&] {
        const HandleSlot& slot = p->handles[h - 1];
        if (slot.type == ObjectType::None) {
            return error(duet_abi::BadHandle);
        }
        if (slot.type != type) {
            return error(duet_abi::WrongType);
        }
        if ((slot.rights & right) == 0) {
            return error(duet_abi::AccessDenied);
        }
        out->m_index = slot.object;
        if (!alone) {
            out->m_ref = ObjectRef{slot.type, slot.object};
            add_ref(out->m_ref);
        }
        return int64_t{0};
    };
    if (alone) {
        return take();
    }
    auto guard = lock_of(p).lock_irqsave();
    return take();
}

// Under the endpoint's lock: caller `from`'s message to receiver `to`, who now owes it a reply.
void deliver(UserThread* from, UserThread* to) {
    for (uint64_t i = 0; i < duet_abi::kMessageWords; ++i) {
        to->ipc.words[i] = from->ipc.words[i];
    }
    uint32_t n = from->ipc.length < to->ipc.room ? from->ipc.length : to->ipc.room;
    __builtin_memcpy(to->ipc.bytes, from->ipc.bytes, n);
    to->ipc.length = from->ipc.length;
    to->ipc.result = from->ipc.length;
    to->ipc.sender = from->process->id;
    to->ipc.reply_to = from;
}

// The buffer argument: bytes sent in the low half, room in the high half.
struct BufferArg {
    uint64_t address = 0;
    uint32_t sent = 0;
    uint32_t room = 0;
};

bool buffer_arg(const SyscallArgs& call, BufferArg* out) {
    out->address = call.args[4];
    out->sent = static_cast<uint32_t>(call.args[5]);
    out->room = static_cast<uint32_t>(call.args[5] >> 32);
    return out->sent <= duet_abi::kMaxMessageBytes && out->room <= duet_abi::kMaxMessageBytes;
}

// The message in me->ipc (its words, and its bytes cut to the room the buffer offers) to the
// caller's registers and buffer: me->ipc.result, or -BadAddress if the buffer is not writable.
int64_t copy_out_message(UserThread* me, SyscallArgs& call, const BufferArg& buf) {
    for (uint64_t i = 0; i < duet_abi::kMessageWords; ++i) {
        call.args[1 + i] = me->ipc.words[i];
    }
    uint32_t n = me->ipc.length < buf.room ? me->ipc.length : buf.room;
    if (!hal::copy_to_user(hal::VirtAddr(buf.address), me->ipc.bytes, n)) {
        return error(duet_abi::BadAddress);
    }
    return me->ipc.result;
}

// A received message (in me->ipc, result >= 0) to the caller's registers and buffer, with its
// sender.
int64_t take_received(UserThread* me, SyscallArgs& call, const BufferArg& buf) {
    if (me->ipc.result < 0) {
        return me->ipc.result;
    }
    call.args[0] = me->ipc.sender;
    // NOTE: a -BadAddress leaves the call received all the same (its words are in the
    // registers): the caller still waits for a reply.
    return copy_out_message(me, call, buf);
}

// recv's part once the handle is checked: takes a waiting caller's message, or blocks until
// one comes. `wake_first`: a caller just replied to (reply_recv), woken here, by a direct
// switch if this thread blocks.
int64_t receive(UserThread* me, Endpoint& ep, SyscallArgs& call, const BufferArg& buf,
                UserThread* wake_first) {
    me->ipc.room = buf.room;
    me->ipc.done = false;
    {
        InterruptGuard irq;
        bool blocked = false;
        int64_t gone = 0;
        {
            auto guard = ep.lock.lock_irqsave();
            if (dying(me)) {
                gone = kStopped;
            } else if (UserThread* caller = ep.sending.pop()) {
                deliver(caller, me);
            } else if (ep.callers == 0) {
                gone = error(duet_abi::PeerGone);
            } else {
                ep.receiving.push(me);
                mark(me, BlockedIn::Recv, static_cast<uint16_t>(&ep - s_endpoints));
                sched::mark_blocked();
                blocked = true;
            }
        }
        if (blocked) {
            block_until_done(me, wake_first);
            unmark(me);
        } else if (wake_first != nullptr) {
            sched::wake(wake_first->runner);
        }
        if (gone != 0) {
            if (gone != kStopped) {
                atomic::fetch_add<atomic::relaxed>(&s_peer_gone, uint64_t{1});
            }
            return gone;
        }
    }
    sched::preempt_if_needed();
    return take_received(me, call, buf);
}

// reply's part: the caller this process owes a reply gets the message (words in args 1-3, the
// buffer); false and the error if the buffer is unreadable (the reply is still owed then).
// The caller is not woken: the caller of this does that.
int64_t fill_reply(UserThread* me, const SyscallArgs& call, const BufferArg& buf,
                   UserThread** out) {
    UserThread* caller = me->ipc.reply_to;
    if (caller == nullptr) {
        return error(duet_abi::NoReplyTarget);
    }
    uint32_t n = buf.sent < caller->ipc.room ? buf.sent : caller->ipc.room;
    if (!hal::copy_from_user(caller->ipc.bytes, hal::VirtAddr(buf.address), n)) {
        return error(duet_abi::BadAddress);
    }
    for (uint64_t i = 0; i < duet_abi::kMessageWords; ++i) {
        caller->ipc.words[i] = call.args[1 + i];
    }
    caller->ipc.length = buf.sent;
    caller->ipc.result = buf.sent;
    me->ipc.reply_to = nullptr;
    atomic::fetch_add<atomic::relaxed>(&s_calls, uint64_t{1});
    atomic::store<atomic::release>(&caller->ipc.done, true);
    *out = caller;
    return 0;
}

int64_t sys_call(UserThread* me, SyscallArgs& call) {
    Held held;
    if (int64_t e = lookup(me, call.args[0], ObjectType::Endpoint, kRightCall, &held); e < 0) {
        return e;
    }
    uint64_t start_ns = hal::now_ns();
    BufferArg buf;
    if (!buffer_arg(call, &buf)) {
        return error(duet_abi::InvalidArgument);
    }
    if (!hal::copy_from_user(me->ipc.bytes, hal::VirtAddr(buf.address), buf.sent)) {
        return error(duet_abi::BadAddress);
    }
    for (uint64_t i = 0; i < duet_abi::kMessageWords; ++i) {
        me->ipc.words[i] = call.args[1 + i];
    }
    me->ipc.length = buf.sent;
    me->ipc.room = buf.room;
    me->ipc.done = false;
    Endpoint& ep = s_endpoints[held.index()];
    {
        InterruptGuard irq;
        UserThread* receiver = nullptr;
        {
            auto guard = ep.lock.lock_irqsave();
            int64_t refused = dying(me)           ? kStopped
                              : ep.receivers == 0 ? error(duet_abi::PeerGone)
                                                  : 0;
            if (refused != 0) {
                if (refused != kStopped) {
                    atomic::fetch_add<atomic::relaxed>(&s_peer_gone, uint64_t{1});
                }
                return refused;
            }
            receiver = ep.receiving.pop();
            if (receiver != nullptr) {
                deliver(me, receiver);
                atomic::store<atomic::release>(&receiver->ipc.done, true);
            } else {
                ep.sending.push(me);
            }
            mark(me, BlockedIn::Call, held.index());
            sched::mark_blocked();
        }
        // A receiver waits: this CPU goes straight to it, with the rest of this time slice.
        block_until_done(me, receiver);
        unmark(me);
    }
    if (me->ipc.result < 0) {
        return me->ipc.result;
    }
    int64_t length = copy_out_message(me, call, buf);
    uint64_t end_ns = hal::now_ns();
    {
        auto guard = s_round_trip_lock.lock_irqsave();
        s_round_trips.record(end_ns > start_ns ? end_ns - start_ns : 0);
    }
    return length;
}

int64_t sys_recv(UserThread* me, SyscallArgs& call, bool reply_first) {
    Held held;
    if (int64_t e = lookup(me, call.args[0], ObjectType::Endpoint, kRightReceive, &held); e < 0) {
        return e;
    }
    BufferArg buf;
    if (!buffer_arg(call, &buf)) {
        return error(duet_abi::InvalidArgument);
    }
    UserThread* replied = nullptr;
    if (reply_first) {
        if (int64_t e = fill_reply(me, call, buf, &replied); e < 0) {
            return e;
        }
    } else if (me->ipc.reply_to != nullptr) {
        return error(duet_abi::NoReplyTarget); // answer the call received first
    }
    return receive(me, s_endpoints[held.index()], call, buf, replied);
}

int64_t sys_reply(UserThread* me, SyscallArgs& call) {
    BufferArg buf;
    buf.address = call.args[4];
    buf.sent = static_cast<uint32_t>(call.args[5]);
    if (call.args[5] > duet_abi::kMaxMessageBytes) {
        return error(duet_abi::InvalidArgument);
    }
    UserThread* replied = nullptr;
    if (int64_t e = fill_reply(me, call, buf, &replied); e < 0) {
        return e;
    }
    sched::wake(replied->runner);
    sched::preempt_if_needed();
    return 0;
}

int64_t sys_create(UserThread* me, ObjectType type, uint8_t rights) {
    auto ref = create(type);
    if (!ref.ok()) {
        return error(duet_abi::NoResources);
    }
    auto h = grant(me->process, ref.value(), rights);
    release(ref.value());
    if (!h.ok()) {
        return error(duet_abi::NoResources);
    }
    return h.value();
}

int64_t sys_signal(UserThread* me, uint64_t h, uint64_t bits) {
    Held held;
    if (int64_t e = lookup(me, h, ObjectType::Notification, kRightSignal, &held); e < 0) {
        return e;
    }
    if (bits == 0 || (bits >> 63) != 0) {
        return error(duet_abi::InvalidArgument);
    }
    Notification& n = s_notifications[held.index()];
    UserThread* waiter = nullptr;
    uint64_t taken = 0;
    {
        auto guard = n.lock.lock_irqsave();
        n.bits |= bits;
        waiter = n.waiting.pop();
        if (waiter != nullptr) {
            taken = n.bits;
            n.bits = 0;
        }
    }
    if (waiter != nullptr) {
        complete(waiter, static_cast<int64_t>(taken));
        sched::preempt_if_needed();
    }
    return 0;
}

int64_t sys_wait(UserThread* me, uint64_t h) {
    Held held;
    if (int64_t e = lookup(me, h, ObjectType::Notification, kRightWait, &held); e < 0) {
        return e;
    }
    Notification& n = s_notifications[held.index()];
    me->ipc.done = false;
    InterruptGuard irq;
    {
        auto guard = n.lock.lock_irqsave();
        int64_t now = 0;
        if (dying(me)) {
            now = kStopped;
        } else if (n.bits != 0) {
            now = static_cast<int64_t>(n.bits);
            n.bits = 0;
        } else if (n.signallers == 0) {
            atomic::fetch_add<atomic::relaxed>(&s_peer_gone, uint64_t{1});
            now = error(duet_abi::PeerGone); // nobody is left to set a bit
        }
        if (now != 0) {
            return now;
        }
        n.waiting.push(me);
        mark(me, BlockedIn::Wait, held.index());
        sched::mark_blocked();
    }
    block_until_done(me, nullptr);
    unmark(me);
    return me->ipc.result;
}

// Closes a handle that was in slot `closed` of a process (taken out of its table under the
// process's lock): an endpoint that loses its last receiver (caller) turns its waiting callers
// (receivers) away with PeerGone, and a notification that loses its last signaller its waiters.
void close_slot(HandleSlot closed) {
    ObjectRef ref{closed.type, closed.object};
    uint8_t rights = closed.rights;
    if (ref.type == ObjectType::Endpoint) {
        Endpoint& ep = s_endpoints[ref.index];
        UserThread* turned_away = nullptr;
        UserThread* also = nullptr;
        {
            auto guard = ep.lock.lock_irqsave();
            if ((rights & kRightCall) != 0 && --ep.callers == 0) {
                turned_away = ep.receiving.take_all();
            }
            if ((rights & kRightReceive) != 0 && --ep.receivers == 0) {
                also = ep.sending.take_all();
            }
        }
        complete_all(turned_away, error(duet_abi::PeerGone));
        complete_all(also, error(duet_abi::PeerGone));
    } else if (ref.type == ObjectType::Notification && (rights & kRightSignal) != 0) {
        Notification& n = s_notifications[ref.index];
        UserThread* turned_away = nullptr;
        {
            auto guard = n.lock.lock_irqsave();
            // NOTE: bits set already stay for a later wait; a waiter found none.
            if (--n.signallers == 0) {
                turned_away = n.waiting.take_all();
            }
        }
        complete_all(turned_away, error(duet_abi::PeerGone));
    }
    release(ref);
}

} // namespace

Result<ObjectRef> create(ObjectType type) {
    auto guard = s_table.lock_irqsave();
    if (type == ObjectType::Endpoint) {
        for (size_t i = 0; i < kMaxEndpoints; ++i) {
            Endpoint& ep = s_endpoints[i];
            if (atomic::load<atomic::acquire>(&ep.refs) == 0) {
                ep.name[0] = '\0';
                ep.callers = 0;
                ep.receivers = 0;
                ep.sending = ThreadQueue{};
                ep.receiving = ThreadQueue{};
                atomic::store<atomic::release>(&ep.refs, uint32_t{1});
                return ObjectRef{type, static_cast<uint16_t>(i)};
            }
        }
    } else if (type == ObjectType::Notification) {
        for (size_t i = 0; i < kMaxNotifications; ++i) {
            Notification& n = s_notifications[i];
            if (atomic::load<atomic::acquire>(&n.refs) == 0) {
                n.name[0] = '\0';
                n.bits = 0;
                n.signallers = 0;
                n.waiting = ThreadQueue{};
                atomic::store<atomic::release>(&n.refs, uint32_t{1});
                return ObjectRef{type, static_cast<uint16_t>(i)};
            }
        }
    } else {
        return Error::InvalidArgument;
    }
    return Error::CapacityExceeded;
}

void release(ObjectRef ref) {
    // NOTE: the last reference frees the slot for create(): nothing is left to clean up, since
    // an object's queues are empty once no handle with either right is left.
    uint32_t before = atomic::fetch_sub<atomic::acq_rel>(refs_of(ref), uint32_t{1});
    ASSERT(before > 0);
}

Result<uint32_t> grant(Process* p, ObjectRef ref, uint8_t rights) {
    auto table = lock_of(p).lock_irqsave();
    for (size_t i = 0; i < kMaxHandles; ++i) {
        HandleSlot& slot = p->handles[i];
        if (slot.type != ObjectType::None) {
            continue;
        }
        add_ref(ref);
        if (ref.type == ObjectType::Endpoint) {
            Endpoint& ep = s_endpoints[ref.index];
            auto guard = ep.lock.lock_irqsave();
            ep.callers += (rights & kRightCall) != 0 ? 1 : 0;
            ep.receivers += (rights & kRightReceive) != 0 ? 1 : 0;
        } else if (ref.type == ObjectType::Notification && (rights & kRightSignal) != 0) {
            Notification& n = s_notifications[ref.index];
            auto guard = n.lock.lock_irqsave();
            ++n.signallers;
        }
        slot.type = ref.type;
        slot.rights = rights;
        slot.object = ref.index;
        return static_cast<uint32_t>(i + 1);
    }
    return Error::CapacityExceeded;
}

void thread_ended(UserThread* t) {
    if (UserThread* caller = t->ipc.reply_to) {
        t->ipc.reply_to = nullptr;
        complete(caller, error(duet_abi::PeerGone));
    }
}

void process_ended(Process* p) {
    for (HandleSlot& slot : p->handles) {
        HandleSlot closed;
        {
            auto guard = lock_of(p).lock_irqsave();
            closed = slot;
            slot = HandleSlot{};
        }
        if (closed.type != ObjectType::None) {
            close_slot(closed);
        }
    }
}

void stop_waiters(const Process* p) {
    // NOTE: every object, not only those `p` has handles to: a thread may wait on one whose
    // handle a sibling has closed meanwhile (its operation holds a reference). A free object
    // has no queue. Rare (a process's end), so 128 locks at most are fine.
    UserThread* stopped = nullptr;
    for (Endpoint& ep : s_endpoints) {
        if (atomic::load<atomic::acquire>(&ep.refs) != 0) {
            auto guard = ep.lock.lock_irqsave();
            ep.sending.take_process(p, &stopped);
            ep.receiving.take_process(p, &stopped);
        }
    }
    for (Notification& n : s_notifications) {
        if (atomic::load<atomic::acquire>(&n.refs) != 0) {
            auto guard = n.lock.lock_irqsave();
            n.waiting.take_process(p, &stopped);
        }
    }
    complete_all(stopped, kStopped);
}

int64_t on_syscall(UserThread* t, SyscallArgs& call) {
    switch (call.number) {
    case duet_abi::SysEndpointCreate:
        return sys_create(t, ObjectType::Endpoint, kRightCall | kRightReceive);
    case duet_abi::SysCall:
        return sys_call(t, call);
    case duet_abi::SysRecv:
        return sys_recv(t, call, false);
    case duet_abi::SysReply:
        return sys_reply(t, call);
    case duet_abi::SysReplyRecv:
        return sys_recv(t, call, true);
    case duet_abi::SysNotificationCreate:
        return sys_create(t, ObjectType::Notification, kRightSignal | kRightWait);
    case duet_abi::SysSignal:
        return sys_signal(t, call.args[0], call.args[1]);
    case duet_abi::SysWait:
        return sys_wait(t, call.args[0]);
    case duet_abi::SysHandleClose: {
        uint64_t h = call.args[0];
        if (h == 0 || h > kMaxHandles) {
            return error(duet_abi::BadHandle);
        }
        Process* p = t->process;
        HandleSlot closed;
        {
            auto guard = lock_of(p).lock_irqsave();
            if (p->handles[h - 1].type == ObjectType::None) {
                return error(duet_abi::BadHandle);
            }
            closed = p->handles[h - 1];
            p->handles[h - 1] = HandleSlot{};
        }
        close_slot(closed);
        return 0;
    }
    default:
        return error(duet_abi::NoSuchCall);
    }
}

void set_name(ObjectRef ref, const char* name) {
    char* to = ref.type == ObjectType::Endpoint ? s_endpoints[ref.index].name
                                                : s_notifications[ref.index].name;
    size_t n = 0;
    for (; name[n] != '\0' && n + 1 < kObjectName; ++n) {
        to[n] = name[n];
    }
    to[n] = '\0';
}

namespace {

void name_object(LineBuffer& line, const char* kind, const char* name, uint16_t index) {
    line.str(kind);
    if (name[0] != '\0') {
        line.str(" '").str(name).chr('\'');
    } else {
        line.str(" #").dec(index);
    }
}

// The process whose thread has received `caller`'s call and owes it the reply, or null.
const Process* owing_reply(const UserThread* caller) {
    for (uint32_t n = 1; n <= kMaxProcesses; ++n) {
        const Process* q = process_by_number(n);
        if (q == nullptr) {
            continue;
        }
        for (const UserThread& u : q->threads) {
            if (u.ipc.reply_to == caller) {
                return q;
            }
        }
    }
    return nullptr;
}

} // namespace

void describe_blocked(const sched::Thread& thread, LineBuffer& line) {
    const UserThread* t = user_thread_of(thread);
    if (t == nullptr || t->process == nullptr) {
        line.str(" waits on a wait queue");
        return;
    }
    line.str(" (process ").dec(t->process->id).chr(')');
    uint16_t i = t->ipc.blocked_on;
    switch (t->ipc.blocked_in) {
    case BlockedIn::Call:
        line.str(" waits in call on ");
        name_object(line, "endpoint", s_endpoints[i].name, i);
        if (const Process* server = owing_reply(t)) {
            line.str(" for process ").dec(server->id).str(" '").str(server->name).str("' to reply");
        } else {
            line.str(" for a receiver");
        }
        return;
    case BlockedIn::Recv:
        line.str(" waits in recv on ");
        name_object(line, "endpoint", s_endpoints[i].name, i);
        line.str(" for a call");
        return;
    case BlockedIn::Wait:
        line.str(" waits on ");
        name_object(line, "notification", s_notifications[i].name, i);
        line.str(" for a signal");
        return;
    case BlockedIn::Sleep:
    case BlockedIn::Nothing:
        break;
    }
    line.str(" waits on a wait queue");
}

Stats stats() {
    Stats s;
    s.calls = atomic::load<atomic::relaxed>(&s_calls);
    s.round_trip_p50_ns = s_round_trips.percentile(500);
    s.round_trip_p99_ns = s_round_trips.percentile(990);
    s.round_trip_max_ns = s_round_trips.max;
    s.peer_gone = atomic::load<atomic::relaxed>(&s_peer_gone);
    for (const Endpoint& ep : s_endpoints) {
        s.endpoints_live += ep.refs != 0 ? 1 : 0;
    }
    for (const Notification& n : s_notifications) {
        s.notifications_live += n.refs != 0 ? 1 : 0;
    }
    return s;
}

} // namespace core::user::ipc
