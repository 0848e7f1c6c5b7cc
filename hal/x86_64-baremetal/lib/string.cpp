// The four functions GCC may call on its own even in freestanding code (struct copies, zeroed
// arrays). Linked into the kernel and the loader; string instructions keep the compiler from
// recognising the loops and calling these functions from themselves.

#include <stddef.h>
#include <stdint.h>

extern "C" {

void* memcpy(void* dst, const void* src, size_t n) {
    void* ret = dst;
    asm volatile("rep movsb" : "+D"(dst), "+S"(src), "+c"(n) : : "memory");
    return ret;
}

void* memmove(void* dst, const void* src, size_t n) {
    auto d = reinterpret_cast<uintptr_t>(dst);
    auto s = reinterpret_cast<uintptr_t>(src);
    if (d <= s || d >= s + n) {
        return memcpy(dst, src, n);
    }
    // Overlapping with the destination above the source: copy from the last byte down.
    void* last_dst = static_cast<uint8_t*>(dst) + n - 1;
    const void* last_src = static_cast<const uint8_t*>(src) + n - 1;
    asm volatile("std; rep movsb; cld" : "+D"(last_dst), "+S"(last_src), "+c"(n) : : "memory");
    return dst;
}

void* memset(void* dst, int value, size_t n) {
    void* ret = dst;
    asm volatile("rep stosb" : "+D"(dst), "+c"(n) : "a"(value) : "memory");
    return ret;
}

int memcmp(const void* a, const void* b, size_t n) {
    const auto* x = static_cast<const uint8_t*>(a);
    const auto* y = static_cast<const uint8_t*>(b);
    for (size_t i = 0; i < n; ++i) {
        if (x[i] != y[i]) {
            return x[i] < y[i] ? -1 : 1;
        }
    }
    return 0;
}

} // extern "C"
