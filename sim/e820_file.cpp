#include "e820_file.hpp"
#include "source_error.hpp"
#include "text.hpp"

#include <fmt/format.h>

namespace duet {

firmware::E820Entry parse_e820_line(std::string_view text, const std::string& origin, int line_no) {
    auto tokens = tokenize(text);
    if (tokens.size() < 3 || tokens.size() > 4) {
        int col = tokens.empty() ? 1 : tokens.back().col;
        throw SourceError(origin, line_no, col,
                          fmt::format("an E820 entry is BASE LENGTH TYPE [EXT], found {} field{}",
                                      tokens.size(), tokens.size() == 1 ? "" : "s"));
    }
    auto number = [&](const Token& t, const char* what) {
        auto v = parse_u64(t.text);
        if (!v) {
            throw SourceError(origin, line_no, t.col,
                              fmt::format("{} '{}' is not a number (decimal, or hex with 0x)", what,
                                          shown(t.text)));
        }
        return *v;
    };
    firmware::E820Entry e{};
    e.base = number(tokens[0], "base");
    e.length = number(tokens[1], "length");
    uint64_t type = number(tokens[2], "type");
    if (type > UINT32_MAX) {
        throw SourceError(origin, line_no, tokens[2].col, "type does not fit in 32 bits");
    }
    e.ext_attrs = firmware::kE820ExtEnabled;
    if (tokens.size() == 4) {
        uint64_t ext = number(tokens[3], "extended attributes");
        if (ext > UINT32_MAX) {
            throw SourceError(origin, line_no, tokens[3].col,
                              "extended attributes do not fit in 32 bits");
        }
        e.ext_attrs = static_cast<uint32_t>(ext);
    }
    e.type = static_cast<uint32_t>(type);
    if (e.base >= kMaxPhysicalAddress || e.length > kMaxPhysicalAddress - e.base) {
        throw SourceError(origin, line_no, tokens[e.base >= kMaxPhysicalAddress ? 0 : 1].col,
                          fmt::format("entry [{:#x}, +{:#x}) reaches beyond the 52-bit physical "
                                      "address space of x86_64",
                                      e.base, e.length));
    }
    return e;
}

std::vector<firmware::E820Entry> parse_e820(std::string_view text, const std::string& origin,
                                            std::vector<int>* lines) {
    std::vector<firmware::E820Entry> map;
    if (lines != nullptr) {
        lines->clear();
    }
    int line_no = 0;
    size_t pos = 0;
    while (pos <= text.size()) {
        size_t nl = text.find('\n', pos);
        std::string_view line = text.substr(pos, nl == std::string_view::npos ? nl : nl - pos);
        ++line_no;
        if (!tokenize(line).empty()) {
            map.push_back(parse_e820_line(line, origin, line_no));
            if (lines != nullptr) {
                lines->push_back(line_no);
            }
        }
        if (nl == std::string_view::npos) {
            break;
        }
        pos = nl + 1;
    }
    if (map.empty()) {
        throw SourceError(origin, 1, 1, "the memory map has no entries");
    }
    return map;
}

std::vector<firmware::E820Entry> read_e820_file(const std::string& path, std::vector<int>* lines) {
    return parse_e820(read_input_file(path, "memory map file"), path, lines);
}

} // namespace duet
