#!/usr/bin/env bash
# The images the upstream BOOTBOOT loaders boot from, checked without booting them:
#   tools/make-initrd-rom     a valid option ROM (signature, size, checksum, "INITRD", the
#                             gzip length) whose data inflates back to the initrd; the same
#                             bytes every time; an initrd too large for 255 blocks refused
#                             (exit 2)
#   tools/make-disk-image.sh  a GPT disk with the fixed GUIDs and one EFI System Partition,
#                             FAT16, BOOTBOOT/CONFIG before BOOTBOOT/INITRD (the BIOS loader
#                             stops reading the folder at INITRD), EFI/BOOT/BOOTX64.EFI; the
#                             same bytes from the same inputs, whatever their timestamps, the
#                             time of day or the time zone
#
#   images.sh INITRD
set -euo pipefail

if [[ $# -ne 1 ]]; then
    echo "usage: $0 INITRD" >&2
    exit 2
fi
initrd=$1
tools=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../tools" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/duet-images.XXXXXX")
trap 'rm -rf "$work"' EXIT

fail() {
    echo "images.sh: $*" >&2
    exit 1
}

# --- the option ROM ---
"$tools/make-initrd-rom" "$initrd" "$work/a.rom"
cp "$initrd" "$work/copy.tar"
touch -d '2001-02-03 04:05:06' "$work/copy.tar"
"$tools/make-initrd-rom" "$work/copy.tar" "$work/b.rom"
cmp -s "$work/a.rom" "$work/b.rom" || fail "make-initrd-rom: two ROMs of one initrd differ"
python3 - "$work/a.rom" "$initrd" <<'PY' || fail "make-initrd-rom: the ROM is malformed"
import gzip, struct, sys
rom = open(sys.argv[1], "rb").read()
initrd = open(sys.argv[2], "rb").read()
assert rom[:2] == b"\x55\xaa", "signature"
assert len(rom) % 512 == 0 and rom[2] == len(rom) // 512 <= 255, "size"
assert rom[3:6] == b"\x31\xc0\xcb", "entry"
assert sum(rom) % 256 == 0, "checksum"
assert rom[8:14] == b"INITRD", "name"
(length,) = struct.unpack_from("<I", rom, 16)
assert gzip.decompress(rom[32:32 + length]) == initrd, "data"
assert not any(rom[32 + length:]), "padding"
PY
head -c 200000 /dev/urandom >"$work/big.tar"
status=0
"$tools/make-initrd-rom" "$work/big.tar" "$work/big.rom" 2>"$work/err" || status=$?
[[ $status -eq 2 ]] || fail "make-initrd-rom: a 200 KB incompressible initrd gave status $status, not 2"
grep -q 'at most 255' "$work/err" || fail "make-initrd-rom: no clear message for a too large initrd"
[[ ! -e $work/big.rom ]] || fail "make-initrd-rom: wrote a ROM it refused"

# --- the disk image ---
printf 'duet.test=fault\n' >"$work/config"
head -c 5000 /dev/urandom >"$work/BOOTX64.EFI"
"$tools/make-disk-image.sh" --config "$work/config" --efi "$work/BOOTX64.EFI" "$initrd" \
    "$work/a.img"
sleep 1
touch "$work/config" "$work/BOOTX64.EFI" "$work/copy.tar"
TZ=Asia/Tokyo "$tools/make-disk-image.sh" --config "$work/config" --efi "$work/BOOTX64.EFI" \
    "$work/copy.tar" "$work/b.img"
cmp -s "$work/a.img" "$work/b.img" ||
    fail "make-disk-image.sh: two images of the same files differ ($(cmp "$work/a.img" "$work/b.img" || true))"

sfdisk -d "$work/a.img" >"$work/table"
grep -q '^label: gpt$' "$work/table" || fail "make-disk-image.sh: not a GPT disk"
grep -q '^label-id: 44554554-4449-534B-8000-000000000001$' "$work/table" ||
    fail "make-disk-image.sh: not the fixed disk GUID"
[[ $(grep -c 'start=' "$work/table") -eq 1 ]] || fail "make-disk-image.sh: not one partition"
grep -q 'start= *2048, .*type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B, uuid=44554554-4553-5000-8000-000000000001' \
    "$work/table" || fail "make-disk-image.sh: no EFI System Partition at 1 MiB with the fixed GUID"
[[ $(dd if="$work/a.img" bs=8 iflag=skip_bytes skip=$((2048 * 512 + 54)) count=1 status=none) == "FAT16   " ]] ||
    fail "make-disk-image.sh: the ESP is not FAT16"

export MTOOLSRC=/dev/null MTOOLS_SKIP_CHECK=1
mdir -i "$work/a.img@@1M" -b ::/BOOTBOOT >"$work/bootboot" ||
    fail "make-disk-image.sh: no BOOTBOOT folder"
[[ $(grep -E '/(CONFIG|INITRD)$' "$work/bootboot" | tr '\n' ' ') == "::/BOOTBOOT/CONFIG ::/BOOTBOOT/INITRD " ]] ||
    fail "make-disk-image.sh: BOOTBOOT/ does not list CONFIG, then INITRD: $(tr '\n' ' ' <"$work/bootboot")"
for f in BOOTBOOT/INITRD:"$initrd" BOOTBOOT/CONFIG:"$work/config" EFI/BOOT/BOOTX64.EFI:"$work/BOOTX64.EFI"; do
    mcopy -i "$work/a.img@@1M" "::/${f%%:*}" "$work/out"
    cmp -s "$work/out" "${f#*:}" || fail "make-disk-image.sh: ${f%%:*} is not the file given"
    rm -f "$work/out"
done
echo "images.sh: the ROM ($(stat -c %s "$work/a.rom") bytes) and the disk image" \
    "($(stat -c %s "$work/a.img") bytes) are well formed and reproducible"
