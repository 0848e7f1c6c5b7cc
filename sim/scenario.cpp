#include "scenario.hpp"
#include "e820_file.hpp"
#include "source_error.hpp"
#include "text.hpp"

#include <core/sched/run_queue.hpp>
#include <core/sched/thread.hpp>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <map>
#include <optional>
#include <set>

namespace duet {

namespace {

const std::vector<std::string> kKeywords = {"machine", "memory",  "costs", "faults", "run",
                                            "expect",  "program", "spawn", "vary",   "process"};

// What --randomize draws from when the scenario leaves something open and has no vary line.
constexpr uint32_t kVaryCpusMax = 8;
constexpr uint64_t kVaryTicks[] = {250'000, 500'000, 1'000'000};
constexpr uint64_t kVarySlices[] = {1'000'000, 2'000'000, 4'000'000, 8'000'000};
// Faults that change timing, not what a correct kernel must do (an allocation fault may
// rightly fail a spawn, and with it an expectation): a scenario names others on its vary line.
const char* const kVaryFaults[] = {"timer_late", "ipi_delay", "ipi_duplicate"};
constexpr size_t kMaxVaryValues = 16;

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
        m_scenario.processes.finish(m_path, m_scenario.warnings);
        if (const auto* u = m_scenario.workload.resolve()) {
            throw SourceError(m_path, u->line, u->col,
                              fmt::format("no program '{}'", shown(u->program)));
        }
        for (const auto& s : m_spawn_cpus) {
            if (s.cpu >= m_scenario.cpus) {
                throw SourceError(m_path, s.line, s.col,
                                  fmt::format("cpu {} does not exist: the machine has {} CPUs "
                                              "(0 to {})",
                                              s.cpu, m_scenario.cpus, m_scenario.cpus - 1));
            }
        }
        settle_variation();
        if (m_memory_line == 0) {
            throw SourceError(m_path, 1, 1,
                              "the scenario has no memory line (for example: memory "
                              "preset=qemu-q35-2g)");
        }
        warn_unstarted();
        return std::move(m_scenario);
    }

private:
    // A program that never runs is not an error (a spare one may be kept for later), but it
    // is probably not what was meant: say so, and run anyway.
    void warn_unstarted() {
        std::map<std::string_view, const ProgramInfo*> by_name;
        for (const auto& p : m_programs) {
            by_name[p.name] = &p;
        }
        std::set<std::string_view> runs;
        std::vector<std::string_view> next(m_started.begin(), m_started.end());
        while (!next.empty()) {
            std::string_view name = next.back();
            next.pop_back();
            auto it = by_name.find(name);
            if (!runs.insert(name).second || it == by_name.end()) {
                continue;
            }
            next.insert(next.end(), it->second->spawns.begin(), it->second->spawns.end());
        }
        for (const auto& p : m_programs) {
            if (runs.count(p.name) == 0) {
                m_scenario.warnings.push_back(
                    fmt::format("{}:{}: warning: program '{}' never runs: nothing that runs "
                                "spawns it",
                                printable(m_path), p.line, p.name));
            }
        }
    }

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
            if (m_in_program || m_in_process) {
                int indent = tokens[0].col;
                m_program_lines.push_back({indent, std::move(tokens), m_line});
                return;
            }
            if (!m_in_memory_block) {
                fail(tokens[0].col, "unexpected indented line: only a block (an inline memory "
                                    "map, a program, a process) is indented");
            }
            m_scenario.memory.push_back(parse_e820_line(line, m_path, m_line));
            m_scenario.memory_lines.push_back(m_line);
            return;
        }
        end_block();
        std::string_view keyword = tokens[0].text;
        if (keyword == "expect") {
            parse_expect(tokens);
            return;
        }
        if (keyword == "program") {
            begin_program(tokens);
            return;
        }
        if (keyword == "process") {
            // Its block follows: compiled when it ends (sim/process_builder.cpp).
            m_in_process = true;
            m_process_header = tokens;
            m_program_line = m_line;
            m_program_lines.clear();
            return;
        }
        if (keyword == "spawn") {
            parse_spawn_statement(tokens);
            return;
        }
        if (keyword == "vary") {
            parse_vary(tokens);
            return;
        }
        if (std::find(kKeywords.begin(), kKeywords.end(), keyword) == kKeywords.end()) {
            std::string message = fmt::format("unknown keyword '{}'", shown(keyword));
            if (auto guess = closest(keyword, kKeywords)) {
                message += fmt::format("; did you mean '{}'?", *guess);
            }
            fail(tokens[0].col, message);
        }
        std::vector<Option> options;
        for (size_t i = 1; i < tokens.size(); ++i) {
            options.push_back(split_option(tokens[i]));
        }
        refuse_repeated(options);
        if (keyword == "machine") {
            if (m_machine_line != 0) {
                fail(tokens[0].col,
                     fmt::format("machine is already given on line {}", m_machine_line));
            }
            m_machine_line = m_line;
            parse_machine(options);
        } else if (keyword == "memory") {
            parse_memory(tokens[0], options);
        } else if (keyword == "run") {
            parse_run(options);
        } else if (keyword == "costs") {
            parse_costs(options);
        } else if (keyword == "faults") {
            m_faults_line = true;
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
            fail(t.col, fmt::format("expected key=value, found '{}'", shown(t.text)));
        }
        return {t.text.substr(0, eq), t.text.substr(eq + 1), t.col,
                t.col + static_cast<int>(eq) + 1};
    }

    // `machine cpus=4 cpus=8`: one of them is a mistake, and which is not ours to guess.
    void refuse_repeated(const std::vector<Option>& options) {
        std::map<std::string_view, int> seen; // key, column
        for (const auto& o : options) {
            auto [it, first] = seen.emplace(o.key, o.col);
            if (!first) {
                fail(o.col, fmt::format("{} is already given on this line, at column {}",
                                        shown(o.key), it->second));
            }
        }
    }

    [[noreturn]] void unknown_option(const Option& o, const std::vector<std::string>& known,
                                     const char* keyword) {
        std::string message = fmt::format("'{}' has no option '{}'", keyword, shown(o.key));
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
                                          hi, shown(o.value)));
        }
        return *v;
    }

    uint64_t duration(const Option& o, const char* alternatives = "") {
        auto v = parse_duration(o.value);
        if (!v || *v == 0) {
            fail(o.value_col, fmt::format("{} must be {}a duration such as 250us, 4ms or 1s, not "
                                          "'{}'",
                                          o.key, alternatives, shown(o.value)));
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
                                 o.key == "irq_op" ? "" : " (not zero)", shown(o.value)));
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
            std::string message = fmt::format("no metric '{}'", shown(e.metric));
            if (auto guess = closest(e.metric, names)) {
                message += fmt::format("; did you mean '{}'?", *guess);
            } else {
                message += " (docs/scenarios.md lists them)";
            }
            fail(tokens[1].col, message);
        }
        // NOTE: the report's text metrics; expect compares numbers.
        static const std::vector<std::string> kTextMetrics = {"verdict", "digest",
                                                              "schedule.strategy"};
        if (std::find(kTextMetrics.begin(), kTextMetrics.end(), e.metric) != kTextMetrics.end()) {
            fail(tokens[1].col,
                 fmt::format("{} is text, not a number: expect compares numbers{}", e.metric,
                             e.metric == "verdict" ? " (a run whose verdict is not success "
                                                     "fails anyway)"
                                                   : ""));
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
            fail(tokens[2].col, fmt::format("'{}' is not a comparison (==, !=, <, <=, >, >=)",
                                            shown(tokens[2].text)));
        }
        auto value = parse_number(tokens[3].text);
        if (!value) {
            fail(tokens[3].col, fmt::format("'{}' is not a number", shown(tokens[3].text)));
        }
        e.value = *value;
        e.text = fmt::format("{} {} {}", tokens[1].text, tokens[2].text, tokens[3].text);
        e.file = m_path;
        e.line = m_line;
        m_scenario.expectations.push_back(std::move(e));
    }

    void parse_machine(const std::vector<Option>& options) {
        static const std::vector<std::string> known = {"cpus",  "seed",     "livelock", "tick",
                                                       "slice", "firmware", "watchdog"};
        for (const auto& o : options) {
            m_machine_sets.emplace(o.key);
            if (o.key == "cpus") {
                m_scenario.cpus = static_cast<uint32_t>(number(o, 1, bootboot_abi::kMaxCores));
            } else if (o.key == "seed") {
                m_scenario.seed = number(o, 0, UINT64_MAX);
            } else if (o.key == "livelock") {
                m_scenario.livelock_ns = duration(o);
            } else if (o.key == "tick") {
                m_scenario.tick_ns = duration(o);
            } else if (o.key == "slice") {
                m_scenario.slice_ns = duration(o);
            } else if (o.key == "watchdog") {
                m_scenario.watchdog_ns = o.value == "off" ? 0 : duration(o, "off or ");
            } else if (o.key == "firmware") {
                auto f = hal_sim::firmware_by_name(o.value);
                if (!f) {
                    std::string message = fmt::format("no firmware '{}'", shown(o.value));
                    if (auto guess = closest(o.value, hal_sim::firmware_names())) {
                        message += fmt::format("; did you mean '{}'?", *guess);
                    } else {
                        message += fmt::format(" (there are: {})",
                                               fmt::join(hal_sim::firmware_names(), ", "));
                    }
                    fail(o.value_col, message);
                }
                m_scenario.firmware = *f;
            } else {
                unknown_option(o, known, "machine");
            }
        }
    }

    // vary cpus=A..B tick=D,D.. slice=D,D.. faults=NAME,NAME.. | vary none
    void parse_vary(const std::vector<Token>& tokens) {
        Variation& v = m_scenario.vary;
        if (v.line != 0) {
            fail(tokens[0].col, fmt::format("vary is already given on line {}", v.line));
        }
        v.line = m_line;
        if (tokens.size() == 2 && tokens[1].text == "none") {
            return;
        }
        if (tokens.size() == 1) {
            fail(tokens[0].col + 5, "vary takes what may vary (cpus=A..B, tick=, slice=, "
                                    "faults=), or none");
        }
        std::vector<Option> options;
        for (size_t i = 1; i < tokens.size(); ++i) {
            options.push_back(split_option(tokens[i]));
        }
        refuse_repeated(options);
        static const std::vector<std::string> known = {"cpus", "tick", "slice", "faults"};
        for (const auto& o : options) {
            if (o.key == "cpus") {
                auto range = parse_range(o.value);
                if (!range || range->first < 1 || range->second > bootboot_abi::kMaxCores) {
                    fail(o.value_col,
                         fmt::format("cpus must be a range A..B within 1..{}, not '{}'",
                                     bootboot_abi::kMaxCores, shown(o.value)));
                }
                v.cpus_min = static_cast<uint32_t>(range->first);
                v.cpus_max = static_cast<uint32_t>(range->second);
                m_vary_cpus_col = o.value_col;
            } else if (o.key == "tick" || o.key == "slice") {
                auto& out = o.key == "tick" ? v.ticks : v.slices;
                for_each_listed(o, [&](std::string_view item, int col) {
                    auto d = parse_duration(item);
                    if (!d || *d == 0) {
                        fail(col, fmt::format("{} takes durations such as 250us or 4ms, "
                                              "separated by commas, not '{}'",
                                              o.key, shown(item)));
                    }
                    out.push_back(*d);
                });
            } else if (o.key == "faults") {
                for_each_listed(o, [&](std::string_view item, int col) {
                    const auto& names = fault_names();
                    if (item == "late_max" ||
                        std::find(names.begin(), names.end(), item) == names.end()) {
                        std::vector<std::string> rates;
                        std::copy_if(names.begin(), names.end(), std::back_inserter(rates),
                                     [](const std::string& n) { return n != "late_max"; });
                        fail(col, fmt::format("no fault '{}' (there are: {})", shown(item),
                                              fmt::join(rates, ", ")));
                    }
                    if (std::find(v.faults.begin(), v.faults.end(), item) != v.faults.end()) {
                        fail(col, fmt::format("{} is already listed", shown(item)));
                    }
                    v.faults.emplace_back(item);
                });
            } else {
                unknown_option(o, known, "vary");
            }
        }
    }

    // "A..B" with A <= B.
    static std::optional<std::pair<uint64_t, uint64_t>> parse_range(std::string_view text) {
        size_t dots = text.find("..");
        if (dots == std::string_view::npos) {
            return std::nullopt;
        }
        auto a = parse_u64(text.substr(0, dots));
        auto b = parse_u64(text.substr(dots + 2));
        if (!a || !b || *a > *b) {
            return std::nullopt;
        }
        return std::pair{*a, *b};
    }

    // Calls `f(item, column)` for each comma-separated item of `o`'s value.
    template <typename F>
    void for_each_listed(const Option& o, F f) {
        size_t pos = 0;
        size_t count = 0;
        for (;;) {
            size_t comma = o.value.find(',', pos);
            std::string_view item = o.value.substr(
                pos, comma == std::string_view::npos ? std::string_view::npos : comma - pos);
            int col = o.value_col + static_cast<int>(pos);
            if (item.empty()) {
                fail(col, fmt::format("{} has an empty item in its list", o.key));
            }
            if (++count > kMaxVaryValues) {
                fail(col, fmt::format("{} lists more than {} values", o.key, kMaxVaryValues));
            }
            f(item, col);
            if (comma == std::string_view::npos) {
                return;
            }
            pos = comma + 1;
        }
    }

    // Without a vary line, a swarm varies what the scenario leaves open: the CPU count, tick
    // and slice its machine line does not give, and the timing faults if it has no faults
    // line. Either way the CPU count stays within what the pinned spawns need.
    void settle_variation() {
        Variation& v = m_scenario.vary;
        uint32_t need = m_scenario.workload.min_cpus();
        if (v.line != 0) {
            if (v.cpus_min != 0 && v.cpus_min < need) {
                throw SourceError(m_path, v.line, m_vary_cpus_col,
                                  fmt::format("cpus may not go below {}: a spawn is pinned to "
                                              "cpu {}",
                                              need, need - 1));
            }
            return;
        }
        if (!m_machine_sets.count("cpus")) {
            v.cpus_min = need;
            v.cpus_max = std::max(kVaryCpusMax, need);
        }
        if (!m_machine_sets.count("tick")) {
            v.ticks.assign(std::begin(kVaryTicks), std::end(kVaryTicks));
        }
        if (!m_machine_sets.count("slice")) {
            v.slices.assign(std::begin(kVarySlices), std::end(kVarySlices));
        }
        if (!m_faults_line) {
            v.faults.assign(std::begin(kVaryFaults), std::end(kVaryFaults));
        }
    }

    void parse_memory(const Token& keyword, const std::vector<Option>& options) {
        static const std::vector<std::string> known = {"preset", "file"};
        if (m_memory_line != 0) {
            fail(keyword.col, fmt::format("memory is already given on line {}", m_memory_line));
        }
        m_memory_line = m_line;
        m_scenario.memory_line = m_line;
        if (options.empty()) {
            // An inline map follows, indented.
            m_in_memory_block = true;
            m_scenario.memory_source = "inline";
            m_scenario.memory_file = m_path;
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
                std::string message = fmt::format("no memory preset '{}'", shown(value));
                auto names = e820_preset_names();
                if (auto guess = closest(value, names)) {
                    message += fmt::format("; did you mean '{}'?", *guess);
                } else {
                    message += fmt::format(" (presets: {})", fmt::join(names, ", "));
                }
                fail(o.value_col, message);
            }
            m_scenario.memory = parse_e820(text, "preset " + value, &m_scenario.memory_lines);
            m_scenario.memory_source = "preset " + value;
            m_scenario.memory_file = m_scenario.memory_source;
        } else if (o.key == "file") {
            std::filesystem::path p(value);
            if (p.is_relative()) {
                p = std::filesystem::path(m_path).parent_path() / p;
            }
            std::string text;
            try {
                text = read_input_file(p.string(), "memory map file");
            } catch (const SourceError& e) {
                std::error_code ec;
                if (!std::filesystem::exists(p, ec)) {
                    fail(o.value_col, fmt::format("cannot read memory map file '{}'",
                                                  shown(p.string(), kShownPathLength)));
                }
                fail(o.value_col, e.what());
            }
            m_scenario.memory = parse_e820(text, p.string(), &m_scenario.memory_lines);
            m_scenario.memory_source = p.string();
            m_scenario.memory_file = p.string();
        } else {
            unknown_option(o, known, "memory");
        }
    }

    // --- Programs. ---

    using Line = BlockLine;

    [[noreturn]] void fail_at(const Line& l, int col, const std::string& message) {
        throw SourceError(m_path, l.line, col, message);
    }

    static bool is_name(std::string_view s) {
        if (s.empty() || !(std::isalpha(static_cast<unsigned char>(s[0])) || s[0] == '_')) {
            return false;
        }
        for (char c : s) {
            if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' ||
                  c == '.')) {
                return false;
            }
        }
        return s.size() < core::workload::kNameLength;
    }

    void begin_program(const std::vector<Token>& tokens) {
        if (tokens.size() != 2) {
            fail(tokens.size() > 2 ? tokens[2].col : tokens[0].col,
                 "program takes a name, and its actions on the indented lines below");
        }
        std::string name(tokens[1].text);
        if (!is_name(name)) {
            fail(tokens[1].col, fmt::format("'{}' is not a program name (letters, digits, _ - .; "
                                            "at most {} characters)",
                                            shown(name), core::workload::kNameLength - 1));
        }
        if (m_scenario.workload.has_program(name)) {
            fail(tokens[1].col, fmt::format("program '{}' is defined twice", name));
        }
        m_in_program = true;
        m_program_line = m_line;
        m_program_name = name;
        m_program_lines.clear();
    }

    void end_program() {
        m_in_program = false;
        if (m_program_lines.empty()) {
            throw SourceError(m_path, m_program_line, 1,
                              fmt::format("program '{}' has no actions", m_program_name));
        }
        m_scenario.workload.begin_program(m_program_name);
        m_programs.push_back({m_program_name, m_program_line, {}});
        m_buffers.clear();
        m_mutexes.clear();
        size_t i = 0;
        parse_actions(i, m_program_lines[0].indent);
        if (i < m_program_lines.size()) {
            const Line& l = m_program_lines[i];
            fail_at(l, l.indent, "this line is indented less than the block it follows");
        }
        m_scenario.workload.end_program();
    }

    void parse_actions(size_t& i, int indent) {
        while (i < m_program_lines.size()) {
            const Line& l = m_program_lines[i];
            if (l.indent < indent) {
                return;
            }
            if (l.indent > indent) {
                fail_at(l, l.indent, "unexpected indentation: only a repeat has a block");
            }
            ++i;
            parse_action(l, i);
        }
    }

    uint64_t action_duration(const Line& l, size_t k) {
        auto v = parse_duration(l.tokens[k].text);
        if (!v) {
            fail_at(l, l.tokens[k].col,
                    fmt::format("'{}' is not a duration such as 250us, 4ms or 1s",
                                shown(l.tokens[k].text)));
        }
        return *v;
    }

    uint64_t action_number(const Line& l, size_t k, uint64_t lo, uint64_t hi, const char* what) {
        auto v = parse_u64(l.tokens[k].text);
        if (!v || *v < lo || *v > hi) {
            fail_at(l, l.tokens[k].col,
                    fmt::format("{} must be a number from {} to {}, not '{}'", what, lo, hi,
                                shown(l.tokens[k].text)));
        }
        return *v;
    }

    std::string action_name(const Line& l, size_t k, const char* what) {
        std::string_view s = l.tokens[k].text;
        if (!is_name(s)) {
            fail_at(l, l.tokens[k].col, fmt::format("'{}' is not a {} name", shown(s), what));
        }
        return std::string(s);
    }

    void arity(const Line& l, size_t n, const char* shape) {
        if (l.tokens.size() != n) {
            int col = l.tokens.size() > n ? l.tokens[n].col : l.tokens.back().col;
            fail_at(l, col, fmt::format("{} takes: {}", l.tokens[0].text, shape));
        }
    }

    Option split_option_at(const Line& l, const Token& t) {
        size_t eq = t.text.find('=');
        if (eq == std::string_view::npos || eq == 0 || eq + 1 == t.text.size()) {
            fail_at(l, t.col, fmt::format("expected key=value, found '{}'", shown(t.text)));
        }
        return {t.text.substr(0, eq), t.text.substr(eq + 1), t.col,
                t.col + static_cast<int>(eq) + 1};
    }

    void parse_action(const Line& l, size_t& i) {
        namespace wl = core::workload;
        static const std::vector<std::string> actions = {
            "compute", "sleep",  "yield", "alloc",  "free", "touch", "spawn",
            "lock",    "unlock", "wait",  "signal", "exit", "repeat"};
        std::string_view verb = l.tokens[0].text;
        WorkloadBuilder& w = m_scenario.workload;
        wl::Instruction in{};
        if (verb == "compute" || verb == "sleep") {
            arity(l, 2, "a duration, such as 3ms");
            in.op = verb == "compute" ? wl::Op::Compute : wl::Op::Sleep;
            in.c = action_duration(l, 1);
        } else if (verb == "yield") {
            arity(l, 1, "nothing");
            in.op = wl::Op::Yield;
        } else if (verb == "alloc") {
            arity(l, 5, "frames COUNT as NAME, or heap BYTES as NAME");
            bool heap = l.tokens[1].text == "heap";
            if (!heap && l.tokens[1].text != "frames") {
                fail_at(
                    l, l.tokens[1].col,
                    fmt::format("alloc takes frames or heap, not '{}'", shown(l.tokens[1].text)));
            }
            if (l.tokens[3].text != "as") {
                fail_at(l, l.tokens[3].col,
                        "alloc takes: frames COUNT as NAME, or heap BYTES as NAME");
            }
            in.op = heap ? wl::Op::AllocHeap : wl::Op::AllocFrames;
            in.b = heap
                       ? static_cast<uint32_t>(action_number(l, 2, 1, 1u << 30, "the byte count"))
                       : static_cast<uint32_t>(action_number(l, 2, 1, 1u << 18, "the frame count"));
            std::string name = action_name(l, 4, "buffer");
            if (!w.slot(name, &in.a)) {
                fail_at(l, l.tokens[4].col,
                        fmt::format("a program holds at most {} named buffers", wl::kMaxSlots));
            }
            // NOTE: in the order the lines are written; a repeat's next round is not looked at
            // (an alloc there gives the previous round's memory back first).
            if (auto it = m_buffers.find(name); it != m_buffers.end()) {
                fail_at(l, l.tokens[4].col,
                        fmt::format("buffer '{}' still holds what line {} allocated: free it "
                                    "first, or use another name",
                                    name, it->second));
            }
            m_buffers[name] = l.line;
        } else if (verb == "free" || verb == "touch") {
            arity(l, 2, "a buffer's name");
            in.op = verb == "free" ? wl::Op::Free : wl::Op::Touch;
            std::string name = action_name(l, 1, "buffer");
            if (!w.known_slot(name)) {
                fail_at(l, l.tokens[1].col,
                        fmt::format("no buffer '{}' is allocated before this line", name));
            }
            w.slot(name, &in.a);
            if (verb == "free") {
                m_buffers.erase(name);
            }
        } else if (verb == "spawn") {
            if (l.tokens.size() < 2 || l.tokens.size() > 3) {
                arity(l, 2, "a program's name, and count=N");
            }
            in.op = wl::Op::Spawn;
            in.b = 1;
            if (l.tokens.size() == 3) {
                Option o = split_option_at(l, l.tokens[2]);
                if (o.key != "count") {
                    fail_at(
                        l, o.col,
                        fmt::format("spawn in a program takes count=N, not '{}'", shown(o.key)));
                }
                auto v = parse_u64(o.value);
                if (!v || *v < 1 || *v > 100'000) {
                    fail_at(l, o.value_col, "count must be a number from 1 to 100000");
                }
                in.b = static_cast<uint32_t>(*v);
            }
            size_t at = w.emit(in);
            std::string program = action_name(l, 1, "program");
            w.spawn_in_program(at, program, l.line, l.tokens[1].col);
            m_programs.back().spawns.push_back(std::move(program));
            return;
        } else if (verb == "lock" || verb == "unlock") {
            arity(l, 2, "a mutex's name");
            in.op = verb == "lock" ? wl::Op::Lock : wl::Op::Unlock;
            std::string name = action_name(l, 1, "mutex");
            if (!w.mutex(name, &in.a)) {
                fail_at(l, l.tokens[1].col, fmt::format("at most {} mutexes", wl::kMaxSyncObjects));
            }
            // A thread unlocks only what it holds: an unlock the lines before it cannot have
            // locked fails at run time, whatever the schedule (the repeats' later rounds are
            // the kernel's to catch).
            auto it = m_mutexes.find(name);
            if (verb == "lock") {
                m_mutexes[name] = {true, l.line};
            } else if (it == m_mutexes.end()) {
                fail_at(l, l.tokens[1].col,
                        fmt::format("unlock {0}: program '{1}' does not lock {0} before this "
                                    "line, and a thread may unlock only a mutex it holds",
                                    name, m_program_name));
            } else if (!it->second.held) {
                fail_at(l, l.tokens[1].col,
                        fmt::format("unlock {}: line {} has unlocked it already", name,
                                    it->second.line));
            } else {
                it->second = {false, l.line};
            }
        } else if (verb == "wait" || verb == "signal") {
            arity(l, 2, "an event's name");
            in.op = verb == "wait" ? wl::Op::Wait : wl::Op::Signal;
            if (!w.event(action_name(l, 1, "event"), &in.a)) {
                fail_at(l, l.tokens[1].col, fmt::format("at most {} events", wl::kMaxSyncObjects));
            }
        } else if (verb == "exit") {
            arity(l, 2, "an exit code");
            in.op = wl::Op::Exit;
            in.c = action_number(l, 1, 0, 255, "the exit code");
        } else if (verb == "repeat") {
            arity(l, 2, "a count, and its block on the indented lines below");
            in.op = wl::Op::Repeat;
            in.b = static_cast<uint32_t>(action_number(l, 1, 1, 1'000'000'000, "the count"));
            size_t at = w.emit(in);
            if (i >= m_program_lines.size() || m_program_lines[i].indent <= l.indent) {
                fail_at(l, l.tokens[0].col, "repeat has no block: indent the lines to repeat");
            }
            // The kernel's interpreter keeps one loop counter a level, and refuses deeper
            // workloads at boot: refuse them here, where the line is known.
            if (m_repeat_depth == wl::kMaxNesting) {
                fail_at(l, l.tokens[0].col,
                        fmt::format("repeat blocks nest at most {} deep", wl::kMaxNesting));
            }
            ++m_repeat_depth;
            parse_actions(i, m_program_lines[i].indent);
            --m_repeat_depth;
            size_t body = w.position() - at - 1;
            if (body > UINT16_MAX) {
                fail_at(l, l.tokens[0].col, "repeat's block is too long");
            }
            w.at(at).a = static_cast<uint16_t>(body);
            return;
        } else {
            std::string message = fmt::format("unknown action '{}'", shown(verb));
            if (auto guess = closest(verb, actions)) {
                message += fmt::format("; did you mean '{}'?", *guess);
            }
            fail_at(l, l.tokens[0].col, message);
        }
        w.emit(in);
    }

    // spawn PROGRAM [count=N] [priority=P] [cpu=C]
    void parse_spawn_statement(const std::vector<Token>& tokens) {
        static const std::vector<std::string> known = {"count", "priority", "cpu"};
        if (tokens.size() < 2 || tokens[1].text.find('=') != std::string_view::npos) {
            fail(tokens.size() < 2 ? tokens[0].col : tokens[1].col,
                 "spawn takes a program's name, then count=N priority=P cpu=C");
        }
        uint64_t count = 1;
        uint64_t priority = core::sched::kDefaultPriority;
        uint32_t cpu = core::sched::kAnyCpu;
        std::vector<Option> options;
        for (size_t k = 2; k < tokens.size(); ++k) {
            options.push_back(split_option(tokens[k]));
        }
        refuse_repeated(options);
        m_started.emplace_back(tokens[1].text);
        for (const Option& o : options) {
            if (o.key == "count") {
                count = number(o, 1, 100'000);
            } else if (o.key == "priority") {
                priority = number(o, 0, core::sched::kPriorityLevels - 1);
            } else if (o.key == "cpu") {
                m_spawn_cpus.push_back({m_line, o.value_col, number(o, 0, 255)});
                cpu = static_cast<uint32_t>(m_spawn_cpus.back().cpu);
            } else {
                unknown_option(o, known, "spawn");
            }
        }
        m_scenario.workload.spawn_at_start(
            std::string(tokens[1].text), static_cast<uint32_t>(count),
            static_cast<uint8_t>(priority), cpu, m_line, tokens[1].col);
    }

    void end_block() {
        if (m_in_program) {
            end_program();
        }
        if (m_in_process) {
            m_in_process = false;
            m_scenario.processes.add(m_path, m_process_header, m_program_lines, m_program_line);
        }
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
    bool m_in_program = false;
    bool m_in_process = false;
    std::vector<Token> m_process_header;
    int m_program_line = 0;
    std::string m_program_name;
    std::vector<Line> m_program_lines;
    struct SpawnCpu {
        int line;
        int col;
        uint64_t cpu;
    };
    std::vector<SpawnCpu> m_spawn_cpus; // checked against the machine's CPUs at the end
    int m_run_line = 0;
    bool m_in_memory_block = false;
    uint32_t m_repeat_depth = 0; // repeat blocks around the action being parsed
    int m_machine_line = 0;
    std::set<std::string_view> m_machine_sets; // the options the machine line gives
    bool m_faults_line = false;
    int m_vary_cpus_col = 0;
    // The program being compiled: the line that last allocated each buffer still held, and
    // each mutex's state after the lines so far, in the order they are written.
    std::map<std::string, int> m_buffers;
    struct MutexState {
        bool held;
        int line; // that locked or unlocked it last
    };
    std::map<std::string, MutexState> m_mutexes;
    // Which programs run: those the spawn statements start, and those they spawn.
    struct ProgramInfo {
        std::string name;
        int line;
        std::vector<std::string> spawns;
    };
    std::vector<ProgramInfo> m_programs;
    std::vector<std::string> m_started;
};

} // namespace

std::string Variation::describe() const {
    if (empty()) {
        return "nothing";
    }
    std::vector<std::string> parts;
    if (cpus_min != 0) {
        parts.push_back(fmt::format("cpus={}..{}", cpus_min, cpus_max));
    }
    auto durations = [&](const char* key, const std::vector<uint64_t>& values) {
        if (!values.empty()) {
            std::vector<std::string> items;
            for (uint64_t ns : values) {
                items.push_back(format_duration(ns));
            }
            parts.push_back(fmt::format("{}={}", key, fmt::join(items, ",")));
        }
    };
    durations("tick", ticks);
    durations("slice", slices);
    if (!faults.empty()) {
        parts.push_back(fmt::format("faults={}", fmt::join(faults, ",")));
    }
    return fmt::format("{}", fmt::join(parts, " "));
}

std::string Scenario::environment() const {
    std::string env = fmt::format(
        "// written by the Duet simulator\nduet.tick={}ns\nduet.slice={}ns\n", tick_ns, slice_ns);
    if (watchdog_ns) {
        env += fmt::format("duet.watchdog={}ns\n", *watchdog_ns);
    }
    return env;
}

const std::vector<std::string>& fault_names() {
    static const std::vector<std::string> names = {"frame_alloc", "heap_alloc",    "timer_late",
                                                   "ipi_delay",   "ipi_duplicate", "late_max"};
    return names;
}

std::string set_fault(hal_sim::FaultRates& rates, std::string_view name, std::string_view value) {
    if (name == "late_max") {
        auto v = parse_duration(value);
        if (!v || *v == 0) {
            return fmt::format("late_max must be a duration such as 100us, not '{}'", shown(value));
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
        std::string message = fmt::format("no fault point '{}'", shown(name));
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
                           shown(value));
    }
    *target = *p;
    return {};
}

Scenario parse_scenario(std::string_view text, const std::string& path) {
    return Parser(text, path).parse();
}

Scenario load_scenario(const std::string& path) {
    return parse_scenario(read_input_file(path, "scenario file"), path);
}

std::vector<firmware::E820Entry> load_memory(const std::string& spec, const std::string& origin,
                                             int line, int col, std::string* source,
                                             std::string* file, std::vector<int>* lines) {
    if (const char* text = e820_preset(spec)) {
        *source = "preset " + spec;
        if (file != nullptr) {
            *file = *source;
        }
        return parse_e820(text, *source, lines);
    }
    if (!std::filesystem::exists(spec)) {
        throw SourceError(origin, line, col,
                          fmt::format("'{}' is neither a memory preset ({}) nor a file",
                                      shown(spec), fmt::join(e820_preset_names(), ", ")));
    }
    *source = spec;
    if (file != nullptr) {
        *file = spec;
    }
    return read_e820_file(spec, lines);
}

} // namespace duet
