#pragma once

// Finding a file in a ustar archive (the initrd: the loader finds the kernel in it, the kernel
// its workload) (POSIX ustar, and GNU tar's "ustar  " variant).
// Pure: reads only the buffer it is given and bounds-checks every header against its size,
// so the host tests can feed it anything.

#include <stddef.h>
#include <stdint.h>

namespace core::ustar {

inline constexpr size_t kBlock = 512;

enum class Error {
    None,
    NotFound,    // the archive ended without the file
    NotUstar,    // a header without the "ustar" magic where one was expected
    BadChecksum, // a header whose checksum does not match its bytes
    BadField,    // an unreadable octal field (size or checksum), or a base-256 size
    Truncated,   // a header or file data runs past the end of the buffer
};

const char* describe(Error e);

struct Lookup {
    Error error;
    size_t header_offset; // the offending (or matching) header
    size_t data_offset;   // the file's first byte, when found
    size_t size;          // the file's size in bytes, when found
};

// Looks for the regular file `path` ("sys/core"); an entry spelled "./sys/core" matches too.
// The first matching regular file wins.
Lookup find(const uint8_t* archive, size_t size, const char* path);

} // namespace core::ustar
