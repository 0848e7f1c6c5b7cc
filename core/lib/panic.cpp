#include <core/lib/log.hpp>
#include <core/lib/panic.hpp>
#include <core/lib/result.hpp>

#include <hal/cpu.hpp>
#include <hal/irq.hpp>
#include <hal/stop.hpp>

namespace core {

const char* describe(Error e) {
    switch (e) {
    case Error::OutOfMemory:
        return "out of memory";
    case Error::InvalidArgument:
        return "invalid argument";
    case Error::NotFound:
        return "not found";
    case Error::Busy:
        return "busy";
    case Error::DoubleFree:
        return "double free";
    case Error::ForeignAddress:
        return "foreign address";
    case Error::InjectedFault:
        return "injected fault";
    case Error::AddressOutOfRange:
        return "address beyond the 52-bit physical address space";
    case Error::CapacityExceeded:
        return "a fixed-size table is full";
    }
    return "unknown error";
}

void panic(const char* message) {
    (void)hal::irq_save();
    LogLine("panic").str(message).str(" (cpu ").dec(hal::cpu_index()).chr(')');
    hal::halt_machine(hal::ExitCode::Panic);
}

void panic_error(const char* what, Error error) {
    (void)hal::irq_save();
    LogLine("panic")
        .str(what)
        .str(" failed: ")
        .str(describe(error))
        .str(" (cpu ")
        .dec(hal::cpu_index())
        .chr(')');
    hal::halt_machine(hal::ExitCode::Panic);
}

void assertion_failed(const char* expr, const char* file, int line) {
    (void)hal::irq_save();
    LogLine("panic")
        .str("assertion failed: ")
        .str(expr)
        .str(" at ")
        .str(file)
        .chr(':')
        .dec(line)
        .str(" (cpu ")
        .dec(hal::cpu_index())
        .chr(')');
    hal::halt_machine(hal::ExitCode::Panic);
}

} // namespace core
