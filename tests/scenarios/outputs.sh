#!/usr/bin/env bash
# Where `duet run` writes (--json, --trace, --com1) is checked before anything runs: a path that
# cannot be written is refused at once, and a refused run leaves the files that are there as
# they were.
# usage: outputs.sh DUET SCENARIO BAD_SCENARIO MACHINE_ERROR_SCENARIO
set -uo pipefail
duet=$1
good=$2
bad=$3
unbuildable=$4
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failed=0
fail() {
    echo "FAIL: $*"
    failed=1
}

# An unwritable destination: exit 2, the reason, and nothing run (no COM1 on stdout).
for option in --json --trace --com1; do
    out=$("$duet" run "$good" "$option" /nonexistent/dir/x 2>"$tmp/err")
    status=$?
    [[ $status -eq 2 ]] || fail "$option /nonexistent/dir/x: exit $status, not 2"
    grep -q "cannot write .* '/nonexistent/dir/x': No such file or directory" "$tmp/err" ||
        fail "$option /nonexistent/dir/x: $(cat "$tmp/err")"
    [[ -z $out ]] || fail "$option /nonexistent/dir/x: the scenario ran: $(head -n 1 <<<"$out")"
done
out=$("$duet" run "$good" --json "$tmp" 2>"$tmp/err")
grep -q "cannot write the JSON report '$tmp': Is a directory" "$tmp/err" ||
    fail "--json DIR: $(cat "$tmp/err")"

# A refused run (a bad scenario; a machine the simulator cannot build) keeps what is there.
for scn in "$bad" "$unbuildable"; do
    for option in --json --trace --com1; do
        echo keep >"$tmp/out"
        "$duet" run "$scn" "$option" "$tmp/out" >/dev/null 2>&1
        status=$?
        [[ $status -eq 2 ]] || fail "$scn $option: exit $status, not 2"
        [[ $(cat "$tmp/out") == keep ]] || fail "$scn $option: the refused run emptied the file"
    done
done
# The check itself leaves nothing behind, and a run that goes ahead writes them all.
"$duet" run "$bad" --json "$tmp/new.json" >/dev/null 2>&1
[[ ! -e $tmp/new.json ]] || fail "a refused run left $tmp/new.json behind"
"$duet" run "$good" --quiet --json "$tmp/r.json" --trace "$tmp/t" --com1 "$tmp/c" >/dev/null ||
    fail "the good run failed"
[[ -s $tmp/r.json && -s $tmp/t && -s $tmp/c ]] || fail "the good run did not write its files"
[[ $failed -eq 0 ]] && echo "outputs: checked before the run, kept when it is refused"
exit $failed
