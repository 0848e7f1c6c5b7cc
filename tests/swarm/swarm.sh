#!/usr/bin/env bash
# `duet swarm` end to end: a sweep with failing seeds reports each one with a command that
# reproduces it (checked by running it), a clean sweep passes, --shard with --randomize
# runs its share of the seeds with the settings it printed, and a run over its host-time
# limit (--timeout) is a failing seed like any other.
#
#   swarm.sh DUET PLANTED_SCENARIO CLEAN_SCENARIO LONG_SCENARIO
set -uo pipefail
duet=$1
planted=$2
clean=$3
long=$4
fail() {
    echo "swarm.sh: $*" >&2
    exit 1
}

# Seeds 1..10 of the planted bug: some fail, some pass.
out=$(DUET_PROGRAM="$duet" "$duet" swarm "$planted" --seeds 1..10 --jobs 2 2>/dev/null)
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

# Runs far longer than their limit: each ends with verdict timeout, reported and reproducible.
out=$(DUET_PROGRAM="$duet" "$duet" swarm "$long" --seeds 1..2 --jobs 2 --timeout 100ms 2>/dev/null)
status=$?
echo "$out"
[[ $status -eq 1 ]] || fail "a sweep whose runs time out exited $status, not 1"
grep -q '^swarm: 0 passed, 2 failed$' <<<"$out" || fail "the timed-out runs were not failures"
grep -Eq '^FAIL  seed 1: .*: run failed \(seed 1\): timeout: the run used its 0\.100000000 s of host CPU time' <<<"$out" ||
    fail "no timeout verdict for seed 1"
grep -q "^      reproduce: $duet run $long --seed 1 --timeout 100ms$" <<<"$out" ||
    fail "the reproduction command does not carry the limit"
echo "swarm.sh: failing seeds reported and reproduced, clean and sharded sweeps as expected, timeouts reported"
