#pragma once

// Errors in what the user wrote, pointing at the place: `file:line:col: message`. The message
// is made printable (text.hpp): whatever bytes the input held, the terminal gets none of them.

#include "text.hpp"

#include <stdexcept>
#include <string>

namespace duet {

class SourceError : public std::runtime_error {
public:
    // Line 0 means the whole file (or a command-line option): `file: message`.
    SourceError(const std::string& file, int line, int col, const std::string& message)
        : std::runtime_error(printable(line <= 0 ? file + ": " + message
                                                 : file + ":" + std::to_string(line) + ":" +
                                                       std::to_string(col) + ": " + message)) {}
};

} // namespace duet
