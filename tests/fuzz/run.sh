#!/usr/bin/env bash
# Runs one fuzz target from its seed corpus (docs/robustness.md).
#   run.sh FUZZ_BIN_DIR TARGET SECONDS CORPUS_DIR [DUET]
# CORPUS_DIR keeps what the fuzzer found (./duet fuzz keeps it under build/dev/fuzz; the test
# uses a fresh one); seeds are regenerated into CORPUS_DIR/../seeds-TARGET each time. A crash
# leaves its input as CORPUS_DIR/../crash-TARGET-* and fails with libFuzzer's report.
set -euo pipefail
bin_dir=$1 target=$2 seconds=$3 corpus=$4 duet=${5:-}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
bin=$bin_dir/fuzz_$target
[[ -x $bin ]] || { echo "fuzz: no target '$target' ($bin)" >&2; exit 2; }
seeds=$(dirname "$corpus")/seeds-$target
rm -rf "$seeds"
python3 "$here/make-seeds.py" "$target" "$seeds" ${duet:+"$duet"}
# The tests start from the seeds alone (DUET_FUZZ_FRESH=1); ./duet fuzz keeps what it found.
[[ ${DUET_FUZZ_FRESH:-0} == 1 ]] && rm -rf "$corpus"
mkdir -p "$corpus"
# libFuzzer: -max_total_time bounds the run; -timeout makes a hang a finding; the seeds
# directory is read but never written.
exec "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$(dirname "$corpus")/crash-$target-" "$corpus" "$seeds"
