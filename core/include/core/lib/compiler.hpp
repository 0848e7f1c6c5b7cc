#pragma once

// Marks code that runs only during bring-up, on the loader's 1 KiB stack, so that reviewers
// see it and the kernel can discard it later.
#define BOOT_CODE __attribute__((section(".text.boot")))

#define ALWAYS_INLINE inline __attribute__((always_inline))
#define NOINLINE __attribute__((noinline))

// Returns `p` unchanged, but the compiler no longer knows where it came from: it keeps the
// pointer in a register instead of recomputing it from an index at every use (GCC does that
// for `&table[i]` under register pressure, three instructions a time).
template <typename T>
ALWAYS_INLINE T* opaque(T* p) {
    asm("" : "+r"(p));
    return p;
}
