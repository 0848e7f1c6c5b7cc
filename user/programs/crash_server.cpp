// A server that dies holding a call: it receives one (on handle 1, serve:NAME), then reads
// kernel memory and is killed. Its caller must get PeerGone, not wait forever.

#include <duet/syscall.hpp>

int main() {
    duet::Message m;
    int64_t r = duet::recv(1, m);
    if (r < 0) {
        duet::log_number("receiving failed: error -", static_cast<uint64_t>(-r));
        return 1;
    }
    duet::log("got a call; now reading kernel memory");
    (void)duet::load64(0xffff'ffff'ffe0'2000);
    return 0;
}
