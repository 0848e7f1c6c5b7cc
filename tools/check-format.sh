#!/usr/bin/env bash
# Fails if any C++ source differs from what .clang-format asks for. `--fix` rewrites them.
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t files < <(find core hal sim tests tools user -type f \( -name '*.cpp' -o -name '*.hpp' -o -name '*.h' \) | sort)
if [[ "${1:-}" == "--fix" ]]; then
    clang-format -i "${files[@]}"
    exit 0
fi
if ! clang-format --dry-run --Werror "${files[@]}"; then
    echo "check-format: run tools/check-format.sh --fix" >&2
    exit 1
fi
echo "check-format: ${#files[@]} files formatted as .clang-format says"
