#!/usr/bin/env bash
# Runs one fuzz target from its seed corpus (docs/robustness.md).
#   run.sh FUZZ_BIN_DIR TARGET SECONDS CORPUS_DIR [DUET] [-- TARGET_OPTIONS...]
# CORPUS_DIR keeps what the fuzzer found (./duet fuzz keeps it under build/dev/fuzz; the test
# uses a fresh one); seeds are regenerated into CORPUS_DIR/../seeds-TARGET each time. A finding
# leaves its input as CORPUS_DIR/../NAME-crash-* (or -timeout-*, -oom-*; NAME: CORPUS_DIR's
# name) and fails with libFuzzer's report. TARGET_OPTIONS go to the target (the schedule target's --scenario=FILE
# and --seed=N); for it, a crash also prints the `duet run` command that replays it.
set -euo pipefail
bin_dir=$1 target=$2 seconds=$3 corpus=$4
shift 4
duet=
if [[ $# -gt 0 && $1 != -- ]]; then
    duet=$1
    shift
fi
[[ $# -eq 0 || $1 == -- ]] || { echo "fuzz: expected -- before the target's options" >&2; exit 2; }
[[ $# -gt 0 ]] && shift
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
bin=$bin_dir/fuzz_$target
[[ -x $bin ]] || { echo "fuzz: no target '$target' ($bin)" >&2; exit 2; }
out=$(dirname "$corpus")
seeds=$out/seeds-$target
rm -rf "$seeds"
python3 "$here/make-seeds.py" "$target" "$seeds" ${duet:+"$duet"}
# The tests start from the seeds alone (DUET_FUZZ_FRESH=1); ./duet fuzz keeps what it found.
[[ ${DUET_FUZZ_FRESH:-0} == 1 ]] && rm -rf "$corpus"
mkdir -p "$corpus"
prefix=$out/$(basename "$corpus")-
# libFuzzer: -max_total_time bounds the run; -timeout makes a hang a finding; the seeds
# directory is read but never written. Each schedule input is a whole run of a scenario:
# more time for one, and room for a thousand records from the start (a longer input costs
# nothing more to run).
limits=(-timeout=10 -rss_limit_mb=2048)
[[ $target == schedule ]] && limits=(-timeout=120 -rss_limit_mb=4096 -max_len=4096 -len_control=0)
if [[ $target == schedule && -n $duet ]]; then
    set -- --duet="$duet" "$@"
fi
status=0
"$bin" "$@" -max_total_time="$seconds" "${limits[@]}" -print_final_stats=1 \
    -artifact_prefix="$prefix" "$corpus" "$seeds" || status=$?
if [[ $status -ne 0 && $target == schedule ]]; then
    crash=$(ls -t "$prefix"* 2>/dev/null | head -n 1 || true)
    scenario='' seed=''
    for arg in "$@"; do
        case $arg in
        --scenario=*) scenario=${arg#--scenario=} ;;
        --seed=*) seed=${arg#--seed=} ;;
        esac
    done
    if [[ -n $crash ]]; then
        echo "replay: ${duet:-duet} run $scenario${seed:+ --seed $seed} --schedule input:$crash" >&2
    fi
fi
exit $status
