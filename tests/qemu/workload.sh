#!/usr/bin/env bash
# The kernel's built-in workload on bare metal (sys/workload in initrd.tar, compiled from
# scenarios/baremetal.scn): every thread started exits, threads ran on every CPU, preemption
# happened, and the kernel stops QEMU with its success verdict.
# usage: workload.sh SMP LOADER INITRD
set -euo pipefail
smp=$1
loader=$2
initrd=$3
command -v qemu-system-x86_64 >/dev/null || { echo "workload.sh: qemu-system-x86_64 is missing"; exit 1; }
log=$(mktemp)
trap 'rm -f "$log"' EXIT
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
echo "workload.sh: $started threads on $smp CPUs, $preemptions preemptions, verdict success"
