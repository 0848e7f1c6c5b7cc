// Fuzz target: the scenario parser (duet::parse_scenario). Any input must either parse or be
// refused with a SourceError; nothing else may escape, and nothing may crash.

#include "scenario.hpp"
#include "source_error.hpp"

#include <cstddef>
#include <cstdint>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);
    try {
        duet::Scenario s = duet::parse_scenario(text, "fuzz.scn");
        (void)s.environment();
    } catch (const duet::SourceError&) {
        // A clear error pointing at the input: what bad input should get.
    }
    return 0;
}
