#pragma once

/// @file
/// Race-detector annotations (docs/simulator.md, "Races"). The simulator's race build checks
/// every memory access of the core with ThreadSanitizer. A few reads are unordered with other
/// CPUs' writes on purpose and harmless where they are, such as statistics gathered while the
/// other CPUs go on (what Linux marks with KCSAN's data_race()): the core brackets them with
/// these, so that the detector does not report them. They do nothing on bare metal and in the
/// simulator's other builds.
///
/// Any CPU, any interrupt state; pairs must nest and must not span a context switch or a wait.

namespace hal {

/// The calling CPU's memory accesses, until the matching racy_reads_end(), are unordered with
/// other CPUs' on purpose.
void racy_reads_begin();
void racy_reads_end();

/// racy_reads_begin() and racy_reads_end() for a scope.
class [[nodiscard]] RacyReads {
public:
    RacyReads() { racy_reads_begin(); }
    RacyReads(const RacyReads&) = delete;
    RacyReads& operator=(const RacyReads&) = delete;
    ~RacyReads() { racy_reads_end(); }
};

} // namespace hal
