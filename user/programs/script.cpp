// Runs a scenario process's script (duet/script.hpp), which the kernel mapped read-only at
// duet_abi::kArgumentBase: system calls, IPC and memory accesses in ring 3, as the scenario's
// `process` block says (docs/scenarios.md, "Processes"). Every read of the script is a user
// load, so in the simulator it goes through the simulated MMU like any other access.
//
// A `thread` block (OpThread) runs in threads of their own, each with its own stack and its own
// buffers there (duet::Area). The process ends when its last thread does, or at once with the
// first error.

#include <duet/script.hpp>
#include <duet/syscall.hpp>

namespace {

using duet_script::Instruction;

constexpr uint64_t kPage = 4096;
constexpr uint64_t kCode = duet_abi::kArgumentBase + sizeof(duet_script::Header);

int bad_script(const duet::Area& area, const char* what, uint64_t at) {
    duet::log_number(area, what, at);
    return duet_script::kBadScript;
}

int failed(const duet::Area& area, const char* what, int64_t result) {
    duet::log_number(area, what, static_cast<uint64_t>(-result));
    return static_cast<int>(-result);
}

// A byte pattern for message `sequence`, so that an echo that lost or moved a byte shows.
uint8_t pattern(uint64_t sequence, uint32_t i) {
    return static_cast<uint8_t>('a' + (sequence + i) % 26);
}

// One call: `bytes` of pattern out, the same back, word 0 plus one.
int call(const duet::Area& area, uint64_t handle, uint32_t bytes, uint64_t sequence) {
    uint8_t out[duet_abi::kMaxMessageBytes];
    for (uint32_t i = 0; i < bytes; ++i) {
        out[i] = pattern(sequence, i);
    }
    duet::store(area.send_buffer(), out, bytes);
    duet::Message m;
    m.words[0] = sequence;
    m.buffer = area.send_buffer();
    m.sent = bytes;
    m.room = duet_abi::kMaxMessageBytes;
    int64_t r = duet::call(handle, m);
    if (r < 0) {
        return failed(area, "call failed: error -", r);
    }
    uint8_t back[duet_abi::kMaxMessageBytes];
    duet::load(area.send_buffer(), back, bytes);
    bool same = static_cast<uint64_t>(r) == bytes && m.words[0] == sequence + 1;
    for (uint32_t i = 0; same && i < bytes; ++i) {
        same = back[i] == out[i];
    }
    if (!same) {
        duet::log_number(area, "a wrong reply to call ", sequence);
        return duet_script::kWrongReply;
    }
    return 0;
}

// Answers calls until none is left (PeerGone) or, if `limit` is not 0, `limit` of them.
int serve(const duet::Area& area, uint64_t handle, uint32_t limit) {
    duet::Message m;
    m.buffer = area.send_buffer();
    m.room = duet_abi::kMaxMessageBytes;
    int64_t r = duet::recv(handle, m);
    uint32_t served = 0;
    while (r >= 0) {
        m.words[0] += 1;
        m.sent = static_cast<uint32_t>(r < m.room ? r : m.room);
        if (++served == limit) {
            m.room = 0; // a reply only sends
            r = duet::reply(m);
            return r < 0 ? failed(area, "reply failed: error -", r) : 0;
        }
        r = duet::reply_recv(handle, m);
    }
    return r == -duet_abi::PeerGone ? 0 : failed(area, "receive failed: error -", r);
}

// A call taken by OpReceive and not yet answered: its words and bytes (in the thread's receive
// buffer, so that its own calls meanwhile leave them be).
struct Held {
    duet::Message m;
    uint32_t length = 0;
};

int receive(const duet::Area& area, uint64_t handle, Held& held) {
    held.m = duet::Message{};
    held.m.buffer = area.receive_buffer();
    held.m.room = duet_abi::kMaxMessageBytes;
    int64_t r = duet::recv(handle, held.m);
    if (r < 0) {
        return failed(area, "receive failed: error -", r);
    }
    held.length = static_cast<uint32_t>(r < held.m.room ? r : held.m.room);
    return 0;
}

int reply(const duet::Area& area, Held& held) {
    duet::Message m = held.m;
    m.words[0] += 1;
    m.sent = held.length;
    m.room = 0;
    int64_t r = duet::reply(m);
    return r < 0 ? failed(area, "reply failed: error -", r) : 0;
}

int log_text(const duet::Area& area, const duet_script::Header& h, const Instruction& in) {
    if (in.count > duet_abi::kMaxLogBytes || in.value > h.text_bytes ||
        in.count > h.text_bytes - in.value) {
        return bad_script(area, "a text outside the script at offset ", in.value);
    }
    char text[duet_abi::kMaxLogBytes];
    duet::load(duet_abi::kArgumentBase + h.text_offset + in.value, text, in.count);
    duet::store(area.scratch(), text, in.count);
    duet::log_write(area.scratch(), in.count);
    return 0;
}

struct Loop {
    uint32_t start; // the block's first instruction
    uint32_t end;   // one past its last
    uint32_t left;  // rounds after this one
};

// The script's header, checked: false (having logged why) if it is not a script.
bool read_header(const duet::Area& area, duet_script::Header* h) {
    duet::load(duet_abi::kArgumentBase, h, sizeof *h);
    if (h->magic != duet_script::kMagic || h->count > duet_script::kMaxInstructions) {
        bad_script(area, "not a script, or too long: magic ", h->magic);
        return false;
    }
    if (h->text_offset != sizeof *h + uint64_t{h->count} * sizeof(Instruction)) {
        bad_script(area, "a header that does not add up: instructions ", h->count);
        return false;
    }
    return true;
}

void thread_main(uint64_t stack_top, uint64_t block);

// Starts `in.handle` threads on the `in.body` instructions from `pc`, which end before `limit`.
int start_threads(const duet::Area& area, const Instruction& in, uint32_t pc, uint32_t limit) {
    if (in.handle == 0 || in.handle >= duet_abi::kMaxThreads || in.body == 0 ||
        pc + in.body > limit) {
        return bad_script(area, "a thread's block out of place at instruction ", pc - 1);
    }
    for (uint32_t i = 0; i < in.handle; ++i) {
        uint64_t stack = in.value + i * duet_script::kThreadStackStride;
        if (int64_t r = duet::map(stack, duet_script::kThreadStackBytes, duet_abi::kMapWritable);
            r < 0) {
            return failed(area, "mapping a thread's stack failed: error -", r);
        }
        uint64_t block = uint64_t{pc} << 32 | (pc + in.body);
        int64_t r = duet::start_thread(&thread_main, stack + duet_script::kThreadStackBytes, block);
        if (r < 0) {
            return failed(area, "thread_start failed: error -", r);
        }
    }
    return 0;
}

// Runs instructions [begin, end) of script `h`, with `area` for the thread's buffers: 0, or how
// the process is to end. `*threads` counts the threads it started.
int run(const duet::Area& area, const duet_script::Header& h, uint32_t begin, uint32_t end,
        uint32_t* threads) {
    Loop loops[duet_script::kMaxNesting];
    uint32_t depth = 0;
    uint32_t pc = begin;
    uint64_t sequence = 0;
    Held held;
    for (;;) {
        if (depth > 0 && pc == loops[depth - 1].end) {
            Loop& l = loops[depth - 1];
            if (l.left > 0) {
                --l.left;
                pc = l.start;
            } else {
                --depth;
            }
            continue;
        }
        if (pc == end) {
            return 0;
        }
        Instruction in;
        duet::load(kCode + uint64_t{pc} * sizeof in, &in, sizeof in);
        ++pc;
        int result = 0;
        switch (in.op) {
        case duet_script::OpCall:
            if (in.count > duet_abi::kMaxMessageBytes) {
                return bad_script(area, "a message too long: bytes ", in.count);
            }
            result = call(area, in.handle, in.count, sequence++);
            break;
        case duet_script::OpServe:
            result = serve(area, in.handle, in.count);
            break;
        case duet_script::OpReceive:
            result = receive(area, in.handle, held);
            break;
        case duet_script::OpReply:
            result = reply(area, held);
            break;
        case duet_script::OpSignal:
            if (int64_t r = duet::signal(in.handle, in.value); r < 0) {
                result = failed(area, "signal failed: error -", r);
            }
            break;
        case duet_script::OpWait:
            if (int64_t r = duet::wait(in.handle); r < 0) {
                result = failed(area, "wait failed: error -", r);
            }
            break;
        case duet_script::OpSleep:
            duet::sleep_ns(in.value);
            break;
        case duet_script::OpYield:
            duet::yield();
            break;
        case duet_script::OpCompute:
            duet::compute(in.value);
            break;
        case duet_script::OpLog:
            result = log_text(area, h, in);
            break;
        case duet_script::OpLogFrom:
            // NOTE: the result is not looked at: a refusal (-BadAddress) is the expected end,
            // and the kernel counts it.
            duet::log_write(in.value, in.count);
            break;
        case duet_script::OpMap:
            if (int64_t r =
                    duet::map(in.value, in.count, in.handle != 0 ? duet_abi::kMapWritable : 0);
                r < 0) {
                result = failed(area, "map failed: error -", r);
            }
            break;
        case duet_script::OpTouch:
            for (uint64_t at = 0; at < in.count; at += kPage) {
                duet::store(in.value + at, &at, sizeof at);
            }
            break;
        case duet_script::OpUnmap:
            if (int64_t r = duet::unmap(in.value, in.count); r < 0) {
                result = failed(area, "unmap failed: error -", r);
            }
            break;
        case duet_script::OpRead:
            (void)duet::load64(in.value);
            break;
        case duet_script::OpWrite: {
            uint64_t word = pc;
            duet::store(in.value, &word, sizeof word);
            break;
        }
        case duet_script::OpExit:
            duet::exit(static_cast<int>(in.value)); // the process, from any of its threads
        case duet_script::OpRepeat: {
            uint32_t block_end = pc + in.body;
            uint32_t limit = depth > 0 ? loops[depth - 1].end : end;
            if (in.body == 0 || block_end > limit || depth == duet_script::kMaxNesting) {
                return bad_script(area, "a repeat's block out of place at instruction ", pc - 1);
            }
            if (in.count == 0) {
                pc = block_end;
            } else {
                loops[depth++] = {pc, block_end, in.count - 1};
            }
            break;
        }
        case duet_script::OpThread:
            result = start_threads(area, in, pc, depth > 0 ? loops[depth - 1].end : end);
            if (result == 0) {
                *threads += in.handle;
                pc += in.body;
            }
            break;
        default:
            return bad_script(area, "an unknown instruction at ", pc - 1);
        }
        if (result != 0) {
            return result;
        }
    }
}

void thread_main(uint64_t stack_top, uint64_t block) {
    duet::Area area{stack_top};
    duet_script::Header h;
    uint32_t threads = 0;
    if (!read_header(area, &h)) {
        duet::exit(duet_script::kBadScript);
    }
    // NOTE: start_threads() checked the block against the script it read; this reads it again.
    uint32_t begin = static_cast<uint32_t>(block >> 32);
    uint32_t end = static_cast<uint32_t>(block);
    if (begin > end || end > h.count) {
        duet::exit(bad_script(area, "a thread's block out of place at instruction ", begin));
    }
    if (int code = run(area, h, begin, end, &threads); code != 0) {
        duet::exit(code); // the whole process ends with the error
    }
}

} // namespace

int main() {
    duet::Area area;
    duet_script::Header h;
    if (!read_header(area, &h)) {
        return duet_script::kBadScript;
    }
    uint32_t threads = 0;
    int code = run(area, h, 0, h.count, &threads);
    if (code == 0 && threads != 0) {
        duet::thread_exit(); // the process ends when its last thread has
    }
    return code;
}
