#!/usr/bin/env bash
# A trace opens in traceshark (Debian's package): runs a scenario with --trace, opens the file
# in traceshark on a virtual X server (Xvfb), and checks that it loaded events: traceshark
# prints "tracePlot->show took" once a file is loaded, and for a file in which its parser found
# no event it opens a warning dialog ("You have opened an empty trace!"), a second top-level
# window, which xwininfo lists.
#
#   traceshark.sh DUET SCENARIO [RUN OPTIONS...]
#
# Exit status: 0 pass, 1 fail, 77 skip (traceshark, Xvfb or xwininfo not installed).
# TraceTest.EveryLineOfARunParsesAsTracesharkReadsIt checks the line format without them.
set -uo pipefail
duet=$1
scenario=$2
shift 2
for tool in traceshark Xvfb xwininfo; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "traceshark.sh: $tool not installed; skipped"
        exit 77
    fi
done
work=$(mktemp -d "${TMPDIR:-/tmp}/duet-traceshark.XXXXXX")
pids=()
cleanup() {
    for p in "${pids[@]}"; do
        kill "$p" 2>/dev/null
    done
    rm -rf "$work"
}
trap cleanup EXIT
"$duet" run "$scenario" --quiet "$@" --trace "$work/run.trace" >/dev/null 2>&1
if [[ ! -s $work/run.trace ]]; then
    echo "traceshark.sh: no trace written" >&2
    exit 1
fi
# A display of our own: the first free one from 90 on (-displayfd says which it took).
Xvfb -displayfd 3 -screen 0 1280x800x24 3>"$work/display" >/dev/null 2>&1 &
pids+=($!)
for _ in $(seq 50); do
    [[ -s $work/display ]] && break
    sleep 0.1
done
if [[ ! -s $work/display ]]; then
    echo "traceshark.sh: Xvfb did not start; skipped"
    exit 77
fi
export DISPLAY=":$(head -1 "$work/display")"
traceshark "$work/run.trace" >"$work/out" 2>&1 &
pids+=($!)
for _ in $(seq 300); do
    grep -q 'tracePlot->show took' "$work/out" && break
    sleep 0.1
done
if ! grep -q 'tracePlot->show took' "$work/out"; then
    cat "$work/out" >&2
    echo "traceshark.sh: traceshark did not load the trace" >&2
    exit 1
fi
sleep 2 # the warning dialog, if any, is shown after that line
windows=$(xwininfo -root -children | grep -c '("traceshark" "Traceshark")')
if [[ $windows -ne 1 ]]; then
    xwininfo -root -children | grep traceshark >&2
    echo "traceshark.sh: traceshark opened $windows windows: it found no event in the trace" >&2
    exit 1
fi
echo "traceshark.sh: traceshark loaded $(grep -vc '^#' "$work/run.trace") trace lines"
