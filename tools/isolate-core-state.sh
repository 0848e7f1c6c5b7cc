#!/usr/bin/env bash
# Post-build step for the host build of the core (libcore_host.a). Moves the core's writable
# data into sections of its own (duet_core_data, duet_core_bss) so that the simulator can give
# every simulated machine a freshly loaded kernel: the initial data restored and bss zeroed,
# as a loader does on hardware. Then checks that nothing writable was missed and that the
# core needs no constructors (nothing runs .init_array on bare metal either).
set -euo pipefail
archive=$1
# With sanitizers, the instrumentation adds its own prioritised module constructors
# (.init_array.NNNNN) that register globals; those are not the core's.
sanitized=${2:-}
objcopy \
    --rename-section .data=duet_core_data \
    --rename-section .data.rel.local=duet_core_data_rel_local \
    --rename-section .data.rel=duet_core_data_rel \
    --rename-section .bss=duet_core_bss \
    "$archive"
bad=$(objdump -h "$archive" | awk '
    /^In archive|file format/ { next }
    /^[a-zA-Z_].*\.o:/ { obj = $1 }
    $2 ~ /^\.(data|bss|tbss|tdata|init_array|ctors)/ && $2 !~ /^\.data\.rel\.ro/ { print obj " " $2 }' |
    { if [[ -n "$sanitized" ]]; then grep -vE ' \.init_array\.[0-9]+$' || true; else cat; fi; })
if [[ -n "$bad" ]]; then
    echo "isolate-core-state: core objects have sections the simulator cannot reset:" >&2
    echo "$bad" >&2
    echo "(core globals must be constant-initialised: no constructors, no thread-locals)" >&2
    exit 1
fi
