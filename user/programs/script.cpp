// Runs a scenario process's script (duet/script.hpp), which the kernel mapped read-only at
// duet_abi::kArgumentBase: system calls, IPC and memory accesses in ring 3, as the scenario's
// `process` block says (docs/scenarios.md, "Processes"). Every read of the script is a user
// load, so in the simulator it goes through the simulated MMU like any other access.

#include <duet/script.hpp>
#include <duet/syscall.hpp>

namespace {

using duet_script::Instruction;

constexpr uint64_t kPage = 4096;
constexpr uint64_t kCode = duet_abi::kArgumentBase + sizeof(duet_script::Header);

int bad_script(const char* what, uint64_t at) {
    duet::log_number(what, at);
    return duet_script::kBadScript;
}

int failed(const char* what, int64_t result) {
    duet::log_number(what, static_cast<uint64_t>(-result));
    return static_cast<int>(-result);
}

// A byte pattern for message `sequence`, so that an echo that lost or moved a byte shows.
uint8_t pattern(uint64_t sequence, uint32_t i) {
    return static_cast<uint8_t>('a' + (sequence + i) % 26);
}

// One call: `bytes` of pattern out, the same back, word 0 plus one.
int call(uint64_t handle, uint32_t bytes, uint64_t sequence) {
    uint8_t out[duet_abi::kMaxMessageBytes];
    for (uint32_t i = 0; i < bytes; ++i) {
        out[i] = pattern(sequence, i);
    }
    duet::store(duet::kSendBuffer, out, bytes);
    duet::Message m;
    m.words[0] = sequence;
    m.buffer = duet::kSendBuffer;
    m.sent = bytes;
    m.room = duet_abi::kMaxMessageBytes;
    int64_t r = duet::call(handle, m);
    if (r < 0) {
        return failed("call failed: error -", r);
    }
    uint8_t back[duet_abi::kMaxMessageBytes];
    duet::load(duet::kSendBuffer, back, bytes);
    bool same = static_cast<uint64_t>(r) == bytes && m.words[0] == sequence + 1;
    for (uint32_t i = 0; same && i < bytes; ++i) {
        same = back[i] == out[i];
    }
    if (!same) {
        duet::log_number("a wrong reply to call ", sequence);
        return duet_script::kWrongReply;
    }
    return 0;
}

// Answers calls until none is left (PeerGone) or, if `limit` is not 0, `limit` of them.
int serve(uint64_t handle, uint32_t limit) {
    duet::Message m;
    m.buffer = duet::kSendBuffer;
    m.room = duet_abi::kMaxMessageBytes;
    int64_t r = duet::recv(handle, m);
    uint32_t served = 0;
    while (r >= 0) {
        m.words[0] += 1;
        m.sent = static_cast<uint32_t>(r < m.room ? r : m.room);
        if (++served == limit) {
            m.room = 0; // a reply only sends
            r = duet::reply(m);
            return r < 0 ? failed("reply failed: error -", r) : 0;
        }
        r = duet::reply_recv(handle, m);
    }
    return r == -duet_abi::PeerGone ? 0 : failed("receive failed: error -", r);
}

// A call taken by OpReceive and not yet answered: its words and bytes (in kReceiveBuffer, so
// that the process's own calls meanwhile leave them be).
struct Held {
    duet::Message m;
    uint32_t length = 0;
};

int receive(uint64_t handle, Held& held) {
    held.m = duet::Message{};
    held.m.buffer = duet::kReceiveBuffer;
    held.m.room = duet_abi::kMaxMessageBytes;
    int64_t r = duet::recv(handle, held.m);
    if (r < 0) {
        return failed("receive failed: error -", r);
    }
    held.length = static_cast<uint32_t>(r < held.m.room ? r : held.m.room);
    return 0;
}

int reply(Held& held) {
    duet::Message m = held.m;
    m.words[0] += 1;
    m.sent = held.length;
    m.room = 0;
    int64_t r = duet::reply(m);
    return r < 0 ? failed("reply failed: error -", r) : 0;
}

int log_text(const duet_script::Header& h, const Instruction& in) {
    if (in.count > duet_abi::kMaxLogBytes || in.value > h.text_bytes ||
        in.count > h.text_bytes - in.value) {
        return bad_script("a text outside the script at offset ", in.value);
    }
    char text[duet_abi::kMaxLogBytes];
    duet::load(duet_abi::kArgumentBase + h.text_offset + in.value, text, in.count);
    duet::store(duet::kScratch, text, in.count);
    duet::log_write(duet::kScratch, in.count);
    return 0;
}

struct Loop {
    uint32_t start; // the block's first instruction
    uint32_t end;   // one past its last
    uint32_t left;  // rounds after this one
};

} // namespace

int main() {
    duet_script::Header h;
    duet::load(duet_abi::kArgumentBase, &h, sizeof h);
    if (h.magic != duet_script::kMagic || h.count > duet_script::kMaxInstructions) {
        return bad_script("not a script, or too long: magic ", h.magic);
    }
    if (h.text_offset != sizeof h + uint64_t{h.count} * sizeof(Instruction)) {
        return bad_script("a header that does not add up: instructions ", h.count);
    }
    Loop loops[duet_script::kMaxNesting];
    uint32_t depth = 0;
    uint32_t pc = 0;
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
        if (pc == h.count) {
            return 0;
        }
        Instruction in;
        duet::load(kCode + uint64_t{pc} * sizeof in, &in, sizeof in);
        ++pc;
        int result = 0;
        switch (in.op) {
        case duet_script::OpCall:
            if (in.count > duet_abi::kMaxMessageBytes) {
                return bad_script("a message too long: bytes ", in.count);
            }
            result = call(in.handle, in.count, sequence++);
            break;
        case duet_script::OpServe:
            result = serve(in.handle, in.count);
            break;
        case duet_script::OpReceive:
            result = receive(in.handle, held);
            break;
        case duet_script::OpReply:
            result = reply(held);
            break;
        case duet_script::OpSignal:
            if (int64_t r = duet::signal(in.handle, in.value); r < 0) {
                result = failed("signal failed: error -", r);
            }
            break;
        case duet_script::OpWait:
            if (int64_t r = duet::wait(in.handle); r < 0) {
                result = failed("wait failed: error -", r);
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
            result = log_text(h, in);
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
                result = failed("map failed: error -", r);
            }
            break;
        case duet_script::OpTouch:
            for (uint64_t at = 0; at < in.count; at += kPage) {
                duet::store(in.value + at, &at, sizeof at);
            }
            break;
        case duet_script::OpUnmap:
            if (int64_t r = duet::unmap(in.value, in.count); r < 0) {
                result = failed("unmap failed: error -", r);
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
            return static_cast<int>(in.value);
        case duet_script::OpRepeat: {
            uint32_t end = pc + in.body;
            uint32_t limit = depth > 0 ? loops[depth - 1].end : h.count;
            if (in.body == 0 || end > limit || depth == duet_script::kMaxNesting) {
                return bad_script("a repeat's block out of place at instruction ", pc - 1);
            }
            if (in.count == 0) {
                pc = end;
            } else {
                loops[depth++] = {pc, end, in.count - 1};
            }
            break;
        }
        default:
            return bad_script("an unknown instruction at ", pc - 1);
        }
        if (result != 0) {
            return result;
        }
    }
}
