// The first user program: writes to the log, yields, sleeps, and exits with 0.

#include <duet/syscall.hpp>

int main() {
    duet::log("hello from user space");
    duet::yield();
    if (duet::sleep_ns(2'000'000) != 0) {
        duet::log("sleep failed");
        return 1;
    }
    duet::log("back after a yield and a 2 ms sleep");
    return 0;
}
