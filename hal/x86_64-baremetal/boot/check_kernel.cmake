# Post-link check of kernel.elf against what a BOOTBOOT level 1 loader accepts, and a report of
# its size. Run as: cmake -DKERNEL=path/to/kernel.elf -P check_kernel.cmake
#
# The linker script already refuses an oversized image; this script also catches a second
# PT_LOAD (which a level 1 loader would silently drop) and a wrong load address.

if(NOT KERNEL)
    message(FATAL_ERROR "check_kernel.cmake: pass -DKERNEL=<kernel.elf>")
endif()

set(LIMIT 1826816) # 0x1BE000: 2 MiB - 256 KiB - 8 KiB
set(KERNEL_VIRT "ffffffffffe02000")

# Reads LENGTH bytes at OFFSET as a little-endian number; sets OUT to its hex digits,
# most significant first, without a prefix.
function(read_le OFFSET LENGTH OUT)
    file(READ "${KERNEL}" raw OFFSET ${OFFSET} LIMIT ${LENGTH} HEX)
    string(LENGTH "${raw}" n)
    math(EXPR want "${LENGTH} * 2")
    if(NOT n EQUAL want)
        message(FATAL_ERROR "${KERNEL}: truncated at offset ${OFFSET}")
    endif()
    set(hex "")
    math(EXPR last "${LENGTH} - 1")
    foreach(i RANGE ${last})
        math(EXPR pos "${i} * 2")
        string(SUBSTRING "${raw}" ${pos} 2 byte)
        set(hex "${byte}${hex}")
    endforeach()
    set(${OUT} "${hex}" PARENT_SCOPE)
endfunction()

# Small values only (anything that fits CMake's signed 64-bit math).
function(read_le_number OFFSET LENGTH OUT)
    read_le(${OFFSET} ${LENGTH} hex)
    math(EXPR value "0x${hex}")
    set(${OUT} ${value} PARENT_SCOPE)
endfunction()

file(READ "${KERNEL}" magic LIMIT 6 HEX)
if(NOT magic STREQUAL "7f454c460201")
    message(FATAL_ERROR "${KERNEL}: not a little-endian ELF64 file")
endif()

read_le(24 8 entry)
read_le_number(32 8 phoff)
read_le_number(54 2 phentsize)
read_le_number(56 2 phnum)

set(loads 0)
math(EXPR last "${phnum} - 1")
foreach(i RANGE ${last})
    math(EXPR ph "${phoff} + ${i} * ${phentsize}")
    read_le_number(${ph} 4 type)
    if(type EQUAL 1)
        math(EXPR loads "${loads} + 1")
        math(EXPR at "${ph} + 16")
        read_le(${at} 8 vaddr)
        math(EXPR at "${ph} + 32")
        read_le_number(${at} 8 filesz)
        math(EXPR at "${ph} + 40")
        read_le_number(${at} 8 memsz)
    endif()
endforeach()

get_filename_component(name "${KERNEL}" NAME)
if(NOT loads EQUAL 1)
    message(FATAL_ERROR "${name}: ${loads} PT_LOAD segments; a BOOTBOOT level 1 kernel has exactly one")
endif()
if(NOT vaddr STREQUAL KERNEL_VIRT)
    message(FATAL_ERROR "${name}: the segment is at 0x${vaddr}, not 0x${KERNEL_VIRT}")
endif()
# The entry point must lie in the segment's file-backed part; compare the low 32 bits, since
# the high ones are equal once the segment address is.
string(SUBSTRING "${entry}" 0 8 entry_high)
string(SUBSTRING "${entry}" 8 8 entry_low)
math(EXPR entry_offset "0x${entry_low} - 0xffe02000")
if(NOT entry_high STREQUAL "ffffffff" OR entry_offset LESS 0 OR NOT entry_offset LESS filesz)
    message(FATAL_ERROR "${name}: the entry point 0x${entry} is outside the segment")
endif()

math(EXPR bss "${memsz} - ${filesz}")
math(EXPR percent "${memsz} * 100 / ${LIMIT}")
if(NOT memsz LESS LIMIT)
    message(FATAL_ERROR "${name}: code + data + bss is ${memsz} bytes; BOOTBOOT level 1 allows less than ${LIMIT}")
endif()
message("${name}: ${memsz} bytes (${filesz} code + data, ${bss} bss), ${percent}% of the ${LIMIT}-byte BOOTBOOT level 1 limit")
