#pragma once

// Placement new, for constructing objects in memory the kernel allocated itself. The kernel
// build has no C++ library headers (-nostdinc++), so it declares the operator itself; the host
// build takes the library's, which must not be declared twice.

#include <stddef.h>

#if __has_include(<new>)
#include <new>
#else
inline void* operator new(size_t, void* where) noexcept {
    return where;
}
inline void operator delete(void*, void*) noexcept {}
#endif
