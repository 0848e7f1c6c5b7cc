#pragma once

// The format of a scenario process's script: what the simulator compiles a scenario's
// `process` block into (sim/process_builder.cpp) and user/programs/script.cpp runs in ring 3,
// on both machines. The kernel maps the file read-only at duet_abi::kArgumentBase (the
// process's sys/programs line names it with args=) and knows nothing of what it holds.
//
// A header, `count` instructions of 16 bytes, then the text the Log instructions point into.
// Handles are numbered as the process's sys/programs line gives them (1 first); addresses are
// resolved by the compiler (a region a process maps is at the same address in every copy of
// it, so another process's region has a known address, at which the reader has nothing).
//
// The program trusts nothing in it: an instruction it does not know, a block that runs past
// its parent's, a text outside the file, is reported and ends the process with kBadScript.

#include <stdint.h>

namespace duet_script {

inline constexpr uint32_t kMagic = 0x31'54'43'44; // "DCT1", little-endian
inline constexpr uint32_t kMaxInstructions = 4000;
inline constexpr uint32_t kMaxNesting = 8;

struct Header {
    uint32_t magic = kMagic;
    uint32_t count = 0;       // instructions, right after the header
    uint32_t text_offset = 0; // from the start of the file: right after the instructions
    uint32_t text_bytes = 0;
};

// NOTE: from 1: zeros (a block cut short, the page past its end) are no instruction.
enum Op : uint8_t {
    OpCall = 1, // call(handle) with `count` bytes (<= 256) and word 0 a sequence number; the
                // reply must carry it plus one and the bytes back
    OpServe,    // answer calls on `handle` (reply: word 0 plus one, the bytes echoed) until no
                // caller is left (PeerGone), or after `count` of them if `count` is not 0
    OpSignal,   // signal(handle, value)
    OpWait,     // wait(handle)
    OpSleep,    // sleep(value ns)
    OpYield,    // yield()
    OpLog,      // log `count` bytes of text at text offset `value`
    OpLogFrom,  // log_write(value, count): the kernel reads the text at that address, which may
                // well not be the process's (it is refused then: that is the point)
    OpMap,      // map(value, count bytes, writable if `handle` is 1)
    OpTouch,    // write a word to every page of [value, value + count)
    OpUnmap,    // unmap(value, count)
    OpRead,     // load a word from `value`: a fault there kills the process
    OpWrite,    // store a word at `value`: likewise
    OpExit,     // exit(value)
    OpRepeat,   // run the `body` instructions after this one `count` times
    OpCompute,  // compute for `value` ns in user mode (duet::compute)
    OpReceive,  // take one call on `handle` and hold it, unanswered
    OpReply,    // answer the call OpReceive holds as OpServe would
    OpThread,   // start `handle` threads (1 to 7), each running the `body` instructions after
                // this one on a stack of its own: kThreadStackBytes mapped at `value` plus
                // kThreadStackStride for each one before it; this thread goes on past them.
                // A thread that ends on an error ends the process with it.
    OpCount,
};

inline constexpr uint64_t kThreadStackBytes = 16 * 1024;
inline constexpr uint64_t kThreadStackStride = kThreadStackBytes + 4096; // a gap page between

struct Instruction {
    uint8_t op = 0;
    uint8_t handle = 0; // OpCall, OpServe, OpSignal, OpWait: 1 to 16; OpMap: writable;
                        // OpThread: how many threads
    uint16_t body = 0;  // OpRepeat, OpThread
    uint32_t count = 0;
    uint64_t value = 0;
};
static_assert(sizeof(Instruction) == 16);
static_assert(sizeof(Header) == 16);

// How a script's process ends when something went wrong (0 when it ran to its end or an
// OpExit): an IPC, map or unmap call that failed ends it with the error's number (1 to 9,
// duet_abi::Errno); these are the others.
inline constexpr int kWrongReply = 64; // a reply did not carry what the server sends back
inline constexpr int kBadScript = 65;  // the script is malformed

} // namespace duet_script
