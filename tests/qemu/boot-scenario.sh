#!/usr/bin/env bash
# Boots the initrd `duet initrd` writes for a scenario (its processes and threads, on the given
# kernel) through Duet's loader, with boot.sh's checks.
# usage: boot-scenario.sh DUET KERNEL LOADER SCENARIO [BOOT_SH_OPTIONS...]
set -euo pipefail
duet=$1
kernel=$2
loader=$3
scenario=$4
shift 4
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$duet" initrd "$scenario" "$work/initrd.tar" --kernel "$kernel"
"$(dirname "${BASH_SOURCE[0]}")/boot.sh" --no-sim "$@" "$loader" "$work/initrd.tar" "$duet" "$scenario"
