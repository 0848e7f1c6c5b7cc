// Helpers GCC calls on its own for some builtins when the target lacks the instruction
// (libgcc's job on a hosted system). The kernel links without libgcc, whose objects are built
// with the red zone and SSE, so the few it needs are here.

#include <stdint.h>

extern "C" {

// __builtin_popcountll without -mpopcnt (the baseline x86_64 has no POPCNT).
int __popcountdi2(int64_t value) {
    auto v = static_cast<uint64_t>(value);
    v = v - ((v >> 1) & 0x5555'5555'5555'5555ull);
    v = (v & 0x3333'3333'3333'3333ull) + ((v >> 2) & 0x3333'3333'3333'3333ull);
    v = (v + (v >> 4)) & 0x0F0F'0F0F'0F0F'0F0Full;
    return static_cast<int>((v * 0x0101'0101'0101'0101ull) >> 56);
}

} // extern "C"
