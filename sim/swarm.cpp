#include "swarm.hpp"
#include "run.hpp"
#include "scenario.hpp"
#include "source_error.hpp"
#include "text.hpp"

#include <hal_sim/rng.hpp>

#include <fmt/format.h>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <map>

namespace duet {

namespace {

bool has_option(const std::vector<std::string>& args, std::string_view name) {
    return std::find(args.begin(), args.end(), name) != args.end();
}

bool has_fault(const std::vector<std::string>& args, std::string_view fault) {
    for (size_t i = 0; i + 1 < args.size(); ++i) {
        if (args[i] == "--fault" && args[i + 1].substr(0, args[i + 1].find('=')) == fault) {
            return true;
        }
    }
    return false;
}

struct Failure {
    uint64_t seed;
    std::string what;        // the first thing that went wrong
    std::string expectation; // the first failed expectation, if it is not `what`
    std::string command;     // how to reproduce it
};

// What a failed child wrote on stderr: its first line, and its first failed expectation.
void summarize(const std::string& text, Failure& f) {
    size_t pos = 0;
    while (pos < text.size()) {
        size_t nl = text.find('\n', pos);
        std::string line = text.substr(pos, nl == std::string::npos ? nl : nl - pos);
        pos = nl == std::string::npos ? text.size() : nl + 1;
        if (line.empty()) {
            continue;
        }
        bool expectation = line.find(": expectation failed: ") != std::string::npos;
        if (f.what.empty()) {
            f.what = line;
            if (expectation) {
                return;
            }
        } else if (expectation) {
            f.expectation = line;
            return;
        }
    }
}

std::string read_all(int fd, size_t limit = SIZE_MAX) {
    std::string text;
    char buf[4096];
    off_t at = 0;
    while (text.size() <= limit) {
        ssize_t n = pread(fd, buf, sizeof buf, at);
        if (n <= 0) {
            break;
        }
        text.append(buf, static_cast<size_t>(n));
        at += n;
    }
    return text;
}

struct Child {
    uint64_t seed;
    int output;   // its stderr, a memfd
    int report;   // its JSON report (duet run --json /proc/self/fd/3), a memfd
    size_t index; // in the sweep's seeds
    std::vector<std::string> args;
};

// The child's JSON report is read up to this size; a larger one is no report.
constexpr size_t kMaxReportBytes = size_t{64} << 20;

// The descriptor the child writes its JSON report to.
constexpr int kReportFd = 3;

// Writes all of `text` to `fd`, in one write() where it can: a killed swarm leaves whole lines.
bool write_all(int fd, const std::string& text) {
    size_t done = 0;
    while (done < text.size()) {
        ssize_t n = ::write(fd, text.data() + done, text.size() - done);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return false;
        }
        done += static_cast<size_t>(n);
    }
    return true;
}

} // namespace

std::optional<std::pair<uint64_t, uint64_t>> parse_seed_range(std::string_view text) {
    size_t dots = text.find("..");
    if (dots == std::string_view::npos) {
        auto v = parse_u64(text);
        if (!v) {
            return std::nullopt;
        }
        return std::pair{*v, *v};
    }
    auto a = parse_u64(text.substr(0, dots));
    auto b = parse_u64(text.substr(dots + 2));
    if (!a || !b || *a > *b) {
        return std::nullopt;
    }
    return std::pair{*a, *b};
}

std::optional<std::pair<uint32_t, uint32_t>> parse_shard(std::string_view text) {
    size_t slash = text.find('/');
    if (slash == std::string_view::npos) {
        return std::nullopt;
    }
    auto k = parse_u64(text.substr(0, slash));
    auto m = parse_u64(text.substr(slash + 1));
    if (!k || !m || *k < 1 || *k > *m || *m > UINT32_MAX) {
        return std::nullopt;
    }
    return std::pair{static_cast<uint32_t>(*k), static_cast<uint32_t>(*m)};
}

std::vector<std::string> randomized_args(uint64_t seed, const Variation& vary,
                                         const std::vector<std::string>& fixed) {
    // NOTE: a generator of its own, so that the drawn settings do not depend on the run's
    // choices, and the run's choices (from --seed) do not depend on the drawing.
    hal_sim::Rng rng(seed ^ 0x7377'6172'6d00'0000ull);
    std::vector<std::string> args;
    if (vary.cpus_min != 0) {
        uint32_t cpus =
            vary.cpus_min + static_cast<uint32_t>(rng.below(vary.cpus_max - vary.cpus_min + 1));
        if (!has_option(fixed, "--cpus")) {
            args.insert(args.end(), {"--cpus", std::to_string(cpus)});
        }
    }
    if (!vary.ticks.empty()) {
        uint64_t tick = vary.ticks[rng.below(vary.ticks.size())];
        if (!has_option(fixed, "--tick")) {
            args.insert(args.end(), {"--tick", format_duration(tick)});
        }
    }
    if (!vary.slices.empty()) {
        uint64_t slice = vary.slices[rng.below(vary.slices.size())];
        if (!has_option(fixed, "--slice")) {
            args.insert(args.end(), {"--slice", format_duration(slice)});
        }
    }
    static const char* const kRates[] = {"0.001", "0.01", "0.05"};
    for (const auto& fault : vary.faults) {
        // Half the seeds leave a fault off.
        bool on = rng.below(2) == 1;
        const char* rate = kRates[rng.below(3)];
        if (on && !has_fault(fixed, fault)) {
            args.insert(args.end(), {"--fault", fmt::format("{}={}", fault, rate)});
        }
    }
    return args;
}

std::string shell_command(const std::vector<std::string>& args) {
    std::string s;
    for (const auto& a : args) {
        if (!s.empty()) {
            s += ' ';
        }
        bool plain = !a.empty() && std::all_of(a.begin(), a.end(), [](char c) {
            return std::isalnum(static_cast<unsigned char>(c)) || std::strchr("_./=:%,+-@", c);
        });
        if (plain) {
            s += a;
        } else {
            s += '\'';
            for (char c : a) {
                s += c == '\'' ? std::string("'\\''") : std::string(1, c);
            }
            s += '\'';
        }
    }
    return s;
}

int run_swarm(const SwarmOptions& options, std::FILE* out, std::FILE* err) {
    Variation vary;
    try {
        vary = load_scenario(options.scenario).vary;
    } catch (const SourceError& e) {
        fmt::print(err, "{}\n", e.what());
        return kExitUsage;
    }
    std::vector<uint64_t> seeds;
    for (uint64_t s = options.first_seed + (options.shard - 1); s <= options.last_seed;
         s += options.shard_count) {
        seeds.push_back(s);
        if (options.last_seed - s < options.shard_count) {
            break; // the next step would pass the end (or wrap)
        }
    }
    unsigned jobs = options.jobs;
    if (jobs == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        jobs = n > 0 ? static_cast<unsigned>(n) : 1;
    }
    fmt::print(out, "swarm: {}, seeds {}..{}", options.scenario, options.first_seed,
               options.last_seed);
    if (options.shard_count > 1 || !options.shard_origin.empty()) {
        fmt::print(out, ", shard {}/{}", options.shard, options.shard_count);
    }
    if (!options.shard_origin.empty()) {
        fmt::print(out, " (from {})", options.shard_origin);
    }
    fmt::print(out, " ({} runs, {} at a time{})\n", seeds.size(), jobs,
               options.randomize ? ", randomized" : "");
    if (options.randomize) {
        fmt::print(out, "swarm: varies {} ({})\n", vary.describe(),
                   vary.line != 0
                       ? fmt::format("{}:{}", options.scenario, vary.line)
                       : std::string("what the scenario leaves open: it has no vary line"));
    }

    // Every run's command line, and with --randomize what it drew, before anything runs.
    std::vector<std::vector<std::string>> extra(seeds.size());
    for (size_t i = 0; i < seeds.size(); ++i) {
        if (options.randomize) {
            extra[i] = randomized_args(seeds[i], vary, options.run_args);
            fmt::print(out, "seed {}: {}\n", seeds[i], shell_command(extra[i]));
        }
    }
    std::fflush(out);

    // --results: opened (and emptied) before anything runs, so that a bad path costs nothing.
    int results = -1;
    if (!options.results_path.empty()) {
        results =
            ::open(options.results_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
        if (results < 0 || options.results_path.find('\0') != std::string::npos) {
            fmt::print(err, "duet: cannot write the results file '{}': {}\n",
                       shown(options.results_path, kShownPathLength),
                       results < 0 ? std::strerror(errno) : "a file name cannot hold a NUL");
            return kExitUsage;
        }
    }
    // Closes a descriptor (if any) when run_swarm returns.
    struct FdCloser {
        int fd;
        ~FdCloser() {
            if (fd >= 0) {
                ::close(fd);
            }
        }
    };
    FdCloser results_closer{results};

    // Each child's standard output (it runs --quiet; whatever it prints anyway goes nowhere).
    int devnull = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (devnull < 0) {
        fmt::print(err, "duet: cannot open /dev/null: {}\n", std::strerror(errno));
        return kExitUsage;
    }
    FdCloser devnull_closer{devnull};

    // Whatever the swarm has buffered is written before a child inherits a copy of it.
    std::fflush(nullptr);
    bool tty = isatty(fileno(err)) != 0;
    size_t done = 0;
    size_t next = 0;
    unsigned last_tenth = 0;
    std::vector<Failure> failures;
    std::string usage_error;
    std::map<pid_t, Child> running;
    auto progress = [&] {
        if (tty) {
            fmt::print(err, "\rswarm: {}/{} done, {} failed", done, seeds.size(), failures.size());
        } else if (unsigned tenth = static_cast<unsigned>(done * 10 / seeds.size());
                   tenth > last_tenth) {
            last_tenth = tenth;
            fmt::print(err, "swarm: {}/{} done, {} failed\n", done, seeds.size(), failures.size());
        }
        std::fflush(err);
    };

    while (next < seeds.size() || !running.empty()) {
        while (running.size() < jobs && next < seeds.size() && usage_error.empty()) {
            Child c{seeds[next], -1, -1, next, {}};
            c.args = {"run", options.scenario, "--seed", std::to_string(c.seed)};
            c.args.insert(c.args.end(), options.run_args.begin(), options.run_args.end());
            c.args.insert(c.args.end(), extra[next].begin(), extra[next].end());
            ++next;
            c.output = memfd_create("duet-swarm", MFD_CLOEXEC);
            c.report = c.output < 0 ? -1 : memfd_create("duet-swarm-report", MFD_CLOEXEC);
            if (c.report < 0) {
                fmt::print(err, "\nswarm: memfd_create: {}\n", std::strerror(errno));
                return kExitUsage;
            }
            std::vector<std::string> argv = {options.program};
            argv.insert(argv.end(), c.args.begin(), c.args.end());
            // NOTE: the verdict and digest come from the report, not from what the run
            // prints: /proc/self/fd/3 opens the memfd the child has as descriptor 3.
            argv.insert(argv.end(),
                        {"--quiet", "--json", fmt::format("/proc/self/fd/{}", kReportFd)});
            std::vector<char*> raw;
            for (auto& a : argv) {
                raw.push_back(a.data());
            }
            raw.push_back(nullptr);
            // NOTE: forked, not spawned: the child has the program loaded already, which saves
            // it more than the run itself takes (docs/swarm.md, "How a seed runs"). The swarm
            // has no other thread, so the child may go on as a whole program.
            pid_t pid = fork();
            if (pid == 0) {
                if (dup2(devnull, 1) < 0 || dup2(c.output, 2) < 0 ||
                    dup2(c.report, kReportFd) < 0) {
                    _exit(kExitUsage);
                }
                int status = options.run_child(static_cast<int>(raw.size()) - 1, raw.data());
                std::fflush(nullptr);
                _exit(status);
            }
            if (pid < 0) {
                fmt::print(err, "\nswarm: cannot start a run: {}\n", std::strerror(errno));
                close(c.output);
                close(c.report);
                usage_error = "cannot start the runs";
                break;
            }
            running.emplace(pid, std::move(c));
        }
        if (running.empty()) {
            break;
        }
        int status = 0;
        rusage usage{};
        pid_t pid = wait4(-1, &status, 0, &usage);
        if (pid < 0) {
            if (errno == EINTR) {
                continue;
            }
            fmt::print(err, "\nswarm: wait4: {}\n", std::strerror(errno));
            return kExitUsage;
        }
        auto it = running.find(pid);
        if (it == running.end()) {
            continue;
        }
        Child c = std::move(it->second);
        running.erase(it);
        std::string text = read_all(c.output);
        close(c.output);
        std::string report = read_all(c.report, kMaxReportBytes);
        close(c.report);
        ++done;
        if (WIFEXITED(status) && WEXITSTATUS(status) == kExitUsage) {
            usage_error = text.substr(0, text.find('\n'));
            progress();
            continue;
        }
        std::vector<std::string> command = {options.program};
        command.insert(command.end(), c.args.begin(), c.args.end());
        SeedResult r;
        r.seed = c.seed;
        r.scenario = options.scenario;
        r.randomized = extra[c.index];
        r.host_cpu_ns =
            static_cast<uint64_t>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1'000'000'000 +
            static_cast<uint64_t>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) * 1'000;
        r.peak_rss_bytes = static_cast<uint64_t>(usage.ru_maxrss) * 1024;
        r.reproduce = shell_command(command);
        judge(r, report.size() > kMaxReportBytes ? std::string() : report, status);
        // NOTE: judge() makes "success" mean exit status 0 and a report that says so.
        if (r.verdict != "success") {
            Failure f{c.seed, {}, {}, r.reproduce};
            summarize(text, f);
            if (WIFSIGNALED(status)) {
                f.what = fmt::format("the run crashed: signal {} ({})", WTERMSIG(status),
                                     strsignal(WTERMSIG(status)));
            } else if (f.what.empty() && WEXITSTATUS(status) == kExitOk) {
                f.what = "the run exited with status 0 but left no report";
            } else if (f.what.empty()) {
                f.what = fmt::format("the run exited with status {}", WEXITSTATUS(status));
            }
            // Bounded: a results line stays short whatever the run printed.
            r.failure = shown(f.what, 4000);
            r.expectation = shown(f.expectation, 4000);
            failures.push_back(std::move(f));
        }
        if (results >= 0 && !write_all(results, result_line(r))) {
            fmt::print(err, "\nswarm: cannot write the results file '{}': {}\n",
                       shown(options.results_path, kShownPathLength), std::strerror(errno));
            usage_error = "cannot write the results";
        }
        progress();
    }
    if (tty) {
        fmt::print(err, "\n");
    }
    if (!usage_error.empty()) {
        fmt::print(err, "swarm: stopped: {}\n", usage_error);
        return kExitUsage;
    }
    std::sort(failures.begin(), failures.end(),
              [](const Failure& a, const Failure& b) { return a.seed < b.seed; });
    for (const auto& f : failures) {
        fmt::print(out, "FAIL  seed {}: {}\n", f.seed, f.what);
        if (!f.expectation.empty()) {
            fmt::print(out, "      {}\n", f.expectation);
        }
        fmt::print(out, "      reproduce: {}\n", f.command);
    }
    fmt::print(out, "swarm: {} passed, {} failed\n", seeds.size() - failures.size(),
               failures.size());
    std::fflush(out);
    return failures.empty() ? kExitOk : kExitFailed;
}

} // namespace duet
