#pragma once

// Marks code that runs only during bring-up, on the loader's 1 KiB stack, so that reviewers
// see it. The kernel's linker script gathers it at the start of .text, between
// __boot_text_start and __boot_text_end; nothing frees it (it is a few KiB). What runs on the
// 1 KiB stack is proved by tools/check-stack.py, marked or not.
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
