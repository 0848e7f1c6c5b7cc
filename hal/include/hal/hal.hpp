#pragma once

/// @file
/// The whole HAL contract: free functions in namespace hal, defined once per backend and
/// chosen at link time.

#include <hal/context.hpp>
#include <hal/cpu.hpp>
#include <hal/fault.hpp>
#include <hal/ipi.hpp>
#include <hal/irq.hpp>
#include <hal/mmu.hpp>
#include <hal/race.hpp>
#include <hal/serial.hpp>
#include <hal/stop.hpp>
#include <hal/time.hpp>
#include <hal/trace.hpp>
#include <hal/types.hpp>
