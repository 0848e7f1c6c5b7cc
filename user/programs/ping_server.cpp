// A server on the endpoint it was given as handle 1 (sys/programs: serve:NAME): answers each
// call with its first word plus one, its second word as it came, the caller's process id as
// the third, and the call's bytes with every lower-case letter made upper-case. Serves until
// the last caller has gone (PeerGone), then logs how many calls it answered.

#include <duet/syscall.hpp>

int main() {
    constexpr uint64_t kEndpoint = 1;
    duet::Message m;
    // One buffer both ways: reply_recv reads the reply's bytes before the next call's arrive.
    m.buffer = duet::kSendBuffer;
    m.room = duet_abi::kMaxMessageBytes;
    int64_t r = duet::recv(kEndpoint, m);
    uint64_t served = 0;
    while (r >= 0) {
        uint8_t bytes[duet_abi::kMaxMessageBytes];
        auto n = static_cast<uint32_t>(r < m.room ? r : m.room);
        duet::load(duet::kSendBuffer, bytes, n);
        for (uint32_t i = 0; i < n; ++i) {
            if (bytes[i] >= 'a' && bytes[i] <= 'z') {
                bytes[i] = static_cast<uint8_t>(bytes[i] - 'a' + 'A');
            }
        }
        duet::store(duet::kSendBuffer, bytes, n);
        m.words[0] += 1;
        m.words[2] = m.sender;
        m.sent = n;
        ++served;
        r = duet::reply_recv(kEndpoint, m);
    }
    if (r != -duet_abi::PeerGone) {
        duet::log_number("receiving failed: error -", static_cast<uint64_t>(-r));
        return 1;
    }
    duet::log_number("every caller has gone; calls answered: ", served);
    return 0;
}
