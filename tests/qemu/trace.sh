#!/usr/bin/env bash
# The bare-metal kernel booted with duet.trace=1 prints its schedule on COM1, and
# tools/com1-to-trace turns the log into the trace `duet run --trace` writes: a sched_waking and
# a sched_switch for the init thread at least, on the CPU that runs it.
#
#   trace.sh BOOT_SH COM1_TO_TRACE CONFIG LOADER INITRD DUET SCENARIO
set -euo pipefail
boot=$1
tool=$2
config=$3
shift 3
work=$(mktemp -d "${TMPDIR:-/tmp}/duet-qemu-trace.XXXXXX")
trap 'rm -rf "$work"' EXIT
"$boot" --smp 2 --config "$config" --no-sim --keep-com1 "$work/com1.log" \
    --expect '^trace: [0-9]+ [01] S 0 0 R idle [0-9]+ 4 init$' "$@"
python3 "$tool" "$work/com1.log" -o "$work/trace.txt"
for re in '^# tracer: nop$' \
    ' \[00[01]\] [0-9]+\.[0-9]{9}: sched_waking: comm=init pid=1 prio=4 target_cpu=00[01]$' \
    ' \[00[01]\] [0-9]+\.[0-9]{9}: sched_switch: prev_comm=idle prev_pid=0 prev_prio=0 prev_state=R ==> next_comm=init next_pid=1 next_prio=4$' \
    'tracing_mark_write: C\|2147483647\|free_frames\|[0-9]+$'; do
    if ! grep -Eq -- "$re" "$work/trace.txt"; then
        echo "trace.sh: no line of the converted trace matches /$re/" >&2
        cat "$work/trace.txt" >&2
        exit 1
    fi
done
echo "trace.sh: $(grep -vc '^#' "$work/trace.txt") events from the kernel's COM1 log"
