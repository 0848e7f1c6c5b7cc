#include "loader/multiboot.hpp"

#include "loader/bytes.hpp"

namespace loader::multiboot {

namespace {

// Information structure fields.
constexpr size_t kFlags = 0;
constexpr size_t kModsCount = 20;
constexpr size_t kModsAddr = 24;
constexpr size_t kMmapLength = 44;
constexpr size_t kMmapAddr = 48;

// Memory map entry fields, from the start of the entry's size field.
constexpr size_t kEntrySize = 0;
constexpr size_t kEntryBase = 4;
constexpr size_t kEntryLength = 12;
constexpr size_t kEntryType = 20;
constexpr uint32_t kMinEntrySize = 20; // base, length, type

} // namespace

Info read_info(const uint8_t* info) {
    return Info{
        load_le32(info + kFlags),      load_le32(info + kModsCount), load_le32(info + kModsAddr),
        load_le32(info + kMmapLength), load_le32(info + kMmapAddr),
    };
}

Module read_module(const uint8_t* entry) {
    return Module{load_le32(entry), load_le32(entry + 4)};
}

const char* describe(Error e) {
    switch (e) {
    case Error::None:
        return "no error";
    case Error::BadEntry:
        return "malformed Multiboot memory map entry";
    case Error::TooManyEntries:
        return "the Multiboot memory map has too many entries";
    }
    return "unknown error";
}

Error read_mmap(const uint8_t* buf, size_t len, firmware::E820Entry* out, size_t capacity,
                size_t* count) {
    size_t n = 0;
    size_t offset = 0;
    while (offset < len) {
        if (!fits(offset, 4, len)) {
            return Error::BadEntry;
        }
        uint32_t size = load_le32(buf + offset + kEntrySize);
        if (size < kMinEntrySize || !fits(offset + 4, size, len)) {
            return Error::BadEntry;
        }
        if (n == capacity) {
            return Error::TooManyEntries;
        }
        const uint8_t* e = buf + offset;
        out[n++] = firmware::E820Entry{load_le64(e + kEntryBase), load_le64(e + kEntryLength),
                                       load_le32(e + kEntryType), firmware::kE820ExtEnabled};
        offset += 4 + size;
    }
    *count = n;
    return Error::None;
}

} // namespace loader::multiboot
