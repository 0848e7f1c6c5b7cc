#!/usr/bin/env bash
# The kernel's built-in workload on bare metal (initrd.tar, compiled from scenarios/baremetal.scn):
# every thread started exits, threads ran on every CPU, preemption happened, and the kernel
# stops QEMU with its success verdict. With DUET, SCENARIO and KERNEL, the processes too: what
# the kernel reports about them (how each ended, the faults, the system calls, the IPC calls,
# the frames and objects left) must be what the simulator reports for the same scenario, kernel
# and CPU count, line for line but for the order of the lines and what depends on timing (the
# fault's instruction pointer, which the simulator does not have; the direct switches; the
# round-trip times).
# usage: workload.sh SMP LOADER INITRD [DUET SCENARIO KERNEL]
set -euo pipefail
smp=$1
loader=$2
initrd=$3
duet=${4:-}
scenario=${5:-}
kernel=${6:-}
command -v qemu-system-x86_64 >/dev/null || { echo "workload.sh: qemu-system-x86_64 is missing"; exit 1; }
. "$(dirname "${BASH_SOURCE[0]}")/process-lines.sh"
log=$(mktemp)
sim=$(mktemp)
trap 'rm -f "$log" "$sim"' EXIT
status=0
timeout 120 qemu-system-x86_64 -machine q35 -m 2G -smp "$smp" -kernel "$loader" -initrd "$initrd" \
    -serial "file:$log" -display none -monitor none -no-reboot \
    -device isa-debug-exit,iobase=0xf4,iosize=0x04 || status=$?
fail() {
    echo "workload.sh: $*"
    echo "--- COM1:"
    cat "$log"
    exit 1
}
[[ $status -eq 33 ]] || fail "QEMU exited with $status, not 33 (the kernel's success verdict)"
line=$(grep -E '^workload: ' "$log") || fail "no workload line"
started=$(sed -E 's/^workload: ([0-9]+) threads started, ([0-9]+) exited.*/\1/' <<<"$line")
exited=$(sed -E 's/^workload: ([0-9]+) threads started, ([0-9]+) exited.*/\2/' <<<"$line")
[[ $started -gt 0 && $started -eq $exited ]] || fail "threads started $started, exited $exited"
preemptions=$(grep -E '^sched: [0-9]+ switches' "$log" | sed -E 's/.* ([0-9]+) preemptions.*/\1/')
[[ ${preemptions:-0} -gt 0 ]] || fail "no preemption"
cpus=$(grep -cE '^sched: cpu [0-9]+: ' "$log" || true)
[[ $cpus -eq $smp ]] || fail "$cpus per-CPU lines for $smp CPUs"
if grep -qE '^sched: cpu [0-9]+: 0 switches' "$log"; then
    fail "a CPU never switched to a thread"
fi
processes=
if [[ -n $duet ]]; then
    "$duet" run "$scenario" --cpus "$smp" --firmware duet --kernel "$kernel" --com1 "$sim" \
        --quiet >/dev/null || fail "the simulator's run of $scenario failed"
    if ! diff <(process_lines "$sim") <(process_lines "$log") >/dev/null; then
        echo "workload.sh: the processes' lines differ (< simulator, > QEMU):"
        diff <(process_lines "$sim") <(process_lines "$log") || true
        fail "the machines disagree about the processes"
    fi
    processes=$(grep -E '^user: [0-9]+ processes' "$log" | sed -E 's/^user: //; s/;.*//')
    processes=", $processes as in the simulator"
fi
echo "workload.sh: $started threads on $smp CPUs, $preemptions preemptions$processes, verdict success"
