#!/usr/bin/env bash
# A scenario's processes on QEMU and in the simulator: `duet initrd` writes the initrd the
# simulator boots (the kernel, the script program, the scripts), QEMU boots it through Duet's
# loader on -cpu max (SMEP and SMAP on), and what the kernel reports about the processes must
# be what the simulator reports for the same scenario, kernel and CPU count (process-lines.sh).
# usage: processes.sh DUET LOADER KERNEL SCENARIO SMP [KIND]
# KIND: what boots it, as boot.sh's --loader (default duet: LOADER, Duet's loader).
set -euo pipefail
duet=$1
loader=$2
kernel=$3
scenario=$4
smp=$5
kind=${6:-duet}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/process-lines.sh"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$duet" initrd "$scenario" "$work/initrd.tar" --kernel "$kernel"
"$here/boot.sh" --loader "$kind" --no-sim --smp "$smp" --timeout 60 --keep-com1 "$work/qemu.txt" \
    "$loader" "$work/initrd.tar" "$duet" "$scenario" -cpu max
"$duet" run "$scenario" --cpus "$smp" --firmware duet --kernel "$kernel" --com1 "$work/sim.txt" \
    --quiet >/dev/null || { echo "processes.sh: the simulator's run of $scenario failed"; exit 1; }
# OVMF's memory map is not the simulator's (it models Duet's loader here), so under UEFI the
# kernel's direct map takes other page tables: the frames must be equal before and after on
# each machine, not the same number on both.
frames_equal() {
    if [[ $kind == uefi ]]; then
        sed -E 's/frames before ([0-9]+), after \1$/frames before and after equal/'
    else
        cat
    fi
}
if ! diff <(process_lines "$work/sim.txt" | frames_equal) \
    <(process_lines "$work/qemu.txt" | frames_equal) >"$work/diff"; then
    echo "processes.sh: the machines disagree about the processes (< simulator, > QEMU):"
    cat "$work/diff"
    exit 1
fi
[[ -s "$work/sim.txt" ]] && grep -qE '^user: [0-9]+ processes' "$work/qemu.txt" ||
    { echo "processes.sh: no processes were reported"; exit 1; }
echo "processes.sh: $(grep -E '^user: [0-9]+ processes' "$work/qemu.txt" | sed 's/^user: //; s/;.*//')" \
    "on $smp CPUs, the same on both machines"
