#include "process_builder.hpp"
#include "source_error.hpp"

#include <core/user/abi.hpp>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <set>

// The user program `script`, stripped (user/CMakeLists.txt; sim/script_program.S).
extern "C" const uint8_t duet_script_program[];
extern "C" const uint8_t duet_script_program_end[];

namespace duet {

namespace {

namespace ds = duet_script;

constexpr uint64_t kPage = 4096;
// What `read kernel` reads: the kernel image, at BOOTBOOT's fixed address (mapped, not for
// ring 3). `null`: the first page, which nothing maps.
constexpr uint64_t kKernelAddress = 0xffff'ffff'ffe0'2000;
// sys/programs: a line the init thread reads whole.
constexpr size_t kMaxProgramLine = 200;

// Process and region names: they go into the kernel's 16-byte process names and make
// PROCESS.REGION, so no dot.
bool is_process_name(std::string_view s) {
    if (s.empty() || s.size() > ProcessBuilder::kNameLength ||
        !(std::isalpha(static_cast<unsigned char>(s[0])) || s[0] == '_')) {
        return false;
    }
    return std::all_of(s.begin(), s.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
    });
}

const char* object_type(std::string_view kind) {
    return kind == "serve" || kind == "call" ? "endpoint" : "notification";
}

class Compiler {
public:
    Compiler(const std::string& path, const std::vector<BlockLine>& lines,
             ProcessBuilder::Process& p)
        : m_path(path), m_lines(lines), m_p(p) {}

    void run() {
        size_t i = 0;
        actions(i, m_lines[0].indent, 0);
        if (i < m_lines.size()) {
            const BlockLine& l = m_lines[i];
            fail(l, l.indent, "this line is indented less than the block it follows");
        }
        if (m_p.code.size() > ds::kMaxInstructions) {
            throw SourceError(m_path, m_p.line, 1,
                              fmt::format("process '{}' is too long: {} instructions, at most {}",
                                          m_p.name, m_p.code.size(), ds::kMaxInstructions));
        }
    }

private:
    [[noreturn]] void fail(const BlockLine& l, int col, const std::string& message) {
        throw SourceError(m_path, l.line, col, message);
    }

    void actions(size_t& i, int indent, uint32_t depth) {
        while (i < m_lines.size()) {
            const BlockLine& l = m_lines[i];
            if (l.indent < indent) {
                return;
            }
            if (l.indent > indent) {
                fail(l, l.indent, "unexpected indentation: only a repeat or a thread has a block");
            }
            ++i;
            action(l, i, depth);
        }
    }

    void arity(const BlockLine& l, size_t lo, size_t hi, const char* shape) {
        if (l.tokens.size() < lo || l.tokens.size() > hi) {
            int col = l.tokens.size() > hi ? l.tokens[hi].col : l.tokens.back().col;
            fail(l, col, fmt::format("{} takes: {}", l.tokens[0].text, shape));
        }
    }

    uint64_t option(const BlockLine& l, size_t k, std::string_view key, uint64_t lo, uint64_t hi) {
        std::string_view t = l.tokens[k].text;
        if (t.substr(0, key.size()) != key || t.size() <= key.size() || t[key.size()] != '=') {
            fail(l, l.tokens[k].col,
                 fmt::format("{} takes {}=N here, not '{}'", l.tokens[0].text, key, shown(t)));
        }
        auto v = parse_u64(t.substr(key.size() + 1));
        if (!v || *v < lo || *v > hi) {
            fail(l, l.tokens[k].col + static_cast<int>(key.size()) + 1,
                 fmt::format("{} must be a number from {} to {}, not '{}'", key, lo, hi,
                             shown(t.substr(key.size() + 1))));
        }
        return *v;
    }

    // The handle (from 1) the process holds to `name` with `kind`'s right.
    uint8_t handle(const BlockLine& l, size_t k, const char* kind) {
        std::string_view name = l.tokens[k].text;
        for (size_t h = 0; h < m_p.grants.size(); ++h) {
            if (m_p.grants[h].kind == kind && m_p.grants[h].object == name) {
                return static_cast<uint8_t>(h + 1);
            }
        }
        fail(l, l.tokens[k].col,
             fmt::format("process '{}' holds no {} right to '{}': add {}={} to its process line",
                         m_p.name, kind, shown(name), kind, shown(name)));
    }

    // kernel, null, REGION (its own), PROCESS.REGION (another's: resolved at the end).
    uint64_t target(const BlockLine& l, size_t k) {
        std::string_view t = l.tokens[k].text;
        if (t == "kernel") {
            return kKernelAddress;
        }
        if (t == "null") {
            return 0;
        }
        size_t dot = t.find('.');
        if (dot != std::string_view::npos) {
            if (!is_process_name(t.substr(0, dot)) || !is_process_name(t.substr(dot + 1))) {
                fail(l, l.tokens[k].col, fmt::format("'{}' is not PROCESS.REGION", shown(t)));
            }
            m_p.fixups.push_back({m_p.code.size(), std::string(t.substr(0, dot)),
                                  std::string(t.substr(dot + 1)), l.line, l.tokens[k].col});
            return 0;
        }
        return region(l, k).address;
    }

    const ProcessBuilder::Region& region(const BlockLine& l, size_t k) {
        auto it = m_p.regions.find(std::string(l.tokens[k].text));
        if (it == m_p.regions.end()) {
            fail(l, l.tokens[k].col,
                 fmt::format("no region '{}' is mapped before this line (targets: kernel, null, "
                             "a region this process maps, PROCESS.REGION)",
                             shown(l.tokens[k].text)));
        }
        return it->second;
    }

    void emit(ds::Instruction in) { m_p.code.push_back(in); }

    void action(const BlockLine& l, size_t& i, uint32_t depth) {
        static const std::vector<std::string> kActions = {
            "call",  "serve",   "receive", "reply",    "signal", "wait",  "sleep",
            "yield", "compute", "log",     "log-from", "map",    "touch", "unmap",
            "read",  "write",   "exit",    "repeat",   "thread"};
        std::string_view verb = l.tokens[0].text;
        ds::Instruction in{};
        if (verb == "call") {
            arity(l, 2, 3, "an endpoint, and bytes=N (0 to 256)");
            in.op = ds::OpCall;
            in.handle = handle(l, 1, "call");
            in.count =
                l.tokens.size() == 3
                    ? static_cast<uint32_t>(option(l, 2, "bytes", 0, duet_abi::kMaxMessageBytes))
                    : 0;
        } else if (verb == "serve") {
            arity(l, 2, 3, "an endpoint, and count=N (the calls to answer; all, without it)");
            in.op = ds::OpServe;
            in.handle = handle(l, 1, "serve");
            in.count = l.tokens.size() == 3
                           ? static_cast<uint32_t>(option(l, 2, "count", 1, 1u << 30))
                           : 0;
        } else if (verb == "receive") {
            arity(l, 2, 2, "an endpoint");
            in.op = ds::OpReceive;
            in.handle = handle(l, 1, "serve");
        } else if (verb == "reply") {
            arity(l, 1, 1, "nothing: it answers the call the last receive took");
            in.op = ds::OpReply;
        } else if (verb == "signal") {
            arity(l, 2, 3, "a notification, and bits=B");
            in.op = ds::OpSignal;
            in.handle = handle(l, 1, "signal");
            in.value = l.tokens.size() == 3 ? option(l, 2, "bits", 1, (uint64_t{1} << 63) - 1) : 1;
        } else if (verb == "wait") {
            arity(l, 2, 2, "a notification");
            in.op = ds::OpWait;
            in.handle = handle(l, 1, "wait");
        } else if (verb == "sleep" || verb == "compute") {
            arity(l, 2, 2, "a duration, such as 3ms");
            auto d = parse_duration(l.tokens[1].text);
            if (!d || *d > duet_abi::kMaxSleepNs) {
                fail(l, l.tokens[1].col,
                     fmt::format("'{}' is not a duration such as 250us or 4ms, up to 60s",
                                 shown(l.tokens[1].text)));
            }
            in.op = verb == "sleep" ? ds::OpSleep : ds::OpCompute;
            in.value = *d;
        } else if (verb == "yield") {
            arity(l, 1, 1, "nothing");
            in.op = ds::OpYield;
        } else if (verb == "log") {
            if (l.tokens.size() < 2) {
                fail(l, l.tokens[0].col, "log takes the text to write");
            }
            // The text as written, from its first word to its last (the tokens are views
            // into one line: a comment after it is not part of it).
            const Token& first = l.tokens[1];
            const Token& last = l.tokens.back();
            std::string_view text(first.text.data(),
                                  static_cast<size_t>(last.text.data() - first.text.data()) +
                                      last.text.size());
            if (text.size() > duet_abi::kMaxLogBytes) {
                fail(l, first.col,
                     fmt::format("log's text is {} bytes, more than the {} a log_write takes",
                                 text.size(), duet_abi::kMaxLogBytes));
            }
            in.op = ds::OpLog;
            in.count = static_cast<uint32_t>(text.size());
            in.value = m_p.text.size();
            m_p.text += text;
        } else if (verb == "log-from") {
            arity(l, 2, 3, "a target (kernel, null, REGION, PROCESS.REGION), and bytes=N");
            in.op = ds::OpLogFrom;
            in.value = target(l, 1);
            in.count = l.tokens.size() == 3
                           ? static_cast<uint32_t>(option(l, 2, "bytes", 1, duet_abi::kMaxLogBytes))
                           : 16;
        } else if (verb == "map") {
            arity(l, 4, 5, "SIZE as NAME [read-only], such as: map 16KiB as buf");
            auto bytes = parse_size(l.tokens[1].text);
            if (!bytes || *bytes == 0 || *bytes % kPage != 0 ||
                *bytes > duet_abi::kMaxMappedBytes) {
                fail(l, l.tokens[1].col,
                     fmt::format("'{}' is not a size of whole 4 KiB pages up to 4MiB, such as "
                                 "16KiB",
                                 shown(l.tokens[1].text)));
            }
            if (l.tokens[2].text != "as") {
                fail(l, l.tokens[2].col, "map takes: SIZE as NAME [read-only]");
            }
            std::string name(l.tokens[3].text);
            if (!is_process_name(name)) {
                fail(l, l.tokens[3].col,
                     fmt::format("'{}' is not a region name (letters, digits, _ -; at most {} "
                                 "characters)",
                                 shown(name), ProcessBuilder::kNameLength));
            }
            if (l.tokens.size() == 5 && l.tokens[4].text != "read-only") {
                fail(l, l.tokens[4].col,
                     fmt::format("map takes read-only after the name, not '{}'",
                                 shown(l.tokens[4].text)));
            }
            if (m_mapped.count(name) != 0) {
                fail(l, l.tokens[3].col,
                     fmt::format("region '{}' is still mapped: unmap it first", name));
            }
            auto it = m_p.regions.find(name);
            if (it == m_p.regions.end()) {
                // Each region its own addresses, a page apart: mapped again, at the same place.
                it = m_p.regions.emplace(name, ProcessBuilder::Region{m_next, *bytes}).first;
                m_next += *bytes + kPage;
            } else if (it->second.bytes != *bytes) {
                fail(l, l.tokens[1].col,
                     fmt::format("region '{}' was {} before: map it with that size again", name,
                                 format_size(it->second.bytes)));
            }
            m_mapped.insert(name);
            m_mapped_bytes += *bytes;
            if (m_mapped_bytes > duet_abi::kMaxMappedBytes) {
                fail(l, l.tokens[1].col, "a process maps at most 4MiB at once");
            }
            in.op = ds::OpMap;
            in.handle = l.tokens.size() == 5 ? 0 : 1;
            in.value = it->second.address;
            in.count = static_cast<uint32_t>(*bytes);
        } else if (verb == "touch" || verb == "unmap") {
            arity(l, 2, 2, "a region this process maps");
            const ProcessBuilder::Region& r = region(l, 1);
            in.op = verb == "touch" ? ds::OpTouch : ds::OpUnmap;
            in.value = r.address;
            in.count = static_cast<uint32_t>(r.bytes);
            if (verb == "unmap") {
                if (m_mapped.erase(std::string(l.tokens[1].text)) == 0) {
                    fail(l, l.tokens[1].col,
                         fmt::format("region '{}' is not mapped here: unmapped already",
                                     shown(l.tokens[1].text)));
                }
                m_mapped_bytes -= r.bytes;
            }
        } else if (verb == "read" || verb == "write") {
            arity(l, 2, 2, "a target: kernel, null, a region, PROCESS.REGION");
            in.op = verb == "read" ? ds::OpRead : ds::OpWrite;
            in.value = target(l, 1);
        } else if (verb == "exit") {
            arity(l, 2, 2, "an exit code");
            auto v = parse_u64(l.tokens[1].text);
            if (!v || *v > 255) {
                fail(l, l.tokens[1].col, "the exit code must be a number from 0 to 255");
            }
            in.op = ds::OpExit;
            in.value = *v;
        } else if (verb == "repeat") {
            arity(l, 2, 2, "a count, and its block on the indented lines below");
            auto v = parse_u64(l.tokens[1].text);
            if (!v || *v < 1 || *v > 1'000'000'000) {
                fail(l, l.tokens[1].col, "the count must be a number from 1 to 1000000000");
            }
            if (i >= m_lines.size() || m_lines[i].indent <= l.indent) {
                fail(l, l.tokens[0].col, "repeat has no block: indent the lines to repeat");
            }
            if (depth == ds::kMaxNesting) {
                fail(l, l.tokens[0].col,
                     fmt::format("repeat blocks nest at most {} deep", ds::kMaxNesting));
            }
            size_t at = m_p.code.size();
            in.op = ds::OpRepeat;
            in.count = static_cast<uint32_t>(*v);
            emit(in);
            // NOTE: a region mapped inside a repeat and not unmapped there is mapped again in
            // the next round: the kernel refuses it and the process ends with InvalidArgument.
            actions(i, m_lines[i].indent, depth + 1);
            size_t body = m_p.code.size() - at - 1;
            if (body > UINT16_MAX) {
                fail(l, l.tokens[0].col, "repeat's block is too long");
            }
            m_p.code[at].body = static_cast<uint16_t>(body);
            return;
        } else if (verb == "thread") {
            thread(l, i, depth);
            return;
        } else {
            std::string message = fmt::format("unknown process action '{}'", shown(verb));
            if (auto guess = closest(verb, kActions)) {
                message += fmt::format("; did you mean '{}'?", *guess);
            }
            fail(l, l.tokens[0].col, message);
        }
        emit(in);
    }

    // `thread [count=N]` and its block: N threads of the process run the block at once, each on
    // a stack the compiler places (ds::OpThread), beside the lines that follow.
    void thread(const BlockLine& l, size_t& i, uint32_t depth) {
        arity(l, 1, 2, "count=N (1 to 7), and its block on the indented lines below");
        uint64_t count = 1;
        if (l.tokens.size() == 2) {
            count = option(l, 1, "count", 1, duet_abi::kMaxThreads - 1);
        }
        if (depth != 0) {
            fail(l, l.tokens[0].col,
                 "a thread block goes at the top level of its process, not inside a repeat or a "
                 "thread");
        }
        if (i >= m_lines.size() || m_lines[i].indent <= l.indent) {
            fail(l, l.tokens[0].col, "thread has no block: indent the lines the thread runs");
        }
        m_threads += count;
        if (m_threads > duet_abi::kMaxThreads - 1) {
            fail(l, l.tokens[0].col,
                 fmt::format("process '{}' starts {} threads: at most {} beside its first",
                             m_p.name, m_threads, duet_abi::kMaxThreads - 1));
        }
        ds::Instruction in{};
        in.op = ds::OpThread;
        in.handle = static_cast<uint8_t>(count);
        in.value = m_next;
        m_next += count * ds::kThreadStackStride + kPage;
        m_mapped_bytes += count * ds::kThreadStackBytes;
        if (m_mapped_bytes > duet_abi::kMaxMappedBytes) {
            fail(l, l.tokens[0].col,
                 "a process maps at most 4MiB at once (a thread's stack: 16KiB)");
        }
        size_t at = m_p.code.size();
        emit(in);
        // NOTE: depth 1 on: a repeat inside counts its nesting from there, and no thread nests.
        actions(i, m_lines[i].indent, 1);
        size_t body = m_p.code.size() - at - 1;
        if (body > UINT16_MAX) {
            fail(l, l.tokens[0].col, "thread's block is too long");
        }
        m_p.code[at].body = static_cast<uint16_t>(body);
    }

    const std::string& m_path;
    const std::vector<BlockLine>& m_lines;
    ProcessBuilder::Process& m_p;
    uint64_t m_threads = 0; // started by its thread blocks
    uint64_t m_next = duet_abi::kMapBase;
    std::set<std::string> m_mapped;
    uint64_t m_mapped_bytes = 0;
};

// The process's sys/programs line: the interpreter, its name and script, its handles.
std::string program_line(const ProcessBuilder::Process& p) {
    std::string line = fmt::format("user/script name={} args=sys/scripts/{}", p.name, p.name);
    for (const auto& g : p.grants) {
        line += fmt::format(" {}:{}", g.kind, g.object);
    }
    return line;
}

size_t script_bytes(const ProcessBuilder::Process& p) {
    return sizeof(ds::Header) + p.code.size() * sizeof(ds::Instruction) + p.text.size();
}

template <typename T>
void append(std::vector<uint8_t>& out, const T& value) {
    const auto* p = reinterpret_cast<const uint8_t*>(&value);
    out.insert(out.end(), p, p + sizeof value);
}

} // namespace

uint32_t ProcessBuilder::process_count() const {
    uint32_t n = 0;
    for (const auto& p : m_processes) {
        n += p.count;
    }
    return n;
}

void ProcessBuilder::add(const std::string& path, const std::vector<Token>& header,
                         const std::vector<BlockLine>& block, int line) {
    auto fail = [&](int col, const std::string& message) {
        throw SourceError(path, line, col, message);
    };
    if (header.size() < 2 || header[1].text.find('=') != std::string_view::npos) {
        fail(header.size() < 2 ? header[0].col : header[1].col,
             "process takes a name, then count=N serve=EP call=EP signal=N wait=N, and its "
             "actions on the indented lines below");
    }
    Process p;
    p.name = std::string(header[1].text);
    p.line = line;
    if (!is_process_name(p.name)) {
        fail(header[1].col,
             fmt::format("'{}' is not a process name (letters, digits, _ -; at most {} "
                         "characters)",
                         shown(p.name), kNameLength));
    }
    for (const auto& other : m_processes) {
        if (other.name == p.name) {
            fail(header[1].col,
                 fmt::format("process '{}' is defined twice (line {})", p.name, other.line));
        }
    }
    static const std::vector<std::string> kKeys = {"count", "serve", "call", "signal", "wait"};
    std::set<std::string_view> seen;
    for (size_t k = 2; k < header.size(); ++k) {
        const Token& t = header[k];
        size_t eq = t.text.find('=');
        if (eq == std::string_view::npos || eq == 0 || eq + 1 == t.text.size()) {
            fail(t.col, fmt::format("expected key=value, found '{}'", shown(t.text)));
        }
        std::string_view key = t.text.substr(0, eq);
        std::string_view value = t.text.substr(eq + 1);
        int value_col = t.col + static_cast<int>(eq) + 1;
        if (!seen.insert(key).second) {
            fail(t.col, fmt::format("{} is already given on this line", shown(key)));
        }
        if (key == "count") {
            auto v = parse_u64(value);
            if (!v || *v < 1 || *v > kMaxProcesses) {
                fail(value_col, fmt::format("count must be a number from 1 to {}, not '{}'",
                                            kMaxProcesses, shown(value)));
            }
            p.count = static_cast<uint32_t>(*v);
            continue;
        }
        if (std::find(kKeys.begin(), kKeys.end(), key) == kKeys.end()) {
            std::string message = fmt::format("'process' has no option '{}'", shown(key));
            if (auto guess = closest(key, kKeys)) {
                message += fmt::format("; did you mean '{}'?", *guess);
            } else {
                message += fmt::format(" (it has: {})", fmt::join(kKeys, ", "));
            }
            fail(t.col, message);
        }
        size_t pos = 0;
        for (;;) {
            size_t comma = value.find(',', pos);
            std::string_view object = value.substr(
                pos, comma == std::string_view::npos ? std::string_view::npos : comma - pos);
            int col = value_col + static_cast<int>(pos);
            if (!is_process_name(object)) {
                fail(col, fmt::format("'{}' is not an endpoint or notification name (letters, "
                                      "digits, _ -; at most {} characters)",
                                      shown(object), kNameLength));
            }
            const char* type = object_type(key);
            auto [it, fresh] = m_object_types.emplace(std::string(object), type);
            if (!fresh && it->second != type) {
                fail(col, fmt::format("'{}' is a{} {}, not a{} {}", shown(object),
                                      it->second == "endpoint" ? "n" : "", it->second,
                                      std::strcmp(type, "endpoint") == 0 ? "n" : "", type));
            }
            if (m_object_types.size() > kMaxObjects) {
                fail(col, fmt::format("at most {} endpoints and notifications in all (the "
                                      "kernel's init thread names no more)",
                                      kMaxObjects));
            }
            for (const Grant& g : p.grants) {
                if (g.kind == key && g.object == object) {
                    fail(col, fmt::format("{}={} is given twice", shown(key), shown(object)));
                }
            }
            p.grants.push_back({std::string(key), std::string(object)});
            if (p.grants.size() > kMaxHandles) {
                fail(col, fmt::format("a process holds at most {} handles", kMaxHandles));
            }
            if (comma == std::string_view::npos) {
                break;
            }
            pos = comma + 1;
        }
    }
    if (process_count() + p.count > kMaxProcesses) {
        fail(header[0].col,
             fmt::format("at most {} processes in a scenario (counts included)", kMaxProcesses));
    }
    if (block.empty()) {
        fail(header[0].col, fmt::format("process '{}' has no actions", p.name));
    }
    // The line the init thread reads: checked now, where the process is known.
    if (program_line(p).size() > kMaxProgramLine) {
        fail(header[0].col, fmt::format("process '{}' holds handles whose names do not fit in "
                                        "the kernel's {}-byte sys/programs line: shorter names",
                                        p.name, kMaxProgramLine));
    }
    Compiler(path, block, p).run();
    if (size_t bytes = script_bytes(p); bytes > duet_abi::kMaxArgumentBytes) {
        fail(header[0].col, fmt::format("process '{}' is too long: its script is {} bytes, more "
                                        "than the {} a process's argument block holds",
                                        p.name, bytes, duet_abi::kMaxArgumentBytes));
    }
    m_processes.push_back(std::move(p));
}

void ProcessBuilder::finish(const std::string& path, std::vector<std::string>& warnings) {
    for (auto& p : m_processes) {
        for (const Fixup& f : p.fixups) {
            auto other = std::find_if(m_processes.begin(), m_processes.end(),
                                      [&](const Process& q) { return q.name == f.process; });
            if (other == m_processes.end()) {
                throw SourceError(path, f.line, f.col,
                                  fmt::format("no process '{}'", shown(f.process)));
            }
            auto r = other->regions.find(f.region);
            if (r == other->regions.end()) {
                throw SourceError(
                    path, f.line, f.col,
                    fmt::format("process '{}' maps no region '{}'", f.process, shown(f.region)));
            }
            p.code[f.instruction].value = r->second.address;
        }
    }
    // An endpoint with callers and no server (or the other way round) ends every call with
    // PeerGone at once: allowed, since that is something to test, but probably a mistake.
    std::map<std::string, std::pair<int, int>> ends; // object -> (servers' line, callers' line)
    for (const auto& p : m_processes) {
        for (const Grant& g : p.grants) {
            auto& e = ends[g.object];
            (g.kind == "serve" || g.kind == "wait" ? e.first : e.second) = p.line;
        }
    }
    for (const auto& [object, e] : ends) {
        if (e.first == 0 || e.second == 0) {
            bool endpoint = m_object_types[object] == "endpoint";
            warnings.push_back(
                fmt::format("{}:{}: warning: {} '{}' has no {}: {}", printable(path),
                            e.first != 0 ? e.first : e.second, m_object_types[object], object,
                            e.first == 0 ? (endpoint ? "server" : "waiter")
                                         : (endpoint ? "caller" : "signaller"),
                            e.first == 0 ? (endpoint ? "every call to it ends with peer gone"
                                                     : "its signals are never taken")
                                         : (endpoint ? "its server's receive ends with peer gone"
                                                     : "a wait on it ends with peer gone")));
        }
    }
}

std::vector<std::pair<std::string, std::vector<uint8_t>>> ProcessBuilder::files() const {
    std::vector<std::pair<std::string, std::vector<uint8_t>>> out;
    out.emplace_back("user/script", script_program());
    std::string programs;
    for (const auto& p : m_processes) {
        std::vector<uint8_t> script;
        ds::Header h;
        h.count = static_cast<uint32_t>(p.code.size());
        h.text_offset = static_cast<uint32_t>(sizeof h + p.code.size() * sizeof(ds::Instruction));
        h.text_bytes = static_cast<uint32_t>(p.text.size());
        append(script, h);
        for (const auto& in : p.code) {
            append(script, in);
        }
        script.insert(script.end(), p.text.begin(), p.text.end());
        for (uint32_t i = 0; i < p.count; ++i) {
            programs += program_line(p) + "\n";
        }
        out.emplace_back("sys/scripts/" + p.name, std::move(script));
    }
    out.emplace_back("sys/programs", std::vector<uint8_t>(programs.begin(), programs.end()));
    return out;
}

std::vector<uint8_t> script_program() {
    return {duet_script_program, duet_script_program_end};
}

} // namespace duet
