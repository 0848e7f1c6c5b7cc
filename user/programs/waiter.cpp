// Waits on the notification it was given as handle 1 (wait:NAME) and logs the bits it got.

#include <duet/syscall.hpp>

int main() {
    int64_t bits = duet::wait(1);
    if (bits <= 0) {
        duet::log_number("wait failed: error -", static_cast<uint64_t>(-bits));
        return 1;
    }
    duet::log_number("woken with bits ", static_cast<uint64_t>(bits));
    return 0;
}
