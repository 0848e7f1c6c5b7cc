#!/usr/bin/env python3
"""Proves from GCC's call graph that the kernel's bring-up fits the 1 KiB BOOTBOOT stack.

Run after every link of kernel.elf (a POST_BUILD step of duet_kernel):

    check-stack.py --elf kernel.elf [--source-dir DIR] OBJECT...

Every kernel object is compiled with -fstack-usage -fcallgraph-info=su, so next to foo.cpp.o
GCC leaves foo.cpp.ci: each function's frame size (return address included) and the calls it
makes, after inlining. From that graph this script takes the deepest path from each root below,
prints it frame by frame, and fails (exit status 1) if it does not fit its stack:

  bring-up    duet_kernel_entry, which _start calls on the loader's 1 KiB stack, down through
              core::boot_main and core::ap_main, to where they leave that stack for good: the
              functions in STACK_SWITCHES (paths stop there; their own frames still count).
  interrupts  x86_interrupt, which runs on whatever stack was interrupted.
  exceptions  x86_exception, on a 1 KiB IST stack (cpu/gdt.hpp: kIstStackSize).
  build stack core::bsp_build, which the bootstrap CPU runs on a 16 KiB stack in .bss while it
              builds the kernel address space (core/boot/boot_main.cpp: kBuildStackSize),
              interrupts off, down to the switch onto its kernel stack.

The margin on the bring-up stack, for what the call graph cannot see:

  _start           0 bytes: it calls duet_kernel_entry with RSP at the top of the stack, and the
                   return address that call pushes is part of duet_kernel_entry's frame figure.
  inline assembly  32 bytes: pushes GCC does not count (the far return in x86_gdt::load pushes
                   16; pushfq in irq_save and irq_restore 8).
  an interrupt     136 bytes of entry (cpu/interrupt_entry.S: up to 8 bytes of alignment, the
                   CPU's 40-byte frame, the stub's vector and error code, 72 bytes of saved
                   registers) plus the deepest path from x86_interrupt, computed here. Handlers
                   run with interrupts off, so they do not nest; exceptions and NMIs run on IST
                   stacks, not here.

An interrupt lands on a bring-up stack only where interrupts are enabled, and during bring-up
that is only inside hal::wait_for_interrupt() (INTERRUPTIBLE): the core runs bring-up with
interrupts off (core/include/core/boot/boot.hpp), and hal::irq_restore() stops the machine if it
would enable them on a bring-up stack (cpu/irq.cpp), so this cannot change unnoticed. Hence two
checks, each against 1024 bytes:

  interrupts off  the deepest path + the inline-assembly margin;
  interrupts on   the deepest path into an INTERRUPTIBLE function + the inline-assembly margin
                  + the interrupt's entry and handler.

The figure interrupts would need if they could arrive anywhere is printed for comparison.

Errors on a checked path: an indirect call (except those in INDIRECT_CALLS, whose targets are
read from the linked ELF), recursion (except through an edge in BOUNDED_RECURSION, which is
followed once and cut where the cycle closes), a dynamically sized frame, and a call to a
function with no stack figure (assembly not listed in ASM_FRAMES, or a library the kernel does
not build).
"""

import argparse
import os
import re
import struct
import sys

STACK_SIZE = 1024  # bootboot_abi::kInitStackSize
IST_STACK_SIZE = 1024  # x86_gdt::kIstStackSize

INLINE_ASM_BYTES = 32
INTERRUPT_ENTRY_BYTES = 8 + 40 + 16 + 72
# The CPU's frame, error code and vector, the caller-saved registers (cpu/interrupt_entry.S).
EXCEPTION_ENTRY_BYTES = 40 + 16 + 72

ROOT_BRING_UP = "duet_kernel_entry"
ROOT_INTERRUPT = "x86_interrupt"
ROOT_EXCEPTION = "x86_exception"

# Functions that leave the bring-up stack (mangled names): the core switches every CPU onto a
# kernel stack of its own before it starts scheduling (core/boot/boot_main.cpp).
STACK_SWITCHES = {"duet_context_switch"}

# Code that runs, interrupts off, on a stack of the kernel's own until it switches again
# (mangled name: what the stack is called, its size in bytes).
OTHER_STACK_ROOTS = {
    "_ZN4core12_GLOBAL__N_19bsp_buildEPv": ("the bootstrap CPU's build stack", 16384),
}

# Where interrupts are let in on the bring-up stack (mangled names).
INTERRUPTIBLE = {"_ZN3hal18wait_for_interruptEv"}

# The core's interrupt handlers. An interrupt on a bring-up stack never reaches them: the only
# one there is the backend's own clock self-test (boot/self_test.cpp), whose ticks and IPIs the
# backend keeps to itself, and the core enables interrupts only once it runs on kernel stacks.
# So the interrupt path counted against a bring-up stack stops at them (their frames count).
# The same holds for the hook an interrupt from user mode calls on its way back there: no
# bring-up stack runs in ring 3.
CORE_HANDLERS = {
    "_ZN4core8on_timerEv",
    "_ZN4core6on_ipiEN3hal7IpiKindE",
    "_ZN4core4user17on_return_to_userEv",
}

# Functions written in assembly that C++ calls, with the stack each uses (return address
# included), as the comment at each one's definition documents.
ASM_FRAMES = {"duet_context_switch": 64}

# Indirect calls with known targets: mangled caller -> ELF section holding the function pointers.
INDIRECT_CALLS = {
    "_ZN12_GLOBAL__N_116run_constructorsEv": ".init_array",
}

# Functions (mangled) through which a cycle recurs at most once at run time, and why. A cycle
# through one is followed once and cut where it closes.
BOUNDED_RECURSION = {
    "_ZN4core16assertion_failedEPKcS1_i":
        "its log line takes and releases the console lock, and that unlock, which asserts that "
        "the CPU holds a spinlock, finds the lock held: the assertion cannot fail again",
}

# Functions (mangled) that recur a bounded number of times, and why: a cycle through one is
# counted that many times over (the cycle's frames, times the number), then cut.
RECURSION_DEPTH = {
    "_ZN4core2mm12_GLOBAL__N_19free_treeERKNS0_11FrameSourceEN3hal8PhysAddrEj":
        (3, "one call per page-table level below the PML4 (PDPT, PD, PT)"),
    "_ZN4core2mm12_GLOBAL__N_110walk_statsEPKmjRNS0_16KernelSpaceStatsEPm":
        (3, "one call per page-table level below the PML4 (PDPT, PD, PT)"),
}

INDIRECT = "__indirect_call"

NODE_RE = re.compile(r'^node: \{ title: "((?:[^"\\]|\\.)*)" label: "((?:[^"\\]|\\.)*)"')
EDGE_RE = re.compile(r'^edge: \{ sourcename: "((?:[^"\\]|\\.)*)" targetname: "((?:[^"\\]|\\.)*)"'
                     r'(?: label: "((?:[^"\\]|\\.)*)")?')
SIZE_RE = re.compile(r"^(\d+) bytes \(([a-z,]+)\)$")


class Function:
    def __init__(self, title, name, where, size, qualifier):
        self.title = title  # GCC's: the mangled name, led by "file:" if the TU's own
        self.name = name  # demangled
        self.where = where  # file:line:column
        self.size = size  # bytes, the return address included
        self.qualifier = qualifier  # static, dynamic or dynamic,bounded
        self.calls = []  # (target title, call site)


def mangled(title):
    return title.rsplit(":", 1)[-1]


def base_name(title):
    """The mangled name without GCC's clone suffixes (.part.0, .isra.0, .constprop.0, .cold)."""
    return re.sub(r"\.(part|isra|constprop|cold|lto_priv)(\.\d+)?", "", mangled(title))


def read_graph(ci_files):
    """Functions with a stack figure by title, and names of those only called, by title."""
    functions = {}
    called = {}
    edges = []
    for path in ci_files:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                m = NODE_RE.match(line)
                if m:
                    title = m.group(1)
                    parts = m.group(2).split("\\n")
                    size = SIZE_RE.match(parts[2]) if len(parts) > 2 else None
                    if size is None:
                        called.setdefault(title, parts[0])
                        continue
                    fn = Function(title, parts[0], parts[1], int(size.group(1)), size.group(2))
                    old = functions.get(title)
                    if old is None or old.size < fn.size:
                        functions[title] = fn
                    continue
                m = EDGE_RE.match(line)
                if m:
                    edges.append((m.group(1), m.group(2), m.group(3) or ""))
    for source, target, site in edges:
        if source in functions:
            functions[source].calls.append((target, site))
    # GCC's label for a clone (foo.part.0) demangles badly: name it after the original.
    names = {mangled(t): fn.name for t, fn in functions.items()}
    names.update({mangled(t): name for t, name in called.items()})
    for title, fn in functions.items():
        suffix = mangled(title)[len(base_name(title)):]
        if suffix:
            fn.name = f"{names.get(base_name(title), base_name(title))} [{suffix.lstrip('.')}]"
    return functions, called


def elf_function_pointers(path, section):
    """Names of the functions the 8-byte pointers in `section` of ELF file `path` point to."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise SystemExit(f"check-stack: {path}: not a little-endian ELF64 file")
    (shoff,) = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
    # (name, type, offset, size, link, entsize) of each section
    sections = []
    for i in range(shnum):
        f = struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize)
        sections.append((f[0], f[1], f[4], f[5], f[6], f[9]))

    def string(table, offset):
        start = sections[table][2] + offset
        return data[start:data.index(b"\0", start)].decode()

    wanted = [s for s in sections if string(shstrndx, s[0]) == section]
    if not wanted or wanted[0][3] == 0:
        return []
    symtabs = [s for s in sections if s[1] == 2]  # SHT_SYMTAB
    if not symtabs:
        raise SystemExit(f"check-stack: {path}: no symbol table to name {section}'s entries")
    symtab = symtabs[0]
    functions_at = {}
    for i in range(symtab[3] // symtab[5]):
        st_name, st_info, _other, _shndx, value, _size = struct.unpack_from(
            "<IBBHQQ", data, symtab[2] + i * symtab[5])
        if st_info & 0xF == 2:  # STT_FUNC
            functions_at[value] = string(symtab[4], st_name)
    names = []
    for i in range(wanted[0][3] // 8):
        (pointer,) = struct.unpack_from("<Q", data, wanted[0][2] + i * 8)
        if pointer not in functions_at:
            raise SystemExit(f"check-stack: {section} entry {i} (0x{pointer:x}) is no function")
        names.append(functions_at[pointer])
    return names


class CallGraph:
    def __init__(self, functions, called, indirect_targets, source_dir):
        self.functions = functions
        self.called = called
        self.indirect_targets = indirect_targets
        self.source_dir = source_dir.rstrip("/") + "/" if source_dir else ""
        self.errors = []
        self.notes = []
        self.by_mangled = {}
        for title in functions:
            self.by_mangled.setdefault(mangled(title), []).append(title)
        self.memo = {}
        self.memo_interruptible = {}
        self.extra_stops = set()

    def short(self, text):
        return text.replace(self.source_dir, "") if self.source_dir else text

    def resolve(self, target):
        """The title of the definition `target` names, or None."""
        if target in self.functions:
            return target
        name = mangled(target)
        titles = self.by_mangled.get(name)
        if not titles:
            # GCC defines the base-object constructor or destructor (C2, D2) and makes the
            # complete-object one (C1, D1), which callers name, an alias of it.
            titles = self.by_mangled.get(re.sub(r"([CD])1(E[^E]*)$", r"\g<1>2\2", name))
        if not titles:
            return None
        # An inline function emitted in several objects: take its largest frame.
        return max(titles, key=lambda t: self.functions[t].size)

    def callees(self, fn):
        """(title, call site) of each function `fn` calls that has a stack figure."""
        for target, site in fn.calls:
            if target == INDIRECT:
                key = base_name(fn.title)
                if key not in self.indirect_targets:
                    self.errors.append(f"indirect call in {fn.name} at {self.short(site)}")
                    continue
                targets = self.indirect_targets[key]
            else:
                targets = [target]
            for t in targets:
                resolved = self.resolve(t)
                if resolved is None and mangled(t) in ASM_FRAMES:
                    resolved = self.add_asm(mangled(t))
                if resolved is None:
                    name = self.called.get(t, t)
                    self.errors.append(f"no stack figure for {name}, called by {fn.name} at "
                                       f"{self.short(site)}")
                    continue
                yield resolved

    def add_asm(self, name):
        fn = Function(name, self.called.get(name, name) + " (assembly)", "ASM_FRAMES",
                      ASM_FRAMES[name], "static")
        self.functions[name] = fn
        return name

    def stops_here(self, fn):
        return base_name(fn.title) in STACK_SWITCHES or base_name(fn.title) in self.extra_stops

    def deepest(self, title, above=()):
        """(bytes, titles) of the deepest path from `title`."""
        if title in self.memo:
            return self.memo[title]
        fn = self.functions[title]
        if fn.qualifier == "dynamic":
            self.errors.append(f"{fn.name} [{self.short(fn.where)}] has a frame of dynamic size")
        best = (0, [])
        if not self.stops_here(fn):
            above = above + (title,)
            for callee in self.callees(fn):
                if callee in above:
                    extra = self.report_cycle(above[above.index(callee):] + (callee,))
                    if extra[0] > best[0]:
                        best = extra
                    continue
                depth = self.deepest(callee, above)
                if depth[0] > best[0]:
                    best = depth
        result = (fn.size + best[0], [title] + best[1])
        self.memo[title] = result
        return result

    def report_cycle(self, cycle):
        """Reports `cycle` (its first title repeated at the end); returns (bytes, titles) of the
        further rounds of a RECURSION_DEPTH cycle, which the path goes on with, or (0, [])."""
        names = " -> ".join(self.functions[t].name for t in cycle)
        for title in cycle:
            why = BOUNDED_RECURSION.get(base_name(title))
            if why is not None:
                self.notes.append(f"recursion followed once: {names} "
                                  f"({self.functions[title].name}: {why})")
                return (0, [])
            bound = RECURSION_DEPTH.get(base_name(title))
            if bound is not None:
                rounds, why = bound
                self.notes.append(f"recursion counted {rounds} times: {names} "
                                  f"({self.functions[title].name}: {why})")
                titles = list(cycle[:-1]) * (rounds - 1)
                return (sum(self.functions[t].size for t in titles), titles)
        self.errors.append(f"recursion: {names}")
        return (0, [])

    def deepest_interruptible(self, title, above=()):
        """(bytes, titles) of the deepest path from `title` into an INTERRUPTIBLE function
        (its frame the last counted), or None. Run deepest() first: it reports the errors."""
        if title in self.memo_interruptible:
            return self.memo_interruptible[title]
        fn = self.functions[title]
        result = None
        if base_name(title) in INTERRUPTIBLE:
            result = (fn.size, [title])
        elif not self.stops_here(fn):
            above = above + (title,)
            errors = len(self.errors)
            for callee in self.callees(fn):
                if callee in above:
                    continue
                depth = self.deepest_interruptible(callee, above)
                if depth is not None and (result is None or fn.size + depth[0] > result[0]):
                    result = (fn.size + depth[0], [title] + depth[1])
            del self.errors[errors:]
        self.memo_interruptible[title] = result
        return result

    def root(self, name):
        title = self.resolve(name)
        if title is None:
            raise SystemExit(f"check-stack: no stack figure for {name}: are the kernel's objects "
                             "compiled with -fcallgraph-info=su?")
        return title

    def show(self, path, out=sys.stdout):
        for title in path[1]:
            fn = self.functions[title]
            print(f"  {fn.size:6}  {fn.name}  [{self.short(fn.where)}]", file=out)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--elf", required=True, help="the linked kernel (for .init_array)")
    parser.add_argument("--source-dir", default="", help="left out of the file names printed")
    parser.add_argument("objects", nargs="+", help="the kernel's object files")
    args = parser.parse_args()

    ci_files = []
    for obj in args.objects:
        ci = re.sub(r"\.o(bj)?$", "", obj) + ".ci"
        if os.path.exists(ci):
            ci_files.append(ci)
        elif not re.search(r"\.[sS]\.o(bj)?$", obj):
            raise SystemExit(f"check-stack: {ci}: missing; compile with -fcallgraph-info=su")
    functions, called = read_graph(ci_files)
    indirect = {caller: elf_function_pointers(args.elf, section)
                for caller, section in INDIRECT_CALLS.items()}
    graph = CallGraph(functions, called, indirect, args.source_dir)

    boot = graph.deepest(graph.root(ROOT_BRING_UP))
    irq = graph.deepest(graph.root(ROOT_INTERRUPT))
    exc = graph.deepest(graph.root(ROOT_EXCEPTION))
    boot_irq = graph.deepest_interruptible(graph.root(ROOT_BRING_UP)) or (0, [])
    # The same interrupt path as it can run on a bring-up stack: without the core's handlers.
    early = CallGraph(functions, called, indirect, args.source_dir)
    early.extra_stops = CORE_HANDLERS
    early_irq = early.deepest(early.root(ROOT_INTERRUPT))

    interrupt = INTERRUPT_ENTRY_BYTES + irq[0]
    need_off = boot[0] + INLINE_ASM_BYTES
    need_on = boot_irq[0] + INLINE_ASM_BYTES + INTERRUPT_ENTRY_BYTES + early_irq[0]
    need_exc = EXCEPTION_ENTRY_BYTES + exc[0] + INLINE_ASM_BYTES

    print(f"check-stack: the deepest bring-up path ({boot[0]} bytes):")
    graph.show(boot)
    print(f"check-stack: the deepest bring-up path into {len(INTERRUPTIBLE)} interruptible "
          f"function ({boot_irq[0]} bytes):")
    graph.show(boot_irq)
    print(f"check-stack: the deepest interrupt handler path ({irq[0]} bytes):")
    graph.show(irq)
    print(f"check-stack: bring-up stack, interrupts off: {boot[0]} + inline asm "
          f"{INLINE_ASM_BYTES} = {need_off} of {STACK_SIZE} bytes ({STACK_SIZE - need_off} spare)")
    print(f"check-stack: bring-up stack, interrupts on: {boot_irq[0]} + inline asm "
          f"{INLINE_ASM_BYTES} + interrupt {INTERRUPT_ENTRY_BYTES} + {early_irq[0]} (its handler "
          f"short of the core's) = {need_on} of "
          f"{STACK_SIZE} bytes ({STACK_SIZE - need_on} spare)")
    print(f"check-stack: (an interrupt anywhere in bring-up would need {need_off + interrupt} "
          "bytes)")
    print(f"check-stack: exception report on its IST stack: {EXCEPTION_ENTRY_BYTES} + {exc[0]} + "
          f"inline asm {INLINE_ASM_BYTES} = {need_exc} of {IST_STACK_SIZE} bytes")

    others = []
    for name, (what, size) in OTHER_STACK_ROOTS.items():
        path = graph.deepest(graph.root(name))
        need = path[0] + INLINE_ASM_BYTES
        print(f"check-stack: {what}: {path[0]} + inline asm {INLINE_ASM_BYTES} = {need} of "
              f"{size} bytes; the deepest path:")
        graph.show(path)
        others.append((what, need, size))

    for note in dict.fromkeys(graph.notes):
        print(f"check-stack: note: {note}")
    failed = False
    for error in dict.fromkeys(graph.errors):
        print(f"check-stack: error: {error}", file=sys.stderr)
        failed = True
    if need_off > STACK_SIZE:
        print(f"check-stack: error: bring-up needs {need_off} bytes of its {STACK_SIZE}-byte "
              "stack; the deepest path is above", file=sys.stderr)
        failed = True
    if need_on > STACK_SIZE:
        print(f"check-stack: error: an interrupt during bring-up needs {need_on} bytes of the "
              f"{STACK_SIZE}-byte stack; the paths are above", file=sys.stderr)
        failed = True
    for what, need, size in others:
        if need > size:
            print(f"check-stack: error: {what} needs {need} of its {size} bytes; the deepest path "
                  "is above", file=sys.stderr)
            failed = True
    if need_exc > IST_STACK_SIZE:
        print(f"check-stack: error: the exception report needs {need_exc} bytes of its "
              f"{IST_STACK_SIZE}-byte IST stack:", file=sys.stderr)
        graph.show(exc, sys.stderr)
        failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
