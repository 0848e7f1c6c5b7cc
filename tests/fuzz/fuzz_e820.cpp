// Fuzz target: the text E820 reader (duet::parse_e820). Parses or throws SourceError, whose
// message is printable and short whatever the input.

#include "e820_file.hpp"
#include "source_error.hpp"

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);
    try {
        (void)duet::parse_e820(text, "fuzz.e820");
    } catch (const duet::SourceError& e) {
        const char* message = e.what();
        size_t length = std::strlen(message);
        if (length > 1024) {
            __builtin_trap();
        }
        for (size_t i = 0; i < length; ++i) {
            auto c = static_cast<unsigned char>(message[i]);
            if (c < 0x20 || c == 0x7f) {
                __builtin_trap();
            }
        }
    }
    return 0;
}
