// Where a block comes from: the zones, highest first (so that low memory lasts for those who
// need it), whole zones from their free lists, and any other range or an alignment larger
// than the block by a search of the free bitmaps, lowest address first. m_lock held.

#include "frame_allocator_internal.hpp"

#include <core/mm/frame_allocator.hpp>

namespace core::mm {

using namespace frame_detail;

// A block of `order` aligned to 2^align_order frames inside [lo, hi) (one zone): for each
// order from align_order up, the lowest free block that has room for it, found through the
// free bitmaps, then carved out of that block. Blocks smaller than the alignment are not
// looked at: their alignment is not known without visiting them one by one.
bool FrameAllocator::take_in_range(unsigned order, unsigned align_order, uint64_t lo, uint64_t hi,
                                   uint64_t* pfn) {
    uint64_t need = uint64_t{1} << order;
    uint64_t align = uint64_t{1} << align_order;
    for (unsigned j = align_order; j <= kMaxOrder; ++j) {
        uint64_t idx = m_free[j].find_next((lo - m_base_pfn) >> j);
        while (idx != LevelBitmap::kNone) {
            uint64_t s = m_base_pfn + (idx << j);
            if (s >= hi) {
                break;
            }
            uint64_t e = s + (uint64_t{1} << j);
            uint64_t x = s < lo ? (lo + align - 1) & ~(align - 1) : s;
            if (x + need <= (e < hi ? e : hi)) {
                // Carve [x, x + need) out of [s, e), freeing the halves that fall away.
                remove_free(s, j);
                for (unsigned k = j; k > order;) {
                    --k;
                    uint64_t half = uint64_t{1} << k;
                    if (x >= s + half) {
                        push_free(s, k);
                        s += half;
                    } else {
                        push_free(s + half, k);
                    }
                }
                *pfn = x;
                return true;
            }
            if (s >= lo) {
                break; // every later block starts higher still
            }
            idx = m_free[j].find_next(idx + 1);
        }
    }
    return false;
}

bool FrameAllocator::take_block(const FrameRequest& request, unsigned align_order, uint64_t lo,
                                uint64_t hi, uint64_t* pfn) {
    for (unsigned z = kZoneCount; z-- > 0;) {
        uint64_t zlo = zone_start(z) > m_base_pfn ? zone_start(z) : m_base_pfn;
        uint64_t zhi = zone_end(z) < m_end_pfn ? zone_end(z) : m_end_pfn;
        bool whole_zone = lo <= zlo && hi >= zhi;
        zlo = lo > zlo ? lo : zlo;
        zhi = hi < zhi ? hi : zhi;
        if (zlo >= zhi) {
            continue;
        }
        if (whole_zone && align_order == request.order) {
            if (take_from_lists(z, request.order, pfn)) {
                return true;
            }
        } else if (take_in_range(request.order, align_order, zlo, zhi, pfn)) {
            return true;
        }
    }
    return false;
}

} // namespace core::mm
