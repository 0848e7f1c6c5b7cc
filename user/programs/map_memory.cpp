// Anonymous memory: maps pages, uses them, unmaps some, and checks every refusal. What it
// unmapped the kernel can no longer read (log_write from it: BadAddress, no fault); the pages
// it leaves mapped come back when it exits. Logs the first check that failed, or that all held.

#include <duet/syscall.hpp>

namespace {

constexpr uint64_t kPage = 4096;
constexpr uint64_t kBase = duet_abi::kMapBase;
int s_failed = 0;

void check(const char* what, int64_t got, int64_t want) {
    if (got != want && s_failed == 0) {
        s_failed = 1;
        duet::log(what);
    }
}

int64_t err(duet_abi::Errno e) {
    return -static_cast<int64_t>(e);
}

} // namespace

int main() {
    // Four writable pages; their contents are zeroes, then what we store.
    check("map 4 pages", duet::map(kBase, 4 * kPage, duet_abi::kMapWritable),
          static_cast<int64_t>(kBase));
    check("a fresh page is zeroed", static_cast<int64_t>(duet::load64(kBase + 2 * kPage + 8)), 0);
    for (uint64_t i = 0; i < 4; ++i) {
        uint64_t v = 0x1111'0000 + i;
        duet::store(kBase + i * kPage + 16, &v, sizeof v);
    }
    for (uint64_t i = 0; i < 4; ++i) {
        check("a stored word", static_cast<int64_t>(duet::load64(kBase + i * kPage + 16)),
              static_cast<int64_t>(0x1111'0000 + i));
    }
    // The kernel reads it as user memory.
    const char text[] = "from mapped memory";
    duet::store(kBase + kPage, text, sizeof text - 1);
    check("log from a mapped page", duet::log_write(kBase + kPage, sizeof text - 1),
          sizeof text - 1);
    // Refusals: over a mapped page, misaligned, empty, outside the window, unknown flags, more
    // than a process may have.
    check("map over a mapped page", duet::map(kBase + 3 * kPage, 2 * kPage, 0),
          err(duet_abi::InvalidArgument));
    check("map misaligned", duet::map(kBase + 8, kPage, 0), err(duet_abi::InvalidArgument));
    check("map nothing", duet::map(kBase + 8 * kPage, 0, 0), err(duet_abi::InvalidArgument));
    check("map below the window", duet::map(0x40'0000, kPage, 0), err(duet_abi::InvalidArgument));
    check("map across the window's end", duet::map(duet_abi::kMapEnd - kPage, 2 * kPage, 0),
          err(duet_abi::InvalidArgument));
    check("map executable", duet::map(kBase + 8 * kPage, kPage, 2), err(duet_abi::InvalidArgument));
    check("map too much", duet::map(kBase + 16 * kPage, duet_abi::kMaxMappedBytes, 0),
          err(duet_abi::NoResources));
    // Unmap the second page: the kernel's read of it is refused, not a fault.
    check("unmap one page", duet::unmap(kBase + kPage, kPage), 0);
    check("log from an unmapped page", duet::log_write(kBase + kPage, 4),
          err(duet_abi::BadAddress));
    check("unmap it again", duet::unmap(kBase + kPage, kPage), err(duet_abi::InvalidArgument));
    check("unmap a range with a hole", duet::unmap(kBase, 3 * kPage),
          err(duet_abi::InvalidArgument));
    check("the first page is still there", static_cast<int64_t>(duet::load64(kBase + 16)),
          0x1111'0000);
    // Map the hole again, read-only: zeroed, readable by the kernel.
    check("map it again read-only", duet::map(kBase + kPage, kPage, 0),
          static_cast<int64_t>(kBase + kPage));
    check("a read-only page is zeroed", static_cast<int64_t>(duet::load64(kBase + kPage)), 0);
    check("unmap two pages", duet::unmap(kBase + 2 * kPage, 2 * kPage), 0);
    // Pages 0 and 1 stay mapped: they come back when the process ends.
    if (s_failed != 0) {
        return 1;
    }
    duet::log("mapped, used and unmapped memory; every bad request refused");
    return 0;
}
