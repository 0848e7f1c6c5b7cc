#include <hal_sim/ustar_writer.hpp>

#include <cstdio>
#include <cstring>
#include <stdexcept>

namespace hal_sim {

namespace {

void octal(uint8_t* field, size_t width, uint64_t value) {
    // width - 1 digits and a NUL, as POSIX asks.
    std::snprintf(reinterpret_cast<char*>(field), width, "%0*llo", static_cast<int>(width - 1),
                  static_cast<unsigned long long>(value));
}

} // namespace

std::vector<uint8_t> make_ustar(const std::vector<UstarFile>& files) {
    size_t total = 1024; // two zero blocks end the archive
    for (const auto& [name, data] : files) {
        total += 512 + (data.size() + 511) / 512 * 512;
    }
    std::vector<uint8_t> out;
    out.reserve(total); // one allocation, one copy of each file
    for (const auto& [name, data] : files) {
        if (name.size() > 99) {
            throw std::invalid_argument("ustar name too long: " + name);
        }
        uint8_t h[512] = {};
        std::memcpy(h, name.data(), name.size());
        octal(h + 100, 8, 0444);          // mode
        octal(h + 108, 8, 0);             // uid
        octal(h + 116, 8, 0);             // gid
        octal(h + 124, 12, data.size());  // size
        octal(h + 136, 12, 0);            // mtime
        h[156] = '0';                     // regular file
        std::memcpy(h + 257, "ustar", 6); // magic "ustar\0"
        std::memcpy(h + 263, "00", 2);    // version
        std::memset(h + 148, ' ', 8);     // the checksum counts itself as spaces
        unsigned sum = 0;
        for (uint8_t b : h) {
            sum += b;
        }
        std::snprintf(reinterpret_cast<char*>(h + 148), 8, "%06o", sum);
        h[155] = ' ';
        out.insert(out.end(), h, h + 512);
        out.insert(out.end(), data.begin(), data.end());
        out.resize((out.size() + 511) / 512 * 512, 0);
    }
    out.resize(out.size() + 1024, 0); // two zero blocks end the archive
    return out;
}

} // namespace hal_sim
