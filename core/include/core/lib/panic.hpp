#pragma once

// Stopping the kernel when it finds itself wrong.

namespace core {

enum class Error : unsigned char;

// Logs "panic: <message>" on COM1 (with the CPU) and stops the machine with ExitCode::Panic.
[[noreturn]] void panic(const char* message);
[[noreturn]] void panic_error(const char* what, Error error);
[[noreturn]] void assertion_failed(const char* expr, const char* file, int line);

} // namespace core

// Always checked: cheap invariants whose failure means the kernel's state is corrupt.
#define ASSERT(expr)                                                                               \
    do {                                                                                           \
        if (!(expr)) [[unlikely]] {                                                                \
            ::core::assertion_failed(#expr, __FILE__, __LINE__);                                   \
        }                                                                                          \
    } while (0)

// Checked in debug builds only (DUET_DEBUG): expensive invariants.
#ifdef DUET_DEBUG
#define DEBUG_ASSERT(expr) ASSERT(expr)
#else
#define DEBUG_ASSERT(expr)                                                                         \
    do {                                                                                           \
        (void)sizeof(expr);                                                                        \
    } while (0)
#endif
