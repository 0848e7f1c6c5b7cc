#pragma once

/// @file
/// Fault injection: named points where the simulator can make an operation fail on purpose,
/// with seeded probabilities, to test what the core does with the failure.

#include <hal/types.hpp>

namespace hal {

/// Points in the core that ask whether to fail. (Points inside the HAL, such as a late timer
/// tick or a delayed or duplicated IPI, are handled by the backend itself.)
enum class FaultPoint : uint8_t {
    FrameAlloc = 0, ///< a frame allocation fails with out-of-memory
    HeapAlloc = 1,  ///< a heap allocation fails with out-of-memory
};

/// Whether the operation at `point` should fail this time. Bare metal: never (there is no
/// injection on real hardware). Simulator: draws from the run's seeded generator and logs
/// every fault it injects. Any context.
bool inject_fault(FaultPoint point);

} // namespace hal
