#include "run.hpp"
#include "scenario.hpp"
#include "source_error.hpp"
#include "text.hpp"
#include "trace.hpp"

#include <core/mm/heap.hpp>
#include <core/mm/kernel_space.hpp>
#include <core/mm/physical_memory.hpp>
#include <core/sched/scheduler.hpp>
#include <core/sched/trace.hpp>
#include <core/sync/waits.hpp>
#include <core/user/ipc.hpp>
#include <core/user/process.hpp>
#include <core/user/programs.hpp>
#include <core/workload/workload.hpp>

#include <hal_sim/error.hpp>
#include <hal_sim/machine.hpp>
#include <hal_sim/physical_memory.hpp>
#include <hal_sim/ustar_writer.hpp>

#include <fmt/format.h>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>

namespace duet {

namespace {

// FNV-1a, 64 bits: a digest of everything a run printed, to compare runs at a glance.
class Digest {
public:
    void add(std::string_view s) {
        for (unsigned char c : s) {
            m_h = (m_h ^ c) * 0x100000001b3ull;
        }
        m_h = (m_h ^ 0xff) * 0x100000001b3ull; // separator
    }
    uint64_t value() const { return m_h; }

private:
    uint64_t m_h = 0xcbf29ce484222325ull;
};

std::string seconds(uint64_t ns) {
    return fmt::format("{}.{:09}", ns / 1'000'000'000, ns % 1'000'000'000);
}

// Processes and IPC (docs/scenarios.md, "Processes"), in a run that started any: the frames
// they left only once the init thread has reaped every one.
void collect_user(const core::sched::Stats& sched, Report& report) {
    core::user::Stats us = core::user::stats();
    core::user::ProgramsSummary summary = core::user::programs_summary();
    if (us.created == 0 && !summary.ran) {
        return;
    }
    report.set("user.processes.started", us.started);
    report.set("user.processes.exited", us.exited);
    report.set("user.processes.failed", us.failed);
    report.set("user.processes.killed", us.killed);
    report.set("user.syscalls", us.syscalls);
    report.set("user.bad_addresses", us.bad_addresses);
    if (summary.ran) {
        report.set("user.leaked_frames", summary.frames_after > summary.frames_before
                                             ? summary.frames_after - summary.frames_before
                                             : uint64_t{0});
    }
    core::user::ipc::Stats is = core::user::ipc::stats();
    report.set("ipc.calls", is.calls);
    report.set("ipc.direct_switches", sched.handoffs);
    report.set("ipc.peer_gone", is.peer_gone);
    report.set("ipc.round_trip_ns.p50", is.round_trip_p50_ns);
    report.set("ipc.round_trip_ns.p99", is.round_trip_p99_ns);
    report.set("ipc.round_trip_ns.max", is.round_trip_max_ns);
    report.set("ipc.objects_left", is.endpoints_live + is.notifications_live);
}

// What the kernel itself counted: read from its data once the run is over (no CPU runs then).
void collect_kernel(hal_sim::Machine& m, uint64_t end, bool clean,
                    std::vector<Report::ThreadRow> exited, Report& report) {
    core::sched::Stats s = core::sched::stats(end);
    report.set("sched.context_switches", s.context_switches);
    report.set("sched.preemptions", s.preemptions);
    report.set("sched.migrations", s.migrations);
    report.set("sched.wakeups", s.wakeups);
    report.set("sched.steals", s.steals);
    report.set("sched.run_delay_ns.p50", s.run_delay_p50);
    report.set("sched.run_delay_ns.p99", s.run_delay_p99);
    report.set("sched.wakeup_latency_ns.p50", s.wakeup_latency_p50);
    report.set("sched.wakeup_latency_ns.p99", s.wakeup_latency_p99);
    report.set("sched.wakeup_latency_ns.max", s.wakeup_latency_max);
    double sum = static_cast<double>(s.fair_share_sum);
    double sum_sq = static_cast<double>(s.fair_share_sum_sq);
    report.set("sched.fairness", s.fair_threads == 0 || sum_sq == 0
                                     ? 1.0
                                     : sum * sum / (static_cast<double>(s.fair_threads) * sum_sq));
    report.set("sched.imbalance", uint64_t{s.max_runnable - s.min_runnable});
    collect_user(s, report);

    // Every thread that ran: the exited ones as they left (`exited`), the others as they are
    // now; the first Report::kThreadListMax spawned, by number.
    std::vector<Report::ThreadRow> rows = std::move(exited);
    std::vector<bool> exited_ids(Report::kThreadListMax + 1);
    for (const auto& row : rows) {
        exited_ids[row.id] = true;
    }
    core::sched::for_each_thread([&](const core::sched::Thread& t) {
        static constexpr const char* kStates[] = {"free", "runnable", "running", "blocked",
                                                  "exited"};
        uint32_t id = core::sched::trace::pid(t);
        if (t.idle || t.state == core::sched::ThreadState::Exited || id == 0 ||
            id > Report::kThreadListMax || exited_ids[id]) {
            return;
        }
        uint64_t run = t.run_ns;
        if (t.state == core::sched::ThreadState::Running && end > t.last_in_ns) {
            run += end - t.last_in_ns;
        }
        rows.push_back({id, t.name, kStates[static_cast<int>(t.state)], t.cpu, t.link.priority, run,
                        t.run_delay_ns, t.wakeups, t.preemptions, t.migrations});
    });
    // By id: the ids sorted, each with its row's place, then the rows moved once each.
    std::vector<std::pair<uint32_t, uint32_t>> order(rows.size());
    for (size_t i = 0; i < rows.size(); ++i) {
        order[i] = {rows[i].id, static_cast<uint32_t>(i)};
    }
    std::sort(order.begin(), order.end());
    report.threads.reserve(rows.size());
    for (const auto& [id, i] : order) {
        report.threads.push_back(std::move(rows[i]));
    }
    uint64_t listed = report.threads.size();
    report.set("threads.unlisted", s.threads_created > listed ? s.threads_created - listed : 0);

    const core::workload::Results& w = core::workload::last_results();
    report.set("threads.started", w.threads_started);
    report.set("threads.exited", w.threads_exited);
    report.set("threads.spawn_failures", w.spawn_failures);
    report.set("workload.alloc_failures", w.alloc_failures);
    report.set("workload.frames_allocated", w.frames_allocated);
    report.set("workload.lock_wait_ns.max", w.lock_wait_max_ns);

    auto& frames = core::mm::frames();
    // NOTE: what the kernel read under the allocators' locks when it stopped the machine; else
    // (a run that reached its end time) what they hold now, read under their locks if no CPU
    // holds one. Under a schedule that stops at synchronisation points, a CPU may have stopped
    // halfway through an update, holding one: then the counters are not read at all, and the
    // deeper accounting check, which reads without the locks, gives way to the kernel's sums.
    const core::mm::FinalStats& final = core::mm::final_stats();
    bool settled = frames.ready() && frames.quiescent() && core::mm::heap().quiescent();
    if (settled || !final.taken) {
        report.set("memory.accounting_ok", uint64_t{frames.accounting_holds() ? 1u : 0u});
    } else {
        const core::mm::FrameStats& f = final.frames;
        report.set("memory.accounting_ok",
                   uint64_t{f.free + f.used + f.reserved == f.total ? 1u : 0u});
    }
    if (!clean || (!final.taken && !settled)) {
        return;
    }
    core::mm::FrameStats st;
    core::mm::HeapStats hs;
    if (final.taken) {
        st = final.frames;
        hs = final.heap;
    } else {
        hal_sim::Machine::CpuScope scope(m, 0);
        st = frames.stats();
        hs = core::mm::heap().stats();
    }
    report.set("memory.total_frames", st.total);
    report.set("memory.free_frames", st.free);
    report.set("memory.used_frames", st.used);
    report.set("memory.reserved_frames", st.reserved);
    report.set("memory.peak_frames", st.peak_taken);
    report.set("memory.leaked_frames", st.used_by[static_cast<size_t>(core::mm::FrameOwner::User)]);
    report.set("memory.kept_stack_frames", core::mm::kernel_space().kept_stack_frames());
    report.set("heap.bytes_from_frames", hs.bytes_from_frames());
    report.set("heap.allocs", hs.allocs);
    report.set("heap.frees", hs.frees);
    report.set("heap.live", hs.allocs - hs.frees);
    report.set("heap.failures", hs.failures);
}

void collect(const hal_sim::Machine& m, const hal_sim::MachineConfig& config, Report& report) {
    uint64_t end = 0;
    for (uint32_t i = 0; i < m.cpu_count(); ++i) {
        end = std::max(end, m.cpu(i).clock_ns);
    }
    uint64_t frames = 0;
    for (const auto& r : hal_sim::usable_pages(config.memory)) {
        frames += (r.end - r.base) / firmware::kPage;
    }
    double sum = 0;
    double lo = 1;
    double hi = 0;
    for (uint32_t i = 0; i < m.cpu_count(); ++i) {
        const auto& c = m.cpu(i);
        // Time after a CPU's clock stopped (it waits for an interrupt that never came, or the
        // machine stopped) counts as idle.
        uint64_t idle = std::min(end, c.idle_ns + (end - c.clock_ns));
        uint64_t busy = end - idle;
        double util = end == 0 ? 0.0 : static_cast<double>(busy) / static_cast<double>(end);
        // NOTE: the scheduler's switches, not the machine's (which also counts each CPU's
        // switches from its boot stacks, before it schedules): they add up to the metric.
        report.cpus.push_back(
            {i, util, busy, idle, c.steps, core::sched::cpu_counters(i).switches});
        sum += util;
        lo = std::min(lo, util);
        hi = std::max(hi, util);
    }
    report.set("seed", config.seed);
    report.set("machine.cpus", uint64_t{config.cpus});
    report.set("schedule.strategy", hal_sim::describe(config.schedule));
    report.set("schedule.sync_points", m.sync_points());
    report.set("schedule.stalls", m.stalls());
    report.set("schedule.stall_ns", m.stall_ns());
    report.set("time.virtual_ns", end);
    report.set("time.executor_steps", m.executor_steps());
    report.set("invariants.checks", m.invariant_checks());
    report.set("invariants.skipped", m.invariant_skips());
    report.set("faults.injected", uint64_t{m.events().size()});
    report.set("memory.usable_frames", frames);
    report.set("cpu.utilisation.mean", sum / m.cpu_count());
    report.set("cpu.utilisation.min", lo);
    report.set("cpu.utilisation.max", hi);
}

// How the reproduce line names duet: the ./duet script that called us, or ./duet.
std::string program_name() {
    const char* program = std::getenv("DUET_PROGRAM");
    return program != nullptr && *program != '\0' ? program : "./duet";
}

} // namespace

std::string reproduce_command(const std::string& program, const std::string& path,
                              const RunOptions& options, uint64_t seed) {
    std::string c = fmt::format("{} run {} --seed {}", program, path, seed);
    if (options.cpus) {
        c += fmt::format(" --cpus {}", *options.cpus);
    }
    if (options.memory) {
        c += fmt::format(" --memory {}", *options.memory);
    }
    for (const auto& [name, value] : options.faults) {
        c += fmt::format(" --fault {}={}", name, value);
    }
    if (options.tick_ns) {
        c += fmt::format(" --tick {}ns", *options.tick_ns);
    }
    if (options.slice_ns) {
        c += fmt::format(" --slice {}ns", *options.slice_ns);
    }
    if (options.check_every) {
        c += fmt::format(" --check-every {}", *options.check_every);
    }
    if (options.firmware) {
        c += fmt::format(" --firmware {}", hal_sim::firmware_name(*options.firmware));
    }
    if (!options.kernel_path.empty()) {
        c += fmt::format(" --kernel {}", options.kernel_path);
    }
    if (options.schedule.kind != hal_sim::Schedule::Kind::Coarse) {
        c += fmt::format(" --schedule {}", hal_sim::describe(options.schedule));
    }
    if (options.timeout_ns != 0) {
        c += fmt::format(" --timeout {}", format_duration(options.timeout_ns));
    }
    if (options.memory_limit_bytes != 0) {
        c += fmt::format(" --memory-limit {}", format_size(options.memory_limit_bytes));
    }
    if (options.race) {
        c += " --race";
    }
    return c;
}

std::string Outcome::first_failure() const {
    if (status == kExitUsage) {
        return error;
    }
    if (result.verdict != hal_sim::Verdict::Success) {
        std::string detail = result.detail.substr(0, result.detail.find('\n'));
        return fmt::format("{}: {}", hal_sim::describe(result.verdict), detail);
    }
    for (const auto& r : checked) {
        if (!r.held) {
            return fmt::format("{}:{}: expected {}, got {}", r.expectation->file,
                               r.expectation->line, r.expectation->text, r.actual);
        }
    }
    return {};
}

std::vector<uint8_t> read_kernel_file(const std::string& path) {
    // Larger than this, it cannot be an initrd's file.
    constexpr size_t kLimit = bootboot_abi::kMaxInitrdSize;
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec)) {
        throw SourceError(path, 0, 0, "is a directory, not a kernel ELF file");
    }
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        throw SourceError(path, 0, 0, "cannot read the kernel file");
    }
    std::vector<uint8_t> bytes(kLimit + 1);
    in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    bytes.resize(static_cast<size_t>(in.gcount()));
    if (bytes.size() > kLimit) {
        throw SourceError(path, 0, 0, "is larger than the 16 MiB a BOOTBOOT initrd may hold");
    }
    return bytes;
}

std::vector<uint8_t> scenario_initrd(const Scenario& scenario, const RunOptions& options) {
    std::vector<hal_sim::UstarFile> files;
    files.emplace_back("sys/core", options.kernel_file.empty() ? hal_sim::model_kernel_file()
                                                               : options.kernel_file);
    std::vector<uint8_t> workload;
    if (!scenario.workload.empty()) {
        workload = scenario.workload.blob();
        files.emplace_back("sys/workload", workload);
    }
    std::vector<std::pair<std::string, std::vector<uint8_t>>> process_files;
    if (!scenario.processes.empty()) {
        process_files = scenario.processes.files();
        for (const auto& [name, bytes] : process_files) {
            files.emplace_back(name, bytes);
        }
    }
    return hal_sim::make_ustar(files);
}

namespace {

// A stuck machine's verdict also says who waits for what, and names each cycle of threads
// waiting for mutexes the others hold (core/sync/waits.hpp).
void add_waits(hal_sim::RunResult& result) {
    using hal_sim::Verdict;
    if (result.verdict != Verdict::Deadlock && result.verdict != Verdict::Livelock &&
        result.verdict != Verdict::TimeLimit && result.verdict != Verdict::Timeout) {
        return;
    }
    std::string waits;
    core::describe_waits(
        [&](const char* line, size_t length) { waits.append("\n").append(line, length); });
    result.detail += waits;
}

// Where a machine the scenario describes but the simulator cannot build was described: the
// memory line (the map and the loader are what such errors are about), or --memory.
std::string machine_origin(const std::string& path, const Scenario& scenario,
                           const RunOptions& options) {
    if (options.memory) {
        return fmt::format("--memory {}", shown(*options.memory));
    }
    return fmt::format("{}:{}", path, scenario.memory_line);
}

// Why `path` cannot be written, or "" if it can: checked before a run, so that a bad output
// path is refused before the work, without truncating a file that is there (a refused run
// leaves it as it was).
std::string cannot_write(const std::string& path) {
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NONBLOCK | O_CLOEXEC, 0666);
    if (fd >= 0) {
        ::close(fd);
        ::unlink(path.c_str());
        return {};
    }
    if (errno == EEXIST) {
        fd = ::open(path.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
        if (fd >= 0) {
            ::close(fd);
            return {};
        }
        if (errno == ENXIO) {
            return {}; // a FIFO that nobody reads yet
        }
    }
    return std::strerror(errno);
}

// PCT's K for a run that gave none: the synchronisation points of the same run under a
// schedule that stops at each and never stalls (random:0), run quietly first. At least 1.
uint64_t count_sync_points(const hal_sim::MachineConfig& config) {
    hal_sim::MachineConfig counting = config;
    counting.schedule = hal_sim::Schedule{};
    counting.schedule.kind = hal_sim::Schedule::Kind::Random;
    counting.schedule.stall_chance = 0;
    hal_sim::Machine machine(std::move(counting));
    machine.run();
    return std::max<uint64_t>(machine.sync_points(), 1);
}

} // namespace

hal_sim::MachineConfig machine_config(const Scenario& scenario, const RunOptions& options) {
    hal_sim::MachineConfig config;
    config.cpus = options.cpus.value_or(scenario.cpus);
    config.firmware = options.firmware.value_or(scenario.firmware);
    config.seed = options.seed.value_or(scenario.seed);
    config.schedule = options.schedule;
    config.memory = scenario.memory;
    config.faults = scenario.faults;
    config.costs = scenario.costs;
    config.livelock_ns = scenario.livelock_ns;
    config.time_limit_ns = scenario.time_limit_ns;
    config.stop_at_ns = scenario.until_ns;
    config.check_every = options.check_every.value_or(config.check_every);
    config.host_time_limit_ns = options.timeout_ns;
    config.host_memory_limit_bytes = options.memory_limit_bytes;
    config.environment = scenario.environment();
    config.initrd = scenario_initrd(scenario, options);
    return config;
}

Outcome execute(const std::string& path, const RunOptions& options, std::FILE* out) {
    Outcome o;
    Scenario scenario;
    hal_sim::MachineConfig config;
    try {
        scenario = load_scenario(path);
        o.warnings = scenario.warnings;
        if (options.memory) {
            scenario.memory =
                load_memory(*options.memory, "--memory", 0, 0, &scenario.memory_source,
                            &scenario.memory_file, &scenario.memory_lines);
        }
        for (const auto& [name, value] : options.faults) {
            std::string e = set_fault(scenario.faults, name, value);
            if (!e.empty()) {
                o.error = fmt::format("--fault {}={}: {}", shown(name), shown(value), e);
                return o;
            }
        }
    } catch (const SourceError& e) {
        o.error = e.what();
        return o;
    }
    if (options.tick_ns) {
        scenario.tick_ns = *options.tick_ns;
    }
    if (options.slice_ns) {
        scenario.slice_ns = *options.slice_ns;
    }
    config = machine_config(scenario, options);
    bool tracing = !options.trace_path.empty();
    if (tracing) {
        config.environment += "duet.trace=1\n";
    }
    o.seed = config.seed;
    o.expectations = std::move(scenario.expectations);

    std::unique_ptr<hal_sim::Machine> machine;
    try {
        if (config.schedule.kind == hal_sim::Schedule::Kind::Pct && config.schedule.horizon == 0) {
            config.schedule.horizon = count_sync_points(config);
        }
        // NOTE: moved, not copied (it holds the initrd): the machine's is used below.
        machine = std::make_unique<hal_sim::Machine>(std::move(config));
    } catch (const hal_sim::FirmwareError& e) {
        size_t entry = e.entry();
        if (entry < scenario.memory_lines.size()) {
            o.error = fmt::format("{}:{}: {}", scenario.memory_file, scenario.memory_lines[entry],
                                  e.what());
        } else {
            o.error = fmt::format("{}: {}", machine_origin(path, scenario, options), e.what());
        }
        return o;
    } catch (const hal_sim::ConfigError& e) {
        o.error = fmt::format("{}: {}", machine_origin(path, scenario, options), e.what());
        return o;
    }
    // Opened only now, so that a refused run leaves an existing log as it was.
    std::unique_ptr<std::FILE, int (*)(std::FILE*)> com1_file(nullptr, &std::fclose);
    if (!options.com1_path.empty()) {
        com1_file.reset(std::fopen(options.com1_path.c_str(), "w"));
        if (!com1_file) {
            o.error = fmt::format("duet: cannot write the COM1 log '{}'", options.com1_path);
            return o;
        }
    }
    hal_sim::Machine* m = machine.get();
    bool echo = out != nullptr && !options.quiet;
    if (options.timestamps) {
        m->com1().set_tagger([m] {
            const hal_sim::SimCpu& cpu = m->current_cpu();
            return fmt::format("[{} cpu {}] ", seconds(cpu.clock_ns), cpu.index);
        });
    }
    Digest digest;
    m->com1().set_sink([&](std::string_view tag, std::string_view line) {
        digest.add(line);
        if (echo) {
            fmt::print(out, "{}{}\n", tag, line);
        }
        if (com1_file) {
            fmt::print(com1_file.get(), "{}{}\n", tag, line);
        }
    });
    m->set_event_sink([&](const std::string& line) {
        digest.add(line);
        if (echo) {
            fmt::print(out, "sim: {}\n", line);
        }
    });

    TraceLog trace;
    if (tracing) {
        m->set_trace_sink([&](const hal_sim::TraceRecord& r) { trace.add(r); });
    }

    // The exited threads' statistics, for the report's list of threads (the kernel reuses
    // their slots): only the first Report::kThreadListMax threads', so that a run of millions
    // of threads keeps a bounded list.
    // NOTE: a vector sorted once at the end: a map, one node a thread, was 16% of `duet run` on
    // a chain of 15,000 threads.
    std::vector<Report::ThreadRow> exited;
    exited.reserve(Report::kThreadListMax); // address space: pages are touched as rows come
    m->set_exit_sink([&](const hal::ThreadSummary& t) {
        if (t.pid == 0 || t.pid > Report::kThreadListMax) {
            return;
        }
        exited.push_back({t.pid, t.name, "exited", t.cpu, t.priority, t.run_ns, t.run_delay_ns,
                          t.wakeups, t.preemptions, t.migrations});
    });

    o.result = m->run();
    add_waits(o.result);
    digest.add(hal_sim::describe(o.result.verdict));
    digest.add(o.result.detail);
    collect(*m, m->config(), o.report);
    uint64_t end = static_cast<uint64_t>(o.report.number("time.virtual_ns").value_or(0));
    collect_kernel(*m, end, o.result.verdict == hal_sim::Verdict::Success, std::move(exited),
                   o.report);
    o.report.set("verdict", std::string(hal_sim::describe(o.result.verdict)));
    // NOTE: and the schedule: two runs that print the same lines but interleave differently
    // differ in what the report measured (switches, each CPU's and each thread's times). All of
    // it but what names how the run was made rather than what it did: the seed and the schedule
    // strategy (two that make the same run have one digest; an input schedule's is its file's
    // path) and the invariant checks (as many as --check-every asks for).
    digest.add(o.report.canonical_text([](std::string_view metric) {
        return metric == "seed" || metric == "schedule.strategy" ||
               metric.substr(0, 11) == "invariants.";
    }));
    o.report.set("digest", fmt::format("{:016x}", digest.value()));
    o.checked = check_expectations(o.expectations, o.report);
    uint64_t failed = 0;
    for (const auto& r : o.checked) {
        failed += r.held ? 0 : 1;
    }
    o.report.set("expectations.total", uint64_t{o.checked.size()});
    o.report.set("expectations.failed", failed);
    o.status = o.result.verdict == hal_sim::Verdict::Success && failed == 0 ? kExitOk : kExitFailed;
    if (tracing) {
        o.trace = finish_trace(trace, options.trace_format,
                               fmt::format("duet run {} --seed {} --cpus {}", path,
                                           m->config().seed, m->config().cpus),
                               end, o.result, o.checked);
    }
    return o;
}

int run_scenario(const std::string& path, const RunOptions& options, std::FILE* out,
                 std::FILE* err) {
    for (const auto& [file, what] : {std::pair{&options.trace_path, "the trace"},
                                     std::pair{&options.json_path, "the JSON report"},
                                     std::pair{&options.com1_path, "the COM1 log"}}) {
        std::string why = file->empty() ? std::string() : cannot_write(*file);
        if (!why.empty()) {
            fmt::print(err, "duet: cannot write {} '{}': {}\n", what, printable(*file), why);
            return kExitUsage;
        }
    }
    Outcome o = execute(path, options, out);
    if (o.status == kExitUsage) {
        fmt::print(err, "{}\n", printable(o.error));
        return kExitUsage;
    }
    for (const auto& w : o.warnings) {
        fmt::print(err, "{}\n", w);
    }
    std::unique_ptr<std::FILE, int (*)(std::FILE*)> trace_file(nullptr, &std::fclose);
    if (!options.trace_path.empty()) {
        trace_file.reset(std::fopen(options.trace_path.c_str(), "w"));
        if (!trace_file) {
            fmt::print(err, "duet: cannot write the trace '{}'\n", options.trace_path);
            return kExitUsage;
        }
        std::fwrite(o.trace.data(), 1, o.trace.size(), trace_file.get());
        if (std::fclose(trace_file.release()) != 0) {
            fmt::print(err, "duet: cannot write the trace '{}'\n", options.trace_path);
            return kExitUsage;
        }
    }
    print_report(out, o.report, o.checked);
    std::fflush(out);
    if (!options.json_path.empty()) {
        std::ofstream json(options.json_path);
        json << o.report.to_json().dump(2) << "\n";
        if (!json) {
            fmt::print(err, "duet: cannot write the JSON report '{}'\n", options.json_path);
            return kExitUsage;
        }
    }
    if (o.result.verdict != hal_sim::Verdict::Success) {
        fmt::print(err, "{}: run failed (seed {}): {}: {}\n", path, o.seed,
                   hal_sim::describe(o.result.verdict), o.result.detail);
    }
    if (o.result.verdict == hal_sim::Verdict::Race ||
        o.result.verdict == hal_sim::Verdict::Timeout ||
        o.result.verdict == hal_sim::Verdict::OutOfMemory) {
        fmt::print(err, "reproduce: {}\n",
                   reproduce_command(program_name(), path, options, o.seed));
    }
    for (const auto& r : o.checked) {
        if (!r.held) {
            fmt::print(err, "{}:{}: expectation failed: {} (got {})\n", r.expectation->file,
                       r.expectation->line, r.expectation->text, r.actual);
        }
    }
    if (options.verify_determinism) {
        int replay = verify_replay(path, options, o, out, err);
        if (replay != kExitOk) {
            return replay;
        }
    }
    return o.status;
}

namespace {

// `duet workload` and `duet initrd`: the scenario at `path`, or its error on `err`.
std::optional<Scenario> load_for_output(const std::string& path, std::FILE* err) {
    try {
        Scenario scenario = load_scenario(path);
        for (const auto& w : scenario.warnings) {
            fmt::print(err, "{}\n", w);
        }
        return scenario;
    } catch (const SourceError& e) {
        fmt::print(err, "{}\n", e.what());
        return std::nullopt;
    }
}

int write_output(const std::string& output, const std::vector<uint8_t>& bytes, std::FILE* err) {
    std::ofstream out(output, std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes.data()),
              static_cast<std::streamsize>(bytes.size()));
    if (!out) {
        fmt::print(err, "duet: cannot write '{}'\n", output);
        return kExitUsage;
    }
    return kExitOk;
}

} // namespace

int write_workload(const std::string& path, const std::string& output, std::FILE* err) {
    std::optional<Scenario> scenario = load_for_output(path, err);
    if (!scenario) {
        return kExitUsage;
    }
    if (scenario->workload.empty()) {
        fmt::print(err, "{}: the scenario has no programs or spawns\n", path);
        return kExitUsage;
    }
    return write_output(output, scenario->workload.blob(), err);
}

int write_initrd(const std::string& path, const RunOptions& options, const std::string& output,
                 std::FILE* err) {
    std::optional<Scenario> scenario = load_for_output(path, err);
    if (!scenario) {
        return kExitUsage;
    }
    std::vector<uint8_t> initrd = scenario_initrd(*scenario, options);
    if (initrd.size() > bootboot_abi::kMaxInitrdSize) {
        fmt::print(err,
                   "duet: the initrd would be {} bytes, more than the 16 MiB BOOTBOOT allows\n",
                   initrd.size());
        return kExitUsage;
    }
    return write_output(output, initrd, err);
}

int check_scenarios(const std::vector<std::string>& paths, const RunOptions& options,
                    std::FILE* out) {
    std::vector<std::string> files;
    for (const auto& p : paths) {
        std::error_code ec;
        if (std::filesystem::is_directory(p, ec)) {
            for (const auto& entry : std::filesystem::recursive_directory_iterator(p, ec)) {
                if (entry.is_regular_file() && entry.path().extension() == ".scn") {
                    files.push_back(entry.path().string());
                }
            }
        } else {
            files.push_back(p);
        }
    }
    // Directory order is the file system's; sort for a stable report.
    std::sort(files.begin(), files.end());
    int passed = 0;
    int failed = 0;
    size_t warnings = 0;
    for (const auto& f : files) {
        Outcome o = execute(f, options, nullptr);
        if (o.status == kExitOk) {
            ++passed;
            fmt::print(out, "PASS  {} (seed {}, digest {})\n", f, o.seed, o.report.text("digest"));
        } else {
            ++failed;
            fmt::print(out, "FAIL  {}: {}\n", printable(f), printable(o.first_failure()));
        }
        // What `duet run` would have warned about, under the scenario's line.
        for (const auto& w : o.warnings) {
            fmt::print(out, "      {}\n", w);
        }
        warnings += o.warnings.size();
        std::fflush(out);
    }
    fmt::print(out, "{} passed, {} failed", passed, failed);
    if (warnings != 0) {
        fmt::print(out, ", {} warning{}", warnings, warnings == 1 ? "" : "s");
    }
    fmt::print(out, "\n");
    return failed == 0 && !files.empty() ? kExitOk : kExitFailed;
}

} // namespace duet
