// Swarms as data: the --results line of each seed, the shard a Slurm array task runs, and
// `duet swarm merge`, which joins the results of a sweep's shards into one summary.

#include "run.hpp"
#include "swarm.hpp"
#include "text.hpp"

#include <nlohmann/json.hpp>

#include <fmt/format.h>

#include <sys/stat.h>
#include <sys/wait.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <memory>
#include <unordered_map>

namespace duet {

namespace {

using Json = nlohmann::ordered_json;

// A whole number from the environment: digits only, no sign, no space.
std::optional<uint64_t> env_number(const char* value) {
    std::string_view s = value;
    if (s.empty() || s.size() > 19 || s.find_first_not_of("0123456789") != std::string_view::npos) {
        return std::nullopt;
    }
    return parse_u64(s);
}

std::string mebibytes(uint64_t bytes) {
    return fmt::format("{:.1f} MiB", static_cast<double>(bytes) / (1 << 20));
}

std::string seconds_of(uint64_t ns) {
    return fmt::format("{:.3f} s", static_cast<double>(ns) / 1e9);
}

} // namespace

EnvironmentShard slurm_array_shard(const char* id, const char* count, const char* min,
                                   const char* max) {
    EnvironmentShard e;
    if (id == nullptr) {
        return e; // not an array task
    }
    auto shown_env = [](const char* name, const char* v) {
        return fmt::format("{}={}", name, shown(v == nullptr ? "" : v));
    };
    e.origin = shown_env("SLURM_ARRAY_TASK_ID", id);
    if (count == nullptr) {
        e.error =
            fmt::format("{} is set but SLURM_ARRAY_TASK_COUNT is not: give --shard K/M", e.origin);
        return e;
    }
    e.origin += ", " + shown_env("SLURM_ARRAY_TASK_COUNT", count);
    if (min != nullptr) {
        e.origin += ", " + shown_env("SLURM_ARRAY_TASK_MIN", min);
    }
    auto i = env_number(id);
    auto m = env_number(count);
    auto lo = min == nullptr ? std::optional<uint64_t>(1) : env_number(min);
    if (!i || !m || !lo) {
        e.error = fmt::format("{}: the task's array variables must be whole numbers; or give "
                              "--shard K/M",
                              e.origin);
        return e;
    }
    if (max != nullptr) {
        // NOTE: an array such as --array=1,3,5 or 0-15:4 has COUNT tasks whose IDs are not
        // MIN..MIN+COUNT-1: ID - MIN + 1 would skip shards and run others twice.
        auto hi = env_number(max);
        if (!hi || *hi < *lo || *hi - *lo + 1 != *m) {
            e.error = fmt::format("{}, {}: the array's task IDs are not one contiguous range "
                                  "(MAX - MIN + 1 != COUNT): use --array=A-B, or give --shard "
                                  "K/M",
                                  e.origin, shown_env("SLURM_ARRAY_TASK_MAX", max));
            return e;
        }
    }
    if (*m < 1 || *m > UINT32_MAX || *i < *lo || *i - *lo >= *m) {
        e.error =
            fmt::format("{}: names no shard K/M with 1 <= K = ID - MIN + 1 <= M = COUNT{}; or give "
                        "--shard K/M",
                        e.origin, min == nullptr ? " (MIN unset: taken as 1)" : "");
        return e;
    }
    e.shard = std::pair{static_cast<uint32_t>(*i - *lo + 1), static_cast<uint32_t>(*m)};
    return e;
}

std::string result_line(const SeedResult& r) {
    Json j = Json::object();
    j["seed"] = r.seed;
    j["scenario"] = r.scenario;
    j["randomized"] = r.randomized;
    j["verdict"] = r.verdict;
    j["digest"] = r.digest ? Json(*r.digest) : Json(nullptr);
    j["exit_status"] = r.exit_status ? Json(*r.exit_status) : Json(nullptr);
    if (r.signal) {
        j["signal"] = *r.signal;
    }
    j["host_cpu_ns"] = r.host_cpu_ns;
    j["peak_rss_bytes"] = r.peak_rss_bytes;
    if (!r.failure.empty()) {
        j["failure"] = r.failure;
    }
    if (!r.expectation.empty()) {
        j["expectation"] = r.expectation;
    }
    j["reproduce"] = r.reproduce;
    // NOTE: replace, not throw, on bytes that are not UTF-8 (a scenario's file name may hold
    // any): the line must be written whatever the run printed.
    return j.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n";
}

void judge(SeedResult& r, const std::string& report, int wait_status) {
    if (WIFEXITED(wait_status)) {
        r.exit_status = WEXITSTATUS(wait_status);
    } else if (WIFSIGNALED(wait_status)) {
        r.signal = WTERMSIG(wait_status);
    }
    Json j = Json::parse(report, nullptr, false);
    if (j.is_object() && j.contains("verdict") && j["verdict"].is_string()) {
        r.verdict = j["verdict"].get<std::string>();
        if (j.contains("digest") && j["digest"].is_string()) {
            r.digest = j["digest"].get<std::string>();
        }
        const Json* failed = nullptr;
        if (j.contains("expectations") && j["expectations"].is_object() &&
            j["expectations"].contains("failed")) {
            failed = &j["expectations"]["failed"];
        }
        if (r.verdict == "success" && failed != nullptr && failed->is_number_unsigned() &&
            failed->get<uint64_t>() != 0) {
            r.verdict = "expectation failed";
        }
    } else {
        r.verdict = r.signal ? "crash" : "no report";
    }
    // The exit status has the last word on passing: a run that exited non-zero failed,
    // whatever its report says, and one that exited 0 with no report did not pass.
    if (r.verdict == "success" && r.exit_status != kExitOk) {
        r.verdict = r.exit_status ? fmt::format("exit status {}", *r.exit_status) : "crash";
    }
}

namespace {

struct Loaded {
    SeedResult result;
    size_t file;
    uint64_t line;
};

// Reads a results line's fields; "" if they are well formed, else what is wrong.
std::string read_line(const std::string& text, SeedResult& r) {
    Json j;
    try {
        j = Json::parse(text);
    } catch (const Json::parse_error& e) {
        // "[json.exception.parse_error.101] parse error at line 1, column 5: ...": the
        // parser's words on where it broke, without its tag.
        std::string_view what = e.what();
        if (size_t tag = what.find("] "); what.starts_with("[json.") && tag != what.npos) {
            what.remove_prefix(tag + 2);
        }
        return fmt::format("not a JSON line: {}", what);
    }
    if (!j.is_object()) {
        return "not a JSON object";
    }
    auto field = [&](const char* name) -> const Json* {
        auto it = j.find(name);
        return it == j.end() ? nullptr : &*it;
    };
    auto whole = [&](const char* name, uint64_t& to) -> std::string {
        const Json* v = field(name);
        if (v == nullptr || !v->is_number_unsigned()) {
            return fmt::format("\"{}\" must be a whole number", name);
        }
        to = v->get<uint64_t>();
        return {};
    };
    auto text_field = [&](const char* name, std::string& to, bool required) -> std::string {
        const Json* v = field(name);
        if (v == nullptr && !required) {
            return {};
        }
        if (v == nullptr || !v->is_string()) {
            return fmt::format("\"{}\" must be a string", name);
        }
        to = v->get<std::string>();
        return {};
    };
    for (auto [name, to] : {std::pair{"seed", &r.seed}, std::pair{"host_cpu_ns", &r.host_cpu_ns},
                            std::pair{"peak_rss_bytes", &r.peak_rss_bytes}}) {
        if (auto e = whole(name, *to); !e.empty()) {
            return e;
        }
    }
    for (auto [name, to, required] :
         {std::tuple{"verdict", &r.verdict, true}, std::tuple{"reproduce", &r.reproduce, true},
          std::tuple{"scenario", &r.scenario, true}, std::tuple{"failure", &r.failure, false},
          std::tuple{"expectation", &r.expectation, false}}) {
        if (auto e = text_field(name, *to, required); !e.empty()) {
            return e;
        }
    }
    if (r.verdict.empty()) {
        return "\"verdict\" is empty";
    }
    const Json* digest = field("digest");
    if (digest == nullptr || !(digest->is_string() || digest->is_null())) {
        return "\"digest\" must be a string or null";
    }
    if (digest->is_string()) {
        r.digest = digest->get<std::string>();
    }
    const Json* randomized = field("randomized");
    if (randomized == nullptr || !randomized->is_array() ||
        !std::all_of(randomized->begin(), randomized->end(),
                     [](const Json& a) { return a.is_string(); })) {
        return "\"randomized\" must be an array of strings";
    }
    r.randomized = randomized->get<std::vector<std::string>>();
    const Json* status = field("exit_status");
    if (status == nullptr || !(status->is_number_integer() || status->is_null())) {
        return "\"exit_status\" must be a number or null";
    }
    if (status->is_number_integer()) {
        r.exit_status = status->get<int>();
    }
    return {};
}

struct FileCloser {
    void operator()(std::FILE* f) const { std::fclose(f); }
};

// Reads `path` line by line into `seeds`; false (with the message on `err`) on bad input.
bool load_results(const std::string& path, size_t file, std::vector<Loaded>& seeds,
                  std::FILE* err) {
    std::string name = shown(path, kShownPathLength);
    struct stat st {};
    if (path.find('\0') != std::string::npos) {
        fmt::print(err, "{}: a file name cannot hold a NUL\n", name);
        return false;
    }
    if (::stat(path.c_str(), &st) != 0) {
        fmt::print(err, "{}: cannot read the results file: {}\n", name, std::strerror(errno));
        return false;
    }
    if (S_ISDIR(st.st_mode)) {
        fmt::print(err, "{}: is a directory, not a results file\n", name);
        return false;
    }
    const std::string too_large =
        fmt::format("{}: is larger than {} MiB, the most a results file may be\n", name,
                    kMaxResultsFileBytes >> 20);
    if (S_ISREG(st.st_mode) && static_cast<uint64_t>(st.st_size) > kMaxResultsFileBytes) {
        fmt::print(err, "{}", too_large);
        return false;
    }
    std::unique_ptr<std::FILE, FileCloser> f(std::fopen(path.c_str(), "rb"));
    if (!f) {
        fmt::print(err, "{}: cannot read the results file: {}\n", name, std::strerror(errno));
        return false;
    }
    // NOTE: read in blocks and counted, not by size alone: a pipe or /dev/zero has none.
    std::string line;
    uint64_t number = 0;
    uint64_t total = 0;
    char buf[1 << 16];
    bool eof = false;
    while (!eof) {
        size_t n = std::fread(buf, 1, sizeof buf, f.get());
        if (n == 0) {
            if (std::ferror(f.get()) != 0) {
                fmt::print(err, "{}: cannot read the results file: {}\n", name,
                           std::strerror(errno));
                return false;
            }
            eof = true;
        }
        total += n;
        if (total > kMaxResultsFileBytes) {
            fmt::print(err, "{}", too_large);
            return false;
        }
        std::string_view chunk(buf, n);
        while (!chunk.empty() || (eof && !line.empty())) {
            size_t nl = chunk.find('\n');
            line.append(chunk.substr(0, nl));
            if (line.size() > kMaxResultsLineBytes) {
                fmt::print(err,
                           "{}:{}: a line longer than {} KiB, the most a results line may "
                           "be\n",
                           name, number + 1, kMaxResultsLineBytes >> 10);
                return false;
            }
            if (nl == std::string_view::npos && !eof) {
                break; // the rest of the line is in the next block
            }
            chunk = nl == std::string_view::npos ? std::string_view() : chunk.substr(nl + 1);
            ++number;
            if (line.find_first_not_of(" \t\r") == std::string::npos) {
                line.clear();
                continue; // blank lines carry nothing
            }
            Loaded l{{}, file, number};
            std::string what = read_line(line, l.result);
            if (!what.empty()) {
                fmt::print(err, "{}:{}: {}\n", name, number, printable(what));
                return false;
            }
            seeds.push_back(std::move(l));
            line.clear();
        }
    }
    return true;
}

} // namespace

int merge_results(const std::vector<std::string>& files,
                  std::optional<std::pair<uint64_t, uint64_t>> expected, std::FILE* out,
                  std::FILE* err) {
    if (files.empty()) {
        fmt::print(err, "duet: swarm merge: which results files? (duet swarm merge FILE...)\n");
        return kExitUsage;
    }
    std::vector<Loaded> seeds;
    for (size_t i = 0; i < files.size(); ++i) {
        if (!load_results(files[i], i, seeds, err)) {
            return kExitUsage;
        }
    }
    // Each seed once: sorted by seed, a seed twice sits next to itself.
    std::stable_sort(seeds.begin(), seeds.end(), [](const Loaded& a, const Loaded& b) {
        return a.result.seed < b.result.seed;
    });
    for (size_t i = 1; i < seeds.size(); ++i) {
        if (seeds[i].result.seed == seeds[i - 1].result.seed) {
            const Loaded& a = seeds[i - 1];
            const Loaded& b = seeds[i];
            fmt::print(err, "{}:{}: seed {} is also at {}:{}: a seed may be in one place only\n",
                       shown(files[b.file], kShownPathLength), b.line, b.result.seed,
                       shown(files[a.file], kShownPathLength), a.line);
            return kExitUsage;
        }
    }

    size_t failed = 0;
    std::map<std::string, size_t> verdicts;
    for (const auto& l : seeds) {
        const SeedResult& r = l.result;
        ++verdicts[r.verdict];
        if (r.verdict == "success") {
            continue;
        }
        ++failed;
        std::string what = r.failure.empty() ? r.verdict : r.failure;
        fmt::print(out, "FAIL  seed {}: {}\n", r.seed, printable(what));
        if (!r.expectation.empty()) {
            fmt::print(out, "      {}\n", printable(r.expectation));
        }
        fmt::print(out, "      reproduce: {}\n", printable(r.reproduce));
    }
    uint64_t missing = 0;
    std::vector<uint64_t> first_missing;
    if (expected) {
        // Seeds of the range that no file holds: a shard that never ran, or was killed.
        // Counted, and the first few named, in time bounded by the seeds, not the range.
        const uint64_t a = expected->first;
        const uint64_t b = expected->second;
        uint64_t inside = static_cast<uint64_t>(
            std::count_if(seeds.begin(), seeds.end(), [a, b](const Loaded& l) {
                return l.result.seed >= a && l.result.seed <= b;
            }));
        missing = b - a - (inside - 1); // b - a + 1 - inside, without overflow at 0..2^64-1
        auto it = std::lower_bound(seeds.begin(), seeds.end(), a,
                                   [](const Loaded& l, uint64_t s) { return l.result.seed < s; });
        for (uint64_t s = a; first_missing.size() < std::min<uint64_t>(missing, 10); ++s) {
            if (it != seeds.end() && it->result.seed == s) {
                ++it;
            } else {
                first_missing.push_back(s);
            }
        }
    }
    fmt::print(out, "merge: {} seeds from {} file{}", seeds.size(), files.size(),
               files.size() == 1 ? "" : "s");
    if (!seeds.empty()) {
        fmt::print(out, ", seeds {} to {}", seeds.front().result.seed, seeds.back().result.seed);
    }
    fmt::print(out, "\n");
    if (expected) {
        if (missing == 0) {
            fmt::print(out, "missing: none of {}..{}\n", expected->first, expected->second);
        } else {
            std::string list;
            for (uint64_t s : first_missing) {
                list += (list.empty() ? "" : ", ") + std::to_string(s);
            }
            fmt::print(out, "missing: {} seeds of {}..{}: {}{}\n", missing, expected->first,
                       expected->second, list, missing > first_missing.size() ? ", ..." : "");
        }
    }
    // By count, most first; ties by name.
    std::vector<std::pair<std::string, size_t>> by_count(verdicts.begin(), verdicts.end());
    std::stable_sort(by_count.begin(), by_count.end(),
                     [](const auto& a, const auto& b) { return a.second > b.second; });
    std::string counts;
    for (const auto& [verdict, n] : by_count) {
        counts += fmt::format("{}{} {}", counts.empty() ? "" : ", ", n, printable(verdict));
    }
    fmt::print(out, "verdicts: {}\n", counts.empty() ? "none" : counts);
    std::vector<const SeedResult*> slowest;
    for (const auto& l : seeds) {
        slowest.push_back(&l.result);
    }
    size_t top = std::min<size_t>(5, slowest.size());
    std::partial_sort(slowest.begin(), slowest.begin() + static_cast<ptrdiff_t>(top), slowest.end(),
                      [](const SeedResult* a, const SeedResult* b) {
                          return a->host_cpu_ns != b->host_cpu_ns ? a->host_cpu_ns > b->host_cpu_ns
                                                                  : a->seed < b->seed;
                      });
    if (top > 0) {
        fmt::print(out, "slowest:\n");
    }
    for (size_t i = 0; i < top; ++i) {
        fmt::print(out, "  seed {}: {} of host CPU time, peak {} ({})\n", slowest[i]->seed,
                   seconds_of(slowest[i]->host_cpu_ns), mebibytes(slowest[i]->peak_rss_bytes),
                   printable(slowest[i]->verdict));
    }
    fmt::print(out, "merge: {} passed, {} failed", seeds.size() - failed, failed);
    if (missing != 0) {
        fmt::print(out, ", {} missing", missing);
    }
    fmt::print(out, "\n");
    std::fflush(out);
    return failed == 0 && missing == 0 ? kExitOk : kExitFailed;
}

} // namespace duet
