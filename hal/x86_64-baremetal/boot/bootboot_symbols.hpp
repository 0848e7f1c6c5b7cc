#pragma once

// The BOOTBOOT level 1 symbols, defined by boot/link.ld at the protocol's fixed addresses and
// kept (unmangled) in the stripped kernel so that level 2 loaders find them too.

#include <hal/bootboot.hpp>

extern "C" {
extern const bootboot_abi::Info bootboot;                      // read-only page
extern const char environment[bootboot_abi::kEnvironmentSize]; // read-only page
}
