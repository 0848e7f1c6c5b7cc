#include "scenario.hpp"
#include "e820_file.hpp"
#include "source_error.hpp"
#include "text.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>

namespace duet {

namespace {

const std::vector<std::string> kKeywords = {"machine", "memory", "costs",
                                            "faults",  "run",    "expect"};

struct Option {
    std::string_view key;
    std::string_view value;
    int col;       // of the key
    int value_col; // of the value
};

class Parser {
public:
    Parser(std::string_view text, const std::string& path) : m_text(text), m_path(path) {
        m_scenario.path = path;
    }

    Scenario parse() {
        size_t pos = 0;
        while (pos <= m_text.size()) {
            size_t nl = m_text.find('\n', pos);
            std::string_view line =
                m_text.substr(pos, nl == std::string_view::npos ? nl : nl - pos);
            ++m_line;
            parse_line(line);
            if (nl == std::string_view::npos) {
                break;
            }
            pos = nl + 1;
        }
        end_block();
        if (m_memory_line == 0) {
            throw SourceError(m_path, 1, 1,
                              "the scenario has no memory line (for example: memory "
                              "preset=qemu-q35-2g)");
        }
        return std::move(m_scenario);
    }

private:
    [[noreturn]] void fail(int col, const std::string& message) {
        throw SourceError(m_path, m_line, col, message);
    }

    void parse_line(std::string_view line) {
        auto tokens = tokenize(line);
        if (tokens.empty()) {
            return;
        }
        bool indented = tokens[0].col > 1;
        if (indented) {
            if (!m_in_memory_block) {
                fail(tokens[0].col, "unexpected indented line: only a block (such as an "
                                    "inline memory map) is indented");
            }
            m_scenario.memory.push_back(parse_e820_line(line, m_path, m_line));
            return;
        }
        end_block();
        std::string_view keyword = tokens[0].text;
        if (keyword == "expect") {
            parse_expect(tokens);
            return;
        }
        if (std::find(kKeywords.begin(), kKeywords.end(), keyword) == kKeywords.end()) {
            std::string message = fmt::format("unknown keyword '{}'", keyword);
            if (auto guess = closest(keyword, kKeywords)) {
                message += fmt::format("; did you mean '{}'?", *guess);
            }
            fail(tokens[0].col, message);
        }
        std::vector<Option> options;
        for (size_t i = 1; i < tokens.size(); ++i) {
            options.push_back(split_option(tokens[i]));
        }
        if (keyword == "machine") {
            parse_machine(options);
        } else if (keyword == "memory") {
            parse_memory(tokens[0], options);
        } else if (keyword == "run") {
            parse_run(options);
        } else if (keyword == "costs") {
            parse_costs(options);
        } else if (keyword == "faults") {
            for (const auto& o : options) {
                std::string err = set_fault(m_scenario.faults, o.key, o.value);
                if (!err.empty()) {
                    fail(o.col, err);
                }
            }
        }
    }

    Option split_option(const Token& t) {
        size_t eq = t.text.find('=');
        if (eq == std::string_view::npos || eq == 0 || eq + 1 == t.text.size()) {
            fail(t.col, fmt::format("expected key=value, found '{}'", t.text));
        }
        return {t.text.substr(0, eq), t.text.substr(eq + 1), t.col,
                t.col + static_cast<int>(eq) + 1};
    }

    [[noreturn]] void unknown_option(const Option& o, const std::vector<std::string>& known,
                                     const char* keyword) {
        std::string message = fmt::format("'{}' has no option '{}'", keyword, o.key);
        if (auto guess = closest(o.key, known)) {
            message += fmt::format("; did you mean '{}'?", *guess);
        } else {
            message += fmt::format(" (it has: {})", fmt::join(known, ", "));
        }
        fail(o.col, message);
    }

    uint64_t number(const Option& o, uint64_t lo, uint64_t hi) {
        auto v = parse_u64(o.value);
        if (!v || *v < lo || *v > hi) {
            fail(o.value_col, fmt::format("{} must be a number from {} to {}, not '{}'", o.key, lo,
                                          hi, o.value));
        }
        return *v;
    }

    uint64_t duration(const Option& o, const char* alternatives = "") {
        auto v = parse_duration(o.value);
        if (!v || *v == 0) {
            fail(o.value_col, fmt::format("{} must be {}a duration such as 250us, 4ms or 1s, not "
                                          "'{}'",
                                          o.key, alternatives, o.value));
        }
        return *v;
    }

    void parse_costs(const std::vector<Option>& options) {
        static const std::vector<std::string> known = {"relax", "interrupt", "switch", "ipi",
                                                       "irq_op"};
        hal_sim::Costs& c = m_scenario.costs;
        for (const auto& o : options) {
            uint64_t* target = o.key == "relax"       ? &c.relax
                               : o.key == "interrupt" ? &c.interrupt
                               : o.key == "switch"    ? &c.context_switch
                               : o.key == "ipi"       ? &c.ipi_latency
                               : o.key == "irq_op"    ? &c.irq_op
                                                      : nullptr;
            if (target == nullptr) {
                unknown_option(o, known, "costs");
            }
            auto v = parse_duration(o.value);
            if (!v || (*v == 0 && o.key != "irq_op" && o.key != "ipi")) {
                fail(o.value_col,
                     fmt::format("{} must be a duration such as 20ns{}, not '{}'", o.key,
                                 o.key == "irq_op" ? "" : " (not zero)", o.value));
            }
            *target = *v;
        }
    }

    void parse_run(const std::vector<Option>& options) {
        static const std::vector<std::string> known = {"until", "limit"};
        if (m_run_line != 0) {
            fail(1, fmt::format("run is already given on line {}", m_run_line));
        }
        m_run_line = m_line;
        for (const auto& o : options) {
            if (o.key == "until") {
                m_scenario.until_ns = o.value == "exit" ? UINT64_MAX : duration(o, "exit, or ");
            } else if (o.key == "limit") {
                m_scenario.time_limit_ns = duration(o);
            } else {
                unknown_option(o, known, "run");
            }
        }
    }

    // expect METRIC OP NUMBER
    void parse_expect(const std::vector<Token>& tokens) {
        if (tokens.size() != 4) {
            fail(tokens.size() > 4 ? tokens[4].col
                                   : tokens.back().col + int(tokens.back().text.size()),
                 "expect takes METRIC OP VALUE, for example: expect memory.leaked_frames == 0");
        }
        Expectation e;
        e.metric = std::string(tokens[1].text);
        if (!is_metric(e.metric)) {
            std::vector<std::string> names;
            for (const auto& m : metric_catalogue()) {
                names.emplace_back(m.name);
            }
            std::string message = fmt::format("no metric '{}'", e.metric);
            if (auto guess = closest(e.metric, names)) {
                message += fmt::format("; did you mean '{}'?", *guess);
            } else {
                message += " (docs/scenarios.md lists them)";
            }
            fail(tokens[1].col, message);
        }
        static const std::pair<std::string_view, CompareOp> kOps[] = {
            {"==", CompareOp::Eq}, {"!=", CompareOp::Ne}, {"<", CompareOp::Lt},
            {"<=", CompareOp::Le}, {">", CompareOp::Gt},  {">=", CompareOp::Ge}};
        bool found = false;
        for (const auto& [text, op] : kOps) {
            if (tokens[2].text == text) {
                e.op = op;
                found = true;
            }
        }
        if (!found) {
            fail(tokens[2].col,
                 fmt::format("'{}' is not a comparison (==, !=, <, <=, >, >=)", tokens[2].text));
        }
        auto value = parse_number(tokens[3].text);
        if (!value) {
            fail(tokens[3].col, fmt::format("'{}' is not a number", tokens[3].text));
        }
        e.value = *value;
        e.text = fmt::format("{} {} {}", tokens[1].text, tokens[2].text, tokens[3].text);
        e.file = m_path;
        e.line = m_line;
        m_scenario.expectations.push_back(std::move(e));
    }

    void parse_machine(const std::vector<Option>& options) {
        static const std::vector<std::string> known = {"cpus", "seed", "livelock"};
        for (const auto& o : options) {
            if (o.key == "cpus") {
                m_scenario.cpus = static_cast<uint32_t>(number(o, 1, bootboot_abi::kMaxCores));
            } else if (o.key == "seed") {
                m_scenario.seed = number(o, 0, UINT64_MAX);
            } else if (o.key == "livelock") {
                m_scenario.livelock_ns = duration(o);
            } else {
                unknown_option(o, known, "machine");
            }
        }
    }

    void parse_memory(const Token& keyword, const std::vector<Option>& options) {
        static const std::vector<std::string> known = {"preset", "file"};
        if (m_memory_line != 0) {
            fail(keyword.col, fmt::format("memory is already given on line {}", m_memory_line));
        }
        m_memory_line = m_line;
        if (options.empty()) {
            // An inline map follows, indented.
            m_in_memory_block = true;
            m_scenario.memory_source = "inline";
            return;
        }
        if (options.size() > 1) {
            fail(options[1].col, "memory takes one of preset=NAME, file=PATH, or an indented "
                                 "E820 map on the following lines");
        }
        const Option& o = options[0];
        std::string value(o.value);
        if (o.key == "preset") {
            const char* text = e820_preset(value);
            if (text == nullptr) {
                std::string message = fmt::format("no memory preset '{}'", value);
                auto names = e820_preset_names();
                if (auto guess = closest(value, names)) {
                    message += fmt::format("; did you mean '{}'?", *guess);
                } else {
                    message += fmt::format(" (presets: {})", fmt::join(names, ", "));
                }
                fail(o.value_col, message);
            }
            m_scenario.memory = parse_e820(text, "preset " + value);
            m_scenario.memory_source = "preset " + value;
        } else if (o.key == "file") {
            std::filesystem::path p(value);
            if (p.is_relative()) {
                p = std::filesystem::path(m_path).parent_path() / p;
            }
            std::ifstream in(p, std::ios::binary);
            if (!in) {
                fail(o.value_col, fmt::format("cannot read memory map file '{}'", p.string()));
            }
            std::stringstream ss;
            ss << in.rdbuf();
            m_scenario.memory = parse_e820(ss.str(), p.string());
            m_scenario.memory_source = p.string();
        } else {
            unknown_option(o, known, "memory");
        }
    }

    void end_block() {
        if (m_in_memory_block && m_scenario.memory.empty()) {
            throw SourceError(m_path, m_memory_line, 1,
                              "memory has no preset=, no file= and no indented E820 lines");
        }
        m_in_memory_block = false;
    }

    std::string_view m_text;
    std::string m_path;
    Scenario m_scenario;
    int m_line = 0;
    int m_memory_line = 0;
    int m_run_line = 0;
    bool m_in_memory_block = false;
};

} // namespace

const std::vector<std::string>& fault_names() {
    static const std::vector<std::string> names = {"frame_alloc", "heap_alloc",    "timer_late",
                                                   "ipi_delay",   "ipi_duplicate", "late_max"};
    return names;
}

std::string set_fault(hal_sim::FaultRates& rates, std::string_view name, std::string_view value) {
    if (name == "late_max") {
        auto v = parse_duration(value);
        if (!v || *v == 0) {
            return fmt::format("late_max must be a duration such as 100us, not '{}'", value);
        }
        rates.late_max_ns = *v;
        return {};
    }
    double* target = nullptr;
    if (name == "frame_alloc") {
        target = &rates.frame_alloc;
    } else if (name == "heap_alloc") {
        target = &rates.heap_alloc;
    } else if (name == "timer_late") {
        target = &rates.timer_late;
    } else if (name == "ipi_delay") {
        target = &rates.ipi_delay;
    } else if (name == "ipi_duplicate") {
        target = &rates.ipi_duplicate;
    } else {
        std::string message = fmt::format("no fault point '{}'", name);
        if (auto guess = closest(name, fault_names())) {
            message += fmt::format("; did you mean '{}'?", *guess);
        } else {
            message += fmt::format(" (there are: {})", fmt::join(fault_names(), ", "));
        }
        return message;
    }
    auto p = parse_probability(value);
    if (!p) {
        return fmt::format("{} must be a probability from 0 to 1 (or a percentage), not '{}'", name,
                           value);
    }
    *target = *p;
    return {};
}

Scenario parse_scenario(std::string_view text, const std::string& path) {
    return Parser(text, path).parse();
}

Scenario load_scenario(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        throw SourceError(path, 0, 0, "cannot read the scenario file");
    }
    std::stringstream ss;
    ss << in.rdbuf();
    return parse_scenario(ss.str(), path);
}

std::vector<firmware::E820Entry> load_memory(const std::string& spec, const std::string& origin,
                                             int line, int col, std::string* source) {
    if (const char* text = e820_preset(spec)) {
        *source = "preset " + spec;
        return parse_e820(text, *source);
    }
    if (!std::filesystem::exists(spec)) {
        throw SourceError(origin, line, col,
                          fmt::format("'{}' is neither a memory preset ({}) nor a file", spec,
                                      fmt::join(e820_preset_names(), ", ")));
    }
    *source = spec;
    return read_e820_file(spec);
}

} // namespace duet
