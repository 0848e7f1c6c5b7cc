// For the benchmarks (tests/bench/ipc_bench.cpp): 50,000 calls of words only to ping-server
// (handle 1, call:NAME), each reply's first word checked. Without a server its first call gets
// PeerGone and it exits at once: the benchmark's measure of everything but the round trips.

#include <duet/syscall.hpp>

int main() {
    constexpr uint64_t kRounds = 50'000;
    for (uint64_t i = 0; i < kRounds; ++i) {
        duet::Message m;
        m.words[0] = i;
        int64_t r = duet::call(1, m);
        if (r == -duet_abi::PeerGone && i == 0) {
            return 0;
        }
        if (r != 0 || m.words[0] != i + 1) {
            duet::log_number("a wrong reply in round ", i);
            return 1;
        }
    }
    return 0;
}
