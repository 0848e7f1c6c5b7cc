#!/usr/bin/env bash
# The ./duet script refuses what its own options cannot take before it installs or builds
# anything: each command below runs with no build tools on PATH (only what the script needs to
# start), so that one which got as far as building would fail some other way.
# usage: script-options.sh DUET_SCRIPT
set -uo pipefail
script=$1
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
ln -s "$(command -v dirname)" "$bin/dirname"
failed=0
check() {
    local pattern=$1
    shift
    local err status
    err=$(env -i PATH="$bin" "$BASH" "$script" "$@" 2>&1 >/dev/null)
    status=$?
    if [[ $status -ne 2 ]] || ! grep -qE -- "$pattern" <<<"$err"; then
        echo "FAIL: ./duet $*: exit $status: $err"
        failed=1
    fi
}
check "^duet: qemu: --smp takes a CPU count from 1 to 255, not 'abc'$" qemu --smp abc
check "^duet: qemu: --smp takes a CPU count from 1 to 255, not '256'$" qemu --smp=256
check "^duet: qemu: -m takes a memory size such as 2G or 512M, not '-1'$" qemu -m -1
check "^duet: qemu: unknown loader 'grub'" qemu --loader grub
check "^duet: qemu: unknown option '--frobnicate'" qemu --frobnicate
check "^duet: qemu: --user boots initrd-user.tar with -kernel; not with --iso$" qemu --user --iso
# --user goes with every loader: this one gets as far as looking for the upstream loader.
check "^duet: qemu: no upstream BOOTBOOT loader $bin/bootboot.efi" qemu --user --loader uefi --bootboot "$bin"
check "^duet: fuzz: --seconds takes a positive number$" fuzz scenario --seconds abc
check "^duet: fuzz: no target 'nope'" fuzz nope
check "^duet: test: unknown option '--bogus'" test --bogus
check "^duet: image: unknown argument" image --bogus
check "^duet: build: no preset 'bogus' \(dev, release, asan or race\)$" build bogus
[[ $failed -eq 0 ]] && echo "script-options: every bad option refused before building"
exit $failed
