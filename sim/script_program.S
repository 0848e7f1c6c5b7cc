// The user program that runs scenario processes' scripts (user/programs/script.cpp), as built
// for ring 3 and stripped: the simulator puts it in the initrds it writes (sim/process_builder.cpp).

    .section .rodata, "a", @progbits
    .globl duet_script_program
    .globl duet_script_program_end
    .balign 16
duet_script_program:
    .incbin DUET_SCRIPT_PROGRAM
duet_script_program_end:

    .section .note.GNU-stack, "", @progbits
