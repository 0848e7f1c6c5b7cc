#!/usr/bin/env bash
# Upstream's own verdict on the kernel: `mkbootimg check` on sys/core (the stripped kernel the
# loaders boot, as the initrd carries it) must say it complies with BOOTBOOT Level 1 and 2.
#
#   mkbootimg-check.sh INITRD
#
# mkbootimg comes from $DUET_BOOTBOOT_DIR, else REPO/../shared/third_party/bootboot; without
# it the test is skipped (exit 77). Exit status: 0 pass, 1 fail, 2 usage, 77 skipped.
set -euo pipefail

if [[ $# -ne 1 ]]; then
    echo "usage: $0 INITRD" >&2
    exit 2
fi
initrd=$1
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
dir=${DUET_BOOTBOOT_DIR:-$repo/../shared/third_party/bootboot}
if [[ ! -f $dir/mkbootimg ]]; then
    echo "mkbootimg-check.sh: skipped: upstream's mkbootimg is not in $dir" \
        "(set DUET_BOOTBOOT_DIR to the folder with the upstream BOOTBOOT tools)"
    exit 77
fi
if [[ ! -f $initrd ]]; then
    echo "mkbootimg-check.sh: $initrd: no such file" >&2
    exit 1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/duet-mkbootimg.XXXXXX")
trap 'rm -rf "$work"' EXIT
tar -xf "$initrd" -C "$work" sys/core
status=0
"$dir/mkbootimg" check "$work/sys/core" >"$work/out" 2>&1 || status=$?
# mkbootimg colours its verdicts; compare the text alone.
tr -d '\r' <"$work/out" | sed 's/\x1b\[[0-9;]*[A-Za-z]//g' >"$work/text"
cat "$work/text"
if [[ $status -ne 0 ]]; then
    echo "mkbootimg-check.sh: mkbootimg check exited $status" >&2
    exit 1
fi
if ! grep -q '^Complies with BOOTBOOT Protocol Level 1 and 2' "$work/text"; then
    echo "mkbootimg-check.sh: mkbootimg does not say that sys/core complies with Level 1 and 2" >&2
    exit 1
fi
