// The simulator's fiber code in assembly: the switch's entry and the fibers' outermost frames.
//
// duet_jump_fcontext: Boost.Context's jump_fcontext, entered so that the host CPU's return
// stack buffer stays in step across the switch.
//
// jump_fcontext is called (the call pushes a return-stack entry) but leaves by popping its
// return address and jumping to the other fiber's (no return-stack entry is consumed). Every
// switch so left one stale entry on top, and each `ret` on the way back up the resumed
// fiber's call chain (Machine::context_switch, hal::context_switch, schedule, yield) was
// predicted one frame off: a misprediction per frame per switch. Here jump_fcontext is
// entered by a jump with the return address pushed by hand, and the resumed fiber comes back
// through the `ret` below, which consumes the entry our caller's `call` pushed: calls and
// returns balance, and the resumed fiber (running the same code) returns where predicted.
// Only where the code is the same on both sides, though: between the executor and a CPU the
// plain jump_fcontext does better (hal_sim/fiber.hpp, Entry).
//
// Same arguments and result as jump_fcontext (to: rdi, data: rsi; transfer_t in rax:rdx).

    .text
    .globl duet_jump_fcontext
    .type duet_jump_fcontext, @function
    .p2align 4
duet_jump_fcontext:
    .cfi_startproc
    subq $8, %rsp // keep jump_fcontext's entry alignment that of a call
    .cfi_adjust_cfa_offset 8
    leaq 1f(%rip), %rax
    pushq %rax
    .cfi_adjust_cfa_offset 8
    jmp *jump_fcontext@GOTPCREL(%rip) // through the GOT: no PLT stub on the way
1:
    .cfi_adjust_cfa_offset -8
    addq $8, %rsp
    .cfi_adjust_cfa_offset -8
    ret
    .cfi_endproc
    .size duet_jump_fcontext, .-duet_jump_fcontext

// duet_fiber_start_cpu, duet_fiber_start_context: where fibers begin. make_fcontext() is given
// one of these as the fiber's function; each calls the C++ entry (which never returns) with the
// transfer_t that started the fiber, still in rdi:rsi.
//
// NOTE: each is the outermost frame of its fiber's stack: its return address is undefined in
// the unwind table, so that a debugger's backtrace (gdb's bt, duet bt) ends here. Entered
// directly, the C++ entry's return address would be Boost.Context's trampoline, whose unwind
// information leads on into the uninitialised words above it: junk frames, or "previous frame
// inner to this frame".
.macro FIBER_START name, entry
    .globl \name
    .type \name, @function
    .p2align 4
\name:
    .cfi_startproc
    .cfi_undefined rip
    xorl %ebp, %ebp // the end of the frame-pointer chain, too
    pushq %rbp      // the entry's stack alignment that of a call
    .cfi_adjust_cfa_offset 8
    call \entry@PLT
    ud2             // the entry must not return
    .cfi_endproc
    .size \name, .-\name
.endm

    FIBER_START duet_fiber_start_cpu, duet_sim_cpu_entry
    FIBER_START duet_fiber_start_context, duet_sim_context_entry

    .section .note.GNU-stack, "", @progbits
