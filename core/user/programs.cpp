// The init thread's part in user space: start the initrd's programs and reap them.

#include <core/lib/log.hpp>
#include <core/lib/ustar.hpp>
#include <core/mm/physical_memory.hpp>
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

} // namespace

bool run_initrd_programs(const uint8_t* initrd, size_t size) {
    ustar::Lookup list = ustar::find(initrd, size, "sys/programs");
    if (list.error == ustar::Error::NotFound) {
        return false;
    }
    if (list.error != ustar::Error::None) {
        LogLine("user").str("sys/programs is unreadable: ").str(ustar::describe(list.error));
        return true;
    }
    LogLine("user")
        .str("SMEP ")
        .str(on_off(hal::user_protection_smep()))
        .str(", SMAP ")
        .str(on_off(hal::user_protection_smap()));
    uint64_t used_before = mm::frames().stats().used;

    Process* started[kMaxProcesses] = {};
    size_t count = 0;
    const char* text = reinterpret_cast<const char*>(initrd + list.data_offset);
    size_t at = 0;
    while (at < list.size) {
        char path[kMaxPathLength + 1];
        size_t n = 0;
        bool too_long = false;
        for (; at < list.size && text[at] != '\n'; ++at) {
            if (n < kMaxPathLength) {
                path[n++] = text[at];
            } else {
                too_long = true;
            }
        }
        ++at; // the newline
        path[n] = '\0';
        if (n == 0) {
            continue;
        }
        if (too_long) {
            LogLine("user").str("sys/programs: a path longer than 100 bytes");
            continue;
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
        auto p = create(base_name(path), initrd + file.data_offset, file.size, &why);
        if (!p.ok()) {
            LogLine line("user");
            line.str(path).str(" is unusable: ");
            if (why.elf != elf::Error::None) {
                line.str(elf::describe(why.elf));
            } else {
                line.str(describe(why.error));
            }
            continue;
        }
        if (Result<void> r = start(p.value()); !r.ok()) {
            LogLine("user").str(path).str(": no thread: ").str(describe(r.error()));
            (void)wait(p.value());
            continue;
        }
        LogLine("user")
            .str("started '")
            .str(p.value()->name)
            .str("' (process ")
            .dec(p.value()->id)
            .str(") from ")
            .str(path);
        started[count++] = p.value();
    }

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
    }
    uint64_t used_after = mm::frames().stats().used;
    LogLine("user")
        .dec(count)
        .str(" processes: ")
        .dec(exited)
        .str(" exited, ")
        .dec(killed)
        .str(" killed; frames in use before ")
        .dec(used_before)
        .str(", after ")
        .dec(used_after);
    Stats st = stats();
    LogLine("user")
        .dec(st.syscalls)
        .str(" system calls, ")
        .dec(st.bad_addresses)
        .str(" refused for a bad address");
    return true;
}

} // namespace core::user
