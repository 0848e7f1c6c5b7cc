#!/usr/bin/env bash
# Duet's gdb helpers against the bare-metal kernel over QEMU's gdb stub (on gdb's own pipe, so
# no TCP port is needed): stop when the init thread is switched in, then read the kernel's
# threads, run queues and frame allocator, and a parked thread's stack; a thread's backtrace
# ends at its first frame (duet_context_start), through an interrupt's entry if it was parked
# in a handler.
#
#   gdb.sh HELPERS KERNEL_ELF LOADER INITRD
set -uo pipefail
helpers=$1
kernel=$2
loader=$3
initrd=$4
if ! command -v gdb >/dev/null 2>&1; then
    echo "gdb.sh: gdb not installed; skipped"
    exit 77
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/duet-qemu-gdb.XXXXXX")
trap 'rm -rf "$work"' EXIT
qemu="exec qemu-system-x86_64 -machine q35 -m 2G -smp 2 -kernel $loader -initrd $initrd"
qemu+=" -serial file:$work/com1.log -display none -monitor none -no-reboot"
qemu+=" -device isa-debug-exit,iobase=0xf4,iosize=0x04 -gdb stdio -S"
out=$(timeout 60 gdb -batch -nx -iex "set debuginfod enabled off" -x "$helpers" \
    -ex "target remote | $qemu" -ex "duet break-switch init" -ex continue \
    -ex "duet cpus" -ex "duet threads" -ex "duet runq" -ex "duet frames" -ex "duet processes" -ex "duet bt 0" \
    -ex "python gdb.execute('duet bt idle %d' % (gdb.selected_thread().num - 1))" \
    -ex "echo plain bt:\n" -ex bt -ex kill "$kernel" 2>&1)
status=0
expect() {
    if ! grep -Eq -- "$1" <<<"$out"; then
        echo "gdb.sh: no line matches /$1/"
        status=1
    fi
}
expect '^duet: init \(pid [0-9]+\) switched in on cpu [01]$'
expect '^\* cpu [01] +runs init \(pid [0-9]+\) +in interrupt no'
expect '^ +[0-9]+ [0-9]+:1 +init +running +[01] +4 '
expect '^cpu [01]: runs init \(pid [0-9]+\), round 0'
expect '^frames: [0-9]+ total = [0-9]+ free \+ [0-9]+ used \+ [0-9]+ reserved$'
expect '^ +id name +program +state +thread syscalls mapped$'
expect '^[0-9]+ processes$'
expect '^idle \(cpu [01]\), running, parked:$'
expect 'core::sched::schedule \(\) at .*core/sched/switch\.cpp'
expect "^duet: pid 0 is every CPU's idle thread; name one as idle N$"
# The backtraces end at the thread's first frame, with nothing after it.
ends_at_entry() {
    local frames
    frames=$(awk -v header="$1" 'found && /^#[0-9]/ { print; next } found { exit } $0 ~ header { found = 1 }' \
        <<<"$out")
    if ! tail -n 1 <<<"$frames" | grep -Eq '^#[0-9]+ +0x[0-9a-f]+ in duet_context_start \(\)'; then
        echo "gdb.sh: the backtrace after /$1/ does not end at duet_context_start:"
        tail -n 1 <<<"$frames"
        status=1
    fi
}
ends_at_entry '^idle \(cpu [01]\), running, parked:$'
ends_at_entry '^plain bt:$'
expect '^#[0-9]+ +core::sched::detail::thread_start '
if grep -Eq '^#[0-9]+ .*\?\?|Backtrace stopped|inner to this frame' <<<"$out"; then
    echo "gdb.sh: a backtrace has a frame gdb cannot name, or stopped short"
    status=1
fi
if grep -q 'DOES NOT ADD UP\|Python Exception\|Traceback' <<<"$out"; then
    echo "gdb.sh: a helper failed"
    status=1
fi
if [[ $status -ne 0 ]]; then
    echo "--- gdb's output ---"
    echo "$out"
    exit 1
fi
echo "gdb.sh: the helpers read the kernel over QEMU's gdb stub ($(wc -l <<<"$out") lines)"
