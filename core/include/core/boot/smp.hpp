#pragma once

// Bringing the other CPUs online.

#include <stdint.h>

namespace core {

// Installs CPU `index`'s per-CPU data on the calling CPU and marks it online.
void init_this_cpu(uint32_t index);

// On the bootstrap CPU, once it is set up: releases the other CPUs and waits until all
// `count` CPUs (itself included) are online, then logs them.
void start_secondary_cpus(uint32_t count);

// CPUs online so far.
uint32_t cpus_online();

} // namespace core
