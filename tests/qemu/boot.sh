#!/usr/bin/env bash
# Boots the bare-metal kernel in QEMU, through Duet's loader or one of the upstream BOOTBOOT
# loaders, and checks what it reports: its verdict, that every CPU came online, and that its
# memory map is the simulator's.
#
#   boot.sh [OPTIONS] LOADER INITRD DUET SCENARIO [QEMU_ARGS...]
#
# LOADER and INITRD are loader.bin and initrd.tar from the build directory (LOADER is Duet's
# loader, used by --loader duet only), DUET the duet program, SCENARIO a scenario file
# describing the machine QEMU emulates. QEMU_ARGS are appended to QEMU's command line.
#
# Options:
#   --loader KIND        what boots the kernel (default duet):
#                          duet            Duet's loader: -kernel LOADER -initrd INITRD
#                          bios-rom        upstream bootboot.bin as an option ROM, the initrd
#                                          gzipped in a second one (tools/make-initrd-rom)
#                          bios-disk       -kernel bootboot.bin (QEMU's Linux boot) and a GPT
#                                          image from tools/make-disk-image.sh
#                          bios-mkbootimg  a disk image made by upstream's mkbootimg, booted by
#                                          SeaBIOS through its MBR
#                          uefi            OVMF and a GPT image holding bootboot.efi
#   --bootboot DIR       where bootboot.bin, bootboot.efi and mkbootimg are (default
#                        $DUET_BOOTBOOT_DIR, else REPO/../shared/third_party/bootboot); a test
#                        whose loader is not there is skipped (exit 77), as is a uefi test
#                        without OVMF
#   --smp N              QEMU's -smp and the simulator's --cpus (default 1)
#   -m SIZE              QEMU's memory (default 2G)
#   --machine NAME       QEMU's machine (default q35)
#   --sim-memory PRESET  the simulator's --memory (default: the scenario's)
#   --sim-arg ARG        one more argument for `duet run` (repeatable)
#   --config FILE        boot with FILE as the environment: as sys/config in a copy of INITRD
#                        (duet, bios-rom), as BOOTBOOT/CONFIG on the ESP (bios-disk, uefi), as
#                        mkbootimg's "config" (bios-mkbootimg)
#   --iso MAKE_ISO       boot from a CD image that MAKE_ISO (tools/make-iso.sh) makes with GRUB,
#                        instead of QEMU's own Multiboot support (-kernel, -initrd); duet only
#   --expect-status N    the exit status QEMU must end with (default 33, the kernel's success)
#   --expect REGEX       a line of the COM1 log must match this extended regex (repeatable)
#   --expect-loader-panic REGEX
#                        the loader must refuse to boot: a BOOTBOOT-PANIC line matching REGEX
#   --no-sim             do not compare the memory map with the simulator's
#   --timeout SECONDS    how long QEMU may run (default 30)
#   --keep-com1 FILE     also copy the COM1 log (carriage returns dropped) to FILE
#
# With the default status it also requires the line "smp: N cpus online" (N from --smp), and,
# unless --no-sim, that the boot lines of the COM1 log that depend on the map and the CPU count
# alone (every "mmap: ", "mm: " and "vm: " line, and the first "frames: " line, the frame
# allocator's at the hand-over) equal, line for line, those
# `duet run SCENARIO --cpus N [--memory PRESET] [SIM_ARGS...]` prints.
#
# An upstream loader that gives up prints "BOOTBOOT-PANIC: ..." and waits for a key forever;
# OVMF that finds nothing to boot falls back to its shell. Either stops the boot at once, with
# that line, instead of waiting for the timeout.
# Exit status: 0 pass, 1 fail, 2 usage, 77 skipped (an upstream loader or OVMF missing).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

usage() {
    echo "usage: $0 [--loader duet|bios-rom|bios-disk|bios-mkbootimg|uefi] [--bootboot DIR]" \
        "[--smp N] [-m SIZE] [--machine NAME] [--sim-memory PRESET] [--sim-arg ARG]..." \
        "[--config FILE] [--iso MAKE_ISO] [--expect-status N] [--expect REGEX]..." \
        "[--expect-loader-panic REGEX] [--no-sim] [--timeout SECONDS] [--keep-com1 FILE]" \
        "LOADER INITRD DUET SCENARIO [QEMU_ARGS...]" >&2
    exit 2
}

kind=duet
bootboot_dir=${DUET_BOOTBOOT_DIR:-$repo/../shared/third_party/bootboot}
smp=1
memory=2G
machine=q35
sim_memory=
sim_extra=()
config=
make_iso=
expect_status=33
expects=()
expect_panic=
sim=1
time_limit=30
keep_com1=
while [[ $# -gt 0 ]]; do
    case $1 in
    --loader) kind=${2:?--loader needs duet, bios-rom, bios-disk, bios-mkbootimg or uefi}; shift 2 ;;
    --bootboot) bootboot_dir=${2:?--bootboot needs a directory}; shift 2 ;;
    --smp) smp=${2:?--smp needs a CPU count}; shift 2 ;;
    -m) memory=${2:?-m needs a size}; shift 2 ;;
    --machine) machine=${2:?--machine needs a name}; shift 2 ;;
    --sim-memory) sim_memory=${2:?--sim-memory needs a preset}; shift 2 ;;
    --sim-arg) sim_extra+=("${2?--sim-arg needs an argument}"); shift 2 ;;
    --config) config=${2:?--config needs a file}; shift 2 ;;
    --iso) make_iso=${2:?--iso needs the image maker}; shift 2 ;;
    --expect-status) expect_status=${2:?--expect-status needs a number}; shift 2 ;;
    --expect) expects+=("${2:?--expect needs a regex}"); shift 2 ;;
    --expect-loader-panic) expect_panic=${2:?--expect-loader-panic needs a regex}; shift 2 ;;
    --no-sim) sim=0; shift ;;
    --timeout) time_limit=${2:?--timeout needs seconds}; shift 2 ;;
    --keep-com1) keep_com1=${2:?--keep-com1 needs a file}; shift 2 ;;
    --) shift; break ;;
    -*) echo "boot.sh: unknown option '$1'" >&2; usage ;;
    *) break ;;
    esac
done

[[ $# -ge 4 ]] || usage
loader=$1
initrd=$2
duet=$3
scenario=$4
shift 4

case $kind in
duet | bios-rom | bios-disk | bios-mkbootimg | uefi) ;;
*) echo "boot.sh: unknown loader '$kind' (duet, bios-rom, bios-disk, bios-mkbootimg or uefi)" >&2; usage ;;
esac
if [[ -n $make_iso && $kind != duet ]]; then
    echo "boot.sh: --iso boots Duet's loader through GRUB; it does not go with --loader $kind" >&2
    usage
fi
[[ $smp =~ ^[1-9][0-9]*$ ]] || { echo "boot.sh: --smp takes a positive number, not '$smp'" >&2; usage; }

skip() {
    echo "boot.sh: skipped: $*"
    exit 77
}

need=("$initrd" "$scenario")
[[ $kind == duet ]] && need+=("$loader")
for f in "${need[@]}" ${config:+"$config"} ${make_iso:+"$make_iso"}; do
    if [[ ! -f $f ]]; then
        echo "boot.sh: $f: no such file" >&2
        exit 1
    fi
done
if [[ ! -x $duet ]]; then
    echo "boot.sh: $duet: not an executable" >&2
    exit 1
fi
if ! command -v qemu-system-x86_64 >/dev/null 2>&1; then
    echo "boot.sh: qemu-system-x86_64 not found; install QEMU (Debian: apt-get install qemu-system-x86)" >&2
    exit 1
fi

# The upstream loaders: skipped, not failed, where they are not (the repository does not carry
# them; see shared/third_party/bootboot/README.md).
upstream=
case $kind in
bios-rom | bios-disk) upstream=bootboot.bin ;;
bios-mkbootimg) upstream=mkbootimg ;;
uefi) upstream=bootboot.efi ;;
esac
if [[ -n $upstream && ! -f $bootboot_dir/$upstream ]]; then
    skip "upstream BOOTBOOT's $upstream is not in $bootboot_dir" \
        "(set DUET_BOOTBOOT_DIR or pass --bootboot DIR)"
fi
if [[ $kind == bios-mkbootimg && ! -x $bootboot_dir/mkbootimg ]]; then
    echo "boot.sh: $bootboot_dir/mkbootimg is not executable" >&2
    exit 1
fi
ovmf_code=
ovmf_vars=
if [[ $kind == uefi ]]; then
    for pair in OVMF_CODE_4M.fd:OVMF_VARS_4M.fd OVMF_CODE.fd:OVMF_VARS.fd; do
        if [[ -f /usr/share/OVMF/${pair%%:*} && -f /usr/share/OVMF/${pair##*:} ]]; then
            ovmf_code=/usr/share/OVMF/${pair%%:*}
            ovmf_vars=/usr/share/OVMF/${pair##*:}
            break
        fi
    done
    [[ -n $ovmf_code ]] || skip "OVMF is not installed (no /usr/share/OVMF/OVMF_CODE_4M.fd;" \
        "Debian: apt-get install ovmf)"
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/duet-boot.XXXXXX")
qemu_pid=
cleanup() {
    if [[ -n $qemu_pid ]]; then
        kill "$qemu_pid" 2>/dev/null || true
        wait "$qemu_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT
com1=$work/com1.log

# Runs one of the image tools, failing with its output.
tool() {
    if ! "$@" >"$work/tool.log" 2>&1; then
        cat "$work/tool.log" >&2
        echo "boot.sh: '$*' failed" >&2
        exit 1
    fi
}

# The environment inside the initrd: a copy with sys/config added (sys/core stays first).
if [[ -n $config && ($kind == duet || $kind == bios-rom) ]]; then
    mkdir -p "$work/initrd/sys"
    tar -xf "$initrd" -C "$work/initrd" sys/core
    cp "$config" "$work/initrd/sys/config"
    tar --format=ustar --owner=0 --group=0 --numeric-owner -cf "$work/initrd.tar" \
        -C "$work/initrd" sys/core sys/config
    initrd=$work/initrd.tar
fi

qemu_extra=()
case $kind in
duet)
    boot=(-kernel "$loader" -initrd "$initrd")
    if [[ -n $make_iso ]]; then
        "$make_iso" "$loader" "$initrd" "$work/duet.iso"
        boot=(-cdrom "$work/duet.iso")
    fi
    ;;
bios-rom)
    tool "$repo/tools/make-initrd-rom" "$initrd" "$work/initrd.rom"
    boot=(-option-rom "$bootboot_dir/bootboot.bin" -option-rom "$work/initrd.rom")
    ;;
bios-disk)
    tool "$repo/tools/make-disk-image.sh" ${config:+--config "$config"} "$initrd" "$work/disk.img"
    boot=(-kernel "$bootboot_dir/bootboot.bin" -drive "file=$work/disk.img,format=raw")
    ;;
bios-mkbootimg)
    # mkbootimg takes the initrd file as it is ("file", not "directory", which would pack a
    # tar of its own, of another size: the kernel copy follows the initrd) and needs a
    # "config" file (this build crashes without one): an empty environment unless --config.
    mkdir -p "$work/mk"
    cp "$initrd" "$work/mk/initrd.tar"
    if [[ -n $config ]]; then
        cp "$config" "$work/mk/config"
    else
        echo "# no settings" >"$work/mk/config"
    fi
    cat >"$work/mk/mk.json" <<'JSON'
{"disksize":20,"config":"config","initrd":{"gzip":false,"file":"initrd.tar"},"partitions":[{"type":"boot","size":16}]}
JSON
    (cd "$work/mk" && tool "$bootboot_dir/mkbootimg" mk.json disk.img)
    boot=(-drive "file=$work/mk/disk.img,format=raw")
    ;;
uefi)
    tool "$repo/tools/make-disk-image.sh" ${config:+--config "$config"} \
        --efi "$bootboot_dir/bootboot.efi" "$initrd" "$work/disk.img"
    cp "$ovmf_vars" "$work/ovmf-vars.fd"
    boot=(-drive "if=pflash,format=raw,readonly=on,file=$ovmf_code"
        -drive "if=pflash,format=raw,file=$work/ovmf-vars.fd"
        -drive "file=$work/disk.img,format=raw")
    # No network: OVMF would otherwise try PXE before giving up on a disk it cannot boot.
    qemu_extra=(-nic none)
    ;;
esac

# Verdicts written to isa-debug-exit (see hal/x86_64-baremetal/devices/debug_exit.hpp).
explain() {
    case $1 in
    33) echo "the kernel reported success" ;;
    35) echo "the kernel reported a failed check" ;;
    37) echo "the kernel panicked" ;;
    49) echo "the loader refused to boot the kernel" ;;
    124) echo "timed out after $time_limit s" ;;
    0) echo "QEMU stopped without a verdict (a triple fault ends QEMU with 0 under -no-reboot)" ;;
    *) echo "QEMU exited without a verdict" ;;
    esac
}

fail() {
    echo "boot.sh: $*" >&2
    echo "--- COM1 ---" >&2
    tr -d '\r' <"$com1" >&2 2>/dev/null || true
    if [[ -s $work/qemu.err ]]; then
        echo "--- QEMU's messages ---" >&2
        cat "$work/qemu.err" >&2
    fi
    exit 1
}

# What stops a boot early: the upstream loaders' panic, and OVMF giving up on the disk (it
# then tries the next boot option, ending in its shell or a prompt that waits for a key).
stop_re='BOOTBOOT-PANIC'
[[ $kind == uefi ]] &&
    stop_re+='|BdsDxe: failed to load .*HARDDISK|BdsDxe: No bootable option|Shell> '

# CPU 0's CR0 and instruction pointer, asked over QMP: "CR0 IP" (hex), or nothing.
cpu0_state() {
    python3 - "$1" <<'PY' 2>/dev/null || true
import json, re, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(5)
s.connect(sys.argv[1])
f = s.makefile("rwb")
def call(cmd, **args):
    f.write(json.dumps({"execute": cmd, "arguments": args}).encode() + b"\n")
    f.flush()
    while True:
        msg = json.loads(f.readline())
        if "return" in msg or "error" in msg:
            return msg.get("return")
json.loads(f.readline())  # the greeting
call("qmp_capabilities")
regs = call("human-monitor-command", **{"command-line": "info registers", "cpu-index": 0})
cr0 = re.search(r"CR0=([0-9a-f]+)", regs)
ip = re.search(r"[ER]IP=([0-9a-f]+)", regs)
if cr0 and ip:
    print(cr0.group(1), ip.group(1))
PY
}

# One boot. Sets status (QEMU's exit status), stopped (the line that stopped it early) and
# loader_hang (why the upstream BIOS loader was found stuck), and elapsed_ms.
#
# The upstream BIOS loader can hang for good before it enters the kernel: its TSC delay loop
# (bootboot.bin 0x10e8-0x1124 in the build shared/third_party carries) compares the deadline
# with the TSC the wrong way round, dword by dword and signed, so it returns at once while the
# deadline is ahead and spins forever once it is behind: a boot processor stalled for longer
# than the delay (a millisecond or so; a busy host, or many vCPU threads) never leaves it. So
# when COM1 stays silent for 4 s with no line from the kernel yet, CPU 0 is looked at over QMP:
# paging still off means the loader never entered the kernel, and the boot is tried again.
run_qemu() {
    status=0
    stopped=
    loader_hang=
    : >"$com1"
    rm -f "$work/qmp.sock"
    local qmp=()
    [[ $kind == bios-* ]] && qmp=(-qmp "unix:$work/qmp.sock,server=on,wait=off")
    local begin
    begin=$(date +%s%N)
    timeout "$time_limit" qemu-system-x86_64 \
        -machine "$machine" -m "$memory" -smp "$smp" "${boot[@]}" \
        -serial "file:$com1" -display none -monitor none -no-reboot \
        -device isa-debug-exit,iobase=0xf4,iosize=0x04 "${qmp[@]}" "${qemu_extra[@]}" \
        "$@" </dev/null 2>"$work/qemu.err" &
    qemu_pid=$!
    local size=-1 changed=${EPOCHREALTIME/./} probed=0 state
    while kill -0 "$qemu_pid" 2>/dev/null; do
        if grep -aqE -- "$stop_re" "$com1"; then
            sleep 0.3 # let the line end
            stopped=$(tr -d '\r' <"$com1" | sed 's/\x1b\[[0-9;=?]*[A-Za-z]//g' |
                grep -aE -m1 -- "$stop_re" || true)
            kill "$qemu_pid" 2>/dev/null || true
            break
        fi
        if [[ ${#qmp[@]} -gt 0 ]]; then
            if [[ $(stat -c %s "$com1") -ne $size ]]; then
                size=$(stat -c %s "$com1")
                changed=${EPOCHREALTIME/./}
                probed=0
            elif ((!probed && ${EPOCHREALTIME/./} - changed > 4000000)) &&
                ! grep -aqE '^[a-z]+: ' "$com1"; then
                probed=1
                state=$(cpu0_state "$work/qmp.sock")
                if [[ -n $state && $((0x${state% *} & 0x80000000)) -eq 0 ]]; then
                    loader_hang="CPU 0 still in the loader 4 s after its last line, paging off, at ${state#* }"
                    kill "$qemu_pid" 2>/dev/null || true
                    break
                fi
            fi
        fi
        sleep 0.1
    done
    wait "$qemu_pid" || status=$?
    qemu_pid=
    elapsed_ms=$((($(date +%s%N) - begin) / 1000000))
}

attempts=4
for ((attempt = 1; ; attempt++)); do
    run_qemu "$@"
    [[ -n $loader_hang ]] || break
    echo "boot.sh: attempt $attempt: the upstream BIOS loader hung ($loader_hang);" \
        "its last line: $(tr -d '\r' <"$com1" | grep -a . | tail -n 1)"
    if ((attempt == attempts)); then
        fail "the upstream BIOS loader hung before entering the kernel in each of $attempts boots"
    fi
done

if [[ -n $expect_panic ]]; then
    if [[ $stopped != BOOTBOOT-PANIC* ]]; then
        fail "expected the loader to stop with a BOOTBOOT-PANIC line matching '$expect_panic';" \
            "QEMU exit status $status: $(explain "$status")"
    fi
    if ! grep -Eq -- "$expect_panic" <<<"$stopped"; then
        fail "the loader stopped with '$stopped', which does not match '$expect_panic'"
    fi
    echo "boot.sh: $kind (-machine $machine -m $memory -smp $smp) refused to boot after" \
        "$elapsed_ms ms, as expected: $stopped"
    exit 0
fi
if [[ -n $stopped ]]; then
    fail "the $kind boot stopped after $elapsed_ms ms: $stopped"
fi
if [[ $status -ne $expect_status ]]; then
    fail "QEMU exit status $status: $(explain "$status"); expected $expect_status ($(explain "$expect_status"))"
fi

# The serial port carries raw bytes; drop any carriage returns before comparing.
tr -d '\r' <"$com1" >"$work/com1.txt"
if [[ -n $keep_com1 ]]; then
    cp "$work/com1.txt" "$keep_com1"
fi

for re in "${expects[@]}"; do
    if ! grep -aEq -- "$re" "$work/com1.txt"; then
        fail "no line of the COM1 log matches '$re'"
    fi
done

if [[ $expect_status -eq 33 ]]; then
    want="smp: $smp cpus? online"
    if ! grep -aEq "^$want" "$work/com1.txt"; then
        fail "no '$want' line: not every CPU came online"
    fi
fi

if [[ $sim -eq 1 ]]; then
    sim_args=(run "$scenario" --cpus "$smp")
    [[ -n $sim_memory ]] && sim_args+=(--memory "$sim_memory")
    sim_args+=("${sim_extra[@]}")
    sim_status=0
    "$duet" "${sim_args[@]}" >"$work/sim.log" 2>"$work/sim.err" || sim_status=$?
    if [[ $sim_status -ne 0 ]]; then
        echo "boot.sh: '$duet ${sim_args[*]}' failed with status $sim_status" >&2
        cat "$work/sim.err" >&2
        exit 1
    fi
    # The mmap:, mm: and vm: lines, and the first frames: line (later ones depend on the
    # workload, which the two machines need not share).
    boot_lines() {
        awk '/^(mmap|mm|vm): / { print; next } /^frames: / && !seen { print; seen = 1 }'
    }
    boot_lines <"$work/com1.txt" >"$work/qemu.mmap"
    tr -d '\r' <"$work/sim.log" | boot_lines >"$work/sim.mmap"
    if ! grep -q '^mmap: ' "$work/qemu.mmap"; then
        fail "the kernel printed no mmap: lines"
    fi
    if ! grep -q '^mmap: ' "$work/sim.mmap"; then
        echo "boot.sh: '$duet ${sim_args[*]}' printed no mmap: lines" >&2
        exit 1
    fi
    if ! diff -u --label qemu --label simulator "$work/qemu.mmap" "$work/sim.mmap"; then
        echo "boot.sh: the boot lines differ" >&2
        exit 1
    fi
    echo "boot.sh: QEMU and '${sim_args[*]}' agree on $(grep -c '^mmap: ' "$work/qemu.mmap")" \
        "mmap: lines and $(grep -vc '^mmap: ' "$work/qemu.mmap") mm:, vm: and frames: lines"
fi
echo "boot.sh: $kind (-machine $machine -m $memory -smp $smp) exited $status after $elapsed_ms ms: $(explain "$status")"
