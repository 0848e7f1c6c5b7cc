#pragma once

// Marks code that runs only during bring-up, on the loader's 1 KiB stack, so that reviewers
// see it. The kernel's linker script gathers it at the start of .text, between
// __boot_text_start and __boot_text_end; nothing frees it (about 12 KiB). What runs on the
// 1 KiB stack is proved by tools/check-stack.py, marked or not.
#define BOOT_CODE __attribute__((section(".text.boot")))

#define ALWAYS_INLINE inline __attribute__((always_inline))
#define NOINLINE __attribute__((noinline))
