#!/usr/bin/env bash
# The schedule fuzzer finds what a schedule can break, and the command it prints replays it:
#   schedule-finds.sh FUZZ_BIN_DIR DUET WORK_DIR
# Fuzzes tests/fuzz/stall-budget.scn (it fails once the schedule stalls three times) with a
# fixed libFuzzer seed; the finding's `replay:` command must fail the same expectation with
# the same digest as the fuzzer's run did.
set -euo pipefail
bin_dir=$1 duet=$2 work=$3
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
fail() {
    echo "schedule-finds: $*" >&2
    [[ -f $work/fuzz.txt ]] && tail -n 40 "$work/fuzz.txt" >&2
    exit 1
}
rm -rf "$work"
mkdir -p "$work"
status=0
DUET_FUZZ_FRESH=1 "$here/run.sh" "$bin_dir" schedule 120 "$work/corpus" "$duet" -- \
    --scenario="$here/stall-budget.scn" -seed=1 >"$work/fuzz.txt" 2>&1 || status=$?
[[ $status -ne 0 ]] || fail "the fuzzer found nothing in 120 s"
grep -q 'expectation failed: schedule.stalls <= 2' "$work/fuzz.txt" ||
    fail "the fuzzer stopped (status $status) without the finding"
digest=$(sed -n 's/^digest: //p' "$work/fuzz.txt" | tail -n 1)
replay=$(sed -n 's/^replay: \(.* --schedule input:\/.*\)$/\1/p' "$work/fuzz.txt" | tail -n 1)
[[ -n $digest && -n $replay ]] || fail "no digest or no replay command printed"
echo "replay: $replay"
read -r -a command <<<"$replay"
status=0
"${command[@]}" -q >"$work/replay.txt" 2>&1 || status=$?
[[ $status -eq 1 ]] || fail "the replay exited $status, not 1: $(cat "$work/replay.txt")"
grep -q 'expectation failed: schedule.stalls <= 2' "$work/replay.txt" ||
    fail "the replay did not fail the expectation: $(cat "$work/replay.txt")"
grep -Eq "^digest +$digest\$" "$work/replay.txt" ||
    fail "the replay's digest is not the fuzzer's ($digest): $(grep digest "$work/replay.txt")"
echo "schedule-finds: found, and replayed with digest $digest"
