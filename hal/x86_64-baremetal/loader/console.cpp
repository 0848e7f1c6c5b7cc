#include "loader/console.hpp"

#include "cpu/x86.hpp"
#include "devices/debug_exit.hpp"
#include "devices/uart16550.hpp"

namespace loader::console {

void init() {
    uart16550::init();
}

void begin() {
    str("loader: ");
}

void str(const char* s) {
    while (*s != '\0') {
        uart16550::put(*s++);
    }
}

void hex(uint64_t value) {
    static constexpr char kDigits[] = "0123456789abcdef";
    char buf[16];
    int n = 0;
    do {
        buf[n++] = kDigits[value & 0xF];
        value >>= 4;
    } while (value != 0);
    str("0x");
    while (n > 0) {
        uart16550::put(buf[--n]);
    }
}

void dec(uint64_t value) {
    char buf[20];
    int n = 0;
    do {
        buf[n++] = static_cast<char>('0' + value % 10);
        value /= 10;
    } while (value != 0);
    while (n > 0) {
        uart16550::put(buf[--n]);
    }
}

void end() {
    uart16550::put('\n');
}

void line(const char* s) {
    begin();
    str(s);
    end();
}

void refuse() {
    end();
    uart16550::drain();
    debug_exit::write(debug_exit::kLoaderError);
    x86::halt_forever();
}

void fail(const char* message) {
    begin();
    str(message);
    refuse();
}

} // namespace loader::console
