#pragma once

// A bitmap with summary levels: bit i of level L+1 is set exactly when word i of level L is
// not zero. Setting, clearing and finding the next set bit at or after a position each cost
// O(levels) word operations (at most 7 levels for 2^40 bits), never O(bits).
//
// It does not own its words: the caller lays them out (words_needed() of them) wherever it
// keeps its metadata. Not synchronised.

#include <stddef.h>
#include <stdint.h>

namespace core::mm {

class LevelBitmap {
public:
    static constexpr int kMaxLevels = 8;
    static constexpr uint64_t kNone = ~uint64_t{0};

    // Words a bitmap of `bits` bits needs, summary levels included.
    static constexpr uint64_t words_needed(uint64_t bits) {
        uint64_t total = 0;
        do {
            uint64_t words = (bits + 63) / 64;
            total += words;
            bits = words;
        } while (bits > 1);
        return total;
    }

    constexpr LevelBitmap() = default;

    // Lays the levels out in `words` (words_needed(bits) of them) and clears them.
    void init(uint64_t* words, uint64_t bits) {
        m_levels = 0;
        uint64_t n = bits;
        do {
            uint64_t w = (n + 63) / 64;
            m_level[m_levels] = words;
            m_bits[m_levels] = n;
            __builtin_memset(words, 0, w * sizeof(uint64_t));
            words += w;
            ++m_levels;
            n = w;
        } while (n > 1);
    }

    uint64_t size() const { return m_bits[0]; }

    // The words were moved by `delta` bytes (the direct map they are reached through moved).
    void rebase(intptr_t delta) {
        for (int l = 0; l < m_levels; ++l) {
            m_level[l] = reinterpret_cast<uint64_t*>(reinterpret_cast<uintptr_t>(m_level[l]) +
                                                     static_cast<uintptr_t>(delta));
        }
    }

    bool test(uint64_t i) const { return (m_level[0][i >> 6] >> (i & 63)) & 1; }

    void set(uint64_t i) {
        for (int l = 0; l < m_levels; ++l) {
            uint64_t& w = m_level[l][i >> 6];
            bool was_empty = w == 0;
            w |= uint64_t{1} << (i & 63);
            if (!was_empty) {
                return;
            }
            i >>= 6;
        }
    }

    void clear(uint64_t i) {
        for (int l = 0; l < m_levels; ++l) {
            uint64_t& w = m_level[l][i >> 6];
            w &= ~(uint64_t{1} << (i & 63));
            if (w != 0) {
                return;
            }
            i >>= 6;
        }
    }

    // The first set bit at or after `from`, or kNone.
    uint64_t find_next(uint64_t from) const {
        int l = 0;
        uint64_t i = from;
        for (;;) {
            if (i >= m_bits[l]) {
                return kNone;
            }
            uint64_t w = i >> 6;
            uint64_t m = m_level[l][w] & (~uint64_t{0} << (i & 63));
            if (m != 0) {
                i = (w << 6) | static_cast<uint64_t>(__builtin_ctzll(m));
                break;
            }
            if (l + 1 == m_levels) {
                return kNone;
            }
            ++l;
            i = w + 1;
        }
        // A set summary bit promises a non-empty word below it.
        while (l > 0) {
            --l;
            i = (i << 6) | static_cast<uint64_t>(__builtin_ctzll(m_level[l][i]));
        }
        return i;
    }

    // Set bits at level 0, for audits: O(bits / 64).
    uint64_t count() const {
        uint64_t n = 0;
        for (uint64_t w = 0; w < (m_bits[0] + 63) / 64; ++w) {
            n += static_cast<uint64_t>(__builtin_popcountll(m_level[0][w]));
        }
        return n;
    }

    // Whether every summary bit agrees with the level below, for audits: O(bits / 64).
    bool summaries_consistent() const {
        for (int l = 0; l + 1 < m_levels; ++l) {
            for (uint64_t w = 0; w < m_bits[l + 1]; ++w) {
                bool summary = (m_level[l + 1][w >> 6] >> (w & 63)) & 1;
                if (summary != (m_level[l][w] != 0)) {
                    return false;
                }
            }
        }
        return true;
    }

private:
    uint64_t* m_level[kMaxLevels]{};
    uint64_t m_bits[kMaxLevels]{};
    int m_levels = 0;
};

} // namespace core::mm
