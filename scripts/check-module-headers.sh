#!/usr/bin/env bash
# Every Rust module starts with a `//!` header saying what it is responsible for.
set -euo pipefail
cd "$(dirname "$0")/.."
bad=0
while IFS= read -r f; do
    first=$(awk '!/^#!\[/ && !/^[[:space:]]*$/ { print; exit }' "$f")
    case "$first" in
        '//!'*) ;;
        *) echo "missing //! module header: $f"; bad=1 ;;
    esac
done < <(git ls-files --cached --others --exclude-standard -- '*.rs')
exit $bad
