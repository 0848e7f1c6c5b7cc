// Fuzz target: the scenario parser (duet::parse_scenario). Any input must either parse or be
// refused with a SourceError; nothing else may escape, and nothing may crash. The error's
// message is for a terminal: printable (no control byte of the input gets through) and short
// (quoted values are cut), whatever the input.

#include "scenario.hpp"
#include "source_error.hpp"

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);
    try {
        duet::Scenario s = duet::parse_scenario(text, "fuzz.scn");
        (void)s.environment();
    } catch (const duet::SourceError& e) {
        // A clear error pointing at the input: what bad input should get.
        const char* message = e.what();
        size_t length = std::strlen(message);
        // Quoted values are cut at 60 characters, file names at 400 (each up to 4 a byte).
        if (length > 4096) {
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
