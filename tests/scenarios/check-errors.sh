#!/usr/bin/env bash
# Every malformed scenario in a folder must be refused the same way: exit status 2, nothing run,
# and exactly the error its first line announces ("# error: ..."; {file} and {dir} stand for
# the scenario's path and folder).
# usage: check-errors.sh DUET FOLDER
set -uo pipefail
duet=$1
dir=$2
passed=0
failed=0
for scn in "$dir"/*.scn; do
    expected=$(head -n 1 "$scn" | sed -n 's/^# error: //p')
    expected=${expected//\{file\}/$scn}
    expected=${expected//\{dir\}/$(dirname "$scn")}
    out=$("$duet" run "$scn" --quiet 2>&1 >/dev/null)
    status=$?
    if [[ $status -eq 2 && "$out" == "$expected" ]]; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        echo "FAIL $scn: status $status"
        echo "  expected: $expected"
        echo "  got:      $out"
    fi
done
echo "$passed passed, $failed failed"
[[ $failed -eq 0 && $passed -gt 0 ]]
