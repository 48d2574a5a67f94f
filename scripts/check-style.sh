#!/usr/bin/env bash
# House-style checks on every C file we own: clang-format with the committed .clang-format
# (--fix rewrites the files), and the banned functions of STYLE.md ("What to avoid" #4).
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t files < <(git ls-files '*.c' '*.h' 2>/dev/null; git ls-files --others --exclude-standard '*.c' '*.h' 2>/dev/null)
status=0
if [[ "${1:-}" == "--fix" ]]; then
    clang-format -i "${files[@]}"
else
    for f in "${files[@]}"; do
        if ! clang-format --dry-run --Werror "$f" >/dev/null 2>&1; then
            echo "style: $f is not clang-formatted (run: make format)"
            status=1
        fi
    done
fi
banned='\b(strcpy|strcat|sprintf|vsprintf|gets|strtok|strncpy|strncat|sscanf|localtime|atoi)[[:space:]]*\('
if grep -nE "$banned" "${files[@]}" | grep -vE '^[^:]+:[0-9]+:[[:space:]]*(//|\*|/\*)'; then
    echo "style: banned functions above (STYLE.md, What to avoid #4)"
    status=1
fi
[[ $status -eq 0 ]] && echo "style: ${#files[@]} files clean"
exit $status
