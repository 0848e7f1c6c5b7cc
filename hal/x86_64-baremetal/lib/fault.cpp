// Fault injection exists only in the simulator: on real hardware nothing fails on purpose.

#include <hal/fault.hpp>

namespace hal {

bool inject_fault(FaultPoint) {
    return false;
}

} // namespace hal
