#pragma once

// Bringing the other CPUs online.

#include <stdint.h>

namespace core {

// Makes CPU `index`'s core::Cpu the calling CPU's (hal::set_this_cpu()): the first thing each
// CPU does in the core, before it takes any lock.
void install_this_cpu(uint32_t index);

// Marks the calling CPU online, once it can run threads (its scheduler is ready).
void mark_this_cpu_online();

// On the bootstrap CPU, once it is set up: releases the other CPUs and waits until all
// `count` CPUs (itself included) are online, then logs them.
void start_secondary_cpus(uint32_t count);

// CPUs online so far.
uint32_t cpus_online();

} // namespace core
