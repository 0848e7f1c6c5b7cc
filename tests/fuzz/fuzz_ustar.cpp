// Fuzz target: finding a file in a ustar archive (core::ustar::find), as the loader finds the
// kernel and the kernel its workload. A found file must lie inside the archive.

#include <core/lib/ustar.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    // An exactly sized copy, so that AddressSanitizer sees any read past the end.
    std::vector<uint8_t> archive(data, data + size);
    for (const char* path : {"sys/core", "sys/workload"}) {
        core::ustar::Lookup l = core::ustar::find(archive.data(), archive.size(), path);
        if (l.error == core::ustar::Error::None &&
            (l.data_offset > size || l.size > size - l.data_offset)) {
            std::abort();
        }
        (void)core::ustar::describe(l.error);
    }
    return 0;
}
