#pragma once

// Errors in what the user wrote, pointing at the place: `file:line:col: message`.

#include <stdexcept>
#include <string>

namespace duet {

class SourceError : public std::runtime_error {
public:
    SourceError(const std::string& file, int line, int col, const std::string& message)
        : std::runtime_error(file + ":" + std::to_string(line) + ":" + std::to_string(col) + ": " +
                             message) {}
};

} // namespace duet
