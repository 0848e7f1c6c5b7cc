// The buddy allocator's free lists: a doubly linked list per zone and order, threaded through
// the free blocks' first frames, and a bitmap of free blocks per order beside them. Taking a
// block splits a larger one; freeing one merges it with its buddy for as long as the buddy is
// free and the merged block stays inside one zone. Everything here runs with m_lock held.

#include "frame_allocator_internal.hpp"

#include <core/lib/panic.hpp>
#include <core/mm/frame_allocator.hpp>

namespace core::mm {

using namespace frame_detail;

void FrameAllocator::push_free(uint64_t pfn, unsigned order) {
    unsigned z = zone_of(pfn);
    uint64_t head = (m_nonempty[z] >> order) & 1 ? m_lists[z][order] : kNoFrame;
    FreeNode* n = node(pfn);
    n->next = head;
    n->prev = kNoFrame;
    n->check = node_check(pfn, order);
    if (head != kNoFrame) {
        node(head)->prev = pfn;
    }
    m_lists[z][order] = pfn;
    m_nonempty[z] |= 1u << order;
    m_free[order].set((pfn - m_base_pfn) >> order);
    m_buddy_free += uint64_t{1} << order;
}

void FrameAllocator::remove_free(uint64_t pfn, unsigned order) {
    unsigned z = zone_of(pfn);
    FreeNode* n = node(pfn);
    if (n->check != node_check(pfn, order)) {
        panic("frames: a free frame was written to (use after free?)");
    }
    uint64_t next = n->next;
    uint64_t prev = n->prev;
    if (prev != kNoFrame) {
        node(prev)->next = next;
    } else {
        m_lists[z][order] = next;
    }
    if (next != kNoFrame) {
        node(next)->prev = prev;
    }
    if (prev == kNoFrame && next == kNoFrame) {
        m_nonempty[z] &= ~(1u << order);
    }
    n->check = 0;
    m_free[order].clear((pfn - m_base_pfn) >> order);
    m_buddy_free -= uint64_t{1} << order;
}

// Greedy split of [pfn, end) into the largest aligned blocks that stay inside one zone. The
// result is what freeing every frame and merging would give, so no merge is needed.
void FrameAllocator::free_range(uint64_t pfn, uint64_t end) {
    while (pfn < end) {
        uint64_t limit = zone_end(zone_of(pfn));
        limit = limit < end ? limit : end;
        while (pfn < limit) {
            unsigned k = pfn == 0 ? kMaxOrder : static_cast<unsigned>(__builtin_ctzll(pfn));
            k = k < kMaxOrder ? k : kMaxOrder;
            while ((uint64_t{1} << k) > limit - pfn) {
                --k;
            }
            push_free(pfn, k);
            pfn += uint64_t{1} << k;
        }
    }
}

// Frees a block into the buddy lists, merging it with its buddy as long as that is free.
void FrameAllocator::release_block(uint64_t pfn, unsigned order) {
    while (order < kMaxOrder) {
        uint64_t size = uint64_t{1} << order;
        uint64_t buddy = pfn ^ size;
        uint64_t merged = pfn & ~size;
        if (zone_of(merged) != zone_of(merged + 2 * size - 1) || buddy + size > m_end_pfn ||
            !m_free[order].test((buddy - m_base_pfn) >> order)) {
            break;
        }
        remove_free(buddy, order);
        pfn = merged;
        ++order;
    }
    push_free(pfn, order);
}

// The smallest free block of at least `order` in `zone`, split down to `order`.
bool FrameAllocator::take_from_lists(unsigned zone, unsigned order, uint64_t* pfn) {
    uint32_t mask = m_nonempty[zone] & (~0u << order);
    if (mask == 0) {
        return false;
    }
    auto k = static_cast<unsigned>(__builtin_ctz(mask));
    uint64_t p = m_lists[zone][k];
    remove_free(p, k);
    while (k > order) {
        --k;
        push_free(p + (uint64_t{1} << k), k);
    }
    *pfn = p;
    return true;
}

void FrameAllocator::mark_held(uint64_t pfn, uint8_t value) {
    set_head(pfn, true);
    set_info(pfn, value);
}

} // namespace core::mm
