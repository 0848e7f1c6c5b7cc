#!/usr/bin/env bash
# Drives gdb in batch mode against the simulator with Duet's helpers (tools/gdb/duet.py): stops
# the machine when a thread is switched in for the third time, runs every helper and checks
# what they print; then stops another run with a time break inside a long compute, and a third
# (PROCESS_SCENARIO, scenarios/user-chain.scn) while its processes call each other.
#
#   helpers.sh DUET HELPERS SCENARIO LONG_COMPUTE_SCENARIO PROCESS_SCENARIO
#
# Exit status: 0 pass, 1 fail, 77 skip (no gdb).
set -uo pipefail
duet=$1
helpers=$2
scenario=$3
long_compute=$4
process_scenario=$5
if ! command -v gdb >/dev/null 2>&1; then
    echo "helpers.sh: gdb not installed; skipped"
    exit 77
fi
out=$(timeout 120 gdb -batch -nx -iex "set debuginfod enabled off" -x "$helpers" \
    -ex "duet break-switch nosuchthread" -ex "duet break-switch 0" -ex "duet break-time -1" \
    -ex "duet break-time 0.5 cpu x" -ex "duet break-switch contender" -ex run -ex continue -ex continue \
    -ex "duet cpus" -ex "duet threads" -ex "duet runq" -ex "duet runq 1" -ex "duet frames" \
    -ex "duet bt init" -ex "duet bt cpu 0" -ex "duet bt cpu 1" -ex "duet bt 99999" \
    -ex "duet bt" -ex "echo plain bt:\n" -ex bt -ex kill --args "$duet" run "$scenario" --quiet 2>&1)
status=0
expect() {
    if ! grep -Eq -- "$1" <<<"$out"; then
        echo "helpers.sh: no line matches /$1/"
        status=1
    fi
}
# The end of each gdb session's checks: a helper's Python error fails it too, and a failure
# shows that session's output.
end_session() {
    if grep -q 'Python Exception\|Traceback' <<<"$out"; then
        echo "helpers.sh: a helper failed"
        status=1
    fi
    if [[ $status -ne 0 ]]; then
        echo "--- gdb's output ---"
        echo "$out"
        exit 1
    fi
}

# The frames ("#N ..." lines) that follow the first line matching a header.
frames_after() {
    awk -v header="$1" 'found && /^#[0-9]/ { print; next } found { exit } $0 ~ header { found = 1 }' \
        <<<"$out"
}
# A backtrace starts with the kernel's code (not the simulator's switch or preemption point)
# and ends at the fiber's own first frame, with nothing after it.
expect_backtrace() {
    local header=$1 first=$2 frames
    frames=$(frames_after "$header")
    if [[ -z $frames ]]; then
        echo "helpers.sh: no backtrace after /$header/"
        status=1
        return
    fi
    if ! head -n 1 <<<"$frames" | grep -Eq -- "$first"; then
        echo "helpers.sh: the backtrace after /$header/ does not start with /$first/:"
        head -n 1 <<<"$frames"
        status=1
    fi
    if ! tail -n 1 <<<"$frames" | grep -Eq -- '^#[0-9]+ +0x[0-9a-f]+ in duet_fiber_start_context \(\)'; then
        echo "helpers.sh: the backtrace after /$header/ does not end at the fiber's entry:"
        tail -n 1 <<<"$frames"
        status=1
    fi
}
# Arguments no stop could ever come of are refused, saying why.
expect "^duet break-switch: no thread is called 'nosuchthread' \\(threads here: contender, init, sleeper\\)$"
expect "^duet break-switch: pid 0 is a CPU's idle thread"
expect "^duet break-time: SECONDS is a virtual time, 0 or more, such as 0.055129, not '-1'$"
expect '^duet break-time SECONDS \[cpu N\]$'
if grep -Eq 'breakpoint [0-9]+ stops (when a thread called nosuchthread|at virtual time)' <<<"$out"; then
    echo "helpers.sh: a refused argument set a breakpoint"
    status=1
fi
# The stop: a contender switched in, on its own stack.
expect '^duet: breakpoint 1 stops when a thread called contender is switched in$'
expect '^duet: contender \(pid [0-9]+\) switched in on cpu [01]$'
expect 'finish_switch \(.*\) at .*core/sched/internal\.hpp'
# duet cpus: the machine, and the CPU gdb stopped in.
expect '^running machine: 2 cpus, [0-9]+ executor steps, not halted$'
expect '^\* cpu [01] +running +clock [0-9]+\.[0-9]{9} +interrupts o(n|ff) +runs contender \(pid [0-9]+\)'
expect '^  cpu [01] +[a-z]+ +clock [0-9]+\.[0-9]{9} '
# duet threads: the table, the idle threads, a thread waiting for the mutex and its holder.
expect '^ +pid slot:gen +name +state +cpu prio +run ns +delay ns +wakeups +preempt +migr +waits for$'
expect '^ +1 1:1 +init +blocked .* the workload.s end$'
expect '^ +0 [0-9]+:1 +idle +running +[01] +0 '
expect '^ +[0-9]+ [0-9]+:1 +contender +blocked .* mutex 0, held by contender \(pid [0-9]+\)$'
expect '^[0-9]+ threads$'
# duet runq: both CPUs, then one.
expect '^cpu 0: runs '
expect '^cpu 1: runs '
expect '^  (active|expired) +(\(empty\)|prio [0-9]: )'
# duet frames: the counters add up.
expect '^frames: [0-9]+ total = [0-9]+ free \+ [0-9]+ used \+ [0-9]+ reserved$'
expect '^used: +kernel [0-9]+, frame metadata [0-9]+, page tables [0-9]+, kernel stacks [0-9]+'
expect '^zone below 4 GiB: order '
# duet bt: a parked thread's fiber, through the scheduler down to the workload.
expect 'core::Semaphore::wait|core::WaitQueue::'
expect 'core::workload::run'
expect 'init_main \(\) at .*core/boot/init.cpp'
expect_backtrace '^init \(pid 1\), blocked, parked in hal::context_switch \(#0-#3 are the simulator.s: duet bt -sim shows them\):$' \
    '^#4 +0x[0-9a-f]+ in core::sched::'
# ...and what each CPU runs: the one gdb stopped in, and the other at a preemption point.
expect '^cpu [01], contender \(pid [0-9]+\), running here:$'
expect_backtrace '^cpu [01], contender \(pid [0-9]+\), running here:$' '^#0 +core::sched::'
expect_backtrace ', at a preemption point in hal::[a-z_]+ \(#0-#[0-9] are the simulator.s: duet bt -sim shows them\), waiting for the executor:$' \
    '^#[0-9]+ +0x[0-9a-f]+ in core::'
expect 'duet: no live thread 99999'
expect 'duet bt: which thread'
# Plain gdb's bt, stopped in a kernel thread, ends at the fiber's entry too.
expect_backtrace '^plain bt:$' '^#0 +core::sched::'
# No junk past the outermost frame.
if grep -Eq '^#[0-9]+ .*\?\?|Backtrace stopped|inner to this frame' <<<"$out"; then
    echo "helpers.sh: a backtrace has a frame gdb cannot name, or stopped short"
    status=1
fi
if grep -q 'DOES NOT ADD UP' <<<"$out"; then
    echo "helpers.sh: a helper failed"
    status=1
fi
end_session
lines=$(wc -l <<<"$out")

# A time break inside a 5 ms compute (0.000000620 to 0.005001320 s on one CPU, timer
# interrupts every millisecond): the CPU stops with its clock at the time exactly, not at the
# next preemption point (the timer at 0.003001...), in the frame that asked for the compute;
# the run then goes on as it would have, to the same digest.
plain=$(timeout 60 "$duet" run "$long_compute" --quiet 2>&1 | grep '^digest')
out=$(timeout 120 gdb -batch -nx -iex "set debuginfod enabled off" -x "$helpers" \
    -ex "duet break-time 0.0025" -ex run -ex "duet cpus" -ex "echo plain bt:\n" -ex bt \
    -ex "duet bt cruncher" -ex continue --args "$duet" run "$long_compute" --quiet 2>&1)
expect '^duet: breakpoint 1 stops at virtual time 0.002500000 s$'
expect '^duet: cpu [01] reached 0.002500000 s$'
expect '^\* cpu [01] +running +clock 0\.002500000 +interrupts on +runs cruncher \(pid 2\)'
# gdb shows the compute's caller once stopped: the workload's interpreter at its hal::cpu_work().
expect '^#[0-9]+ +0x[0-9a-f]+ in core::workload::\(anonymous namespace\)::thread_main .*core/workload/run\.cpp:[0-9]+$'
expect '^[0-9]+[[:space:]]+hal::cpu_work\('
expect_backtrace '^plain bt:$' '^#0 +hal_sim::time_break_reached \(cpu=[01], ns=2500000\)'
expect_backtrace '^cruncher \(pid 2\) on cpu [01], running here in hal::cpu_work \(#0-#[0-9] are the simulator.s: duet bt -sim shows them\):$' \
    '^#[0-9]+ +0x[0-9a-f]+ in core::workload::\(anonymous namespace\)::thread_main '
if ! grep -qxF -- "$plain" <<<"$out"; then
    echo "helpers.sh: stopped at a time break, the run did not go on to its digest ($plain)"
    status=1
fi
end_session
lines2=$(wc -l <<<"$out")

# duet processes, 0.2 ms into a chain of servers (user-chain.scn: a back end, two fronts that
# hold their clients' calls while they call it, four clients): each process with its handles,
# the calls they are blocked in, and who holds whose call.
out=$(timeout 120 gdb -batch -nx -iex "set debuginfod enabled off" -x "$helpers" \
    -ex "duet break-time 0.0002" -ex run -ex "duet processes" -ex kill \
    --args "$duet" run "$process_scenario" --quiet 2>&1)
expect '^  id name +program +state +thread syscalls mapped$'
expect '^   1 back +script +running +[0-9]+ +[0-9]+ +0$'
expect '^     handles 1: endpoint .to-back. \(receive\)$'
expect '^     handles 1: endpoint .to-front. \(receive\), 2: endpoint .to-back. \(call\)$'
expect '^     blocked in call on endpoint .to-front., received by process [23] .front.$'
expect '^     owes a reply to process [4-7] .client.$'
expect '^7 processes$'
end_session
lines3=$(wc -l <<<"$out")

# Processes with threads, 30 ms into user-threads.scn (beside the chain): each thread the
# process started, with what it is blocked in.
out=$(timeout 120 gdb -batch -nx -iex "set debuginfod enabled off" -x "$helpers" \
    -ex "duet break-time 0.03" -ex run -ex "duet processes" -ex kill \
    --args "$duet" run "$(dirname "$process_scenario")/user-threads.scn" --quiet 2>&1)
expect '^  10 crasher +script +running +[0-9]+ +[0-9]+ +16$'
expect '^     thread #1 \(pid [0-9]+\)$'
expect '^       blocked in recv on endpoint .idle.$'
expect '^     thread #4 \(pid [0-9]+\)$'
end_session
echo "helpers.sh: every helper printed what it should ($lines + $lines2 + $lines3 + $(wc -l <<<"$out") lines)"
