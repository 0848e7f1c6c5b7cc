#include <core/lib/ustar.hpp>

namespace core::ustar {

namespace {

// Header field offsets and widths.
constexpr size_t kNameOff = 0;
constexpr size_t kNameLen = 100;
constexpr size_t kSizeOff = 124;
constexpr size_t kSizeLen = 12;
constexpr size_t kChecksumOff = 148;
constexpr size_t kChecksumLen = 8;
constexpr size_t kTypeOff = 156;
constexpr size_t kMagicOff = 257;
constexpr size_t kPrefixOff = 345;
constexpr size_t kPrefixLen = 155;

bool is_zero_block(const uint8_t* h) {
    for (size_t i = 0; i < kBlock; ++i) {
        if (h[i] != 0) {
            return false;
        }
    }
    return true;
}

bool has_magic(const uint8_t* h) {
    const uint8_t* m = h + kMagicOff;
    // POSIX writes "ustar\0", GNU tar "ustar " followed by " \0".
    return m[0] == 'u' && m[1] == 's' && m[2] == 't' && m[3] == 'a' && m[4] == 'r' &&
           (m[5] == '\0' || m[5] == ' ');
}

// An octal number, optionally led by spaces and ended by spaces or NULs. Base-256 (GNU's
// encoding for huge values) is refused: no initrd needs it.
bool parse_octal(const uint8_t* field, size_t len, uint64_t* out) {
    size_t i = 0;
    while (i < len && field[i] == ' ') {
        ++i;
    }
    uint64_t value = 0;
    size_t digits = 0;
    for (; i < len && field[i] >= '0' && field[i] <= '7'; ++i, ++digits) {
        if (value >> 60 != 0) {
            return false;
        }
        value = value * 8 + (field[i] - '0');
    }
    for (; i < len; ++i) {
        if (field[i] != ' ' && field[i] != '\0') {
            return false;
        }
    }
    if (digits == 0) {
        return false;
    }
    *out = value;
    return true;
}

bool checksum_ok(const uint8_t* h) {
    uint64_t stored = 0;
    if (!parse_octal(h + kChecksumOff, kChecksumLen, &stored)) {
        return false;
    }
    // The checksum is taken with its own field read as spaces. Some old tars summed signed
    // chars, so either sum is accepted.
    uint64_t unsigned_sum = 0;
    int64_t signed_sum = 0;
    for (size_t i = 0; i < kBlock; ++i) {
        uint8_t b = (i >= kChecksumOff && i < kChecksumOff + kChecksumLen) ? ' ' : h[i];
        unsigned_sum += b;
        signed_sum += static_cast<int8_t>(b);
    }
    return stored == unsigned_sum || static_cast<int64_t>(stored) == signed_sum;
}

size_t field_length(const uint8_t* field, size_t max) {
    size_t n = 0;
    while (n < max && field[n] != '\0') {
        ++n;
    }
    return n;
}

// Compares the entry's full name (prefix "/" name, without a leading "./") with `path`.
bool name_matches(const uint8_t* h, const char* path) {
    char full[kPrefixLen + 1 + kNameLen + 1];
    size_t n = 0;
    size_t prefix_len = field_length(h + kPrefixOff, kPrefixLen);
    for (size_t i = 0; i < prefix_len; ++i) {
        full[n++] = static_cast<char>(h[kPrefixOff + i]);
    }
    if (prefix_len != 0) {
        full[n++] = '/';
    }
    size_t name_len = field_length(h + kNameOff, kNameLen);
    for (size_t i = 0; i < name_len; ++i) {
        full[n++] = static_cast<char>(h[kNameOff + i]);
    }
    full[n] = '\0';

    const char* entry = full;
    if (entry[0] == '.' && entry[1] == '/') {
        entry += 2;
    }
    size_t i = 0;
    for (; entry[i] != '\0' && path[i] != '\0'; ++i) {
        if (entry[i] != path[i]) {
            return false;
        }
    }
    return entry[i] == '\0' && path[i] == '\0';
}

bool is_regular_file(const uint8_t* h) {
    uint8_t type = h[kTypeOff];
    return type == '0' || type == '\0' || type == '7';
}

} // namespace

const char* describe(Error e) {
    switch (e) {
    case Error::None:
        return "no error";
    case Error::NotFound:
        return "not in the initrd";
    case Error::NotUstar:
        return "the initrd is not a ustar archive (bad header magic)";
    case Error::BadChecksum:
        return "bad tar header checksum";
    case Error::BadField:
        return "bad size or checksum field in a tar header";
    case Error::Truncated:
        return "the tar archive is truncated";
    }
    return "unknown error";
}

Lookup find(const uint8_t* archive, size_t size, const char* path) {
    size_t offset = 0;
    for (;;) {
        if (offset == size) {
            // A well-formed archive ends with zero blocks; tolerate one that just stops.
            return {Error::NotFound, offset, 0, 0};
        }
        if (size - offset < kBlock) {
            return {Error::Truncated, offset, 0, 0};
        }
        const uint8_t* h = archive + offset;
        if (is_zero_block(h)) {
            return {Error::NotFound, offset, 0, 0};
        }
        if (!has_magic(h)) {
            return {Error::NotUstar, offset, 0, 0};
        }
        if (!checksum_ok(h)) {
            return {Error::BadChecksum, offset, 0, 0};
        }
        uint64_t file_size = 0;
        if ((h[kSizeOff] & 0x80) != 0 || !parse_octal(h + kSizeOff, kSizeLen, &file_size)) {
            return {Error::BadField, offset, 0, 0};
        }
        size_t data = offset + kBlock;
        if (file_size > size - data) {
            return {Error::Truncated, offset, 0, 0};
        }
        if (is_regular_file(h) && name_matches(h, path)) {
            return {Error::None, offset, data, static_cast<size_t>(file_size)};
        }
        // The data is padded to whole blocks; the padding may be missing at the very end.
        uint64_t padded = (file_size + kBlock - 1) / kBlock * kBlock;
        offset = padded > size - data ? size : data + padded;
    }
}

} // namespace core::ustar
