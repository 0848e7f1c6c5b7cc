#!/usr/bin/env bash
# The user-space benchmarks on QEMU (docs/user-space.md, *Benchmarks*): a null system call and
# an IPC round trip (call + reply_recv between two processes), in TSC cycles.
#
#   user-bench.sh [--boots N] [--kvm auto|on|off] [--timeout SECONDS] LOADER CORE PROGRAMS
#
# LOADER is Duet's loader.bin, CORE the kernel as the initrd holds it (sys/core), PROGRAMS the
# folder holding user/syscall-bench, user/ping-bench and user/ping-server (the build's
# user/initrd). Each benchmark boots a machine (q35, 2 GiB, 1 CPU, -cpu max) whose initrd runs
# the calls, and one whose initrd runs the same programs ending at once, N times each (default
# 5); the kernel reports each process's cycles from its first entry into user mode to its end
# (`user: process N ('NAME') took C cycles ...`). A figure is (median with calls - median
# without) / calls:
#
#   null system call   syscall-bench alone: 100,000 handle_close(0); with a handle 1 it exits
#                      at once
#   IPC round trip     ping-server serve:ping and ping-bench call:ping: 50,000 calls; with
#                      endpoints that have no peer (serve:a, call:b) ping-bench's first call
#                      gets PeerGone and it exits
#
# Under TCG the TSC follows the host's clock: these are host cycles spent emulating, not the
# guest's hardware cycles. With --kvm auto (the default) the same is measured again under KVM
# if /dev/kvm is usable, and the script says why not otherwise; --kvm on requires it, --kvm off
# skips it. Exit 1 if a boot fails or a figure is not positive, 2 on bad usage.
set -euo pipefail

usage() {
    echo "usage: $0 [--boots N] [--kvm auto|on|off] [--timeout SECONDS] LOADER CORE PROGRAMS" >&2
    exit 2
}

boots=5
kvm=auto
time_limit=60
while [[ $# -gt 0 ]]; do
    case $1 in
    --boots) boots=${2:?--boots needs a number}; shift 2 ;;
    --kvm) kvm=${2:?--kvm needs auto, on or off}; shift 2 ;;
    --timeout) time_limit=${2:?--timeout needs seconds}; shift 2 ;;
    -*) echo "user-bench.sh: unknown option '$1'" >&2; usage ;;
    *) break ;;
    esac
done
[[ $# -eq 3 ]] || usage
[[ $boots =~ ^[1-9][0-9]*$ ]] || { echo "user-bench.sh: --boots takes a positive number" >&2; usage; }
[[ $kvm == auto || $kvm == on || $kvm == off ]] || usage
loader=$1
core=$2
programs=$3
for f in "$loader" "$core" "$programs/user/syscall-bench" "$programs/user/ping-bench" \
    "$programs/user/ping-server"; do
    [[ -f $f ]] || { echo "user-bench.sh: $f: no such file" >&2; exit 1; }
done
command -v qemu-system-x86_64 >/dev/null 2>&1 || {
    echo "user-bench.sh: qemu-system-x86_64 not found (Debian: apt-get install qemu-system-x86)" >&2
    exit 1
}

work=$(mktemp -d "${TMPDIR:-/tmp}/duet-user-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT

# initrd NAME LINE...: $work/NAME.tar with sys/core, sys/programs (the LINEs) and the programs.
initrd() {
    local name=$1 root=$work/$1 line files=()
    shift
    mkdir -p "$root/sys" "$root/user"
    cp "$core" "$root/sys/core"
    : >"$root/sys/programs"
    for line in "$@"; do
        echo "$line" >>"$root/sys/programs"
        cp "$programs/${line%% *}" "$root/${line%% *}"
        files+=("${line%% *}")
    done
    tar --format=ustar --owner=0 --group=0 --numeric-owner --mtime=@0 -cf "$work/$name.tar" \
        -C "$root" sys/core sys/programs "${files[@]}"
}
initrd syscall "user/syscall-bench"
initrd syscall-base "user/syscall-bench call:x"
initrd ping "user/ping-server serve:ping" "user/ping-bench call:ping"
initrd ping-base "user/ping-server serve:a" "user/ping-bench call:b"

# boot NAME PROGRAM ACCEL: boots NAME.tar; sets cycles (PROGRAM's) and tsc_khz (the rate the
# kernel measured).
boot() {
    local name=$1 program=$2 accel=$3 com1=$work/$1.com1 status=0
    timeout "$time_limit" qemu-system-x86_64 -machine "q35,accel=$accel" -m 2G -smp 1 -cpu max \
        -kernel "$loader" -initrd "$work/$name.tar" -serial "file:$com1" -display none \
        -monitor none -no-reboot -device isa-debug-exit,iobase=0xf4,iosize=0x04 \
        </dev/null 2>"$work/qemu.err" || status=$?
    tr -d '\r' <"$com1" >"$com1.txt"
    local exited
    exited=$(grep -aE "^user: '$program' \\(process [0-9]+\\) exited with code 0 " "$com1.txt" || true)
    cycles=$(sed -nE "s/^user: process [0-9]+ \\('$program'\\) took ([0-9]+) cycles .*/\\1/p" \
        "$com1.txt")
    tsc_khz=$(sed -nE 's/^clock: TSC ([0-9]+) kHz.*/\1/p' "$com1.txt")
    if [[ $status -ne 33 || -z $exited || -z $cycles || -z $tsc_khz ]]; then
        echo "user-bench.sh: the $name boot ($accel) failed: QEMU status $status (33 is the" \
            "kernel's success), or no exit 0, cycles or TSC rate for $program" >&2
        echo "--- COM1 ---" >&2
        cat "$com1.txt" >&2
        cat "$work/qemu.err" >&2
        exit 1
    fi
}

median() {
    sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : int((v[NR / 2] + v[NR / 2 + 1]) / 2) }'
}

# measure LABEL CALLS PROGRAM WITH BASE ACCEL: prints the figure; sets failed if it is not
# positive.
failed=0
measure() {
    local label=$1 calls=$2 program=$3 with=$4 base=$5 accel=$6 i
    local runs=() bases=()
    for ((i = 0; i < boots; i++)); do
        boot "$with" "$program" "$accel"
        runs+=("$cycles")
        boot "$base" "$program" "$accel"
        bases+=("$cycles")
    done
    local m_with m_base figure ns
    m_with=$(printf '%s\n' "${runs[@]}" | median)
    m_base=$(printf '%s\n' "${bases[@]}" | median)
    figure=$(awk -v w="$m_with" -v b="$m_base" -v n="$calls" 'BEGIN { printf "%.0f", (w - b) / n }')
    ns=$(awk -v c="$figure" -v k="$tsc_khz" 'BEGIN { printf "%.0f", c * 1e6 / k }')
    printf 'user-bench: %-3s %-36s %6s cycles (%s ns at the TSC'"'"'s %s MHz)\n' "$accel" \
        "$label" "$figure" "$ns" "$((tsc_khz / 1000))"
    echo "user-bench:     $program, $calls calls: median $m_with cycles (${runs[*]});" \
        "without the calls: $m_base (${bases[*]})"
    if ((figure <= 0)); then
        echo "user-bench.sh: the $label figure is not positive: $figure cycles" >&2
        failed=1
    fi
}

accels=(tcg)
kvm_note=
if [[ $kvm != off ]]; then
    if [[ -r /dev/kvm && -w /dev/kvm ]]; then
        # A nested guest may have /dev/kvm but no way to run a VM: ask QEMU first.
        if echo quit | timeout 20 qemu-system-x86_64 -machine none,accel=kvm -nodefaults \
            -display none -monitor stdio >"$work/kvm.log" 2>&1; then
            accels+=(kvm)
        else
            kvm_note="KVM: not measured: QEMU could not use it ($(grep -m1 . "$work/kvm.log" || true))"
        fi
    elif [[ -e /dev/kvm ]]; then
        kvm_note="KVM: not measured: /dev/kvm is not readable and writable by $(id -un)"
    else
        kvm_note="KVM: not measured: there is no /dev/kvm on this host"
    fi
    if [[ -n $kvm_note && $kvm == on ]]; then
        echo "user-bench.sh: $kvm_note" >&2
        exit 1
    fi
fi

of="medians of $boots boots"
[[ $boots -eq 1 ]] && of="one boot each"
echo "user-bench: QEMU q35, 1 CPU, -cpu max; $of; cycles are TSC ticks" \
    "(under TCG the host's, spent emulating: not hardware cycles of the guest)"
for accel in "${accels[@]}"; do
    measure "null system call (handle_close(0))" 100000 syscall-bench syscall syscall-base "$accel"
    measure "IPC round trip (call + reply_recv)" 50000 ping-bench ping ping-base "$accel"
done
[[ -z $kvm_note ]] || echo "user-bench: $kvm_note"
exit $failed
