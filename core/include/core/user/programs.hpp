#pragma once

// The initrd's user programs: sys/programs lists them (one initrd path a line, in the order
// they start, with a name=, an args= and the handles each gets); the init thread starts each as a
// process, lets the workload's threads run beside them, then waits for all of them, and reports
// how each ended and the frames of user pages and page tables in use before and after.

#include <stddef.h>
#include <stdint.h>

namespace core::user {

// Starts the programs sys/programs names in the ustar archive `initrd` (`size` bytes): each is
// created and given its handles, then all are started. Returns false if the initrd has no
// sys/programs; true otherwise, even if a program could not be loaded (that is reported, and
// the others run). The init thread, which then goes on (to the workload's threads).
bool start_initrd_programs(const uint8_t* initrd, size_t size);
// Waits for every program start_initrd_programs() started, then reports how each ended, the
// frames of user pages and page tables in use before they started and now, the system calls and
// the IPC. Nothing if none
// was started. The init thread.
void reap_initrd_programs();

// What reap_initrd_programs() saw, for the simulator's report once the run is over.
struct ProgramsSummary {
    bool ran = false; // the initrd had sys/programs, and every program was reaped
    uint64_t frames_before = 0;
    uint64_t frames_after = 0;
};
ProgramsSummary programs_summary();

} // namespace core::user
