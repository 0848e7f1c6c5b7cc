#!/usr/bin/env bash
# The planted concurrency bugs (tests/planted/*.patch): how many seeds each schedule needs to
# find each bug. docs/robustness.md, "Planted concurrency bugs", has the measured table.
#
#   tests/planted/run.sh [--budget N] [--race-budget M] [--only NAME] [--no-race]
#                        [--expect FILE] [--scratch DIR] [--keep] OUT_DIR
#
# Copies the working tree (tracked files, as they are now) into a scratch directory, builds
# the simulator there once (and the race build unless --no-race), runs the unpatched tree as
# a baseline, then for each patch: git apply, rebuild (ninja recompiles the patched file and
# links), `duet swarm` over the bug's scenarios with seeds 1..N under coarse, random and pct
# (and the race build under random, seeds 1..M), git apply -R. Seeds go in chunks of 10 and a
# schedule stops at the first chunk with a failure: the first failing seed is exact.
#
# Writes OUT_DIR/results.tsv (bug, schedule, first seed or -, scenario, what failed) and
# OUT_DIR/table.md, and prints the table. --expect FILE (bug, schedule, seed per line): exit 1
# if a pair expected within the budget is not found within it.
# Uses ccache when installed. --scratch DIR: where the copy goes (default: OUT_DIR/scratch);
# it is deleted at the end unless --keep.
#
# The baseline (the unpatched tree) runs every scenario of every set over the whole budget
# and keeps each failing (scenario, schedule, seed): some scenarios' expectations fail now and
# then without any planted bug (docs/robustness.md). A bug's run skips those: a failure counts
# only where the unpatched tree passes.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
budget=50
race_budget=10
only=''
race=1
expect=''
keep=0
scratch=''
jobs=2
usage() {
    sed -n '4,5p' "${BASH_SOURCE[0]}" | sed 's/^# *//' >&2
    exit 2
}
while [[ $# -gt 0 ]]; do
    case $1 in
    --budget) budget=$2; shift 2 ;;
    --race-budget) race_budget=$2; shift 2 ;;
    --only) only=$2; shift 2 ;;
    --no-race) race=0; shift ;;
    --expect) expect=$(realpath "$2"); shift 2 ;;
    --scratch) scratch=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    -h|--help) usage ;;
    -*) echo "run.sh: unknown option $1" >&2; usage ;;
    *) break ;;
    esac
done
[[ $# -eq 1 ]] || usage
out=$(realpath -m "$1")
mkdir -p "$out"
scratch=$(realpath -m "${scratch:-$out/scratch}")
tree=$scratch/tree
rm -rf "$tree"
mkdir -p "$tree"
cleanup() { ((keep)) || rm -rf "$tree"; }
trap cleanup EXIT

# scenarios_for, copy_tree, configure and build.
source "$here/common.sh"

log() { echo "run.sh: $*" >&2; }

# --- The scratch copy and its builds. ---
log "copying the tree to $tree"
copy_tree
t0=$SECONDS
log "building the simulator"
configure b
build b duet
if ((race)); then
    log "building the race build"
    configure b-race -DDUET_RACE=ON
    build b-race duet
fi
log "builds took $((SECONDS - t0)) s"

# first_failure BINARY SCHEDULE LAST SCENARIO...: prints "SEED<TAB>SCENARIO<TAB>REASON" for
# the first failing seed in 1..LAST, or "-<TAB>-<TAB>not found".
# MODE (from the caller): baseline records every failure over the whole range and prints the
# first; otherwise failures the baseline recorded are skipped. SCHEDULE_KEY names the column.
first_failure() {
    local bin=$1 schedule=$2 last=$3 first=''
    shift 3
    local a=1 b
    while ((a <= last)); do
        b=$((a + 9 < last ? a + 9 : last))
        local best='' best_line='' scn
        for scn in "$@"; do
            local lines
            lines=$("$bin" swarm "$tree/scenarios/$scn.scn" --seeds "$a..$b" --schedule "$schedule" \
                --jobs "$jobs" 2>/dev/null | grep -E '^FAIL  seed [0-9]+: ' || true)
            [[ -n $lines ]] || continue
            local line seed
            while read -r line; do
                seed=$(sed -E 's/^FAIL  seed ([0-9]+):.*/\1/' <<<"$line")
                if [[ $mode != baseline ]] &&
                    grep -qxP "$scn\t$schedule_key\t$seed" "$out/baseline-failures.tsv"; then
                    continue # the unpatched tree fails there too
                fi
                if [[ $mode == baseline ]]; then
                    printf '%s\t%s\t%s\n' "$scn" "$schedule_key" "$seed" >>"$out/baseline-failures.tsv"
                fi
                if [[ -z $best || $seed -lt $best ]]; then
                    best=$seed
                    best_line="$scn"$'\t'$(reason "$bin" "$scn" "$seed" "$schedule" "$line")
                fi
            done < <(sort -t' ' -k4,4n <<<"$lines")
        done
        if [[ -n $best && $mode != baseline ]]; then
            printf '%s\t%s\n' "$best" "$best_line"
            return
        fi
        if [[ -n $best && -z $first ]]; then
            first="$best"$'\t'"$best_line"
        fi
        a=$((b + 1))
    done
    if [[ -n $first ]]; then
        printf '%s\n' "$first"
    else
        printf -- '-\t-\tnot found\n'
    fi
}

# What failed: swarm's line, or for a race (whose line is ThreadSanitizer's banner) the
# verdict of the same run.
reason() { # BINARY SCENARIO SEED SCHEDULE LINE
    local text
    text=$(sed -E 's/^FAIL  seed [0-9]+: [^:]*: //' <<<"$5")
    if [[ $text == *'=='* || $text == *ThreadSanitizer* ]]; then
        text=$("$1" run "$tree/scenarios/$2.scn" --seed "$3" --schedule "$4" --quiet 2>&1 |
            grep -o 'race: .*' | head -1 || true)
        text=${text:-race}
    fi
    printf '%s\n' "$text"
}

results=$out/results.tsv
: >"$results"
: >"$out/baseline-failures.tsv"
mode=''
schedule_key=
measure() { # NAME
    local name=$1 schedule r
    read -r -a scns <<<"$(scenarios_for "$name")"
    local t=$SECONDS
    mode=$name
    for schedule in coarse random pct; do
        schedule_key=$schedule
        r=$(first_failure "$tree/b/duet" "$schedule" "$budget" "${scns[@]}")
        printf '%s\t%s\t%s\n' "$name" "$schedule" "$r" | tee -a "$results" >&2
    done
    if ((race)); then
        schedule_key=race
        r=$(first_failure "$tree/b-race/duet" random "$race_budget" "${scns[@]}")
        printf '%s\t%s\t%s\n' "$name" race "$r" | tee -a "$results" >&2
    fi
    log "$name: measured in $((SECONDS - t)) s"
}

dirs=(b)
((race)) && dirs+=(b-race)
patches=()
for p in "$here"/*.patch; do
    n=$(basename "$p" .patch)
    [[ -z $only || $n == "$only" ]] && patches+=("$p")
done
[[ ${#patches[@]} -gt 0 ]] || { echo "run.sh: no patch named '$only'" >&2; exit 2; }

measure baseline # always: the bugs' runs skip what fails without them
for p in "${patches[@]}"; do
    n=$(basename "$p" .patch)
    log "$n: applying and building"
    (cd "$tree" && git apply "$p")
    built=1
    for d in "${dirs[@]}"; do
        build "$d" duet || built=0
    done
    if ((built)); then
        measure "$n"
    else
        log "$n: does not build (the log is in $out)"
        printf '%s\tcoarse\t-\t-\tdoes not build\n' "$n" >>"$results"
    fi
    (cd "$tree" && git apply -R "$p")
done
for d in "${dirs[@]}"; do # the tree is as it was
    build "$d" duet
done

# --- The table. ---
table=$out/table.md
{
    echo "| bug | coarse | random | pct | race (random) | found by |"
    echo "|---|---|---|---|---|---|"
    for n in $(cut -f1 "$results" | uniq); do
        row="| $n"
        what=''
        for schedule in coarse random pct race; do
            line=$(awk -F'\t' -v n="$n" -v s="$schedule" '$1 == n && $2 == s' "$results")
            if [[ -z $line ]]; then
                row+=" | not measured"
                continue
            fi
            seed=$(cut -f3 <<<"$line")
            if [[ $seed == - ]]; then
                row+=" | not found"
            else
                row+=" | $seed"
                [[ -n $what ]] || what="$schedule: $(cut -f4 <<<"$line"): $(cut -f5 <<<"$line")"
            fi
        done
        echo "$row | ${what:-nothing within the budget} |"
    done
    echo
    if ((race)); then
        echo "Seeds 1..$budget for coarse, random and pct; 1..$race_budget for the race build (random)."
    else
        echo "Seeds 1..$budget for coarse, random and pct; the race build not measured (--no-race)."
    fi
    echo "A number is the first failing seed; the column 'found by' gives the first schedule's"
    echo "scenario and failure."
} >"$table"
cat "$table"
log "total $((SECONDS - t0)) s"

status=0
if [[ -s $out/baseline-failures.tsv ]]; then
    echo "run.sh: the unpatched tree failed $(wc -l <"$out/baseline-failures.tsv") runs (skipped in the bugs' runs): $out/baseline-failures.tsv" >&2
fi
if [[ -n $expect ]]; then
    while read -r n schedule seed; do
        [[ -z $n || $n == \#* ]] && continue
        [[ -z $only || $n == "$only" ]] || continue
        limit=$budget
        [[ $schedule == race ]] && limit=$race_budget
        if [[ $schedule == race ]] && ((!race)); then continue; fi
        ((seed <= limit)) || continue
        got=$(awk -F'\t' -v n="$n" -v s="$schedule" '$1 == n && $2 == s {print $3}' "$results")
        if [[ $got == - || -z $got ]]; then
            echo "run.sh: $n under $schedule: expected by seed $seed, not found in 1..$limit" >&2
            status=1
        fi
    done <"$expect"
fi
exit $status
