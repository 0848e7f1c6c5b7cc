#!/usr/bin/env bash
# Makes a GPT disk image that the upstream BOOTBOOT loaders boot Duet from: one EFI System
# Partition (FAT16) holding
#
#   BOOTBOOT/INITRD        the initrd (a ustar with sys/core), uncompressed
#   BOOTBOOT/CONFIG        the environment (--config FILE), if given
#   EFI/BOOT/BOOTX64.EFI   the UEFI loader (--efi FILE, upstream's bootboot.efi), if given
#
#   make-disk-image.sh [--config FILE] [--efi FILE] INITRD OUT
#
# Boot it with the BIOS loader as `qemu-system-x86_64 -kernel bootboot.bin -drive
# file=OUT,format=raw`, or under OVMF (UEFI) when it holds the UEFI loader. The image has no
# MBR boot code: a plain BIOS disk boot needs upstream's mkbootimg.
#
# FAT16 because both readers take it: bootboot.bin reads FAT16 and FAT32 ESPs (it loads the
# whole FAT below 640 KiB, which a FAT32 ESP of OVMF's liking would not fit in) and OVMF reads
# every FAT. Clusters are 2 KiB: the BIOS loader reads BOOTBOOT/CONFIG a cluster at a time into
# its 4 KiB environment page.
#
# Only Debian tools, no root, no loop device: sfdisk (fdisk) writes the partition table, mtools
# (mformat, mmd, mcopy on IMAGE@@OFFSET) the file system. The same inputs give the same bytes:
# the disk and partition GUIDs, the volume ID and label are fixed, and the file system's
# timestamps are 1980-01-01 (SOURCE_DATE_EPOCH) whatever the files' own.
#
# Exit status: 0 written, 1 missing input or tool, or a tool failed, 2 bad usage or inputs too
# large for the image.
set -euo pipefail

usage() {
    echo "usage: $0 [--config FILE] [--efi FILE] INITRD OUT" >&2
    exit 2
}

config=
efi=
while [[ $# -gt 0 ]]; do
    case $1 in
    --config) [[ $# -ge 2 ]] || usage; config=$2; shift 2 ;;
    --efi) [[ $# -ge 2 ]] || usage; efi=$2; shift 2 ;;
    --) shift; break ;;
    -*) echo "make-disk-image.sh: unknown option '$1'" >&2; usage ;;
    *) break ;;
    esac
done
[[ $# -eq 2 ]] || usage
initrd=$1
out=$2

for f in "$initrd" ${config:+"$config"} ${efi:+"$efi"}; do
    if [[ ! -f $f ]]; then
        echo "make-disk-image.sh: $f: no such file" >&2
        exit 1
    fi
done
if [[ -n $config && $(stat -c %s "$config") -gt 4095 ]]; then
    echo "make-disk-image.sh: $config: the environment is $(stat -c %s "$config") bytes;" \
        "the loaders read at most 4095" >&2
    exit 2
fi
missing=()
for tool in sfdisk mformat mmd mcopy; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if [[ ${#missing[@]} -gt 0 ]]; then
    echo "make-disk-image.sh: ${missing[*]} not found (Debian: apt-get install fdisk mtools)" >&2
    exit 1
fi

readonly SECTOR=512
readonly MIB=$((1024 * 1024))
readonly ESP_START=2048 # sectors: the partition starts at 1 MiB
readonly CLUSTER_SECTORS=4
readonly DISK_GUID=44554554-4449-534b-8000-000000000001
readonly ESP_GUID=44554554-4553-5000-8000-000000000001
readonly ESP_TYPE=C12A7328-F81F-11D2-BA4B-00A0C93EC93B
readonly VOLUME_ID=44554554 # hex, as mformat -N takes it
readonly VOLUME_LABEL=DUET

# The ESP: at least 16 MiB, else what the files need and a quarter more. FAT16 needs 4085 to
# 65524 clusters: 2 KiB clusters give 8 MiB to 127 MiB.
payload=0
for f in "$initrd" ${config:+"$config"} ${efi:+"$efi"}; do
    payload=$((payload + $(stat -c %s "$f")))
done
esp_mib=$(((payload * 5 / 4 + MIB - 1) / MIB + 1))
((esp_mib >= 16)) || esp_mib=16
if ((esp_mib > 120)); then
    echo "make-disk-image.sh: the files take $((payload / MIB)) MiB; a FAT16 ESP with 2 KiB" \
        "clusters holds at most 120 MiB" >&2
    exit 2
fi
esp_sectors=$((esp_mib * MIB / SECTOR))
# 1 MiB before the ESP (protective MBR, GPT), 1 MiB after it (the backup GPT).
disk_bytes=$(((esp_mib + 2) * MIB))
offset=$((ESP_START * SECTOR))

work=$(mktemp -d "${TMPDIR:-/tmp}/duet-disk.XXXXXX")
trap 'rm -rf "$work"' EXIT
img=$work/disk.img

run() {
    if ! "$@" >"$work/log" 2>&1; then
        cat "$work/log" >&2
        echo "make-disk-image.sh: '$*' failed" >&2
        exit 1
    fi
}

truncate -s "$disk_bytes" "$img"
run sfdisk --quiet --no-reread --no-tell-kernel --wipe always "$img" <<EOF
label: gpt
label-id: $DISK_GUID
unit: sectors
first-lba: 34
start=$ESP_START, size=$esp_sectors, type=$ESP_TYPE, uuid=$ESP_GUID, name="EFI System Partition"
EOF

# mtools: no user configuration, fixed time, UTC, no check of the (unpartitioned) geometry.
export MTOOLSRC=/dev/null MTOOLS_SKIP_CHECK=1 SOURCE_DATE_EPOCH=315532800 TZ=UTC
fs="$img@@$offset"
run mformat -i "$fs" -T "$esp_sectors" -h 64 -s 32 -H "$ESP_START" -M "$SECTOR" \
    -c "$CLUSTER_SECTORS" -r 32 -N "$VOLUME_ID" -v "$VOLUME_LABEL" ::
run mmd -i "$fs" ::/BOOTBOOT
# CONFIG first: the BIOS loader reads BOOTBOOT/ in directory order and goes on to load the
# initrd as soon as it meets INITRD, never looking at the entries after it.
if [[ -n $config ]]; then
    run mcopy -i "$fs" "$config" ::/BOOTBOOT/CONFIG
fi
run mcopy -i "$fs" "$initrd" ::/BOOTBOOT/INITRD
if [[ -n $efi ]]; then
    run mmd -i "$fs" ::/EFI ::/EFI/BOOT
    run mcopy -i "$fs" "$efi" ::/EFI/BOOT/BOOTX64.EFI
fi

# Check what the BIOS loader will look for: FAT16 with 512-byte sectors.
if [[ $(dd if="$img" bs=8 iflag=skip_bytes skip=$((offset + 54)) count=1 status=none) != "FAT16   " ]]; then
    echo "make-disk-image.sh: mformat did not make a FAT16 file system" >&2
    exit 1
fi

mv "$img" "$out"
