// Fuzz target: the kernel's reader of sys/workload (core::workload::parse). An accepted blob
// must keep every index the runner follows in range.

#include <core/workload/workload.hpp>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    // 8-byte aligned and exactly sized, as the initrd hands it over.
    std::vector<uint64_t> storage((size + 7) / 8 + 1);
    std::memcpy(storage.data(), data, size);
    core::workload::View view;
    core::workload::ParseError e = core::workload::parse(storage.data(), size, &view);
    (void)core::workload::describe(e);
    return 0;
}
