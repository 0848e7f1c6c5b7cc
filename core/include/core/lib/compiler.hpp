#pragma once

// Marks code that runs only during bring-up, on the loader's 1 KiB stack, so that reviewers
// see it and the kernel can discard it later.
#define BOOT_CODE __attribute__((section(".text.boot")))

#define ALWAYS_INLINE inline __attribute__((always_inline))
#define NOINLINE __attribute__((noinline))
