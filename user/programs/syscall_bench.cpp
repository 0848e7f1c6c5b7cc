// For the benchmarks (tests/bench/ipc_bench.cpp): 100,000 system calls that do nothing but
// check their argument (handle_close(0): BadHandle); or none, with a handle 1 to mark the
// benchmark's measure of everything but the calls (call:NAME).

#include <duet/syscall.hpp>

int main() {
    if (duet::handle_close(1) == 0) {
        return 0;
    }
    for (int i = 0; i < 100'000; ++i) {
        if (duet::handle_close(0) != -duet_abi::BadHandle) {
            return 1;
        }
    }
    return 0;
}
