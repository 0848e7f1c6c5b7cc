# Two kinds of code share one configure: host code (the simulator, hal/sim, the tests) and
# kernel code (core/ and hal/x86_64-baremetal built freestanding). Flags are attached to
# targets through these interface libraries, never to CMAKE_CXX_FLAGS, so that a sanitizer
# build of the host never leaks into the kernel.

set(DUET_COMMON_FLAGS -Wall -Wextra -Wshadow -Wnon-virtual-dtor -Wno-missing-field-initializers)
if(DUET_WERROR)
    list(APPEND DUET_COMMON_FLAGS -Werror)
endif()

# Source paths in __FILE__ are relative to the project, so that output does not depend on where
# the tree is checked out.
list(APPEND DUET_COMMON_FLAGS -fmacro-prefix-map=${PROJECT_SOURCE_DIR}/=)

add_library(duet_host_options INTERFACE)
target_compile_options(duet_host_options INTERFACE ${DUET_COMMON_FLAGS})
target_compile_definitions(duet_host_options INTERFACE $<$<CONFIG:Debug>:DUET_DEBUG=1>)
if(DUET_SANITIZE)
    target_compile_options(duet_host_options INTERFACE
        -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
    target_link_options(duet_host_options INTERFACE -fsanitize=address,undefined)
    target_compile_definitions(duet_host_options INTERFACE DUET_SANITIZE=1)
endif()

# The core's own rules hold on the host too: no exceptions, no RTTI.
add_library(duet_core_host_options INTERFACE)
target_link_libraries(duet_core_host_options INTERFACE duet_host_options)
target_compile_options(duet_core_host_options INTERFACE -fno-exceptions -fno-rtti)

# The race detector (duet run --race): only the core, and the tests' own kernels, are
# instrumented by ThreadSanitizer; the simulator's bookkeeping is shared between its fibers on
# purpose and is none of the kernel's business. Everything links the runtime.
if(DUET_RACE)
    if(DUET_SANITIZE)
        message(FATAL_ERROR "DUET_RACE (ThreadSanitizer) and DUET_SANITIZE (ASan) exclude each other")
    endif()
    target_link_options(duet_host_options INTERFACE -fsanitize=thread)
    target_compile_definitions(duet_host_options INTERFACE DUET_RACE=1)
    add_library(duet_race_instrumented INTERFACE)
    target_compile_options(duet_race_instrumented INTERFACE -fsanitize=thread)
    target_link_libraries(duet_core_host_options INTERFACE duet_race_instrumented)
endif()

# The schedule fuzzer (tests/fuzz/fuzz_schedule.cpp, `duet fuzz schedule`): a clang build of
# the simulator in which only the core carries libFuzzer's coverage instrumentation, so that
# what the fuzzer is led by is the core's behaviour, not the simulator's. tests/CMakeLists.txt
# configures such a build of this project next to the main one.
option(DUET_FUZZ_SCHEDULE "Build the schedule fuzzer (clang only): the core with coverage" OFF)
if(DUET_FUZZ_SCHEDULE)
    if(DUET_SANITIZE OR DUET_RACE)
        message(FATAL_ERROR "DUET_FUZZ_SCHEDULE builds the simulator without sanitizers")
    endif()
    add_library(duet_fuzz_instrumented INTERFACE)
    target_compile_options(duet_fuzz_instrumented INTERFACE -fsanitize=fuzzer-no-link)
    target_link_libraries(duet_core_host_options INTERFACE duet_fuzz_instrumented)
endif()

# Kernel flags: freestanding, no red zone, no SSE, kernel code model, no PIC (Debian's GCC
# defaults to PIE), and nothing that needs runtime support the kernel does not have.
set(DUET_KERNEL_FLAGS
    -ffreestanding -fno-exceptions -fno-rtti -mno-red-zone -mgeneral-regs-only
    -mcmodel=kernel -fno-pic -fno-pie -fno-stack-protector -fno-threadsafe-statics
    -fno-asynchronous-unwind-tables -fno-unwind-tables -fcf-protection=none
    -fno-omit-frame-pointer -nostdinc++)
add_library(duet_kernel_options INTERFACE)
target_compile_options(duet_kernel_options INTERFACE ${DUET_COMMON_FLAGS}
    $<$<COMPILE_LANGUAGE:CXX>:${DUET_KERNEL_FLAGS}>
    $<$<COMPILE_LANGUAGE:ASM>:-fno-pic -fno-pie>)
target_compile_definitions(duet_kernel_options INTERFACE DUET_KERNEL=1 $<$<CONFIG:Debug>:DUET_DEBUG=1>)
