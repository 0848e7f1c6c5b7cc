#!/usr/bin/env bash
# The planted concurrency bugs (tests/planted/*.patch): how many seconds of schedule fuzzing
# (fuzz_schedule, tests/fuzz/fuzz_schedule.cpp) find each bug.
#
#   tests/planted/fuzz.sh [--seconds N] [--only NAME] [--verdict-only] [--replay] OUT_DIR
#
# Copies the working tree (tracked files, as they are now) into OUT_DIR/scratch and builds
# fuzz_schedule there once (the clang build of tests/CMakeLists.txt's duet_schedule_fuzzer, in
# scratch/build-fuzz). Fuzzes the unpatched tree as a baseline, then for each patch: git apply,
# rebuild (ninja recompiles the patched file and links), fuzz the bug's scenarios (run.sh's
# scenarios_for) one after the other, each for at most N seconds (default 180) from a fresh
# corpus of make-seeds.py's seeds (tests/fuzz/run.sh, libFuzzer -seed=1, simulator seed 1),
# stopping at the first scenario with a finding; git apply -R. --verdict-only: only the run's
# verdict is a finding, not the scenario's expectations (fuzz_schedule --verdict-only).
#
# Writes OUT_DIR/results.tsv, a line per fuzzed scenario (bug, scenario, seconds to the finding
# or -, executions, what failed, replay, the run's wall seconds), and OUT_DIR/table.md (the
# first finding of each bug), and prints the table. Seconds are wall seconds from the start of
# tests/fuzz/run.sh to the fuzzer's exit: making the seeds and the fuzzer's start (a run of the
# scenario with no choices) included; a run may go past N seconds when its last input runs
# long (a hang takes 30 s of host time to be called one). The table's total adds the bug's
# earlier scenarios' runs, which found nothing.
# Each run's log, corpus and finding (runs/BUG/SCENARIO/corpus-crash-*) stay in OUT_DIR; the
# scratch copy stays too. Uses ccache when installed.
#
# A fuzzer that exits 0 before its time is up without libFuzzer's closing "Done" line had an
# input end the process (the simulator exited from within the run): that counts as a finding,
# though libFuzzer could not write the input.
#
# A scenario that fails with no choices made cannot be fuzzed (fuzz_schedule exits 1 at its
# start): its line says so ("does not start") and the bug's next scenario is fuzzed.
#
# The baseline (the unpatched tree) fuzzes every scenario the chosen bugs use for N seconds. A
# finding there means the scenario fails without any planted bug under some schedule (noisy,
# or a real bug): OUT_DIR/baseline.tsv keeps it, and the bugs' runs skip that scenario, as
# they skip one that does not start.
#
# --replay: for each finding, build the ordinary simulator (GCC, scratch/build-gcc) with the
# same patch and run `duet run SCENARIO --seed 1 --schedule input:FINDING`. The replay column
# says whether it fails the same way: exit status 1 with the fuzzer's digest (for a finding
# the target reports), or a crash (for one where the simulator itself crashed).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
seconds=180
only=''
verdict_only=0
replay=0
jobs=2
usage() {
    sed -n '5p' "${BASH_SOURCE[0]}" | sed 's/^# *//' >&2
    exit 2
}
while [[ $# -gt 0 ]]; do
    case $1 in
    --seconds) seconds=$2; shift 2 ;;
    --only) only=$2; shift 2 ;;
    --verdict-only) verdict_only=1; shift ;;
    --replay) replay=1; shift ;;
    -h|--help) usage ;;
    -*) echo "fuzz.sh: unknown option $1" >&2; usage ;;
    *) break ;;
    esac
done
[[ $# -eq 1 ]] || usage
out=$(realpath -m "$1")
tree=$out/scratch
runs=$out/runs

log() { echo "fuzz.sh: $*" >&2; }

# scenarios_for (run.sh's), copy_tree, configure and build.
source "$here/common.sh"

patches=()
for p in "$here"/*.patch; do
    n=$(basename "$p" .patch)
    [[ -z $only || $n == "$only" ]] && patches+=("$p")
done
[[ ${#patches[@]} -gt 0 ]] || { echo "fuzz.sh: no patch named '$only'" >&2; exit 2; }

# --- The scratch copy and its builds. ---
mkdir -p "$out"
rm -rf "$tree" "$runs"
mkdir -p "$tree" "$runs"
log "copying the tree to $tree"
copy_tree
t0=$SECONDS
log "building fuzz_schedule"
configure build-fuzz -DCMAKE_CXX_COMPILER=clang++ -DDUET_FUZZ_SCHEDULE=ON
build build-fuzz fuzz_schedule
if ((replay)); then
    log "building the simulator (for the replays)"
    configure build-gcc
    build build-gcc duet
fi
log "builds took $((SECONDS - t0)) s"

# fuzz NAME SCENARIO: fuzzes the scenario for at most $seconds s in runs/NAME/SCENARIO. Sets
# `result` to "SECONDS<TAB>EXECS<TAB>WHAT" (SECONDS: - if nothing was found), `wall` to the
# run's wall seconds, `finding` to the input libFuzzer wrote and `finding_kind` to target
# (fuzz_schedule reported a failed run), crash (the simulator itself crashed), exit (the
# process exited 0 before its time was up: an input ended it, and is lost), start (the
# scenario fails with no choices made) or nothing.
result=''
wall=''
finding=''
finding_kind=''
fuzz() {
    local name=$1 scn=$2
    local dir=$runs/$name/$scn
    mkdir -p "$dir"
    local options=(--scenario="$tree/scenarios/$scn.scn" --seed=1 -seed=1)
    ((verdict_only)) && options+=(--verdict-only)
    local start end status=0
    start=$(date +%s.%N)
    DUET_FUZZ_FRESH=1 "$tree/tests/fuzz/run.sh" "$tree/build-fuzz" schedule "$seconds" \
        "$dir/corpus" -- "${options[@]}" >"$dir/fuzz.log" 2>&1 || status=$?
    end=$(date +%s.%N)
    wall=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')
    local execs what
    execs=$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+).*/\1/p' "$dir/fuzz.log" | tail -1)
    finding=$(ls -t "$dir"/corpus-crash-* "$dir"/corpus-timeout-* "$dir"/corpus-oom-* \
        2>/dev/null | head -1 || true)
    if ((status == 0)) && grep -qE '^Done [0-9]+ runs' "$dir/fuzz.log"; then
        finding_kind=nothing
        result="-"$'\t'"${execs:-?}"$'\t'"not found"
        return
    fi
    if ((status == 0)); then
        # An input ended the process (the simulator called _exit(0)) before libFuzzer could
        # write it: a finding, but one without an input.
        finding_kind='exit'
        result=$wall$'\t'"?"$'\t'"the fuzzer exited 0 before its time was up, after "
        result+="execution $(grep -oE '^#[0-9]+' "$dir/fuzz.log" | tail -1) (no input written)"
        return
    fi
    what=$(grep -m1 'fails with no choices made' "$dir/fuzz.log" || true)
    if [[ -n $what ]]; then
        finding_kind=start
        what=${what#fuzz_schedule: }
        result="-"$'\t'"0"$'\t'"does not start: ${what//"$tree/"/}"
        return
    fi
    # fuzz_schedule's line: "duet fuzz schedule: SCENARIO, seed N: WHAT".
    what=$(sed -n 's/^duet fuzz schedule: [^,]*, seed [0-9]*: //p' "$dir/fuzz.log" | head -1)
    if [[ -n $what ]]; then
        finding_kind=target
    else
        finding_kind=crash
        what=$(grep -m1 -E '^SUMMARY: ' "$dir/fuzz.log" ||
            grep -m1 -E 'ERROR: ' "$dir/fuzz.log" ||
            echo "the fuzzer exited $status: $(tail -1 "$dir/fuzz.log")")
    fi
    what=${what%"${what##*[![:space:]]}"} # no trailing blanks (SUMMARY lines have one)
    [[ -n $finding ]] || what+=" (no input written)"
    result=$wall$'\t'"${execs:-?}"$'\t'"${what//"$tree/"/}"
}

# replay_finding NAME SCENARIO: whether the GCC simulator fails as the fuzzer's run did on
# $finding: "yes", or what it did instead.
replay_finding() {
    local scn=$2 dir=$runs/$1/$2 status=0
    [[ -n $finding ]] || { echo "no input to replay"; return; }
    build build-gcc duet || { echo "the simulator does not build"; return; }
    "$tree/build-gcc/duet" run "$tree/scenarios/$scn.scn" --seed 1 --schedule "input:$finding" \
        >"$dir/replay.log" 2>&1 || status=$?
    if [[ $finding_kind == crash ]]; then
        if ((status > 128)); then echo "yes (signal $((status - 128)))"; else echo "no (exit $status)"; fi
        return
    fi
    ((status == 1)) || { echo "no (exit $status)"; return; }
    local digest
    digest=$(sed -n 's/^digest: //p' "$dir/fuzz.log" | head -1)
    if grep -Eq "^digest +$digest\$" "$dir/replay.log"; then
        echo yes
    else
        echo "fails (exit 1), another digest"
    fi
}

results=$out/results.tsv
baseline=$out/baseline.tsv
: >"$results"
: >"$baseline"

# --- The baseline: every scenario the chosen bugs use, on the unpatched tree. ---
declare -A used=()
for p in "${patches[@]}"; do
    for scn in $(scenarios_for "$(basename "$p" .patch)"); do
        used[$scn]=1
    done
done
for scn in $(scenarios_for baseline); do
    [[ -n ${used[$scn]:-} ]] || continue
    fuzz baseline "$scn"
    printf 'baseline\t%s\t%s\t-\t%s\n' "$scn" "$result" "$wall" | tee -a "$results" >&2
    if [[ $finding_kind != nothing ]]; then
        printf '%s\t%s\t%s\n' "$scn" "$(cut -f3 <<<"$result")" "$finding" >>"$baseline"
    fi
done

# --- The bugs. ---
for p in "${patches[@]}"; do
    name=$(basename "$p" .patch)
    log "$name: applying and building"
    (cd "$tree" && git apply "$p")
    if ! build build-fuzz fuzz_schedule; then
        log "$name: does not build (the log is in $out)"
        printf '%s\t-\t-\t-\tdoes not build\t-\t-\n' "$name" >>"$results"
        (cd "$tree" && git apply -R "$p")
        continue
    fi
    t=$SECONDS
    for scn in $(scenarios_for "$name"); do
        if cut -f1 "$baseline" | grep -qxF "$scn"; then
            printf '%s\t%s\t-\t-\tskipped: fails on the unpatched tree\t-\t-\n' "$name" "$scn" |
                tee -a "$results" >&2
            continue
        fi
        fuzz "$name" "$scn"
        check=-
        if ((replay)) && [[ $finding_kind == target || $finding_kind == crash ]]; then
            check=$(replay_finding "$name" "$scn")
        fi
        printf '%s\t%s\t%s\t%s\t%s\n' "$name" "$scn" "$result" "$check" "$wall" |
            tee -a "$results" >&2
        [[ $finding_kind == nothing || $finding_kind == start ]] || break
    done
    log "$name: measured in $((SECONDS - t)) s"
    (cd "$tree" && git apply -R "$p")
done
# The scratch copy's builds are those of the unpatched tree again.
build build-fuzz fuzz_schedule
if ((replay)); then
    build build-gcc duet
fi

# --- The table. ---
table=$out/table.md
{
    echo "| bug | seconds | total | executions | scenario | what failed | replay |"
    echo "|---|---|---|---|---|---|---|"
    for p in "${patches[@]}"; do
        name=$(basename "$p" .patch)
        line=$(awk -F'\t' -v n="$name" '$1 == n && $3 != "-"' "$results" | head -1)
        if [[ -n $line ]]; then
            IFS=$'\t' read -r _ scn secs execs what check _ <<<"$line"
            total=$(awk -F'\t' -v n="$name" -v s="$scn" '$1 == n && $7 != "-" { t += $7 }
                $1 == n && $2 == s { printf "%.1f", t; exit }' "$results")
            echo "| $name | $secs | $total | $execs | $scn | $what | $check |"
        else
            what="not found within $seconds s a scenario"
            grep -qP "^$name\t.*\tdoes not build\t" "$results" && what='does not build'
            starts=$(grep -cP "^$name\t[^\t]*\t-\t0\tdoes not start" "$results" || true)
            ((starts == 0)) || what+=" ($starts scenarios do not start: results.tsv)"
            echo "| $name | - | - | - | - | $what | - |"
        fi
    done
    echo
    mode=''
    if ((verdict_only)); then mode=' (--verdict-only)'; fi
    echo "At most $seconds s of fuzz_schedule$mode per scenario, from a fresh corpus,"
    echo "libFuzzer -seed=1, simulator seed 1."
    echo "Seconds: wall time of the run that found the bug (its scenario's); total: with the"
    echo "runs of the scenarios before it in the bug's list, which found nothing (results.tsv)."
} >"$table"
cat "$table"
log "total $((SECONDS - t0)) s"
if [[ -s $baseline ]]; then
    log "the unpatched tree failed $(wc -l <"$baseline") scenarios (skipped in the bugs' runs): $baseline"
fi
