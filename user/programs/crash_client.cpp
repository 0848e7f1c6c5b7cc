// The caller of crash-server (handle 1, call:NAME): its call ends with PeerGone when the server
// dies holding it, and so does every call after (the endpoint has no receiver left). Then it
// signals bit 1 on the notification it was given as handle 2 (signal:NAME).

#include <duet/syscall.hpp>

int main() {
    duet::Message m;
    m.words[0] = 7;
    int64_t first = duet::call(1, m);
    duet::Message again;
    int64_t second = duet::call(1, again);
    if (first != -duet_abi::PeerGone || second != -duet_abi::PeerGone) {
        duet::log("a call to a dead server did not end with PeerGone");
        return 1;
    }
    duet::log("the server died holding my call: PeerGone, twice");
    if (duet::signal(2, 1u << 1) != 0) {
        duet::log("signal failed");
        return 1;
    }
    return 0;
}
