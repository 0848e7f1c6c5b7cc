#include <hal_sim/kernel_image.hpp>

#include <cstdint>
#include <vector>

// Bounds of the core's writable sections, defined by the linker for sections whose names are
// C identifiers (tools/isolate-core-state.sh gives the core's data such names). Weak: a
// section the core does not have is simply absent.
extern "C" {
extern char __start_duet_core_data[] __attribute__((weak));
extern char __stop_duet_core_data[] __attribute__((weak));
extern char __start_duet_core_data_rel_local[] __attribute__((weak));
extern char __stop_duet_core_data_rel_local[] __attribute__((weak));
extern char __start_duet_core_data_rel[] __attribute__((weak));
extern char __stop_duet_core_data_rel[] __attribute__((weak));
extern char __start_duet_core_bss[] __attribute__((weak));
extern char __stop_duet_core_bss[] __attribute__((weak));
}

namespace hal_sim {

namespace {

// Copies raw section bytes, redzones included: under AddressSanitizer the core's globals are
// padded with poisoned redzones that a load image legitimately covers, so this copy must not
// be instrumented (nor turned into an intercepted memcpy). Eight bytes at a time: every
// simulated machine boots with a fresh copy of the core's data, so this is paid once per seed.
// NOTE: the fixed-size copies compile to moves; the barrier keeps the loop from being turned
// into a call to memcpy.
__attribute__((no_sanitize("address"))) void copy_raw(char* to, const char* from, size_t n) {
    size_t i = 0;
    for (; i + sizeof(uint64_t) <= n; i += sizeof(uint64_t)) {
        uint64_t word;
        __builtin_memcpy(&word, from + i, sizeof word);
        __builtin_memcpy(to + i, &word, sizeof word);
        asm volatile("" ::: "memory");
    }
    for (; i < n; ++i) {
        to[i] = from[i];
        asm volatile("" ::: "memory");
    }
}

__attribute__((no_sanitize("address"))) void zero_raw(char* to, size_t n) {
    size_t i = 0;
    for (; i + sizeof(uint64_t) <= n; i += sizeof(uint64_t)) {
        uint64_t zero = 0;
        __builtin_memcpy(to + i, &zero, sizeof zero);
        asm volatile("" ::: "memory");
    }
    for (; i < n; ++i) {
        to[i] = 0;
        asm volatile("" ::: "memory");
    }
}

struct Section {
    char* start;
    char* stop;
    std::vector<char> image; // the contents at load time
};

// NOTE: taken during static initialisation, before any core code can run: the core has no
// constructors (the post-build check enforces it), so this is the image as loaded.
struct LoadImage {
    Section sections[3] = {
        {__start_duet_core_data, __stop_duet_core_data, {}},
        {__start_duet_core_data_rel_local, __stop_duet_core_data_rel_local, {}},
        {__start_duet_core_data_rel, __stop_duet_core_data_rel, {}},
    };
    LoadImage() {
        for (auto& s : sections) {
            if (s.start != nullptr && s.stop > s.start) {
                s.image.resize(static_cast<size_t>(s.stop - s.start));
                copy_raw(s.image.data(), s.start, s.image.size());
            }
        }
    }
};

LoadImage& load_image() {
    static LoadImage image;
    return image;
}

[[maybe_unused]] const bool s_taken = (load_image(), true);

bool s_pristine = false; // kernel_image_is_pristine() was called, and no machine has booted since

} // namespace

void kernel_image_is_pristine() {
    s_pristine = true;
}

void reload_kernel_image() {
    if (s_pristine) {
        s_pristine = false; // the machine about to boot writes it
        return;
    }
    for (auto& s : load_image().sections) {
        if (!s.image.empty()) {
            copy_raw(s.start, s.image.data(), s.image.size());
        }
    }
    char* bss = __start_duet_core_bss;
    char* bss_end = __stop_duet_core_bss;
    if (bss != nullptr && bss_end > bss) {
        zero_raw(bss, static_cast<size_t>(bss_end - bss));
    }
}

size_t kernel_image_writable_bytes() {
    size_t n = 0;
    for (auto& s : load_image().sections) {
        n += s.image.size();
    }
    char* bss = __start_duet_core_bss;
    char* bss_end = __stop_duet_core_bss;
    if (bss != nullptr) {
        n += static_cast<size_t>(bss_end - bss);
    }
    return n;
}

} // namespace hal_sim
