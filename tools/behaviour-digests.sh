#!/usr/bin/env bash
# What every scenario does, as one line per run, to show that a change alters no behaviour:
# for each scenario under scenarios/ and seeds 1..N, run as written and with the draw that
# `duet swarm --randomize` makes for that seed, the SHA-256 of the run's COM1 output and
# report, of its JSON report and of its schedule trace. Two binaries that behave the same give
# identical files; `diff` names the runs that differ.
#
#   tools/behaviour-digests.sh BUILD/duet [SEEDS] > before.txt   (SEEDS defaults to 40)
#   ... change, rebuild ...
#   tools/behaviour-digests.sh BUILD/duet [SEEDS] > after.txt && diff before.txt after.txt
#
# Run it from the repository root (scenario paths appear in the reports). Use a release build:
# a debug one checks invariants after every step and takes many times longer.
set -euo pipefail

duet=$(realpath "$1")
seeds=${2:-40}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# One run: prints "scenario seed mode digests".
run_one() {
    local duet=$1 work=$2 scn=$3 seed=$4 mode=$5
    shift 5
    local tag
    tag=$(echo "$scn-$seed-$mode" | tr '/' '_')
    local rc=0
    "$duet" run "$scn" --seed "$seed" -q --json "$work/$tag.json" --trace "$work/$tag.trace" \
        "$@" >"$work/$tag.out" 2>&1 || rc=$?
    local sums
    sums=$(cat "$work/$tag.out" "$work/$tag.json" "$work/$tag.trace" 2>/dev/null | sha256sum | cut -c1-16)
    echo "$scn $seed $mode rc=$rc $sums"
    rm -f "$work/$tag".*
}
export -f run_one

jobs=()
for scn in scenarios/*.scn; do
    for seed in $(seq 1 "$seeds"); do
        jobs+=("$scn $seed plain")
    done
    # The randomised draw for each seed, as the swarm prints it before running anything.
    "$duet" swarm "$scn" --seeds "1..$seeds" --randomize 2>/dev/null |
        sed -n 's/^seed \([0-9]*\): \(.*\)$/\1 \2/p' >"$work/draw" || true
    while read -r seed args; do
        jobs+=("$scn $seed randomized $args")
    done <"$work/draw"
done

printf '%s\n' "${jobs[@]}" |
    xargs -P "$(nproc)" -L 1 bash -c 'run_one "$0" "$1" "$2" "$3" "$4" "${@:5}"' "$duet" "$work" |
    sort -k1,1 -k2,2n -k3,3
