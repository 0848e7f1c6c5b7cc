// Every bad IPC argument gets its error, never a fault: handles that name nothing, a handle
// of the wrong type or without the right, a reply with nobody to answer, a buffer too long or
// at a bad address, a full handle table. Handle 1 is an endpoint it may only call
// (call:NAME). Logs the first check that failed, or that all held.

#include <duet/syscall.hpp>

namespace {

int s_failed = 0;

void check(const char* what, int64_t got, int64_t want) {
    if (got != want && s_failed == 0) {
        s_failed = 1;
        duet::log(what);
    }
}

int64_t err(duet_abi::Errno e) {
    return -static_cast<int64_t>(e);
}

} // namespace

int main() {
    duet::Message m;
    // Handles that name nothing: 0, past the table, a free slot.
    check("call on handle 0", duet::call(0, m), err(duet_abi::BadHandle));
    check("call on handle 99", duet::call(99, m), err(duet_abi::BadHandle));
    check("recv on a free slot", duet::recv(9, m), err(duet_abi::BadHandle));
    check("signal on 2^64 - 1", duet::signal(~uint64_t{0}, 1), err(duet_abi::BadHandle));
    // Handle 1 may only be called.
    check("recv without the right", duet::recv(1, m), err(duet_abi::AccessDenied));
    check("wait on an endpoint", duet::wait(1), err(duet_abi::WrongType));
    // Nothing to answer.
    check("reply to nobody", duet::reply(m), err(duet_abi::NoReplyTarget));
    // Buffers: too long either way, at a kernel address, unmapped.
    duet::Message big;
    big.buffer = duet::kSendBuffer;
    big.sent = duet_abi::kMaxMessageBytes + 1;
    check("a buffer too long", duet::call(1, big), err(duet_abi::InvalidArgument));
    big.sent = 0;
    big.room = 1u << 31;
    check("a room too large", duet::call(1, big), err(duet_abi::InvalidArgument));
    duet::Message bad;
    bad.buffer = 0xffff'ffff'ffe0'2000; // the kernel image
    bad.sent = 8;
    check("a kernel buffer", duet::call(1, bad), err(duet_abi::BadAddress));
    bad.buffer = 0x10; // unmapped
    check("an unmapped buffer", duet::call(1, bad), err(duet_abi::BadAddress));
    // A notification of its own: bits add up until taken; bit 63 is refused.
    int64_t n = duet::notification_create();
    check("notification_create", n > 1 ? 0 : n, 0);
    check("signal 0b100", duet::signal(static_cast<uint64_t>(n), 0b100), 0);
    check("signal 0b001", duet::signal(static_cast<uint64_t>(n), 0b001), 0);
    check("wait", duet::wait(static_cast<uint64_t>(n)), 0b101);
    check("signal bit 63", duet::signal(static_cast<uint64_t>(n), uint64_t{1} << 63),
          err(duet_abi::InvalidArgument));
    check("call a notification", duet::call(static_cast<uint64_t>(n), m), err(duet_abi::WrongType));
    check("close it", duet::handle_close(static_cast<uint64_t>(n)), 0);
    check("signal a closed handle", duet::signal(static_cast<uint64_t>(n), 1),
          err(duet_abi::BadHandle));
    check("close it again", duet::handle_close(static_cast<uint64_t>(n)), err(duet_abi::BadHandle));
    // An endpoint of its own, with both rights: receiving with nobody else to call is fine
    // to set up but would wait for itself, so only its table entry is tested here.
    int64_t e = duet::endpoint_create();
    check("endpoint_create", e > 1 ? 0 : e, 0);
    check("signal an endpoint", duet::signal(static_cast<uint64_t>(e), 1),
          err(duet_abi::WrongType));
    // Fill the table (handle 1 and `e` are in it): the next create fails; then close them.
    int64_t made[duet_abi::kMaxMessageBytes];
    int count = 0;
    for (;;) {
        int64_t h = duet::endpoint_create();
        if (h < 0) {
            check("a full table", h, err(duet_abi::NoResources));
            break;
        }
        made[count++] = h;
    }
    check("handles in a full table", count, 14);
    for (int i = 0; i < count; ++i) {
        check("close", duet::handle_close(static_cast<uint64_t>(made[i])), 0);
    }
    check("close the endpoint", duet::handle_close(static_cast<uint64_t>(e)), 0);
    if (s_failed != 0) {
        return 1;
    }
    duet::log("every bad IPC argument was refused with an error");
    return 0;
}
