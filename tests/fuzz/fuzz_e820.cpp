// Fuzz target: the text E820 reader (duet::parse_e820). Parses or throws SourceError.

#include "e820_file.hpp"
#include "source_error.hpp"

#include <cstddef>
#include <cstdint>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);
    try {
        (void)duet::parse_e820(text, "fuzz.e820");
    } catch (const duet::SourceError&) {
    }
    return 0;
}
