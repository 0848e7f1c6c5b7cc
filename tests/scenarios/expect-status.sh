#!/usr/bin/env bash
# usage: expect-status.sh STATUS PATTERN COMMAND [ARGS...]
# Runs COMMAND and passes if it exits with STATUS and its stderr matches PATTERN (grep -E).
set -uo pipefail
want=$1
pattern=$2
shift 2
err=$("$@" 2>&1 >/dev/null)
status=$?
if [[ $status -ne $want ]]; then
    echo "expected exit status $want, got $status from: $*"
    echo "$err"
    exit 1
fi
if ! grep -qE -- "$pattern" <<<"$err"; then
    echo "stderr of '$*' does not match /$pattern/:"
    echo "$err"
    exit 1
fi
echo "exit $status as expected: $(head -n 1 <<<"$err")"
