#!/usr/bin/env bash
# The Slurm recipe of docs/swarm.md, on a real Slurm: starts a one-node cluster on localhost
# (munged, slurmctld, slurmd, all in a scratch folder, on free ports), submits the recipe's job
# array (4 tasks over seeds 1..400, each task's shard from SLURM_ARRAY_TASK_ID, each writing
# --results), waits for it, merges the shards with `duet swarm merge`, and checks the merged
# seeds against a local `duet swarm --results` of the same seeds: the same seeds, each once,
# in the shard the task ID names, with the same verdict and digest, and the same summary.
# Every daemon it started is stopped on the way out, whatever happened.
#
# Exits 77 (skipped) unless run as root with Debian's slurm-wlm and munge installed
# (./duet test installs them).
#
#   slurm.sh DUET SCENARIO
set -uo pipefail
duet=$(realpath "$1")
scenario=$(realpath "$2")
seeds=1..400
tasks=4
export PATH=$PATH:/usr/sbin:/sbin

say() { echo "slurm.sh: $*" >&2; }
skip() {
    say "skipped: $*"
    exit 77
}

[[ $(id -u) -eq 0 ]] || skip "needs root, to start munged, slurmctld and slurmd"
missing=()
for tool in munged slurmctld slurmd sbatch scontrol sinfo scancel python3; do
    command -v "$tool" >/dev/null || missing+=("$tool")
done
[[ ${#missing[@]} -eq 0 ]] ||
    skip "${missing[*]} not installed (Debian: apt-get install slurm-wlm munge; ./duet test installs them)"

work=$(mktemp -d /tmp/duet-slurm.XXXXXX)
pids=()
cleanup() {
    local status=$?
    # Jobs first (slurmd ends their steps), then the daemons, each by the PID we started.
    if [[ -n ${SLURM_CONF:-} ]] && ((${#pids[@]} >= 2)); then
        timeout 10 scancel --quiet --user=root >/dev/null 2>&1
    fi
    local pid i
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
        pid=${pids[i]}
        kill "$pid" 2>/dev/null
        for _ in $(seq 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -9 "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    if [[ $status -ne 0 && $status -ne 77 ]]; then
        for log in "$work"/*.log "$work"/out/*.out; do
            [[ -f $log ]] || continue
            say "--- $log (last lines)"
            tail -n 20 "$log" >&2
        done
    fi
    [[ -n ${DUET_SLURM_KEEP:-} ]] || rm -rf "$work"
    exit $status
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() {
    say "$*"
    exit 1
}

# Two TCP ports nobody listens on, for slurmctld and slurmd (another Slurm may be running).
read -r ctld_port slurmd_port < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(2)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))')
[[ $ctld_port =~ ^[0-9]+$ && $slurmd_port =~ ^[0-9]+$ ]] || fail "no free ports"

# munge: a fresh key and a socket of our own.
mkdir -p "$work/munge" "$work/state" "$work/spool" "$work/out" "$work/results"
chmod 700 "$work/munge"
head -c 1024 /dev/urandom >"$work/munge/munge.key"
chmod 400 "$work/munge/munge.key"
socket=$work/munge/munge.socket
munged --foreground --force --socket="$socket" --key-file="$work/munge/munge.key" \
    --pid-file="$work/munge/munged.pid" --log-file="$work/munged.log" \
    --seed-file="$work/munge/munged.seed" >>"$work/munged.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do
    [[ -S $socket ]] && break
    sleep 0.1
done
[[ -S $socket ]] || fail "munged did not start"

# NOTE: MinJobAge=4 (seconds a finished job stays known): sbatch --wait looks at the job every
# 2 s, then 8, then 32, while that stays under MinJobAge / 2; with 4 it keeps to every 2 s.
# The node as slurmd sees this machine (CPUs, sockets, cores, memory), named localhost.
node=$(slurmd -C | head -n 1 | sed 's/^NodeName=[^ ]*/NodeName=localhost NodeAddr=127.0.0.1/')
[[ $node == NodeName=localhost*CPUs=* ]] || fail "slurmd -C printed no node line: $node"
cat >"$work/slurm.conf" <<EOF
ClusterName=duettest
SlurmctldHost=localhost
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$socket
StateSaveLocation=$work/state
SlurmdSpoolDir=$work/spool
SlurmctldPidFile=$work/slurmctld.pid
SlurmdPidFile=$work/slurmd.pid
SlurmctldLogFile=$work/slurmctld.log
SlurmdLogFile=$work/slurmd.log
PlugStackConfig=$work/plugstack.conf
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
MailProg=/bin/true
ReturnToService=2
MinJobAge=4
$node State=UNKNOWN
PartitionName=duet Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
: >"$work/plugstack.conf"
export SLURM_CONF=$work/slurm.conf

slurmctld -D -i -f "$SLURM_CONF" >>"$work/slurmctld.log" 2>&1 &
pids+=($!)
slurmd -D -f "$SLURM_CONF" -N localhost >>"$work/slurmd.log" 2>&1 &
pids+=($!)
state=''
for _ in $(seq 300); do
    state=$(sinfo --noheader --nodes=localhost --format=%T 2>/dev/null)
    [[ $state == idle ]] && break
    sleep 0.1
done
[[ $state == idle ]] || fail "the node did not come up (its state: '${state:-none}')"
say "a one-node Slurm is up (slurmctld on port $ctld_port, slurmd on $slurmd_port)"

# The recipe's batch script (docs/swarm.md), with this test's paths.
cat >"$work/swarm.sbatch" <<EOF
#!/bin/bash
#SBATCH --job-name=duet-swarm
#SBATCH --array=1-$tasks
#SBATCH --cpus-per-task=1
#SBATCH --time=10
#SBATCH --output=$work/out/shard-%a.out
# Each task runs the shard its SLURM_ARRAY_TASK_ID names; seeds that fail are data (exit 1),
# only bad input (2) or a crash fails the task.
echo "started \$(date +%s.%N)"
"$duet" swarm "$scenario" --seeds $seeds --jobs "\${SLURM_CPUS_PER_TASK:-1}" \\
    --results "$work/results/shard-\$SLURM_ARRAY_TASK_ID.jsonl"
status=\$?
echo "ended \$(date +%s.%N)"
[ \$status -le 1 ] || exit \$status
EOF
start=$(date +%s.%N)
(cd "$work" && timeout 300 sbatch --wait --quiet "$work/swarm.sbatch") ||
    fail "the job array failed (sbatch --wait exited $?)"
end=$(date +%s.%N)
say "the job array ran in $(python3 -c "print(f'{$end - $start:.1f}')") s"
for ((k = 1; k <= tasks; k++)); do
    grep -q "shard $k/$tasks (from SLURM_ARRAY_TASK_ID=$k, SLURM_ARRAY_TASK_COUNT=$tasks" \
        "$work/out/shard-$k.out" || fail "task $k did not run shard $k/$tasks: $(head -n 1 "$work/out/shard-$k.out")"
done

"$duet" swarm merge --seeds $seeds "$work"/results/shard-*.jsonl >"$work/merged.txt"
merged=$?
grep -v "^ " "$work/merged.txt" | grep -v "^FAIL" >&2
[[ $merged -le 1 ]] || fail "duet swarm merge exited $merged"

# The same seeds on this machine, in one sweep.
"$duet" swarm "$scenario" --seeds $seeds --jobs 2 --results "$work/local.jsonl" >/dev/null 2>&1
local_status=$?
[[ $local_status -le 1 ]] || fail "the local sweep exited $local_status"
"$duet" swarm merge --seeds $seeds "$work/local.jsonl" >"$work/local.txt"
[[ $? -eq $merged ]] || fail "merging the local sweep exited otherwise than merging the shards"
[[ $merged -eq $local_status ]] || fail "the merge says $merged, the local sweep $local_status"

python3 - "$work" $tasks <<'EOF' || fail "the shards' results differ from the local sweep's"
import json, sys
work, tasks = sys.argv[1], int(sys.argv[2])
def load(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]
local = {r["seed"]: r for r in load(f"{work}/local.jsonl")}
assert sorted(local) == list(range(1, 401)), "the local sweep did not run seeds 1..400 once each"
shards = {}
for k in range(1, tasks + 1):
    for r in load(f"{work}/results/shard-{k}.jsonl"):
        assert (r["seed"] - 1) % tasks + 1 == k, f"seed {r['seed']} ran in shard {k}"
        assert r["seed"] not in shards, f"seed {r['seed']} ran twice"
        shards[r["seed"]] = r
assert sorted(shards) == sorted(local), "the shards did not run seeds 1..400"
differ = [s for s in local
          if (local[s]["verdict"], local[s]["digest"]) != (shards[s]["verdict"], shards[s]["digest"])]
for s in differ[:5]:
    print(f"seed {s}: local {local[s]['verdict']} {local[s]['digest']}, "
          f"Slurm {shards[s]['verdict']} {shards[s]['digest']}", file=sys.stderr)
assert not differ, f"{len(differ)} seeds differ"
assert all(r["digest"] for r in local.values()), "a seed without a digest"
EOF
# The summaries agree but for the lines that count files and host time.
diff <(grep -Ev '^(merge: [0-9]+ seeds from|slowest:|  seed )' "$work/merged.txt") \
    <(grep -Ev '^(merge: [0-9]+ seeds from|slowest:|  seed )' "$work/local.txt") >&2 ||
    fail "the merged summary differs from the local sweep's"
grep -q '^missing: none of 1..400$' "$work/merged.txt" || fail "the merge misses seeds"
say "4 Slurm array tasks ran seeds $seeds; merged, they agree with a local sweep seed by seed"
