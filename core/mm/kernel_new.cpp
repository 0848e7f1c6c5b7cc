// The kernel's operator new and delete: the kernel heap. Compiled into the kernel build only
// (core/CMakeLists.txt); the simulator and the tests keep the host's, and core code that wants
// the kernel heap calls kmalloc/kfree (or Heap) directly, which works on both sides.

#include <core/lib/log.hpp>
#include <core/lib/panic.hpp>
#include <core/mm/heap.hpp>

#include <stddef.h>

// NOTE: the kernel build has no <new> (-nostdinc++); this is the type the compiler's implicit
// declarations of the aligned forms use.
namespace std {
enum class align_val_t : size_t {};
} // namespace std

namespace {

// A throwing operator new may not return null, and the kernel has no exceptions: running out
// of heap inside `new` is fatal. Code that can cope calls kmalloc().
void* allocate(size_t bytes, size_t align) {
    void* p = core::mm::kmalloc(bytes, align);
    if (p == nullptr) [[unlikely]] {
        core::LogLine("heap").str("operator new: no memory for ").dec(bytes).str(" bytes");
        core::panic("out of memory in operator new");
    }
    return p;
}

} // namespace

void* operator new(size_t bytes) {
    return allocate(bytes, core::mm::Heap::kMinAlign);
}

void* operator new[](size_t bytes) {
    return allocate(bytes, core::mm::Heap::kMinAlign);
}

void* operator new(size_t bytes, std::align_val_t align) {
    return allocate(bytes, static_cast<size_t>(align));
}

void* operator new[](size_t bytes, std::align_val_t align) {
    return allocate(bytes, static_cast<size_t>(align));
}

void operator delete(void* p) noexcept {
    core::mm::kfree(p);
}

void operator delete[](void* p) noexcept {
    core::mm::kfree(p);
}

void operator delete(void* p, size_t) noexcept {
    core::mm::kfree(p);
}

void operator delete[](void* p, size_t) noexcept {
    core::mm::kfree(p);
}

void operator delete(void* p, std::align_val_t) noexcept {
    core::mm::kfree(p);
}

void operator delete[](void* p, std::align_val_t) noexcept {
    core::mm::kfree(p);
}

void operator delete(void* p, size_t, std::align_val_t) noexcept {
    core::mm::kfree(p);
}

void operator delete[](void* p, size_t, std::align_val_t) noexcept {
    core::mm::kfree(p);
}
