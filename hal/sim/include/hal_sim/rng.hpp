#pragma once

// The simulator's random numbers: xoshiro256** seeded through splitmix64. Its output is
// fixed by its definition, unlike the standard library's distributions, so a seed means the
// same run on every host.

#include <cstdint>

namespace hal_sim {

class Rng {
public:
    explicit Rng(uint64_t seed = 0) {
        for (auto& s : m_s) {
            seed += 0x9e3779b97f4a7c15ull;
            uint64_t z = seed;
            z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
            z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
            s = z ^ (z >> 31);
        }
    }

    uint64_t next() {
        uint64_t result = rotl(m_s[1] * 5, 7) * 9;
        uint64_t t = m_s[1] << 17;
        m_s[2] ^= m_s[0];
        m_s[3] ^= m_s[1];
        m_s[1] ^= m_s[2];
        m_s[0] ^= m_s[3];
        m_s[2] ^= t;
        m_s[3] = rotl(m_s[3], 45);
        return result;
    }

    // Uniform in [0, 1), from the top 53 bits.
    double unit() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
    // Uniform in [0, n), n > 0 (the tiny modulo bias is irrelevant here).
    uint64_t below(uint64_t n) { return next() % n; }
    bool chance(double p) { return p > 0 && (p >= 1 || unit() < p); }

private:
    static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
    uint64_t m_s[4];
};

} // namespace hal_sim
