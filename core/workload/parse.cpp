#include <core/workload/workload.hpp>

namespace core::workload {

const char* describe(ParseError e) {
    switch (e) {
    case ParseError::None:
        return "no error";
    case ParseError::TooSmall:
        return "shorter than its header";
    case ParseError::BadMagic:
        return "not a Duet workload (bad magic)";
    case ParseError::BadSize:
        return "its tables do not fit its size";
    case ParseError::BadIndex:
        return "an index out of range";
    case ParseError::BadRepeat:
        return "a repeat block that does not nest inside its program";
    case ParseError::BadOp:
        return "an unknown instruction";
    case ParseError::BadName:
        return "a mutex or event name without its terminating NUL";
    }
    return "unknown error";
}

ParseError parse(const void* blob, size_t size, View* out) {
    if (size < sizeof(Header)) {
        return ParseError::TooSmall;
    }
    const auto* h = static_cast<const Header*>(blob);
    for (size_t i = 0; i < sizeof kMagic; ++i) {
        if (h->magic[i] != kMagic[i]) {
            return ParseError::BadMagic;
        }
    }
    uint64_t need = sizeof(Header) + uint64_t{h->program_count} * sizeof(Program) +
                    uint64_t{h->spawn_count} * sizeof(Spawn) +
                    uint64_t{h->instruction_count} * sizeof(Instruction) +
                    (uint64_t{h->mutex_count} + h->event_count) * kNameLength;
    if (h->size > size || need > h->size) {
        return ParseError::BadSize;
    }
    if (h->mutex_count > kMaxSyncObjects || h->event_count > kMaxSyncObjects) {
        return ParseError::BadIndex;
    }
    const auto* base = static_cast<const uint8_t*>(blob);
    View v;
    v.header = h;
    v.programs = reinterpret_cast<const Program*>(base + sizeof(Header));
    v.spawns = reinterpret_cast<const Spawn*>(v.programs + h->program_count);
    v.code = reinterpret_cast<const Instruction*>(v.spawns + h->spawn_count);
    v.mutex_names = reinterpret_cast<const char(*)[kNameLength]>(v.code + h->instruction_count);
    v.event_names = v.mutex_names + h->mutex_count;
    for (uint32_t i = 0; i < h->mutex_count + h->event_count; ++i) {
        const char* name = v.mutex_names[i];
        size_t n = 0;
        while (n < kNameLength && name[n] != '\0') {
            ++n;
        }
        if (n == kNameLength) {
            return ParseError::BadName;
        }
    }
    for (uint32_t s = 0; s < h->spawn_count; ++s) {
        if (v.spawns[s].program >= h->program_count) {
            return ParseError::BadIndex;
        }
    }
    for (uint32_t p = 0; p < h->program_count; ++p) {
        const Program& prog = v.programs[p];
        uint64_t end = uint64_t{prog.first} + prog.count;
        if (end > h->instruction_count) {
            return ParseError::BadIndex;
        }
        // Repeat bodies must lie inside the program and inside each other.
        uint64_t ends[kMaxNesting];
        uint32_t depth = 0;
        for (uint64_t pc = prog.first; pc < end; ++pc) {
            while (depth > 0 && pc >= ends[depth - 1]) {
                --depth;
            }
            const Instruction& in = v.code[pc];
            switch (in.op) {
            case Op::Compute:
            case Op::Sleep:
            case Op::Yield:
            case Op::Exit:
                break;
            case Op::AllocFrames:
            case Op::AllocHeap:
            case Op::Free:
            case Op::Touch:
                if (in.a >= kMaxSlots) {
                    return ParseError::BadIndex;
                }
                break;
            case Op::Spawn:
                if (in.a >= h->program_count) {
                    return ParseError::BadIndex;
                }
                break;
            case Op::Lock:
            case Op::Unlock:
                if (in.a >= h->mutex_count) {
                    return ParseError::BadIndex;
                }
                break;
            case Op::Wait:
            case Op::Signal:
                if (in.a >= h->event_count) {
                    return ParseError::BadIndex;
                }
                break;
            case Op::Repeat: {
                uint64_t body_end = pc + 1 + in.a;
                if (body_end > end || depth == kMaxNesting ||
                    (depth > 0 && body_end > ends[depth - 1])) {
                    return ParseError::BadRepeat;
                }
                ends[depth++] = body_end;
                break;
            }
            default:
                return ParseError::BadOp;
            }
        }
    }
    *out = v;
    return ParseError::None;
}

} // namespace core::workload
