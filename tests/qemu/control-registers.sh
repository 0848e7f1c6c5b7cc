#!/usr/bin/env bash
# The kernel's control registers under the upstream BIOS loader, read over QEMU's gdb stub: on
# the loader's page tables (CR3 0xa000, where the kernel's own image is mapped read-only) CR0.WP
# must still be clear, or the kernel's first write to its own data faults before it has an IDT;
# caches must be on (CR0.CD clear) on every CPU; once the kernel runs on its own tables, WP is
# set. docs/boot.md.
#
#   control-registers.sh KERNEL_ELF INITRD
#
# The loader comes from $DUET_BOOTBOOT_DIR, else ../shared/third_party/bootboot beside the
# repository. Exit status: 0 pass, 1 fail, 77 skip (no loader, no gdb).
set -uo pipefail
kernel=$1
initrd=$2
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
bootboot_dir=${DUET_BOOTBOOT_DIR:-$repo/../shared/third_party/bootboot}
if [[ ! -f $bootboot_dir/bootboot.bin ]]; then
    echo "control-registers.sh: no $bootboot_dir/bootboot.bin (set DUET_BOOTBOOT_DIR); skipped"
    exit 77
fi
if ! command -v gdb >/dev/null 2>&1; then
    echo "control-registers.sh: gdb not installed; skipped"
    exit 77
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/duet-cr.XXXXXX")
trap 'rm -rf "$work"' EXIT
"$repo/tools/make-disk-image.sh" "$initrd" "$work/disk.img" >/dev/null || exit 1

qemu="exec qemu-system-x86_64 -machine q35 -m 256M -smp 2 -kernel $bootboot_dir/bootboot.bin"
qemu+=" -drive file=$work/disk.img,format=raw -serial file:$work/com1.log -display none"
qemu+=" -monitor none -no-reboot -device isa-debug-exit,iobase=0xf4,iosize=0x04 -gdb stdio -S"
# Where each CPU first runs the core on the loader's tables (the bootstrap CPU, then the other
# one), then on the kernel's own; one hardware breakpoint at a time.
out=$(timeout 90 gdb -batch -nx -iex "set debuginfod enabled off" \
    -ex "set architecture i386:x86-64" -ex "target remote | $qemu" \
    -ex "hbreak core::boot_main" -ex continue -ex 'printf "bsp-loader cr0=%#x cr3=%#x\n", $cr0, $cr3' \
    -ex "delete" -ex "hbreak core::ap_main" -ex continue \
    -ex 'printf "ap-loader cr0=%#x cr3=%#x\n", $cr0, $cr3' \
    -ex "delete" -ex "hbreak core::sched::run_cpu" -ex continue \
    -ex 'printf "own-tables cr0=%#x cr3=%#x\n", $cr0, $cr3' \
    -ex kill "$kernel" 2>&1)

status=0
check() { # NAME WANT_CR3_LOADER WANT_WP
    local line cr0 cr3
    line=$(grep -E "^$1 cr0=" <<<"$out" | head -n 1)
    if [[ -z $line ]]; then
        echo "control-registers.sh: gdb never stopped at '$1'"
        status=1
        return
    fi
    cr0=$(sed -E 's/.*cr0=(0x[0-9a-f]+).*/\1/' <<<"$line")
    cr3=$(sed -E 's/.*cr3=(0x[0-9a-f]+).*/\1/' <<<"$line")
    if (( (cr0 >> 30) & 1 )); then
        echo "control-registers.sh: $1: CR0.CD is set (caches off): $line"
        status=1
    fi
    if (( ((cr0 >> 16) & 1) != $3 )); then
        echo "control-registers.sh: $1: CR0.WP is $(((cr0 >> 16) & 1)), expected $3: $line"
        status=1
    fi
    if [[ $2 == loader && $cr3 != 0xa000 ]] || [[ $2 == own && $cr3 == 0xa000 ]]; then
        echo "control-registers.sh: $1: CR3 $cr3 is not the $2 tables': $line"
        status=1
    fi
    echo "control-registers.sh: $line"
}
check bsp-loader loader 0
check ap-loader loader 0
check own-tables own 1
if [[ $status -ne 0 ]]; then
    echo "--- gdb's output ---"
    echo "$out"
fi
exit $status
