#!/usr/bin/env bash
# The two ways to a trace file give the same trace: `duet run --trace` writes ftrace text
# directly; `--trace-format com1` writes the lines the bare-metal kernel prints on COM1, which
# tools/com1-to-trace converts. Their events (every line but the # header) must be equal.
#
#   com1-roundtrip.sh DUET COM1_TO_TRACE SCENARIO [RUN OPTIONS...]
set -euo pipefail
duet=$1
tool=$2
scenario=$3
shift 3
work=$(mktemp -d "${TMPDIR:-/tmp}/duet-trace.XXXXXX")
trap 'rm -rf "$work"' EXIT
"$duet" run "$scenario" --quiet "$@" --trace "$work/direct.trace" >/dev/null 2>&1 || true
"$duet" run "$scenario" --quiet "$@" --trace "$work/com1.log" --trace-format com1 \
    >/dev/null 2>&1 || true
python3 "$tool" "$work/com1.log" -o "$work/converted.trace"
grep -v '^#' "$work/direct.trace" >"$work/a" || true
grep -v '^#' "$work/converted.trace" >"$work/b" || true
if [[ ! -s $work/a ]]; then
    echo "com1-roundtrip.sh: the trace is empty" >&2
    exit 1
fi
if ! cmp -s "$work/a" "$work/b"; then
    diff -u --label direct --label via-com1 "$work/a" "$work/b" | head -20 || true
    echo "com1-roundtrip.sh: the traces differ" >&2
    exit 1
fi
echo "com1-roundtrip.sh: $(wc -l <"$work/a") events, the same both ways"
