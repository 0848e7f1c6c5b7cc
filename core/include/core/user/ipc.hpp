#pragma once

// Handles and IPC: each process's handle table, and the objects handles name: endpoints
// (synchronous calls in the L4 style: call blocks until reply) and notifications (bits set
// by signal, taken by wait). docs/user-space.md, "Handles and IPC", has the semantics.
//
// Objects live in two fixed tables (no heap, so a run's frames in use come back exactly) and
// are counted: each handle holds a reference, and so does the kernel while it hands them out
// (grant()). The last reference frees the slot. An endpoint also counts the handles with the
// call right and those with the receive right: when either count falls to 0 the other side's
// waiters get PeerGone, so no process waits for a peer that has ended.

#include <core/lib/line.hpp>
#include <core/lib/result.hpp>
#include <core/user/abi.hpp>

#include <stddef.h>
#include <stdint.h>

namespace core::sched {
struct Thread;
}

namespace core::user {

struct Process;
struct UserThread;
struct SyscallArgs;

namespace ipc {

inline constexpr size_t kMaxHandles = 16;
inline constexpr size_t kMaxEndpoints = 64;
inline constexpr size_t kMaxNotifications = 64;

enum class ObjectType : uint8_t { None, Endpoint, Notification };

// A handle's rights.
inline constexpr uint8_t kRightCall = 1;    // call an endpoint
inline constexpr uint8_t kRightReceive = 2; // recv on an endpoint (and reply to what came)
inline constexpr uint8_t kRightSignal = 4;  // signal a notification
inline constexpr uint8_t kRightWait = 8;    // wait on a notification

// One entry of a process's handle table: handle h is slot h - 1.
struct HandleSlot {
    ObjectType type = ObjectType::None;
    uint8_t rights = 0;
    uint16_t object = 0; // its slot in the endpoint or notification table
};

// A user thread's part in IPC. It fills it before it blocks; the thread that completes the
// operation writes the result (and a message) while it is blocked, then sets `done`.
// `blocked_in` also says when it sleeps, so that a process that ends can wake it.
enum class BlockedIn : uint8_t { Nothing, Call, Recv, Wait, Sleep };

struct IpcState {
    uint64_t words[duet_abi::kMessageWords] = {};
    uint8_t bytes[duet_abi::kMaxMessageBytes] = {};
    uint32_t length = 0; // the message's length (it may hold fewer bytes: `room`)
    uint32_t room = 0;   // how many bytes the blocked process takes
    int64_t result = 0;  // >= 0: the length delivered; < 0: minus an Errno
    uint32_t sender = 0; // a received call's process id
    bool done = false;
    UserThread* next = nullptr;     // in an endpoint's or a notification's queue
    UserThread* reply_to = nullptr; // the caller this thread owes a reply
    // What it is blocked in, for the reports of a stopped machine (describe_blocked()), set
    // under the object's lock; and `Sleep`, set before it sleeps (sequentially consistent, so
    // that a thread ending the process either finds it asleep or is seen: process.cpp).
    BlockedIn blocked_in = BlockedIn::Nothing;
    uint16_t blocked_on = 0; // the endpoint's or notification's index
};

// The result an operation cut short by its process's end completes with: never seen in user
// mode, since the thread ends on its way back.
inline constexpr int64_t kStopped = -1000;

// A kernel reference to an object (the init thread's, while it grants handles).
struct ObjectRef {
    ObjectType type = ObjectType::None;
    uint16_t index = 0;
};

// A new object with one kernel reference; CapacityExceeded if its table is full.
[[nodiscard]] Result<ObjectRef> create(ObjectType type);
// Drops a kernel reference.
void release(ObjectRef ref);
// Names `ref`'s object for reports (at most 15 bytes kept): the init thread names those
// sys/programs gives.
void set_name(ObjectRef ref, const char* name);
// Installs a handle to `ref`'s object with `rights` in `p`'s table (a new reference); the
// handle, or CapacityExceeded if the table is full. Before `p` starts, or by its own thread.
[[nodiscard]] Result<uint32_t> grant(Process* p, ObjectRef ref, uint8_t rights);

// A thread ends (on that thread): the caller it owes a reply gets PeerGone.
void thread_ended(UserThread* t);

// The process's last thread ends (on that thread): every handle is closed. Also from wait(),
// for a process that never ran.
void process_ended(Process* p);

// Stops every thread of process `p`, which is ending (Process::dying set first), that waits in
// an endpoint's or a notification's queue: each is taken out and completed with kStopped. A
// call already received is not cut short: its thread ends when the reply (or PeerGone) comes.
// After this no thread of `p` queues itself (each checks `dying` under the object's lock). No
// lock held.
void stop_waiters(const Process* p);

// The IPC system calls (numbers SysEndpointCreate to SysHandleClose) from thread `t`: the
// result, with out registers written back into `call`.
int64_t on_syscall(UserThread* t, SyscallArgs& call);

struct Stats {
    uint64_t calls = 0; // call()s that got a reply
    // Their round trips, from the call's entry into the kernel to its return with the reply
    // (the histogram's bucket bounds, as the scheduler's latencies: core/sched/scheduler.hpp).
    uint64_t round_trip_p50_ns = 0;
    uint64_t round_trip_p99_ns = 0;
    uint64_t round_trip_max_ns = 0;
    uint64_t peer_gone = 0;      // operations ended by PeerGone
    uint64_t endpoints_live = 0; // slots in use now
    uint64_t notifications_live = 0;
};
// What the user thread `t` is blocked in, after its name:
// " (process 3) waits in call on endpoint 'ping' for process 1 'server' to reply", or
// " (process 3) waits on a wait queue" if not in IPC. Reads without locks: for a stopped
// machine's report (core/sync/waits.hpp).
void describe_blocked(const sched::Thread& t, LineBuffer& line);

// On a quiet machine only: no process may be running (the init thread once it has reaped them
// all, or the simulator after the run). Takes no lock and calls nothing of the HAL.
Stats stats();

} // namespace ipc
} // namespace core::user
