# Duet's gdb helpers: the simulated machine's CPUs, the kernel's threads, run queues and frame
# allocator, and the backtrace of a parked thread, which plain gdb cannot show (a parked
# thread is a suspended Boost.Context fiber in the simulator, a saved stack pointer on bare
# metal). docs/debugging.md walks through them.
#
#   ./duet gdb SCENARIO [run options]    the simulator under gdb, these helpers loaded
#   ./duet gdb --qemu                    kernel.elf against QEMU's gdb stub (./duet qemu --gdb)
#   (gdb) source tools/gdb/duet.py       anywhere else
#
# Commands (`help duet` lists them):
#   duet cpus                 each CPU: what it runs, its clock, interrupts, pending events
#   duet threads              every live thread: pid, name, state, CPU, priority, run time
#   duet runq [CPU]           the run queues (and sleepers) of one CPU or all
#   duet frames               the frame allocator: counters, per-CPU caches, free lists
#   duet processes            every process: its state, thread, system calls, handles, and the
#                             IPC call it is blocked in
#   duet bt [-sim] THREAD     the backtrace of a thread (a pid, a name, "idle N" or "cpu N")
#   duet break-switch THREAD  stop when THREAD is switched in (on its own stack)
#   duet break-time SECONDS   stop when a CPU reaches that virtual time (simulator)
#
# A thread's pid is the number traces and the JSON report show: the thread's number
# (core::sched::Thread::number), unique in a run, in spawn order; 0 is a CPU's idle thread.

import itertools
import os
import re
import shlex

import gdb
from gdb.FrameDecorator import FrameDecorator

# The repository, from this file's place in it (tools/gdb/): gdb defines __file__ only while
# it sources the script, not when a command runs later.
_ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")

SCHED = "core::sched::(anonymous namespace)::"
WORKLOAD = "core::workload::(anonymous namespace)::"
USER = "core::user::(anonymous namespace)::"
IPC = "core::user::ipc::(anonymous namespace)::"
STATES = ["free", "runnable", "running", "blocked", "exited"]
OWNERS = ["kernel", "frame metadata", "boot data", "page tables", "kernel stacks", "heap", "user"]
ZONES = ["below 1 MiB", "below 4 GiB", "above 4 GiB"]
KIND_NAMES = {0: "reschedule", 1: "stop"}


class DuetError(gdb.GdbError):
    pass


# --- Reading the inferior. ---


def symbol(name):
    """The value of a global or file-static variable, or None."""
    for lookup in (gdb.lookup_static_symbol, gdb.lookup_global_symbol):
        try:
            s = lookup(name)
        except gdb.error:
            s = None
        if s is not None:
            try:
                return s.value()
            except gdb.error:
                return None
    return None


def need(name):
    v = symbol(name)
    if v is None:
        raise DuetError("duet: no symbol %s: is this a Duet kernel or simulator with debug info?" % name)
    return v


def field(value, name):
    """A member, found in base classes too."""
    try:
        return value[name]
    except gdb.error:
        pass
    for f in value.type.strip_typedefs().fields():
        if f.is_base_class:
            try:
                return field(value.cast(f.type), name)
            except gdb.error:
                continue
    raise gdb.error("no member %s" % name)


def vector_items(vec):
    """The elements of a std::vector (libstdc++: its first two pointers are begin and end)."""
    impl = vec["_M_impl"]
    begin, end = impl["_M_start"], impl["_M_finish"]
    return [(begin + i).dereference() for i in range(int(end - begin))]


def unique_get(uptr, target_type):
    """What a std::unique_ptr with the default deleter holds: its only pointer."""
    return uptr.address.cast(target_type.pointer().pointer()).dereference()


def cstring(chars):
    try:
        return chars.string(length=-1).split("\0")[0]
    except (gdb.error, UnicodeDecodeError):
        return "?"


def seconds(ns):
    ns = int(ns)
    return "%d.%09d" % (ns // 1000000000, ns % 1000000000)


def is_sim():
    """True in the simulator, false in kernel.elf (QEMU)."""
    return symbol("hal_sim::Machine::s_current") is not None


# --- The kernel's scheduler. ---


class Thread:
    def __init__(self, value):
        self.v = value  # core::sched::Thread
        ident = int(value["id"]["value"])
        self.slot = ident & 0xFFFFFFFF
        self.generation = ident >> 32
        self.idle = bool(value["idle"])
        self.name = cstring(value["name"])
        self.state = STATES[int(value["state"])] if int(value["state"]) < len(STATES) else "?"
        self.cpu = int(value["cpu"])
        self.priority = int(value["link"]["priority"])
        self.address = int(value.address)
        # core::sched::trace::pid(): the number, or 0 for an idle thread.
        self.pid = 0 if self.idle else int(value["number"])

    def label(self):
        if self.idle:
            return "idle (cpu %d)" % self.cpu
        return "%s (pid %d)" % (self.name, self.pid)


def thread_type():
    return gdb.lookup_type("core::sched::Thread")


def threads():
    """Every live thread, in slot order."""
    chunks = need(SCHED + "s_chunks")
    slots = int(need(SCHED + "s_slots"))
    per_chunk = (4096 << 4) // thread_type().sizeof  # kChunkOrder = 4
    result = []
    for slot in range(1, slots):
        chunk = chunks[slot // per_chunk]
        if int(chunk) == 0:
            continue
        t = (chunk + slot % per_chunk).dereference()
        if int(t["state"]) != 0:
            result.append(Thread(t))
    return result


def thread_at(pointer):
    if int(pointer) == 0:
        return None
    return Thread(pointer.cast(thread_type().pointer()).dereference())


def cpu_count():
    return int(need("core::sched::detail::g_cpu_count"))


def core_cpu(i):
    """CPU i's core::Cpu."""
    return need("core::g_cpus")[i]


def sched_cpu(i):
    return core_cpu(i)["sched"]


def find_thread(spec):
    """A thread by pid, name, slot:generation or `idle N`; raises if none or ambiguous."""
    spec = " ".join(spec.split())
    every = threads()
    if spec.startswith("idle ") and spec[5:].isdigit():
        found = [t for t in every if t.idle and t.cpu == int(spec[5:])]
    elif spec == "0":
        raise DuetError("duet: pid 0 is every CPU's idle thread; name one as idle N")
    elif spec.isdigit():
        found = [t for t in every if t.pid == int(spec)]
    elif ":" in spec and spec.replace(":", "").isdigit():
        slot, gen = (int(x) for x in spec.split(":"))
        found = [t for t in every if t.slot == slot and t.generation == gen]
    else:
        found = [t for t in every if t.name == spec and not t.idle]
    if not found:
        raise DuetError("duet: no live thread %s (duet threads lists them)" % spec)
    if len(found) > 1:
        raise DuetError("duet: %d threads are called %s; name one by pid: %s" % (
            len(found), spec, ", ".join(str(t.pid) for t in found)))
    return found[0]


def queue_threads(rq):
    """A RunQueue's threads, highest priority first: [(priority, [Thread])]."""
    levels = []
    for level in range(7, -1, -1):
        link = rq["m_levels"][level]["head"]
        names = []
        guard = 0
        while int(link) != 0 and guard < 100000:
            names.append(thread_at(link))
            link = link["next"]
            guard += 1
        if names:
            levels.append((level, names))
    return levels


def waiters(queue):
    """The threads waiting on a WaitQueue, first first."""
    out = []
    t = queue["m_head"]
    guard = 0
    while int(t) != 0 and guard < 100000:
        out.append(int(t))
        t = t["wait_next"]
        guard += 1
    return out


def blocked_on():
    """What each blocked thread waits for, by its address: the workload's mutexes and events."""
    reasons = {}
    mutexes = symbol(WORKLOAD + "s_mutexes")
    if mutexes is not None:
        for i in range(int(mutexes.type.range()[1]) + 1):
            m = mutexes[i]["mutex"]
            owner = thread_at(m["m_owner"])
            for a in waiters(m["m_waiters"]):
                reasons[a] = "mutex %d%s" % (i, ", held by " + owner.label() if owner else "")
    events = symbol(WORKLOAD + "s_events")
    if events is not None:
        for i in range(int(events.type.range()[1]) + 1):
            for a in waiters(events[i]["event"]["m_waiters"]):
                reasons[a] = "event %d" % i
    done = symbol(WORKLOAD + "s_done")
    if done is not None:
        for a in waiters(done["m_waiters"]):
            reasons[a] = "the workload's end"
    return reasons


# --- The simulated machine. ---


def machine():
    """The simulated machine: the running one, or the last built."""
    for name in ("hal_sim::Machine::s_current", "hal_sim::Machine::s_last_built"):
        m = symbol(name)
        if m is not None and int(m) != 0:
            return m.dereference()
    return None


def sim_cpus(m):
    simcpu = gdb.lookup_type("hal_sim::SimCpu")
    return [unique_get(u, simcpu).dereference() for u in vector_items(m["m_cpus"])]


def running_cpu_index():
    """The CPU whose code gdb stopped in, or None."""
    if is_sim():
        m = symbol("hal_sim::Machine::s_current")
        if m is None or int(m) == 0:
            return None
        cur = m.dereference()["m_current"]
        return None if int(cur) == 0 else int(field(cur.dereference(), "index"))
    thread = gdb.selected_thread()
    return None if thread is None else thread.num - 1


# --- Fiber and stack registers: what a parked context saved. ---

REGS = ["rip", "rsp", "rbp", "rbx", "r12", "r13", "r14", "r15"]


def read_u64(address):
    return int(gdb.parse_and_eval("*(unsigned long long*)%d" % address))


def fcontext_frame():
    """Boost.Context's jump_fcontext reserves this many bytes below its return address
    (`lea -0x38(%rsp),%rsp` in 1.74 on x86_64 SysV); read from the code when it is loaded."""
    try:
        text = gdb.execute("x/i jump_fcontext", to_string=True)
        if "lea" in text and "(%rsp)" in text:
            return int(text.split("lea")[1].split("(%rsp)")[0].strip().lstrip("-"), 16)
    except (gdb.error, ValueError, IndexError):
        pass
    return 0x38


def fiber_registers(fctx):
    """A suspended fiber's registers: jump_fcontext saved r12..rbp above the FPU control words,
    then the return address; the fiber resumes with its stack pointer past them."""
    size = fcontext_frame()
    return {
        "r12": read_u64(fctx + 0x08), "r13": read_u64(fctx + 0x10),
        "r14": read_u64(fctx + 0x18), "r15": read_u64(fctx + 0x20),
        "rbx": read_u64(fctx + 0x28), "rbp": read_u64(fctx + 0x30),
        "rip": read_u64(fctx + size), "rsp": fctx + size + 8,
    }


def stack_registers(rsp):
    """A parked bare-metal context (cpu/context_switch.S): r15, r14, r13, r12, rbx, rbp,
    RFLAGS and the return address, from its saved stack pointer up."""
    names = ["r15", "r14", "r13", "r12", "rbx", "rbp"]
    regs = {n: read_u64(rsp + 8 * i) for i, n in enumerate(names)}
    regs["rip"] = read_u64(rsp + 56)
    regs["rsp"] = rsp + 64
    return regs


# The simulator's frames on top of a parked fiber's stack: its switch (Boost.Context and
# duet_jump_fcontext), the machine (hal_sim::), and its HAL functions (hal::), whose callers
# are the kernel's code. The fibers' own first frames (duet_fiber_start_*) count too.
SIM_FRAME = re.compile(r"(hal_sim::|hal::|boost::|duet_fiber_start_)|"
                       r"(duet_)?(jump|make|ontop)_fcontext$")


def is_sim_frame(frame):
    name = frame.name()
    return name is not None and SIM_FRAME.match(name) is not None


def set_registers(regs):
    for r in REGS:
        if r in regs:
            gdb.execute("set $%s = %d" % (r, regs[r]), to_string=True)


def leading_sim_frames():
    """How many frames from the top are the simulator's, and the outermost one's name (the
    HAL function the kernel called); (0, None) if the top frame is the kernel's, or if every
    frame is the simulator's."""
    frame = gdb.newest_frame()
    count, called = 0, None
    while frame is not None and is_sim_frame(frame):
        count, called = count + 1, frame.name()
        frame = frame.older()
    return (0, None) if frame is None else (count, called)


class LeadingSimFrames:
    """A frame filter, enabled only while `duet bt` runs: drops the simulator's frames above
    the kernel's first one. The frames shown keep their numbers, so the first is #N, N the
    number left out."""

    def __init__(self):
        self.name = "duet-leading-sim-frames"
        self.priority = 100
        self.enabled = False
        gdb.frame_filters[self.name] = self

    def filter(self, frames):
        kept = itertools.dropwhile(lambda d: is_sim_frame(d.inferior_frame()), frames)
        return (NamedAsBt(d) for d in kept)


class NamedAsBt(FrameDecorator):
    """A frame named as a plain `bt` names it: FrameDecorator's default adds the parameter
    types of a C++ function that is not inlined (`schedule() ()`)."""

    def function(self):
        frame = self.inferior_frame()
        return frame.name() or super().function()


LEADING_SIM_FRAMES = LeadingSimFrames()


def backtrace(args, header, skip_sim):
    """`bt ARGS` after `header`, a pair of strings. With skip_sim, the simulator's frames above
    the kernel's first one are left out, and the header says so between its two parts."""
    count, called = leading_sim_frames() if skip_sim else (0, None)
    if count:
        header = (header[0] + " in %s (#0-#%d are the simulator's: duet bt -sim shows them)" % (
            called, count - 1), header[1])
    gdb.write(header[0] + header[1])
    LEADING_SIM_FRAMES.enabled = count > 0
    # NOTE: the filtered frames' locals are printed in the language of frame 0, the switch's
    # assembly: libstdc++'s pretty printers then fail to parse their C++ casts.
    language = gdb.parameter("language")
    try:
        if count:
            gdb.execute("set language c++", to_string=True)
        gdb.execute("bt " + args)
    finally:
        LEADING_SIM_FRAMES.enabled = False
        if count:
            gdb.execute("set language %s" % language, to_string=True)


def backtrace_with(regs, args, header, skip_sim=False):
    """backtrace() as if the selected thread's registers were `regs`, then puts them back."""
    gdb.execute("select-frame 0")
    frame = gdb.selected_frame()
    saved = {r: int(frame.read_register(r)) for r in REGS}
    try:
        set_registers(regs)
        backtrace(args, header, skip_sim)
    finally:
        for r in REGS:
            gdb.execute("set $%s = %d" % (r, saved[r]), to_string=True)
        gdb.execute("select-frame 0")


# --- Commands. ---


class DuetPrefix(gdb.Command):
    """Duet's helpers: duet cpus, duet threads, duet runq [CPU], duet frames, duet processes,
duet bt [-sim] THREAD,
duet break-switch THREAD, duet break-time SECONDS. THREAD is a pid (as traces show it), a
name, slot:generation, or `idle N` (CPU N's idle thread)."""

    def __init__(self):
        super().__init__("duet", gdb.COMMAND_USER, gdb.COMPLETE_NONE, True)


class DuetCpus(gdb.Command):
    """Each CPU: the thread it runs, its virtual clock, interrupt state and pending events
(simulator), or the scheduler's view of it (bare metal). '*' marks the CPU gdb stopped in."""

    def __init__(self):
        super().__init__("duet cpus", gdb.COMMAND_USER)

    def invoke(self, arg, from_tty):
        here = running_cpu_index()
        m = machine() if is_sim() else None
        if is_sim() and m is None:
            gdb.write("no simulated machine yet (run, and stop once the machine is built)\n")
            return
        n = cpu_count()
        if m is not None:
            cpus = sim_cpus(m)
            gdb.write("%s machine: %d cpus, %d executor steps, %s\n" % (
                "running" if int(need("hal_sim::Machine::s_current")) != 0 else "stopped",
                len(cpus), int(m["m_steps"]), "halted" if bool(m["m_stopped"]) else "not halted"))
            for c in cpus:
                i = int(field(c, "index"))
                state = str(c["state"]).split("::")[-1].lower()
                if state == "running" and bool(c["spinning"]):
                    state = "spinning"
                current = thread_at(sched_cpu(i)["current"]) if i < n else None
                pending = []
                deadline = int(c["timer_deadline_ns"])
                if deadline != 0xFFFFFFFFFFFFFFFF:
                    pending.append("timer at " + seconds(deadline))
                for ipi in vector_items(c["ipis"]):
                    kind = str(ipi["kind"]).split("::")[-1].lower()
                    pending.append("%s IPI at %s" % (kind, seconds(ipi["at_ns"])))
                context = c["running"]["name"]
                gdb.write("%s cpu %-3d %-8s clock %s  interrupts %-3s  runs %-24s  %s%s\n" % (
                    "*" if i == here else " ", i, state, seconds(field(c, "clock_ns")),
                    "on" if bool(field(c, "irq_enabled")) else "off",
                    current.label() if current else "(not scheduling yet)",
                    "pending: " + ", ".join(pending) if pending else "nothing pending",
                    "" if int(context) == 0 or (current and cstring(context) == current.name)
                    else "  [context: %s]" % cstring(context)))
            return
        for i in range(n):
            c = core_cpu(i)
            s = c["sched"]
            current = thread_at(s["current"])
            extra = "  online %s, spinlocks held %d" % (
                "yes" if bool(c["online"]) else "no",
                bin(int(c["locks"]["ranks_held"])).count("1"))
            gdb.write("%s cpu %-3d runs %-24s  in interrupt %s, reschedule %s%s\n" % (
                "*" if i == here else " ", i, current.label() if current else "(not scheduling yet)",
                "yes" if int(s["irq_depth"]) else "no", "pending" if bool(s["need_resched"]) else "no",
                extra))


class DuetThreads(gdb.Command):
    """Every live thread: pid, slot:generation, name, state (and what a blocked one waits for),
CPU (the one it runs on, or ran on last), priority (0 lowest to 7), CPU time, time spent
runnable but not running, wake-ups, preemptions, migrations."""

    def __init__(self):
        super().__init__("duet threads", gdb.COMMAND_USER)

    def invoke(self, arg, from_tty):
        every = threads()
        clocks = {}
        m = machine() if is_sim() else None
        if m is not None:
            for c in sim_cpus(m):
                clocks[int(field(c, "index"))] = int(field(c, "clock_ns"))
        reasons = blocked_on()
        gdb.write("%8s %-9s %-20s %-9s %3s %4s %12s %12s %7s %7s %5s  %s\n" % (
            "pid", "slot:gen", "name", "state", "cpu", "prio", "run ns", "delay ns", "wakeups",
            "preempt", "migr", "waits for"))
        for t in every:
            run = int(t.v["run_ns"])
            if t.state == "running" and not t.idle and t.cpu in clocks:
                run += max(0, clocks[t.cpu] - int(t.v["last_in_ns"]))
            why = ""
            if t.state == "blocked":
                if bool(t.v["in_timer"]):
                    why = "sleep until " + seconds(t.v["wake_at"])
                else:
                    why = reasons.get(t.address, "")
            gdb.write("%8d %-9s %-20s %-9s %3d %4d %12d %12d %7d %7d %5d  %s\n" % (
                t.pid, "%d:%d" % (t.slot, t.generation), t.name, t.state, t.cpu, t.priority, run,
                int(t.v["run_delay_ns"]), int(t.v["wakeups"]), int(t.v["preemptions"]),
                int(t.v["migrations"]), why))
        gdb.write("%d threads\n" % len(every))


def c_string(array):
    """A char array's text, up to its NUL."""
    out = []
    for i in range(int(array.type.range()[1]) + 1):
        c = int(array[i])
        if c == 0:
            break
        out.append(chr(c) if 32 <= c < 127 else "?")
    return "".join(out)


def enum_name(value):
    """An enumerator's name without its scope (`Running` for core::user::ProcessState::Running)."""
    return str(value).split("::")[-1]


class DuetProcesses(gdb.Command):
    """Every process (core/user): id, name, program, state, its first thread (pid), system calls,
pages it mapped, its handles (number, the object and its rights), its other live threads, and the
IPC call each thread is blocked in, if any, with whom it waits for."""

    def __init__(self):
        super().__init__("duet processes", gdb.COMMAND_USER)

    def invoke(self, arg, from_tty):
        table = need(USER + "s_processes")
        endpoints = need(IPC + "s_endpoints")
        notifications = need(IPC + "s_notifications")

        def object_name(kind, index):
            objects = endpoints if kind == "Endpoint" else notifications
            name = c_string(objects[index]["name"])
            return "%s %s" % (kind.lower(), "'%s'" % name if name else "#%d" % index)

        def threads_of(p):
            ts = p["threads"]
            return [ts[k] for k in range(int(ts.type.range()[1]) + 1)]

        live = []
        for i in range(int(table.type.range()[1]) + 1):
            p = table[i]
            if enum_name(p["state"]) != "Free":
                live.append(p)
        # Every live thread's address -> (its process, its number in the process).
        by_thread = {}
        for p in live:
            for k, t in enumerate(threads_of(p)):
                if enum_name(t["state"]) != "Free":
                    by_thread[int(t.address)] = (p, k)
        gdb.write("%4s %-15s %-15s %-8s %8s %8s %6s\n" % (
            "id", "name", "program", "state", "thread", "syscalls", "mapped"))
        for p in live:
            threads = threads_of(p)
            runner = thread_at(threads[0]["runner"])
            state = enum_name(p["state"])
            if bool(p["killed"]):
                state = "killed"
            gdb.write("%4d %-15s %-15s %-8s %8s %8d %6d\n" % (
                int(p["id"]), c_string(p["name"]), c_string(p["program"]), state.lower(),
                str(runner.pid) if runner else "-",
                int(p["syscalls"]) + sum(int(t["syscalls"]) for t in threads
                                         if enum_name(t["state"]) == "Live"),
                int(p["mapped_pages"])))
            handles = []
            for h in range(int(p["handles"].type.range()[1]) + 1):
                slot = p["handles"][h]
                kind = enum_name(slot["type"])
                if kind == "None":
                    continue
                rights = int(slot["rights"])
                names = [n for bit, n in ((1, "call"), (2, "receive"), (4, "signal"), (8, "wait"))
                         if rights & bit]
                handles.append("%d: %s (%s)" % (h + 1, object_name(kind, int(slot["object"])),
                                                "+".join(names)))
            if handles:
                gdb.write("     handles %s\n" % ", ".join(handles))
            for k, t in enumerate(threads):
                if enum_name(t["state"]) != "Live":
                    continue
                # The first thread's lines as a one-thread process's; the others say which.
                lead = "     "
                if k != 0:
                    other = thread_at(t["runner"])
                    gdb.write("     thread #%d (pid %s)\n" % (k, str(other.pid) if other else "-"))
                    lead = "       "
                ipc = t["ipc"]
                blocked = enum_name(ipc["blocked_in"])
                if blocked not in ("Nothing", "Sleep"):
                    index = int(ipc["blocked_on"])
                    what = {"Call": "call on " + object_name("Endpoint", index),
                            "Recv": "recv on " + object_name("Endpoint", index),
                            "Wait": "wait on " + object_name("Notification", index)}[blocked]
                    owner = None
                    if blocked == "Call":
                        owner = next((by_thread[a][0] for a in by_thread
                                      if int(by_thread[a][0]["threads"][by_thread[a][1]]["ipc"]
                                             ["reply_to"]) == int(t.address)), None)
                    gdb.write("%sblocked in %s%s\n" % (lead, what, (
                        ", received by process %d '%s'" % (int(owner["id"]),
                                                           c_string(owner["name"])))
                        if owner is not None else ""))
                if int(ipc["reply_to"]) in by_thread:
                    caller = by_thread[int(ipc["reply_to"])][0]
                    gdb.write("%sowes a reply to process %d '%s'\n" % (
                        lead, int(caller["id"]), c_string(caller["name"])))
        gdb.write("%d processes\n" % len(live))


class DuetRunq(gdb.Command):
    """The run queues of CPU N (default: every CPU): the running thread, the active queue
(threads with a turn left in the CPU's round) and the expired one (waiting for the next round),
highest priority first, and the CPU's sleepers."""

    def __init__(self):
        super().__init__("duet runq", gdb.COMMAND_USER)

    def invoke(self, arg, from_tty):
        n = cpu_count()
        which = range(n)
        if arg.strip():
            try:
                which = [int(arg)]
            except ValueError:
                raise DuetError("duet runq: CPU number expected, not '%s'" % arg)
            if which[0] >= n:
                raise DuetError("duet runq: the machine has %d cpus" % n)
        for i in which:
            s = sched_cpu(i)
            current = thread_at(s["current"])
            active = 0 if int(s["active_queue"]) == int(s["queues"][0].address) else 1
            gdb.write("cpu %d: runs %s, round %d, %d queued%s\n" % (
                i, current.label() if current else "nothing yet", int(s["round"]),
                sum(len(ts) for q in (0, 1) for _, ts in queue_threads(s["queues"][q])),
                ", reschedule pending" if bool(s["need_resched"]) else ""))
            for label, q in (("active", active), ("expired", active ^ 1)):
                levels = queue_threads(s["queues"][q])
                if not levels:
                    gdb.write("  %-8s (empty)\n" % label)
                for k, (prio, ts) in enumerate(levels):
                    gdb.write("  %-8s prio %d: %s\n" % (
                        label if k == 0 else "", prio,
                        ", ".join("%s round %d" % (t.label(), int(t.v["round"])) for t in ts)))
            sleeper = s["sleepers"]["first"]
            sleepers = []
            while int(sleeper) != 0 and len(sleepers) < 10000:
                t = thread_at(sleeper)
                sleepers.append("%s until %s" % (t.label(), seconds(t.v["wake_at"])))
                sleeper = sleeper["timer_next"]
            if sleepers:
                gdb.write("  sleeping %s\n" % ", ".join(sleepers))


class DuetFrames(gdb.Command):
    """The frame allocator: its counters (free + used + reserved = total), who uses the frames,
the per-CPU caches, and the free blocks of each order in each zone."""

    def __init__(self):
        super().__init__("duet frames", gdb.COMMAND_USER)

    def invoke(self, arg, from_tty):
        fa = need("core::mm::(anonymous namespace)::s_frames")
        if not bool(fa["m_ready"]):
            gdb.write("the frame allocator has not started (the bump allocator runs boot)\n")
            return
        ncpus = int(fa["m_cpus"])
        caches = [core_cpu(i)["frame_cache"] for i in range(ncpus)]
        used = [int(fa["m_used"][o]) for o in range(len(OWNERS))]
        cached = 0
        for i in range(ncpus):
            c = caches[i]
            cached += int(c["count"]) + int(c["huge_count"]) * 512
            for o in range(len(OWNERS)):
                used[o] += int(c["used"][o])
        total, reserved = int(fa["m_total"]), int(fa["m_reserved"])
        buddy = int(fa["m_buddy_free"])
        free = buddy + cached
        gdb.write("frames: %d total = %d free + %d used + %d reserved%s\n" % (
            total, free, sum(used), reserved,
            "" if free + sum(used) + reserved == total else "   (DOES NOT ADD UP)"))
        gdb.write("free:   %d in the buddy lists, %d in per-CPU caches\n" % (buddy, cached))
        gdb.write("used:   %s\n" % ", ".join("%s %d" % (OWNERS[o], used[o])
                                             for o in range(len(OWNERS)) if used[o]))
        gdb.write("caches: %s\n" % ", ".join(
            "cpu %d: %d + %d x 2 MiB" % (i, int(caches[i]["count"]), int(caches[i]["huge_count"]))
            for i in range(ncpus)))
        direct = int(fa["m_direct_map"])
        for z in range(3):
            parts = []
            for k in range(19):
                if not (int(fa["m_nonempty"][z]) >> k) & 1:
                    continue
                pfn = int(fa["m_lists"][z][k])
                count = 0
                while pfn != 0xFFFFFFFFFFFFFFFF and count < 4096:
                    count += 1
                    pfn = read_u64(direct + (pfn << 12))
                parts.append("order %d: %s" % (k, "%d+" % count if count >= 4096 else count))
            gdb.write("zone %-12s %s\n" % (ZONES[z] + ":", ", ".join(parts) if parts else "(none)"))


class DuetBt(gdb.Command):
    """duet bt [-sim] THREAD [BT ARGS]: the backtrace of THREAD (a pid, a name, slot:generation,
`idle N` for CPU N's idle thread, or `cpu N` for what CPU N runs), parked or running. A parked
thread's registers are read from its saved context and put in place for the duration of `bt`,
then restored. In the simulator it starts at the kernel's frame that called into the switch or
the preemption point; -sim starts at the simulator's frames above it."""

    def __init__(self):
        super().__init__("duet bt", gdb.COMMAND_USER)

    def invoke(self, arg, from_tty):
        words = arg.split()
        self.skip_sim = is_sim()
        if words and words[0] == "-sim":
            self.skip_sim = False
            words = words[1:]
        if not words:
            raise DuetError("duet bt: which thread? (a pid, a name, or cpu N)")
        rest = ""
        here = running_cpu_index()
        if words[0] == "cpu":
            if len(words) < 2 or not words[1].isdigit():
                raise DuetError("duet bt cpu N")
            cpu = int(words[1])
            rest = " ".join(words[2:])
            t = thread_at(sched_cpu(cpu)["current"])
            label = "cpu %d" % cpu + (", " + t.label() if t else "")
            return self.cpu_backtrace(cpu, here, label, rest)
        if words[0] == "idle" and len(words) > 1:
            t = find_thread(" ".join(words[:2]))
            rest = " ".join(words[2:])
        else:
            t = find_thread(words[0])
            rest = " ".join(words[1:])
        on_cpu = bool(t.v["on_cpu"])
        if on_cpu and t.state in ("running", "exited", "blocked", "runnable") and int(
                sched_cpu(t.cpu)["current"]) == t.address:
            return self.cpu_backtrace(t.cpu, here, t.label() + " on cpu %d" % t.cpu, rest)
        context = t.v["context"]
        if int(t.v["switches_in"]) == 0 and not t.idle:
            gdb.write("%s has not run yet: it will start in %s\n" % (t.label(), t.v["entry"]))
            return
        if is_sim():
            fiber = int(context["fiber"])
            if fiber == 0:
                gdb.write("%s has not run yet: it will start in %s\n" % (
                    t.label(), context["entry"]))
                return
            backtrace_with(fiber_registers(fiber), rest,
                           ("%s, %s, parked" % (t.label(), t.state), ":\n"), self.skip_sim)
        else:
            rsp = int(context["rsp"])
            if rsp == 0:
                gdb.write("%s has not run yet\n" % t.label())
                return
            backtrace_with(stack_registers(rsp), rest,
                           ("%s, %s, parked:\n" % (t.label(), t.state), ""))

    def cpu_backtrace(self, cpu, here, label, rest):
        if cpu == here:
            backtrace(rest, (label + ", running here", ":\n"), self.skip_sim)
            return
        if is_sim():
            m = machine()
            c = sim_cpus(m)[cpu]
            resume = int(c["resume"])
            if resume == 0 or str(c["state"]).endswith("Parked"):
                gdb.write("cpu %d has not started\n" % cpu)
                return
            backtrace_with(fiber_registers(resume), rest,
                           (label + ", at a preemption point", ", waiting for the executor:\n"),
                           self.skip_sim)
            return
        # QEMU: each vCPU is a gdb thread.
        threads_ = {t.num: t for t in gdb.selected_inferior().threads()}
        if cpu + 1 not in threads_:
            raise DuetError("duet bt: no gdb thread for cpu %d" % cpu)
        current = gdb.selected_thread()
        threads_[cpu + 1].switch()
        try:
            gdb.write("%s, on its vCPU:\n" % label)
            gdb.execute("bt " + rest)
        finally:
            current.switch()


def scenario_thread_names():
    """The names threads may have in the run gdb debugs: init, and every program of the scenario
    (the simulator's arguments name it; on QEMU, the built-in workload is scenarios/baremetal.scn).
    None if the scenario cannot be found or read."""
    path = None
    if is_sim():
        # `show args`: Argument list to give program being debugged when it is started is "...".
        shown_args = gdb.execute("show args", to_string=True)
        try:
            args = shlex.split(shown_args[shown_args.find('"') + 1:shown_args.rfind('"')])
        except ValueError:
            return None
        if "run" not in args:
            return None
        given = [a for a in args[args.index("run") + 1:] if a.endswith(".scn")]
        path = given[0] if given else "scenarios/default.scn"
        cwd = gdb.parameter("cwd") or os.getcwd()
        path = os.path.join(os.path.expanduser(cwd), path)
    else:
        path = os.path.join(_ROOT, "scenarios", "baremetal.scn")
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read(4 << 20)
    except OSError:
        return None
    names = {"init"}
    for line in text.splitlines():
        m = re.match(r"program\s+(\S+)", line)
        if m:
            names.add(m.group(1))
    return names


def live_thread_names():
    try:
        return {t.name for t in threads() if not t.idle}
    except (gdb.error, DuetError):
        return set()


def shown(text, limit=60):
    """A value as an error message quotes it: printable, and at most `limit` characters."""
    out = "".join(c if c.isprintable() else "\\x%02x" % (ord(c) & 0xFF) for c in text)
    return out if len(out) <= limit else out[:limit] + "..."


class SwitchBreakpoint(gdb.Breakpoint):
    """Stops in finish_switch() on the thread that was just switched in, if it is the one."""

    def __init__(self, spec, pid, name):
        super().__init__("core::sched::detail::finish_switch", internal=False)
        self.pid = pid
        self.name = name
        self.spec = spec

    def stop(self):
        try:
            cpu = running_cpu_index()
            if cpu is None:
                return False
            t = thread_at(sched_cpu(cpu)["current"])
        except gdb.error:
            return False
        if t is None or t.idle:
            return False
        if (self.pid is not None and t.pid == self.pid) or (self.name is not None and
                                                             t.name == self.name):
            gdb.write("duet: %s switched in on cpu %d\n" % (t.label(), cpu))
            return True
        return False


class DuetBreakSwitch(gdb.Command):
    """duet break-switch THREAD: stop when THREAD (a pid, or a name: every thread of that name)
is switched in, on its own stack right after the switch (in finish_switch). Delete it as any
breakpoint (`info breakpoints`, `delete N`)."""

    def __init__(self):
        super().__init__("duet break-switch", gdb.COMMAND_BREAKPOINTS)

    def invoke(self, arg, from_tty):
        spec = arg.strip()
        if not spec:
            raise DuetError("duet break-switch: which thread? (a pid or a name)")
        pid = int(spec) if re.fullmatch(r"[0-9]+", spec) else None
        if pid == 0:
            raise DuetError("duet break-switch: pid 0 is a CPU's idle thread, which this "
                            "breakpoint never stops on; give a thread's pid or name")
        if pid is None:
            # Refuse a name no thread of this run can have, rather than wait for it forever.
            known = scenario_thread_names()
            if known is not None:
                known |= live_thread_names()
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.-]*", spec) or (known is not None and
                                                                       spec not in known):
                raise DuetError("duet break-switch: no thread is called '%s'%s" % (
                    shown(spec), "" if known is None else
                    " (threads here: %s)" % ", ".join(sorted(known))))
        bp = SwitchBreakpoint(spec, pid, None if pid is not None else spec)
        gdb.write("duet: breakpoint %d stops when %s is switched in\n" % (
            bp.number, "pid %d" % pid if pid is not None else "a thread called " + spec))


def write_time_break(ns, cpu):
    """Arms (or with ns None, disarms) the simulator's time break, hal_sim::g_time_break, in
    the running process; False if there is none to write to."""
    if gdb.selected_inferior().pid == 0:
        return False
    try:
        gdb.execute("set var hal_sim::g_time_break.cpu = %d" % (
            0xFFFFFFFF if cpu is None else cpu), to_string=True)
        gdb.execute("set var hal_sim::g_time_break.ns = %d" % (
            0xFFFFFFFFFFFFFFFF if ns is None else ns), to_string=True)
    except gdb.error:
        return False
    return True


class TimeBreakpoint(gdb.Breakpoint):
    """Stops once, where the simulator calls time_break_reached(): when a CPU's clock reaches
    the time, inside cpu_work() (at exactly that time) or at a preemption point (at or after
    it). The simulator splits the work there without a preemption point, so the run goes on as
    it would have; it is armed by writing hal_sim::g_time_break, in the running process and in
    each machine as it powers on (TimeBreakArming)."""

    current = None  # one at a time: a new one replaces it

    def __init__(self, ns, cpu):
        super().__init__("hal_sim::time_break_reached", internal=False, temporary=True)
        self.ns = ns
        self.cpu = cpu
        self.arming = TimeBreakArming(self)
        write_time_break(ns, cpu)
        TimeBreakpoint.current = self

    def stop(self):
        try:
            frame = gdb.selected_frame()
            cpu = int(frame.read_var("cpu"))
            clock = int(frame.read_var("ns"))
        except (gdb.error, ValueError):
            # Optimised away: the machine's running CPU is the one.
            c = need("hal_sim::Machine::s_current").dereference()["m_current"].dereference()
            cpu, clock = int(field(c, "index")), int(field(c, "clock_ns"))
        gdb.write("duet: cpu %d reached %s s\n" % (cpu, seconds(clock)))
        TimeBreakpoint.stopped = True
        return True

    def forget(self):
        """Called when gdb deletes it: after its stop (temporary), or by `delete`."""
        if TimeBreakpoint.current is self:
            TimeBreakpoint.current = None
            write_time_break(None, None)
        if self.arming is not None and self.arming.is_valid():
            self.arming.delete()
        self.arming = None


class TimeBreakArming(gdb.Breakpoint):
    """Writes a time break into each machine as it powers on (a process gdb starts after the
    command, or a second machine: --verify-determinism). Never stops."""

    def __init__(self, owner):
        super().__init__("hal_sim::Machine::power_on", internal=True)
        self.owner = owner

    def stop(self):
        write_time_break(self.owner.ns, self.owner.cpu)
        return False


def on_breakpoint_deleted(bp):
    if isinstance(bp, TimeBreakpoint):
        bp.forget()


def on_stop(event):
    """At a time break's stop, selects the kernel's frame that the simulator's run under
    (cpu_work()'s caller, say): the stop is in time_break_reached()."""
    if not getattr(TimeBreakpoint, "stopped", False):
        return
    TimeBreakpoint.stopped = False
    count, _ = leading_sim_frames()
    if count:
        gdb.execute("frame %d" % count)


gdb.events.breakpoint_deleted.connect(on_breakpoint_deleted)
gdb.events.stop.connect(on_stop)


class DuetBreakTime(gdb.Command):
    """duet break-time SECONDS [cpu N] (simulator): stop once, when a CPU (or CPU N) first
reaches that virtual time, such as a time read off a trace: inside modelled work (cpu_work(),
a workload's compute) with the CPU's clock at exactly that time, in the frame that asked for
the work; else at the first preemption point at or after it. The other CPUs are where the
executor left them: each CPU's clock is its own. One at a time: a second replaces the first."""

    def __init__(self):
        super().__init__("duet break-time", gdb.COMMAND_BREAKPOINTS)

    def invoke(self, arg, from_tty):
        if not is_sim():
            raise DuetError("duet break-time: virtual time is the simulator's; on QEMU, break on "
                            "a function instead")
        words = arg.split()
        cpu = None
        if len(words) == 3 and words[1] == "cpu" and re.fullmatch(r"[0-9]+", words[2]):
            cpu = int(words[2])
            m = machine()
            count = len(sim_cpus(m)) if m is not None else 0
            if count and cpu >= count:
                raise DuetError("duet break-time: no cpu %d: the machine has %d" % (cpu, count))
        elif len(words) != 1:
            raise DuetError("duet break-time SECONDS [cpu N]")
        # NOTE: digits only: int() would take "-1", "+1" and "1_0", and a negative time
        # would stop at the first preemption point.
        if not re.fullmatch(r"[0-9]+(\.[0-9]*)?|\.[0-9]+", words[0]):
            raise DuetError("duet break-time: SECONDS is a virtual time, 0 or more, such as "
                            "0.055129, not '%s'" % shown(words[0]))
        whole, _, frac = words[0].partition(".")
        ns = int(whole or "0") * 1000000000 + int((frac + "000000000")[:9])
        old = TimeBreakpoint.current
        if old is not None and old.is_valid():
            gdb.write("duet: breakpoint %d deleted: one time break at a time\n" % old.number)
            old.delete()
        bp = TimeBreakpoint(ns, cpu)
        gdb.write("duet: breakpoint %d stops at virtual time %s s%s\n" % (
            bp.number, seconds(ns), "" if cpu is None else " on cpu %d" % cpu))


DuetPrefix()
DuetCpus()
DuetThreads()
DuetProcesses()
DuetRunq()
DuetFrames()
DuetBt()
DuetBreakSwitch()
DuetBreakTime()
