// A client of the endpoint it was given as handle 1 (sys/programs: call:NAME): 100 round trips
// to ping-server, each reply checked (its words and its bytes), then it exits: its handle
// goes, and the server learns it when its last client has gone. The first round offers room
// for 3 bytes only: the reply is cut to them, and its length is still the length sent.

#include <duet/syscall.hpp>

int main() {
    constexpr uint64_t kEndpoint = 1;
    constexpr uint64_t kRounds = 100;
    constexpr uint64_t kMark = 0x5eed'0000'0000'1234;
    for (uint64_t i = 0; i < kRounds; ++i) {
        char text[] = "ping #0";
        text[6] = static_cast<char>('0' + i % 10);
        constexpr uint32_t kLength = sizeof text - 1;
        duet::store(duet::kSendBuffer, text, kLength);
        duet::Message m;
        m.words[0] = i;
        m.words[1] = kMark ^ i;
        m.buffer = duet::kSendBuffer;
        m.sent = kLength;
        m.room = i == 0 ? 3 : duet_abi::kMaxMessageBytes;
        int64_t r = duet::call(kEndpoint, m);
        if (r != kLength) {
            duet::log_number("call failed: result -", static_cast<uint64_t>(-r));
            return 1;
        }
        char back[kLength];
        duet::load(duet::kSendBuffer, back, kLength);
        // Round 0: "PIN" over "ping #0", the rest as it was sent.
        const char* expected = i == 0 ? "PINg #" : "PING #";
        bool ok = m.words[0] == i + 1 && m.words[1] == (kMark ^ i) && m.words[2] != 0 &&
                  back[6] == text[6];
        for (uint32_t k = 0; k < 6; ++k) {
            ok = ok && back[k] == expected[k];
        }
        if (!ok) {
            duet::log_number("a wrong reply in round ", i);
            return 1;
        }
    }
    duet::log_number("round trips, every reply checked: ", kRounds);
    return 0;
}
