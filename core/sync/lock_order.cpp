#include <core/sync/lock_order.hpp>

namespace core {

uint32_t LockOrderGraph::take(uint64_t held, uint32_t taking) {
    uint64_t bit = uint64_t{1} << taking;
    uint32_t inverted = kNone;
    for (uint64_t rest = held; rest != 0; rest &= rest - 1) {
        uint32_t h = static_cast<uint32_t>(__builtin_ctzll(rest));
        if ((m_after[h] & bit) != 0) {
            continue; // this order was seen before
        }
        if (inverted == kNone && (h == taking || reaches(taking, h))) {
            inverted = h;
            continue; // the report names it; the graph keeps one order
        }
        m_after[h] |= bit;
    }
    return inverted;
}

bool LockOrderGraph::reaches(uint32_t from, uint32_t to) const {
    return path(from, to, nullptr, 0) != 0;
}

uint32_t LockOrderGraph::path(uint32_t from, uint32_t to, uint32_t* out, uint32_t max) const {
    // Breadth first over bit sets, remembering each lock's predecessor.
    uint8_t parent[kMaxLocks];
    uint64_t seen = uint64_t{1} << from;
    uint64_t frontier = seen;
    while (frontier != 0 && (seen & (uint64_t{1} << to)) == 0) {
        uint64_t next = 0;
        for (uint64_t rest = frontier; rest != 0; rest &= rest - 1) {
            uint32_t i = static_cast<uint32_t>(__builtin_ctzll(rest));
            for (uint64_t fresh = m_after[i] & ~seen & ~next; fresh != 0; fresh &= fresh - 1) {
                parent[__builtin_ctzll(fresh)] = static_cast<uint8_t>(i);
            }
            next |= m_after[i] & ~seen;
        }
        seen |= next;
        frontier = next;
    }
    if (from == to || (seen & (uint64_t{1} << to)) == 0) {
        return 0;
    }
    uint32_t n = 1;
    for (uint32_t i = to; i != from; i = parent[i]) {
        ++n;
    }
    uint32_t k = n;
    for (uint32_t i = to;; i = parent[i]) {
        if (--k < max) {
            out[k] = i;
        }
        if (i == from) {
            break;
        }
    }
    return n;
}

} // namespace core
