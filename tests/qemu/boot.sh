#!/usr/bin/env bash
# Boots the bare-metal kernel in QEMU through Duet's loader and checks that it reports the same
# memory map as the simulator does for the same machine.
#
#   boot.sh LOADER INITRD DUET SCENARIO [QEMU_ARGS...]
#
# LOADER and INITRD are loader.bin and initrd.tar from the build directory, DUET the duet
# program, SCENARIO a scenario file describing the machine QEMU emulates (q35, 2 GiB).
# QEMU_ARGS are appended to QEMU's command line.
#
# Passes when the kernel stops QEMU with its Success verdict (exit status 33) and the "mmap: "
# lines of its COM1 log equal, line for line, those `duet run SCENARIO` prints.
# Exit status: 0 pass, 1 fail, 2 usage.
set -euo pipefail

usage() {
    echo "usage: $0 LOADER INITRD DUET SCENARIO [QEMU_ARGS...]" >&2
    exit 2
}

[[ $# -ge 4 ]] || usage
loader=$1
initrd=$2
duet=$3
scenario=$4
shift 4

for f in "$loader" "$initrd" "$scenario"; do
    if [[ ! -f $f ]]; then
        echo "boot.sh: $f: no such file" >&2
        exit 1
    fi
done
if [[ ! -x $duet ]]; then
    echo "boot.sh: $duet: not an executable" >&2
    exit 1
fi
if ! command -v qemu-system-x86_64 >/dev/null 2>&1; then
    echo "boot.sh: qemu-system-x86_64 not found; install QEMU (Debian: apt-get install qemu-system-x86)" >&2
    exit 1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/duet-boot.XXXXXX")
trap 'rm -rf "$work"' EXIT
com1=$work/com1.log

# Verdicts written to isa-debug-exit (see hal/x86_64-baremetal/devices/debug_exit.hpp).
explain() {
    case $1 in
    33) echo "the kernel reported success" ;;
    35) echo "the kernel reported a failed check" ;;
    37) echo "the kernel panicked" ;;
    49) echo "the loader refused to boot the kernel" ;;
    124) echo "timed out after 120 s" ;;
    0) echo "QEMU stopped without a verdict (a triple fault ends QEMU with 0 under -no-reboot)" ;;
    *) echo "QEMU exited without a verdict" ;;
    esac
}

status=0
timeout 120 qemu-system-x86_64 \
    -machine q35 -m 2G -smp 1 \
    -kernel "$loader" -initrd "$initrd" \
    -serial "file:$com1" -display none -monitor none -no-reboot \
    -device isa-debug-exit,iobase=0xf4,iosize=0x04 \
    "$@" </dev/null || status=$?

if [[ $status -ne 33 ]]; then
    echo "boot.sh: QEMU exit status $status: $(explain "$status"); expected 33" >&2
    echo "--- COM1 ---" >&2
    cat "$com1" >&2 2>/dev/null || true
    exit 1
fi

sim_status=0
"$duet" run "$scenario" >"$work/sim.log" 2>"$work/sim.err" || sim_status=$?
if [[ $sim_status -ne 0 ]]; then
    echo "boot.sh: '$duet run $scenario' failed with status $sim_status" >&2
    cat "$work/sim.err" >&2
    exit 1
fi

# The serial port carries raw bytes; drop any carriage returns before comparing.
tr -d '\r' <"$com1" | grep '^mmap: ' >"$work/qemu.mmap" || true
tr -d '\r' <"$work/sim.log" | grep '^mmap: ' >"$work/sim.mmap" || true

if [[ ! -s $work/qemu.mmap ]]; then
    echo "boot.sh: the kernel printed no mmap: lines" >&2
    cat "$com1" >&2
    exit 1
fi
if [[ ! -s $work/sim.mmap ]]; then
    echo "boot.sh: '$duet run $scenario' printed no mmap: lines" >&2
    exit 1
fi

if ! diff -u --label qemu --label simulator "$work/qemu.mmap" "$work/sim.mmap"; then
    echo "boot.sh: the memory maps differ" >&2
    exit 1
fi
echo "boot.sh: QEMU and the simulator agree on $(wc -l <"$work/qemu.mmap") mmap: lines"
