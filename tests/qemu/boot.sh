#!/usr/bin/env bash
# Boots the bare-metal kernel in QEMU through Duet's loader and checks what it reports: its
# verdict, that every CPU came online, and that its memory map is the simulator's.
#
#   boot.sh [OPTIONS] LOADER INITRD DUET SCENARIO [QEMU_ARGS...]
#
# LOADER and INITRD are loader.bin and initrd.tar from the build directory, DUET the duet
# program, SCENARIO a scenario file describing the machine QEMU emulates. QEMU_ARGS are appended
# to QEMU's command line.
#
# Options:
#   --smp N              QEMU's -smp and the simulator's --cpus (default 1)
#   -m SIZE              QEMU's memory (default 2G)
#   --machine NAME       QEMU's machine (default q35)
#   --sim-memory PRESET  the simulator's --memory (default: the scenario's)
#   --config FILE        boot a copy of INITRD with FILE as its sys/config (the environment)
#   --iso MAKE_ISO       boot from a CD image that MAKE_ISO (tools/make-iso.sh) makes with GRUB,
#                        instead of QEMU's own Multiboot support (-kernel, -initrd)
#   --expect-status N    the exit status QEMU must end with (default 33, the kernel's success)
#   --expect REGEX       a line of the COM1 log must match this extended regex (repeatable)
#   --no-sim             do not compare the memory map with the simulator's
#   --timeout SECONDS    how long QEMU may run (default 30)
#   --keep-com1 FILE     also copy the COM1 log (carriage returns dropped) to FILE
#
# With the default status it also requires the line "smp: N cpus online" (N from --smp), and,
# unless --no-sim, that the boot lines of the COM1 log that depend on the map and the CPU count
# alone (every "mmap: ", "mm: " and "vm: " line, and the first "frames: " line, the frame
# allocator's at the hand-over) equal, line for line, those
# `duet run SCENARIO --cpus N [--memory PRESET]` prints.
# Exit status: 0 pass, 1 fail, 2 usage.
set -euo pipefail

usage() {
    echo "usage: $0 [--smp N] [-m SIZE] [--machine NAME] [--sim-memory PRESET] [--config FILE]" \
        "[--iso MAKE_ISO] [--expect-status N] [--expect REGEX]... [--no-sim] [--timeout SECONDS]" \
        "[--keep-com1 FILE]" \
        "LOADER INITRD DUET SCENARIO [QEMU_ARGS...]" >&2
    exit 2
}

smp=1
memory=2G
machine=q35
sim_memory=
config=
make_iso=
expect_status=33
expects=()
sim=1
time_limit=30
keep_com1=
while [[ $# -gt 0 ]]; do
    case $1 in
    --smp) smp=${2:?--smp needs a CPU count}; shift 2 ;;
    -m) memory=${2:?-m needs a size}; shift 2 ;;
    --machine) machine=${2:?--machine needs a name}; shift 2 ;;
    --sim-memory) sim_memory=${2:?--sim-memory needs a preset}; shift 2 ;;
    --config) config=${2:?--config needs a file}; shift 2 ;;
    --iso) make_iso=${2:?--iso needs the image maker}; shift 2 ;;
    --expect-status) expect_status=${2:?--expect-status needs a number}; shift 2 ;;
    --expect) expects+=("${2:?--expect needs a regex}"); shift 2 ;;
    --no-sim) sim=0; shift ;;
    --timeout) time_limit=${2:?--timeout needs seconds}; shift 2 ;;
    --keep-com1) keep_com1=${2:?--keep-com1 needs a file}; shift 2 ;;
    --) shift; break ;;
    -*) echo "boot.sh: unknown option '$1'" >&2; usage ;;
    *) break ;;
    esac
done

[[ $# -ge 4 ]] || usage
loader=$1
initrd=$2
duet=$3
scenario=$4
shift 4

for f in "$loader" "$initrd" "$scenario" ${config:+"$config"} ${make_iso:+"$make_iso"}; do
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

# The environment: a copy of the initrd with sys/config added (sys/core stays first).
if [[ -n $config ]]; then
    mkdir -p "$work/initrd/sys"
    tar -xf "$initrd" -C "$work/initrd" sys/core
    cp "$config" "$work/initrd/sys/config"
    tar --format=ustar --owner=0 --group=0 --numeric-owner -cf "$work/initrd.tar" \
        -C "$work/initrd" sys/core sys/config
    initrd=$work/initrd.tar
fi

boot=(-kernel "$loader" -initrd "$initrd")
if [[ -n $make_iso ]]; then
    "$make_iso" "$loader" "$initrd" "$work/duet.iso"
    boot=(-cdrom "$work/duet.iso")
fi

# Verdicts written to isa-debug-exit (see hal/x86_64-baremetal/devices/debug_exit.hpp).
explain() {
    case $1 in
    33) echo "the kernel reported success" ;;
    35) echo "the kernel reported a failed check" ;;
    37) echo "the kernel panicked" ;;
    49) echo "the loader refused to boot the kernel" ;;
    124) echo "timed out after $time_limit s" ;;
    0) echo "QEMU stopped without a verdict (a triple fault ends QEMU with 0 under -no-reboot)" ;;
    *) echo "QEMU exited without a verdict" ;;
    esac
}

fail() {
    echo "boot.sh: $*" >&2
    echo "--- COM1 ---" >&2
    cat "$com1" >&2 2>/dev/null || true
    exit 1
}

status=0
start=$(date +%s%N)
timeout "$time_limit" qemu-system-x86_64 \
    -machine "$machine" -m "$memory" -smp "$smp" "${boot[@]}" \
    -serial "file:$com1" -display none -monitor none -no-reboot \
    -device isa-debug-exit,iobase=0xf4,iosize=0x04 \
    "$@" </dev/null || status=$?
elapsed_ms=$((($(date +%s%N) - start) / 1000000))

if [[ $status -ne $expect_status ]]; then
    fail "QEMU exit status $status: $(explain "$status"); expected $expect_status ($(explain "$expect_status"))"
fi

# The serial port carries raw bytes; drop any carriage returns before comparing.
tr -d '\r' <"$com1" >"$work/com1.txt"
if [[ -n $keep_com1 ]]; then
    cp "$work/com1.txt" "$keep_com1"
fi

for re in "${expects[@]}"; do
    if ! grep -Eq -- "$re" "$work/com1.txt"; then
        fail "no line of the COM1 log matches '$re'"
    fi
done

if [[ $expect_status -eq 33 ]]; then
    want="smp: $smp cpus? online"
    if ! grep -Eq "^$want" "$work/com1.txt"; then
        fail "no '$want' line: not every CPU came online"
    fi
fi

if [[ $sim -eq 1 ]]; then
    sim_args=(run "$scenario" --cpus "$smp")
    [[ -n $sim_memory ]] && sim_args+=(--memory "$sim_memory")
    sim_status=0
    "$duet" "${sim_args[@]}" >"$work/sim.log" 2>"$work/sim.err" || sim_status=$?
    if [[ $sim_status -ne 0 ]]; then
        echo "boot.sh: '$duet ${sim_args[*]}' failed with status $sim_status" >&2
        cat "$work/sim.err" >&2
        exit 1
    fi
    # The mmap:, mm: and vm: lines, and the first frames: line (later ones depend on the
    # workload, which the two machines need not share).
    boot_lines() {
        awk '/^(mmap|mm|vm): / { print; next } /^frames: / && !seen { print; seen = 1 }'
    }
    boot_lines <"$work/com1.txt" >"$work/qemu.mmap"
    tr -d '\r' <"$work/sim.log" | boot_lines >"$work/sim.mmap"
    if ! grep -q '^mmap: ' "$work/qemu.mmap"; then
        fail "the kernel printed no mmap: lines"
    fi
    if ! grep -q '^mmap: ' "$work/sim.mmap"; then
        echo "boot.sh: '$duet ${sim_args[*]}' printed no mmap: lines" >&2
        exit 1
    fi
    if ! diff -u --label qemu --label simulator "$work/qemu.mmap" "$work/sim.mmap"; then
        echo "boot.sh: the boot lines differ" >&2
        exit 1
    fi
    echo "boot.sh: QEMU and '${sim_args[*]}' agree on $(grep -c '^mmap: ' "$work/qemu.mmap")" \
        "mmap: lines and $(grep -vc '^mmap: ' "$work/qemu.mmap") mm:, vm: and frames: lines"
fi
echo "boot.sh: QEMU (-machine $machine -m $memory -smp $smp) exited $status after $elapsed_ms ms: $(explain "$status")"
