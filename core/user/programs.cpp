// The init thread's part in user space: start the initrd's programs and reap them.

#include <core/lib/log.hpp>
#include <core/lib/ustar.hpp>
#include <core/mm/physical_memory.hpp>
#include <core/sched/scheduler.hpp>
#include <core/user/abi.hpp>
#include <core/user/ipc.hpp>
#include <core/user/process.hpp>
#include <core/user/programs.hpp>

#include <hal/user.hpp>

namespace core::user {

namespace {

constexpr size_t kMaxPathLength = 100;

const char* base_name(const char* path) {
    const char* name = path;
    for (const char* c = path; *c != '\0'; ++c) {
        if (*c == '/') {
            name = c + 1;
        }
    }
    return name;
}

const char* on_off(bool on) {
    return on ? "on" : "off";
}

constexpr size_t kMaxLineLength = 200;

// The objects sys/programs names (`call:NAME`...): created at their first mention, with a
// kernel reference held until every program has been reaped.
constexpr size_t kMaxNamedObjects = 16;
constexpr size_t kObjectNameLength = 16;
struct NamedObject {
    char name[kObjectNameLength] = {};
    ipc::ObjectRef ref;
};
NamedObject s_named[kMaxNamedObjects]; // the init thread's only
// The started programs' paths, for the log (the init thread's only: too big for its stack).
char s_paths[kMaxProcesses][kMaxPathLength + 1];
size_t s_named_count = 0;
ProgramsSummary s_summary; // written by the init thread once every program has been reaped
// From start_initrd_programs() to reap_initrd_programs() (the init thread's only).
bool s_reaping = false;
Process* s_started[kMaxProcesses];
size_t s_started_count = 0;
uint64_t s_used_before = 0;

bool same_name(const char* a, const char* b, size_t b_length) {
    size_t i = 0;
    for (; i < b_length; ++i) {
        if (a[i] != b[i]) {
            return false;
        }
    }
    return a[i] == '\0';
}

Result<ipc::ObjectRef> named_object(ipc::ObjectType type, const char* name, size_t length) {
    if (length == 0 || length >= kObjectNameLength) {
        return Error::InvalidArgument;
    }
    for (size_t i = 0; i < s_named_count; ++i) {
        if (same_name(s_named[i].name, name, length)) {
            if (s_named[i].ref.type != type) {
                return Error::InvalidArgument;
            }
            return s_named[i].ref;
        }
    }
    if (s_named_count == kMaxNamedObjects) {
        return Error::CapacityExceeded;
    }
    ipc::ObjectRef ref = TRY(ipc::create(type));
    NamedObject& o = s_named[s_named_count++];
    __builtin_memcpy(o.name, name, length);
    o.name[length] = '\0';
    o.ref = ref;
    ipc::set_name(ref, o.name);
    return ref;
}

void release_named_objects() {
    for (size_t i = 0; i < s_named_count; ++i) {
        ipc::release(s_named[i].ref);
    }
    s_named_count = 0;
}

// Gives `p` the handles `grants` lists, separated by spaces, in order (handle 1 first):
// `serve:NAME` (an endpoint, to receive on), `call:NAME` (an endpoint, to call),
// `signal:NAME` and `wait:NAME` (a notification). False, with a log line, on a bad one.
bool grant_handles(Process* p, const char* path, const char* grants) {
    static constexpr struct {
        const char* kind;
        ipc::ObjectType type;
        uint8_t rights;
    } kKinds[] = {
        {"serve", ipc::ObjectType::Endpoint, ipc::kRightReceive},
        {"call", ipc::ObjectType::Endpoint, ipc::kRightCall},
        {"signal", ipc::ObjectType::Notification, ipc::kRightSignal},
        {"wait", ipc::ObjectType::Notification, ipc::kRightWait},
    };
    const char* at = grants;
    while (*at != '\0') {
        if (*at == ' ') {
            ++at;
            continue;
        }
        const char* end = at;
        while (*end != '\0' && *end != ' ') {
            ++end;
        }
        const char* colon = at;
        while (colon < end && *colon != ':') {
            ++colon;
        }
        bool granted = false;
        for (const auto& k : kKinds) {
            if (colon == end || !same_name(k.kind, at, static_cast<size_t>(colon - at))) {
                continue;
            }
            auto ref = named_object(k.type, colon + 1, static_cast<size_t>(end - colon - 1));
            granted = ref.ok() && ipc::grant(p, ref.value(), k.rights).ok();
            break;
        }
        if (!granted) {
            LogLine("user").str(path).str(": cannot give it a handle for '").str(at).chr('\'');
            return false;
        }
        at = end;
    }
    return true;
}

// The frames in use by the two owners a process's frames have: user pages and page tables.
// The workload's threads run beside the processes, and the kernel structures they grow (its
// heap, its thread table) are not counted, so that the count comes back exactly when every
// process has returned every frame; the kernel's own page tables are among them (a workload
// that opens new kernel stack slots may grow them).
uint64_t frames_of_process_owners() {
    mm::FrameStats st = mm::frames().stats();
    return st.used_by[static_cast<size_t>(mm::FrameOwner::User)] +
           st.used_by[static_cast<size_t>(mm::FrameOwner::PageTables)];
}

bool starts_with(const char* s, const char* prefix) {
    for (; *prefix != '\0'; ++s, ++prefix) {
        if (*s != *prefix) {
            return false;
        }
    }
    return true;
}

// What a sys/programs line may say between the path and the handles: `name=NAME` (the
// process's name, instead of the path's last part) and `args=FILE` (an initrd file mapped as
// its argument block: duet_abi::kArgumentBase).
struct ProgramOptions {
    const char* name = nullptr;
    const char* args = nullptr;
};

// Takes the options at the start of `*rest` (NUL-terminating each) and leaves `*rest` at the
// handles. False, with a log line, on an unknown option or a name too long.
bool parse_options(const char* path, const char** rest, ProgramOptions* out) {
    char* at = const_cast<char*>(*rest);
    for (;;) {
        while (*at == ' ') {
            ++at;
        }
        char* end = at;
        bool option = false;
        while (*end != '\0' && *end != ' ') {
            option = option || *end == '=';
            ++end;
        }
        if (!option) {
            *rest = at;
            return true;
        }
        bool last = *end == '\0';
        *end = '\0';
        if (starts_with(at, "name=")) {
            out->name = at + 5;
            if (end - out->name == 0 ||
                end - out->name >= static_cast<ptrdiff_t>(kProcessNameLength)) {
                LogLine("user")
                    .str(path)
                    .str(": a process name of 1 to 15 bytes, not '")
                    .str(out->name)
                    .chr('\'');
                return false;
            }
        } else if (starts_with(at, "args=")) {
            out->args = at + 5;
        } else {
            LogLine("user").str(path).str(": no option '").str(at).chr('\'');
            return false;
        }
        at = last ? end : end + 1;
    }
}

} // namespace

bool start_initrd_programs(const uint8_t* initrd, size_t size) {
    ustar::Lookup list = ustar::find(initrd, size, "sys/programs");
    if (list.error == ustar::Error::NotFound) {
        return false;
    }
    if (list.error != ustar::Error::None) {
        LogLine("user").str("sys/programs is unreadable: ").str(ustar::describe(list.error));
        return true;
    }
    s_reaping = true;
    s_started_count = 0;
    s_used_before = frames_of_process_owners();
    LogLine("user")
        .str("SMEP ")
        .str(on_off(hal::user_protection_smep()))
        .str(", SMAP ")
        .str(on_off(hal::user_protection_smap()));

    Process** started = s_started;
    size_t count = 0;
    const char* text = reinterpret_cast<const char*>(initrd + list.data_offset);
    size_t at = 0;
    // Every program is created and given its handles before any starts, so that none sees an
    // endpoint before its peers hold their handles to it.
    Process* loaded[kMaxProcesses] = {};
    const char* paths[kMaxProcesses] = {};
    while (at < list.size) {
        char line[kMaxLineLength + 1];
        size_t n = 0;
        bool too_long = false;
        for (; at < list.size && text[at] != '\n'; ++at) {
            if (n < kMaxLineLength) {
                line[n++] = text[at];
            } else {
                too_long = true;
            }
        }
        ++at; // the newline
        line[n] = '\0';
        if (n == 0) {
            continue;
        }
        if (too_long) {
            LogLine("user").str("sys/programs: a line longer than 200 bytes");
            continue;
        }
        // The path, then the handles to give the program, separated by spaces.
        char* rest = line;
        while (*rest != '\0' && *rest != ' ') {
            ++rest;
        }
        const char* grants = rest;
        if (*rest == ' ') {
            *rest = '\0';
            grants = rest + 1;
        }
        const char* path = line;
        if (rest - line > static_cast<ptrdiff_t>(kMaxPathLength)) {
            LogLine("user").str("sys/programs: a path longer than 100 bytes");
            continue;
        }
        ProgramOptions options;
        if (!parse_options(path, &grants, &options)) {
            continue;
        }
        ustar::Lookup args{};
        if (options.args != nullptr) {
            args = ustar::find(initrd, size, options.args);
            if (args.error != ustar::Error::None || args.size > duet_abi::kMaxArgumentBytes) {
                LogLine("user")
                    .str(path)
                    .str(": args=")
                    .str(options.args)
                    .str(": ")
                    .str(args.error != ustar::Error::None ? ustar::describe(args.error)
                                                          : "larger than 64 KiB");
                continue;
            }
        }
        ustar::Lookup file = ustar::find(initrd, size, path);
        if (file.error != ustar::Error::None) {
            LogLine("user").str(path).str(": ").str(ustar::describe(file.error));
            continue;
        }
        if (count == kMaxProcesses) {
            LogLine("user").str(path).str(": too many programs");
            continue;
        }
        CreateError why;
        auto p = create(options.name != nullptr ? options.name : base_name(path),
                        initrd + file.data_offset, file.size, &why,
                        options.args != nullptr ? initrd + args.data_offset : nullptr,
                        options.args != nullptr ? args.size : 0, base_name(path));
        if (!p.ok()) {
            LogLine line_out("user");
            line_out.str(path).str(" is unusable: ");
            if (why.elf != elf::Error::None) {
                line_out.str(elf::describe(why.elf));
            } else {
                line_out.str(describe(why.error));
            }
            continue;
        }
        if (!grant_handles(p.value(), path, grants)) {
            (void)wait(p.value());
            continue;
        }
        __builtin_memcpy(s_paths[count], path, static_cast<size_t>(rest - line) + 1);
        paths[count] = s_paths[count];
        loaded[count++] = p.value();
    }
    size_t loaded_count = count;
    count = 0;
    for (size_t i = 0; i < loaded_count; ++i) {
        Process* p = loaded[i];
        if (Result<void> r = start(p); !r.ok()) {
            LogLine("user").str(paths[i]).str(": no thread: ").str(describe(r.error()));
            (void)wait(p);
            continue;
        }
        LogLine("user")
            .str("started '")
            .str(p->name)
            .str("' (process ")
            .dec(p->id)
            .str(") from ")
            .str(paths[i]);
        started[count++] = p;
    }
    s_started_count = count;
    return true;
}

void reap_initrd_programs() {
    if (!s_reaping) {
        return;
    }
    s_reaping = false;
    Process** started = s_started;
    size_t count = s_started_count;
    uint64_t used_before = s_used_before;
    uint64_t exited = 0;
    uint64_t killed = 0;
    for (size_t i = 0; i < count; ++i) {
        Process* p = started[i];
        // NOTE: wait() frees the slot: keep what the report needs.
        char name[kProcessNameLength];
        __builtin_memcpy(name, p->name, sizeof name);
        uint32_t id = p->id;
        ExitStatus s = wait(p);
        LogLine line("user");
        line.chr('\'').str(name).str("' (process ").dec(id);
        if (s.killed) {
            ++killed;
            line.str(") was killed");
        } else {
            ++exited;
            line.str(") exited with code ");
            if (s.code < 0) {
                line.chr('-').dec(static_cast<uint64_t>(-static_cast<int64_t>(s.code)));
            } else {
                line.dec(static_cast<uint64_t>(s.code));
            }
        }
        line.str(" after ").dec(s.syscalls).str(" system calls");
        line.end();
        LogLine("user")
            .str("process ")
            .dec(id)
            .str(" ('")
            .str(name)
            .str("') took ")
            .dec(s.cycles)
            .str(" cycles from entering user mode to its end");
    }
    release_named_objects();
    uint64_t used_after = frames_of_process_owners();
    LogLine("user")
        .dec(count)
        .str(" processes: ")
        .dec(exited)
        .str(" exited, ")
        .dec(killed)
        .str(" killed; user and page-table frames before ")
        .dec(used_before)
        .str(", after ")
        .dec(used_after);
    Stats st = stats();
    LogLine("user")
        .dec(st.syscalls)
        .str(" system calls, ")
        .dec(st.bad_addresses)
        .str(" refused for a bad address");
    ipc::Stats is = ipc::stats();
    uint64_t handoffs = 0;
    for (uint32_t c = 0; c < sched::cpu_count(); ++c) {
        handoffs += sched::cpu_counters(c).handoffs;
    }
    LogLine("user")
        .dec(is.calls)
        .str(" IPC calls, ")
        .dec(handoffs)
        .str(" direct switches, ")
        .dec(is.peer_gone)
        .str(" peer gone; left: ")
        .dec(is.endpoints_live)
        .str(" endpoints, ")
        .dec(is.notifications_live)
        .str(" notifications");
    if (is.calls != 0) {
        LogLine("user")
            .str("IPC round trip p50 ")
            .dec(is.round_trip_p50_ns)
            .str(" ns, p99 ")
            .dec(is.round_trip_p99_ns)
            .str(" ns, max ")
            .dec(is.round_trip_max_ns)
            .str(" ns");
    }
    s_summary.ran = true;
    s_summary.frames_before = used_before;
    s_summary.frames_after = used_after;
}

ProgramsSummary programs_summary() {
    return s_summary;
}

} // namespace core::user
