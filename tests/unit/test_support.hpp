#pragma once

#include <e820_file.hpp>

#include <string>
#include <vector>

namespace duet::test {

inline std::vector<firmware::E820Entry> fixture(const std::string& name) {
    return read_e820_file(std::string(DUET_FIXTURES_DIR) + "/" + name + ".e820");
}

} // namespace duet::test
