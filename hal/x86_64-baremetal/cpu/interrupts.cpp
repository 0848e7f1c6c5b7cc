// The IDT, the exception report and the dispatch of device interrupts and IPIs to the core.

#include "cpu/interrupts.hpp"

#include "cpu/gdt.hpp"
#include "cpu/percpu.hpp"
#include "cpu/time.hpp"
#include "cpu/user.hpp"
#include "cpu/vectors.hpp"
#include "cpu/x86.hpp"
#include "devices/lapic.hpp"
#include "devices/serial.hpp"
#include "devices/stop.hpp"

#include <core/irq_entry.hpp>
#include <core/lib/compiler.hpp>
#include <core/lib/line.hpp>
#include <core/user/process.hpp>
#include <hal/cpu.hpp>
#include <hal/stop.hpp>

extern "C" const char x86_interrupt_stubs[];

namespace {

using namespace x86_vectors;

struct [[gnu::packed]] IdtGate {
    uint16_t offset_low;
    uint16_t selector;
    uint8_t ist;
    uint8_t type;
    uint16_t offset_mid;
    uint32_t offset_high;
    uint32_t reserved;
};
static_assert(sizeof(IdtGate) == 16);

struct [[gnu::packed]] IdtPointer {
    uint16_t limit;
    uint64_t base;
};

constexpr uint8_t kInterruptGate = 0x8E; // present, ring 0, 64-bit interrupt gate (IF cleared)
constexpr size_t kStubSize = 16;         // cpu/interrupt_entry.S

alignas(16) IdtGate s_idt[256];

constexpr const char* kExceptionNames[kExceptionCount] = {
    "divide error",
    "debug",
    "NMI",
    "breakpoint",
    "overflow",
    "bound range exceeded",
    "invalid opcode",
    "device not available",
    "double fault",
    "coprocessor segment overrun",
    "invalid TSS",
    "segment not present",
    "stack fault",
    "general protection",
    "page fault",
    "reserved",
    "x87 floating point",
    "alignment check",
    "machine check",
    "SIMD floating point",
    "virtualization",
    "control protection",
    "reserved",
    "reserved",
    "reserved",
    "reserved",
    "reserved",
    "reserved",
    "hypervisor injection",
    "VMM communication",
    "security",
    "reserved",
};

struct ReportBuffer {
    char bytes[128];
};
// One per CPU, so that a report costs the stack it runs on (the bring-up stack, for an
// unexpected interrupt) next to nothing.
ReportBuffer s_report_buffers[bootboot_abi::kMaxCores];

// One report line, built without the core's console lock: the CPU that faulted may hold it.
class ReportLine {
public:
    ReportLine() : m_line(s_report_buffers[hal::cpu_index()].bytes, sizeof(ReportBuffer::bytes)) {}

    ReportLine& str(const char* s) {
        m_line.str(s);
        return *this;
    }
    ReportLine& dec(uint64_t v) {
        m_line.dec(v);
        return *this;
    }
    // "0x" and the digits, without leading zeros.
    ReportLine& hex(uint64_t v) {
        m_line.hex(v, 0);
        return *this;
    }
    void write() {
        m_line.terminate('\n');
        x86_serial::write_report(m_line.text(), m_line.length() + 1);
    }

private:
    core::LineBuffer m_line;
};

[[noreturn]] NOINLINE void unexpected_interrupt(uint64_t vector) {
    ReportLine()
        .str("panic: unexpected interrupt vector ")
        .dec(vector)
        .str(" on cpu ")
        .dec(hal::cpu_index())
        .write();
    hal::halt_machine(hal::ExitCode::Panic);
}

[[noreturn]] NOINLINE void ac_set_in_handler(uint64_t vector) {
    ReportLine()
        .str("panic: interrupt vector ")
        .dec(vector)
        .str(" handled with RFLAGS.AC set (SMAP off) on cpu ")
        .dec(hal::cpu_index())
        .write();
    hal::halt_machine(hal::ExitCode::Panic);
}

} // namespace

namespace x86_interrupts {

BOOT_CODE void build_idt() {
    for (size_t v = 0; v < 256; ++v) {
        auto addr = reinterpret_cast<uint64_t>(x86_interrupt_stubs + v * kStubSize);
        uint8_t ist = 0;
        if (v == kNmi) {
            ist = x86_gdt::kIstNmi;
        } else if (v < kExceptionCount) {
            ist = x86_gdt::kIstFault;
        }
        s_idt[v] = IdtGate{static_cast<uint16_t>(addr & 0xFFFF),
                           x86_gdt::kKernelCode,
                           ist,
                           kInterruptGate,
                           static_cast<uint16_t>((addr >> 16) & 0xFFFF),
                           static_cast<uint32_t>(addr >> 32),
                           0};
    }
}

BOOT_CODE void load_idt() {
    IdtPointer idtr{sizeof s_idt - 1, reinterpret_cast<uint64_t>(s_idt)};
    asm volatile("lidt %0" : : "m"(idtr) : "memory");
    // NOTE: paired with the fence in x86_stop::stop_other_cpus(): either that CPU sees this
    // one ready and sends it an NMI, or this one sees the machine stopping and stops itself.
    __atomic_store_n(&x86_percpu::this_block().interrupts_ready, true, __ATOMIC_SEQ_CST);
    if (x86_stop::stopping()) {
        x86::halt_forever();
    }
}

} // namespace x86_interrupts

extern "C" void x86_exception(ExceptionFrame* frame) {
    // The NMI that stops the machine (x86_stop) is not an error.
    if (frame->vector == kNmi && x86_stop::stopping()) {
        x86::halt_forever();
    }
    uint64_t cr2 = x86::read_cr2();
    if (x86_user::redirect_fault(frame, cr2)) {
        return;
    }
    x86_percpu::Block& b = x86_percpu::this_block();
    if (b.in_exception) {
        // The report itself failed: say the least that can be said and stop.
        ReportLine()
            .str("panic: exception ")
            .dec(frame->vector)
            .str(" while reporting an exception on cpu ")
            .dec(b.index)
            .write();
        hal::halt_machine(hal::ExitCode::Panic);
    }
    b.in_exception = true;
    uint64_t v = frame->vector;
    if (v == kPageFault) {
        // Where it happened, which the core's report cannot know; then the core's verdict,
        // which names a kernel stack overflow (a fault in a guard page) as such.
        ReportLine()
            .str("x86: page fault at rip ")
            .hex(frame->rip)
            .str(" rsp ")
            .hex(frame->rsp)
            .str(" on cpu ")
            .dec(b.index)
            .write();
        core::on_page_fault(hal::VirtAddr(cr2), static_cast<uint32_t>(frame->error));
        // NOTE: it returned, so the fault was resolved, but nothing resumes the faulting code
        // yet: exceptions run on an IST stack and never return. Report it as one.
    }
    ReportLine()
        .str("panic: exception ")
        .dec(v)
        .str(" (")
        .str(v < kExceptionCount ? kExceptionNames[v] : "?")
        .str(") error ")
        .hex(frame->error)
        .str(" rip ")
        .hex(frame->rip)
        .str(" cr2 ")
        .hex(cr2)
        .str(" on cpu ")
        .dec(b.index)
        .write();
    hal::halt_machine(hal::ExitCode::Panic);
}

extern "C" void x86_interrupt(uint64_t vector, uint32_t from_user) {
    // An interrupt gate leaves RFLAGS.AC as it was: set by a user copy's STAC, or by a program
    // in ring 3 (POPF). The entry clears it (interrupt_entry.S); a handler running with it set
    // would run with SMAP off.
    if (x86_smap_enabled && (x86::read_rflags() & x86::kRflagsAc) != 0) {
        ac_set_in_handler(vector);
    }
    if (vector == kTimer) {
        lapic::eoi();
        x86_time::on_timer_interrupt();
        if (from_user != 0) {
            core::user::on_return_to_user(); // may end the thread (its process is ending)
        }
        return;
    }
    if (vector >= kIpiBase && vector < kIpiBase + kIpiCount) {
        // NOTE: EOI first: core::on_ipi() may switch threads before it returns.
        lapic::eoi();
        x86_percpu::Block& b = x86_percpu::this_block();
        ++b.ipis;
        if (!b.in_self_test) {
            core::on_ipi(static_cast<hal::IpiKind>(vector - kIpiBase));
        }
        if (from_user != 0) {
            core::user::on_return_to_user();
        }
        return;
    }
    if (vector == kApicSpurious || vector == kPicSpuriousMaster || vector == kPicSpuriousSlave) {
        return; // spurious: no EOI
    }
    unexpected_interrupt(vector);
}
