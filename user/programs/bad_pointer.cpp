// Hands the kernel bad arguments on purpose: each must come back as an error, never a fault.
// Exits with 0 if every one did, with the number of the first that did not otherwise.

#include <duet/syscall.hpp>

namespace {

// Mapped kernel memory, which only the user/supervisor rule keeps out: the kernel image and
// the direct map's view of RAM at 2 MiB.
constexpr uint64_t kKernelImage = 0xffff'ffff'ffe0'2000;
constexpr uint64_t kDirectMap = 0xffff'8000'0020'0000;
constexpr uint64_t kUnmapped = 0x1000; // nothing is mapped there
constexpr uint64_t kNonCanonical = 0x0000'8000'0000'0000;

} // namespace

int main() {
    const char text[] = "a kernel pointer";
    const int64_t got[] = {
        duet::log_write(kKernelImage, 16),
        duet::log_write(kDirectMap, 16),
        duet::log_write(kUnmapped, 8),
        duet::log_write(kNonCanonical, 8),
        // The last bytes of the stack and the unmapped page above it.
        duet::log_write(duet_abi::kStackTop - 4, 8),
        duet::log_write(reinterpret_cast<uint64_t>(text), 100'000),
        duet::syscall0(99),
        duet::sleep_ns(~uint64_t{0}),
    };
    const int64_t want[] = {
        -duet_abi::BadAddress, -duet_abi::BadAddress,      -duet_abi::BadAddress,
        -duet_abi::BadAddress, -duet_abi::BadAddress,      -duet_abi::InvalidArgument,
        -duet_abi::NoSuchCall, -duet_abi::InvalidArgument,
    };
    for (int i = 0; i < static_cast<int>(sizeof got / sizeof got[0]); ++i) {
        if (got[i] != want[i]) {
            duet::log("an argument was not refused as expected");
            return i + 1;
        }
    }
    duet::log("every bad argument was refused with an error");
    return 0;
}
