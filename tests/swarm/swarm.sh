#!/usr/bin/env bash
# `duet swarm` end to end: a sweep with failing seeds reports each one with a command that
# reproduces it (checked by running it), a clean sweep passes, --shard with --randomize
# runs its share of the seeds with the settings it printed (from --shard or a Slurm array
# task's environment), a run over its host-time or memory limit (--timeout, --memory-limit) is
# a failing seed like any other, --results writes each seed's verdict and digest as its run
# reports them, and `duet swarm merge` joins results files.
#
#   swarm.sh DUET PLANTED_SCENARIO CLEAN_SCENARIO LONG_SCENARIO HOG_SCENARIO
set -uo pipefail
duet=$1
planted=$2
clean=$3
long=$4
hog=$5
fail() {
    echo "swarm.sh: $*" >&2
    exit 1
}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Seeds 1..10 of the planted bug: some fail, some pass.
out=$(DUET_PROGRAM="$duet" "$duet" swarm "$planted" --seeds 1..10 --jobs 2 \
    --results "$work/planted.jsonl" 2>/dev/null)
status=$?
echo "$out"
[[ $status -eq 1 ]] || fail "a sweep with failing seeds exited $status, not 1"
grep -Eq '^swarm: [1-9] passed, [1-9] failed$' <<<"$out" || fail "no summary with passes and failures"
grep -Eq '^FAIL  seed [0-9]+: .*: expectation failed: workload\.lock_wait_ns\.max <= 1500000 \(got [0-9]+\)$' <<<"$out" ||
    fail "no failing seed with its first failed expectation"
command=$(grep -m1 -E '^      reproduce: ' <<<"$out" | sed 's/^      reproduce: //')
[[ $command == "$duet run $planted --seed "* ]] || fail "unexpected reproduction command: $command"
first=$(grep -m1 -E '^FAIL  seed ' <<<"$out" | sed 's/^FAIL  seed [0-9]*: //')
again=$(eval "$command --quiet" 2>&1 >/dev/null)
[[ $? -eq 1 ]] || fail "the reproduction command did not fail: $command"
grep -qF -- "$first" <<<"$again" || fail "the reproduction gave another failure: $again"

# --results: a line per seed, whose verdict and digest are what `duet run` of the seed says.
for seed in $(seq 10); do
    "$duet" run "$planted" --seed "$seed" --quiet --json "$work/run-$seed.json" >/dev/null 2>&1
    echo $? >"$work/run-$seed.status"
done
failed=$(python3 - "$work" "$duet run $planted" <<'EOF'
import json, sys
work, run = sys.argv[1], sys.argv[2]
lines = [json.loads(line) for line in open(f"{work}/planted.jsonl")]
assert sorted(r["seed"] for r in lines) == list(range(1, 11)), "not one line per seed"
failed = 0
for r in lines:
    seed = r["seed"]
    report = json.load(open(f"{work}/run-{seed}.json"))
    status = int(open(f"{work}/run-{seed}.status").read())
    assert r["digest"] == report["digest"], f"seed {seed}: the results' digest is not the run's: {r}"
    assert r["exit_status"] == status, f"seed {seed}: exit status: {r}"
    assert r["verdict"] == ("success" if status == 0 else "expectation failed"), f"seed {seed}: {r}"
    assert r["reproduce"] == f"{run} --seed {seed} --timeout 600s --memory-limit 4GiB", r
    assert r["host_cpu_ns"] > 0 and r["peak_rss_bytes"] > 1000000, f"seed {seed}: {r}"
    failed += status != 0
print(failed)
EOF
) || fail "the results are not what the runs say"
grep -Eq "^swarm: $((10 - failed)) passed, $failed failed$" <<<"$out" || fail "the summary is not the runs'"

# merge: the same failing seeds, with the same reproduce lines, and exit 1.
merged=$("$duet" swarm merge "$work/planted.jsonl")
[[ $? -eq 1 ]] || fail "merging failing seeds did not exit 1"
diff <(grep -E '^(FAIL|      )' <<<"$out") <(grep -E '^(FAIL|      )' <<<"$merged") ||
    fail "merge lists other failing seeds than the sweep"
grep -q "^merge: $((10 - failed)) passed, $failed failed$" <<<"$merged" || fail "merge: $merged"
# A seed in two files, and a bad line, are refused by name.
err=$("$duet" swarm merge "$work/planted.jsonl" "$work/planted.jsonl" 2>&1 >/dev/null)
[[ $? -eq 2 && $err == *"seed 1 is also at"* ]] || fail "a seed twice: $err"
{ head -n 3 "$work/planted.jsonl"; echo '{"seed": 11,'; } >"$work/bad.jsonl"
err=$("$duet" swarm merge "$work/bad.jsonl" 2>&1 >/dev/null)
[[ $? -eq 2 && $err == "$work/bad.jsonl:4: not a JSON line: "* ]] || fail "a bad line: $err"

# A clean sweep.
out=$("$duet" swarm "$clean" --seeds 1..8 --jobs 2 2>/dev/null) || fail "a clean sweep failed: $out"
grep -q '^swarm: 8 passed, 0 failed$' <<<"$out" || fail "unexpected summary: $out"

# Shard 2 of 3 of seeds 10..18, randomized: seeds 11, 14, 17, each printed with its settings.
out=$("$duet" swarm "$clean" --seeds 10..18 --shard 2/3 --randomize --jobs 2 2>/dev/null)
echo "$out"
grep -q '^swarm: .*, seeds 10..18, shard 2/3 (3 runs, 2 at a time, randomized)$' <<<"$out" ||
    fail "unexpected header"
for seed in 11 14 17; do
    grep -Eq "^seed $seed: --cpus [0-9]+ --tick [0-9]+(us|ms) --slice [0-9]+ms" <<<"$out" ||
        fail "seed $seed's settings are not printed"
done
grep -Eq '^seed (10|12|13|15|16|18):' <<<"$out" && fail "a seed of another shard ran"
grep -Eq '^swarm: [0-9]+ passed, [0-9]+ failed$' <<<"$out" || fail "no summary"
# A Slurm array task (--array=0-2) with no --shard: ID 1 is shard 2/3, the same seeds and draws.
out_env=$(SLURM_ARRAY_TASK_ID=1 SLURM_ARRAY_TASK_COUNT=3 SLURM_ARRAY_TASK_MIN=0 SLURM_ARRAY_TASK_MAX=2 \
    "$duet" swarm "$clean" --seeds 10..18 --randomize --jobs 2 2>/dev/null)
grep -q '^swarm: .*, seeds 10..18, shard 2/3 (from SLURM_ARRAY_TASK_ID=1, SLURM_ARRAY_TASK_COUNT=3, SLURM_ARRAY_TASK_MIN=0) (3 runs, 2 at a time, randomized)$' <<<"$out_env" ||
    fail "a Slurm array task ran another shard: $out_env"
diff <(grep '^seed ' <<<"$out") <(grep '^seed ' <<<"$out_env") || fail "other draws under Slurm"
# --shard wins over the environment; values that name no shard are refused.
out_env=$(SLURM_ARRAY_TASK_ID=7 SLURM_ARRAY_TASK_COUNT=3 "$duet" swarm "$clean" --seeds 10..18 \
    --shard 2/3 --jobs 2 2>/dev/null)
grep -q 'shard 2/3 (3 runs' <<<"$out_env" || fail "--shard did not win: $out_env"
err=$(SLURM_ARRAY_TASK_ID=0 SLURM_ARRAY_TASK_COUNT=3 "$duet" swarm "$clean" --seeds 10..18 2>&1)
[[ $? -eq 2 && $err == *"names no shard"* ]] || fail "SLURM_ARRAY_TASK_ID=0 without MIN: $err"

# Runs far longer than their limit: each ends with verdict timeout, reported and reproducible.
out=$(DUET_PROGRAM="$duet" "$duet" swarm "$long" --seeds 1..2 --jobs 2 --timeout 100ms 2>/dev/null)
status=$?
echo "$out"
[[ $status -eq 1 ]] || fail "a sweep whose runs time out exited $status, not 1"
grep -q '^swarm: 0 passed, 2 failed$' <<<"$out" || fail "the timed-out runs were not failures"
grep -Eq '^FAIL  seed 1: .*: run failed \(seed 1\): timeout: the run used its 0\.100000000 s of host CPU time' <<<"$out" ||
    fail "no timeout verdict for seed 1"
grep -q "^      reproduce: $duet run $long --seed 1 --timeout 100ms --memory-limit 4GiB$" <<<"$out" ||
    fail "the reproduction command does not carry the limit"

# Runs that grow past their memory limit: each ends with verdict out of memory.
out=$(DUET_PROGRAM="$duet" "$duet" swarm "$hog" --seeds 1..2 --jobs 2 --memory-limit 64MiB \
    --results "$work/hog.jsonl" 2>/dev/null)
status=$?
echo "$out"
[[ $status -eq 1 ]] || fail "a sweep whose runs run out of memory exited $status, not 1"
grep -q '^swarm: 0 passed, 2 failed$' <<<"$out" || fail "the runs out of memory were not failures"
grep -Eq "^FAIL  seed 1: .*: run failed \(seed 1\): out of memory: the simulator's resident memory reached [0-9.]+ MiB, over its limit of 64.0 MiB" <<<"$out" ||
    fail "no out of memory verdict for seed 1"
grep -q "^      reproduce: $duet run $hog --seed 1 --timeout 600s --memory-limit 64MiB$" <<<"$out" ||
    fail "the reproduction command does not carry the memory limit"
[[ $(grep -c '"verdict":"out of memory"' "$work/hog.jsonl") -eq 2 ]] ||
    fail "the results say otherwise: $(cat "$work/hog.jsonl")"
echo "swarm.sh: failing seeds reported and reproduced, clean and sharded sweeps as expected, timeouts and memory limits reported, results and merge as the runs say"
