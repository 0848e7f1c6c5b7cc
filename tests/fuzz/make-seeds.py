#!/usr/bin/env python3
"""Writes the seed corpus of one fuzz target into a directory (docs/robustness.md).

make-seeds.py TARGET OUTDIR [DUET]  -- DUET, the simulator, compiles workloads for `workload`.
Seeds come from the repository (scenarios, malformed scenarios, memory maps) or are built
here from them (binary maps, BOOTBOOT pages, ELF images, tar archives)."""

import io
import pathlib
import struct
import subprocess
import sys
import tarfile
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[2]
KERNEL_VIRT = 0xFFFFFFFFFFE02000


def maps():
    """Every shipped E820 map as (base, length, type, ext) tuples."""
    for path in sorted((ROOT / "scenarios/maps").glob("*.e820")):
        entries = []
        for line in path.read_text().splitlines():
            fields = line.split("#")[0].split()
            if len(fields) >= 3:
                nums = [int(f, 0) for f in fields]
                entries.append((nums[0], nums[1], nums[2], nums[3] if len(nums) > 3 else 1))
        yield path.stem, entries


def bootboot_page(entries, numcores=4):
    types = {1: 1, 3: 2, 4: 2}  # E820 usable -> BOOTBOOT free, ACPI -> ACPI, rest used
    mmap = b"".join(struct.pack("<QQ", b, (l & ~0xF) | types.get(t, 0)) for b, l, t, _ in entries)
    header = b"BOOT" + struct.pack("<IBBHHh8sQQQIIII", 128 + len(mmap), 1, 0, numcores, 0, 0,
                                   b"\x20\x24\x01\x01\x00\x00\x00\x00", 0, 0, 0, 0, 0, 0, 0)
    header = header.ljust(128, b"\0")
    return (header + mmap).ljust(4096, b"\0")


def elf(code=b"\xf4" * 64, vaddr=KERNEL_VIRT, bss=4096):
    ehdr_size, phdr_size = 64, 56
    offset = ehdr_size + phdr_size
    ident = b"\x7fELF" + bytes([2, 1, 1]) + bytes(9)
    ehdr = ident + struct.pack("<HHIQQQIHHHHHH", 2, 62, 1, vaddr, ehdr_size, 0, 0, ehdr_size,
                               phdr_size, 1, 64, 0, 0)
    phdr = struct.pack("<IIQQQQQQ", 1, 7, offset, vaddr, vaddr, len(code), len(code) + bss, 4096)
    return ehdr + phdr + code


def user_elf(segments, entry):
    """A static user program: segments are (flags, vaddr, file bytes, memory size), each file
    part at the offset congruent to its address, as user/runtime/link.ld lays them out."""
    ehdr_size, phdr_size = 64, 56
    ident = b"\x7fELF" + bytes([2, 1, 1]) + bytes(9)
    ehdr = ident + struct.pack("<HHIQQQIHHHHHH", 2, 62, 1, entry, ehdr_size, 0, 0, ehdr_size,
                               phdr_size, len(segments), 64, 0, 0)
    phdrs, body = b"", b""
    offset = 0x1000
    for flags, vaddr, data, memsz in segments:
        phdrs += struct.pack("<IIQQQQQQ", 1, flags, offset, vaddr, vaddr, len(data), memsz, 4096)
        body += data.ljust(0x1000, b"\0")
        offset += 0x1000
    return (ehdr + phdrs).ljust(0x1000, b"\0") + body


def tar(members, fmt):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as t:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def seeds(target, duet):
    if target == "scenario":
        for p in sorted(ROOT.glob("scenarios/*.scn")) + sorted(ROOT.glob("tests/scenarios/bad/*.scn")):
            yield p.name, p.read_bytes()
    elif target == "e820":
        for p in sorted(ROOT.glob("scenarios/maps/*.e820")):
            yield p.name, p.read_bytes()
    elif target == "memory_map":
        for name, entries in maps():
            yield name, b"".join(struct.pack("<QQII", *e) for e in entries)
            # With the kernel's reservation (type bit 31) in the middle of low RAM.
            yield name + "-reserved", b"".join(struct.pack("<QQII", *e) for e in entries) + \
                struct.pack("<QQII", 0x100000, 0x200000, 0x80000000, 1)
    elif target == "boot_info":
        for name, entries in maps():
            yield name, bootboot_page(entries)
    elif target == "elf":
        yield "kernel", elf()
        yield "kernel-big-bss", elf(bss=0x100000)
    elif target == "user_elf":
        yield "hello", user_elf([(5, 0x400000, b"\x90" * 64, 64), (4, 0x401000, b"text", 4),
                                 (6, 0x402000, b"data", 0x3000)], 0x400000)
        yield "code-only", user_elf([(5, 0x400000, b"\xf4" * 16, 16)], 0x400008)
    elif target == "ustar":
        members = [("sys/core", elf()), ("sys/workload", b"DUETWL\0\0" + bytes(64))]
        yield "ustar", tar(members, tarfile.USTAR_FORMAT)
        yield "gnu", tar(members, tarfile.GNU_FORMAT)
        yield "dot-slash", tar([("./sys/core", elf())], tarfile.USTAR_FORMAT)
    elif target == "workload":
        if duet is None:
            return
        with tempfile.TemporaryDirectory() as tmp:
            for p in sorted(ROOT.glob("scenarios/*.scn")):
                out = pathlib.Path(tmp) / p.stem
                r = subprocess.run([duet, "workload", str(p), str(out)], capture_output=True)
                if r.returncode == 0:
                    yield p.stem, out.read_bytes()
    elif target == "schedule":
        # Input schedules (hal_sim/schedule.hpp): records of a LEB128 count of points and an
        # action byte. None is empty: libFuzzer runs the empty input by itself.
        def records(every, action, count):
            return bytes([every, action]) * count
        for every in (1, 8, 64):
            yield f"race-every-{every}", records(every, 0x00, 64)
        yield "race-jitter", bytes(b for i in range(64) for b in (3, i * 2))
        yield "long-stalls", records(100, 0x85, 8)
        yield "timer-latency", records(16, 0xdf, 32)
        for i, name in enumerate(["frame-alloc", "heap-alloc", "timer-late", "ipi-delay",
                                  "ipi-duplicate"]):
            yield f"fault-{name}", records(32, 0xe0 + i, 8)
        # A far record: a two-byte position (3000 points on).
        yield "far", bytes([0xb8, 0x17, 0x00]) + records(1, 0x10, 16)
    else:
        sys.exit(f"make-seeds: unknown target '{target}'")


def main():
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__)
    target, outdir = sys.argv[1], pathlib.Path(sys.argv[2])
    outdir.mkdir(parents=True, exist_ok=True)
    count = 0
    for name, data in seeds(target, sys.argv[3] if len(sys.argv) == 4 else None):
        (outdir / name).write_bytes(data)
        count += 1
    if count == 0:
        sys.exit(f"make-seeds: no seeds for '{target}'")


if __name__ == "__main__":
    main()
