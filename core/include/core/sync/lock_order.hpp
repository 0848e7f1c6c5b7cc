#pragma once

// The order in which sleeping locks are taken, as a graph (the rule of Linux's lockdep): an
// edge from a to b when b was taken while a was held. A new edge that closes a cycle is an
// inversion: two threads taking the locks in the orders seen could deadlock, whether or not
// this run did. Spinlocks need none of this: their ranks fix one order (lock_rank.hpp).
//
// Up to 64 locks, numbered by their users (the workload's mutexes by their index). Not
// thread-safe: the caller serialises.

#include <stdint.h>

namespace core {

class LockOrderGraph {
public:
    static constexpr uint32_t kMaxLocks = 64;
    static constexpr uint32_t kNone = kMaxLocks;

    // Records that lock `taking` is being taken while every lock in `held` (bit i: lock i) is
    // held. Returns a held lock h that `taking` already leads to (taken, directly or through
    // others, after `taking` was held: the order h then `taking` inverts it), or kNone.
    uint32_t take(uint64_t held, uint32_t taking);

    // Whether a path of recorded edges leads from `from` to `to`.
    bool reaches(uint32_t from, uint32_t to) const;

    // The locks on such a path, `from` first and `to` last, into path[0 .. max); returns how
    // many there are (0: no path; more than `max`: the path was cut short).
    uint32_t path(uint32_t from, uint32_t to, uint32_t* path, uint32_t max) const;

private:
    uint64_t m_after[kMaxLocks] = {}; // bit j of m_after[i]: j was taken while i was held
};

} // namespace core
