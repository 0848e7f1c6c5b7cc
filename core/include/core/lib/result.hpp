#pragma once

// Errors without exceptions: `[[nodiscard]] Result<T>` over a small `enum class Error`, with
// TRY (propagate) and MUST (panic on error).

#include <core/lib/panic.hpp>

#include <stdint.h>

namespace core {

enum class Error : unsigned char {
    OutOfMemory,     // nothing left that satisfies the request
    InvalidArgument, // the caller asked for something malformed
    NotFound,
    Busy,
    DoubleFree,        // freeing what is already free
    ForeignAddress,    // freeing what this allocator never handed out
    InjectedFault,     // a fault the simulator injected on purpose
    AddressOutOfRange, // a physical address beyond the 52 bits x86_64 can address
    CapacityExceeded,  // a fixed-size table or caller-provided buffer is full
};

const char* describe(Error e);

template <typename T>
class [[nodiscard]] Result {
public:
    constexpr Result(T value) : m_value(static_cast<T&&>(value)), m_ok(true) {}
    constexpr Result(Error error) : m_error(error), m_ok(false) {}

    constexpr bool ok() const { return m_ok; }
    constexpr Error error() const { return m_error; }
    constexpr T& value() {
        if (!m_ok) {
            panic("Result::value() on an error");
        }
        return m_value;
    }
    constexpr const T& value() const {
        if (!m_ok) {
            panic("Result::value() on an error");
        }
        return m_value;
    }
    constexpr T release_value() { return static_cast<T&&>(value()); }

private:
    // NOTE: T is kept trivially destructible in the core (addresses, pointers, handles).
    T m_value{};
    Error m_error{};
    bool m_ok;
};

template <>
class [[nodiscard]] Result<void> {
public:
    constexpr Result() : m_ok(true) {}
    constexpr Result(Error error) : m_error(error), m_ok(false) {}
    constexpr bool ok() const { return m_ok; }
    constexpr Error error() const { return m_error; }
    constexpr void release_value() const {}

private:
    Error m_error{};
    bool m_ok;
};

} // namespace core

// Evaluates to the value of a Result, or returns its error from the enclosing function.
#define TRY(expr)                                                                                  \
    ({                                                                                             \
        auto _duet_try = (expr);                                                                   \
        if (!_duet_try.ok()) {                                                                     \
            return _duet_try.error();                                                              \
        }                                                                                          \
        _duet_try.release_value();                                                                 \
    })

// Evaluates to the value of a Result, or panics naming the expression.
#define MUST(expr)                                                                                 \
    ({                                                                                             \
        auto _duet_must = (expr);                                                                  \
        if (!_duet_must.ok()) {                                                                    \
            ::core::panic_error(#expr, _duet_must.error());                                        \
        }                                                                                          \
        _duet_must.release_value();                                                                \
    })
