#!/usr/bin/env bash
# Makes a bootable ISO image of Duet: GRUB (BIOS) loads Duet's QEMU loader as a Multiboot kernel
# with the initrd as its module, as QEMU's -kernel/-initrd do.
#
#   make-iso.sh LOADER INITRD OUT
#
# LOADER and INITRD are loader.bin and initrd.tar from the build directory. Boot the result with
# `qemu-system-x86_64 -cdrom OUT`. Needs grub-mkrescue with GRUB's i386-pc modules and xorriso
# (Debian: grub-common, grub-pc-bin, xorriso, mtools).
set -euo pipefail

if [[ $# -ne 3 ]]; then
    echo "usage: $0 LOADER INITRD OUT" >&2
    exit 2
fi
loader=$1
initrd=$2
out=$3

for f in "$loader" "$initrd"; do
    if [[ ! -f $f ]]; then
        echo "make-iso.sh: $f: no such file" >&2
        exit 1
    fi
done
if ! command -v grub-mkrescue >/dev/null 2>&1 || ! command -v xorriso >/dev/null 2>&1 ||
    [[ ! -d /usr/lib/grub/i386-pc ]]; then
    echo "make-iso.sh: needs grub-mkrescue, GRUB's i386-pc modules and xorriso" \
        "(Debian: apt-get install grub-common grub-pc-bin xorriso mtools)" >&2
    exit 1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/duet-iso.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/root/boot/grub" "$work/root/boot/duet"
cp "$loader" "$work/root/boot/duet/loader.bin"
cp "$initrd" "$work/root/boot/duet/initrd.tar"
cat >"$work/root/boot/grub/grub.cfg" <<'CFG'
set timeout=0
set default=0
menuentry "Duet" {
    multiboot /boot/duet/loader.bin
    module /boot/duet/initrd.tar initrd.tar
    boot
}
CFG

if ! grub-mkrescue -o "$out" "$work/root" >"$work/log" 2>&1; then
    cat "$work/log" >&2
    echo "make-iso.sh: grub-mkrescue failed" >&2
    exit 1
fi
