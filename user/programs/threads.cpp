// Threads: thread_start's refusals, the limit of 8 live threads, slots taken again once their
// threads have ended, and threads that share the process's memory and handles, each on a stack
// of its own. Logs the first check that failed, or that all held. Nothing depends on timing:
// the workers wait for the first thread's answers and signal it back.

#include <duet/syscall.hpp>

namespace {

constexpr uint64_t kPage = 4096;
constexpr uint64_t kWorkers = duet_abi::kMaxThreads - 1; // beside this one
constexpr uint64_t kStackBytes = 16 * 1024;
constexpr uint64_t kStacks = duet_abi::kMapBase; // one 16 KiB stack a worker, back to back
constexpr uint64_t kShared = kStacks + kWorkers * kStackBytes; // a word a worker
constexpr uint64_t kKernel = 0xffff'ffff'ffe0'2000;

// NOTE: on the stack, not a global: in the simulator every process that runs this program is
// host code in one process, and a global would be shared between them.
struct Checks {
    bool failed = false;
    void check(const char* what, int64_t got, int64_t want) {
        if (got != want && !failed) {
            failed = true;
            duet::log_number(what, static_cast<uint64_t>(got));
        }
    }
};

int64_t err(duet_abi::Errno e) {
    return -static_cast<int64_t>(e);
}

int64_t raw_start(uint64_t entry, uint64_t stack_top) {
    uint64_t args[6] = {entry, stack_top, 0, 0, 0, 0};
    return duet::syscall6(duet_abi::SysThreadStart, args);
}

// A worker: calls the process's endpoint (a handle it shares with the first thread) and, once
// answered, leaves its mark and signals that it has.
struct Handles {
    uint64_t endpoint;
    uint64_t done;
};

void worker(uint64_t, uint64_t arg) {
    uint64_t n = arg & 0xff;
    uint64_t endpoint = (arg >> 8) & 0xff;
    uint64_t done = arg >> 16;
    duet::Message m;
    m.words[0] = n;
    if (duet::call(endpoint, m) < 0 || m.words[0] != n + 1) {
        return; // no mark: the first thread reports it
    }
    uint64_t mark = 100 + n;
    duet::store(kShared + n * 8, &mark, sizeof mark);
    duet::signal(done, uint64_t{1} << n);
}

uint64_t top_of(uint64_t n) {
    return kStacks + (n + 1) * kStackBytes;
}

// Starts worker n. A slot is free once its thread has ended: a worker of the round before may
// still be on its way out (after its signal), so a NoResources is retried after a yield.
int64_t start_worker(uint64_t n, const Handles& h) {
    uint64_t arg = n | h.endpoint << 8 | h.done << 16;
    int64_t r = duet::start_thread(&worker, top_of(n), arg);
    for (int tries = 0; r == err(duet_abi::NoResources) && tries < 10'000; ++tries) {
        duet::yield();
        r = duet::start_thread(&worker, top_of(n), arg);
    }
    return r;
}

// Starts the seven workers; an eighth is refused while they are all live (each waits in its
// call until this thread answers it); answers them, waits for their signals and reads their
// marks.
void round(Checks& c, const Handles& h, const char* what) {
    for (uint64_t n = 0; n < kWorkers; ++n) {
        int64_t r = start_worker(n, h);
        c.check(what, r >= 1 && r <= static_cast<int64_t>(kWorkers) ? 0 : r, 0);
    }
    // NOTE: raw: start_thread would write its frame into worker 0's stack, which may not have
    // read its own yet.
    c.check("an eighth live thread", raw_start(kStacks, top_of(0)), err(duet_abi::NoResources));
    for (uint64_t i = 0; i < kWorkers; ++i) {
        duet::Message m;
        c.check("receive a worker's call", duet::recv(h.endpoint, m), 0);
        m.words[0] += 1;
        c.check("answer it", duet::reply(m), 0);
    }
    uint64_t signalled = 0;
    while (signalled != (uint64_t{1} << kWorkers) - 1) {
        int64_t bits = duet::wait(h.done);
        c.check("wait for the workers", bits > 0 ? 0 : bits, 0);
        if (bits <= 0) {
            return;
        }
        signalled |= static_cast<uint64_t>(bits);
    }
    for (uint64_t n = 0; n < kWorkers; ++n) {
        c.check("a worker's mark", static_cast<int64_t>(duet::load64(kShared + n * 8)),
                static_cast<int64_t>(100 + n));
        uint64_t zero = 0;
        duet::store(kShared + n * 8, &zero, sizeof zero);
    }
}

} // namespace

int main() {
    Checks c;
    c.check("map the stacks",
            duet::map(kStacks, kWorkers * kStackBytes + kPage, duet_abi::kMapWritable),
            static_cast<int64_t>(kStacks));
    c.check("entry 0", raw_start(0, top_of(0)), err(duet_abi::InvalidArgument));
    c.check("a kernel entry", raw_start(kKernel, top_of(0)), err(duet_abi::InvalidArgument));
    c.check("a stack top not 16-byte aligned", raw_start(kStacks, top_of(0) - 8),
            err(duet_abi::InvalidArgument));
    c.check("a kernel stack top", raw_start(kStacks, kKernel), err(duet_abi::InvalidArgument));
    Handles h{static_cast<uint64_t>(duet::endpoint_create()),
              static_cast<uint64_t>(duet::notification_create())};
    c.check("create an endpoint", static_cast<int64_t>(h.endpoint), 1);
    c.check("create a notification", static_cast<int64_t>(h.done), 2);
    round(c, h, "start a worker");
    // The first round's slots are taken again.
    round(c, h, "start a worker again");
    if (!c.failed) {
        duet::log("every bad start refused; two rounds of 7 threads, each slot taken twice");
    }
    return c.failed ? 1 : 0;
}
