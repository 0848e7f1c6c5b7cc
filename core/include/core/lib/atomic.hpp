#pragma once

// The core's atomic operations on memory other CPUs share: the only way the core touches
// shared state without a lock (spinlocks are built on them too).
//
// Each is the compiler's __atomic builtin preceded by hal::sync_point(): on bare metal that
// is nothing and the operation compiles to the plain instruction (MOV, XCHG, LOCK XADD, LOCK
// CMPXCHG, ...); in the simulator it is a point where, under a --schedule that interleaves,
// another CPU may run first, so that a race between two of them can happen there as it can on
// the machine (docs/simulator.md, "Schedules").
//
// The order is a template argument, never a run-time value: the builtins treat a non-constant
// order as sequentially consistent. Loads, stores and exchanges use the builtins' generic
// forms, which clang (unlike GCC's _n forms) also accepts for enums; they compile to the same
// instructions.
//
//     atomic::store<atomic::release>(&t->on_cpu, false);
//     if (atomic::load<atomic::acquire>(&t->on_cpu)) ...

#include <core/lib/compiler.hpp>

#include <hal/cpu.hpp>

namespace core::atomic {

enum Order : int {
    relaxed = __ATOMIC_RELAXED,
    acquire = __ATOMIC_ACQUIRE,
    release = __ATOMIC_RELEASE,
    acq_rel = __ATOMIC_ACQ_REL,
    seq_cst = __ATOMIC_SEQ_CST,
};

template <Order O, typename T>
ALWAYS_INLINE T load(const T* p) {
    hal::sync_point();
    T value;
    __atomic_load(p, &value, O);
    return value;
}

// A relaxed load with no synchronisation point of its own, for a scan of many hints (values
// that may be stale by the time they are used, and are checked again under a lock): the
// caller reaches one sync point (hal::sync_point()) before the scan, and no CPU runs between
// two loads of it under a schedule that interleaves. On the machine, a relaxed load.
template <typename T>
ALWAYS_INLINE T load_hint(const T* p) {
    T value;
    __atomic_load(p, &value, __ATOMIC_RELAXED);
    return value;
}

template <Order O, typename T, typename V>
ALWAYS_INLINE void store(T* p, V value) {
    hal::sync_point();
    T v = static_cast<T>(value);
    __atomic_store(p, &v, O);
}

// Stores `value`; returns what was there.
template <Order O, typename T, typename V>
ALWAYS_INLINE T exchange(T* p, V value) {
    hal::sync_point();
    T v = static_cast<T>(value);
    T old;
    __atomic_exchange(p, &v, &old, O);
    return old;
}

// Stores `desired` if `*p` is `*expected`; otherwise loads `*p` into `*expected`. Strong (never
// fails spuriously). `Success` orders the exchange, `Failure` the load.
template <Order Success, Order Failure, typename T, typename V>
ALWAYS_INLINE bool compare_exchange(T* p, T* expected, V desired) {
    hal::sync_point();
    T v = static_cast<T>(desired);
    return __atomic_compare_exchange(p, expected, &v, false, Success, Failure);
}

// Read-modify-write; each returns the value before the operation.
template <Order O, typename T, typename V>
ALWAYS_INLINE T fetch_add(T* p, V n) {
    hal::sync_point();
    return __atomic_fetch_add(p, static_cast<T>(n), O);
}

template <Order O, typename T, typename V>
ALWAYS_INLINE T fetch_sub(T* p, V n) {
    hal::sync_point();
    return __atomic_fetch_sub(p, static_cast<T>(n), O);
}

template <Order O, typename T, typename V>
ALWAYS_INLINE T fetch_or(T* p, V bits) {
    hal::sync_point();
    return __atomic_fetch_or(p, static_cast<T>(bits), O);
}

template <Order O, typename T, typename V>
ALWAYS_INLINE T fetch_and(T* p, V bits) {
    hal::sync_point();
    return __atomic_fetch_and(p, static_cast<T>(bits), O);
}

} // namespace core::atomic
