#!/usr/bin/env bash
# Fails when any C++ source is not clang-formatted (the repo's .clang-format), naming each file.
# Files go to clang-format in batches, one batch per core (one process per file took a minute);
# each batch writes its diagnostics to a file of its own.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
list() { git ls-files -z '*.cc' '*.h' 2>/dev/null || find . \( -name '*.cc' -o -name '*.h' \) -print0; }
rc=0
list | xargs -0 -P "$(nproc)" -n 40 sh -c \
  'clang-format --dry-run --Werror "$@" >/dev/null 2>"$(mktemp -p "$0" batch.XXXXXX)"' "$out" ||
  rc=$?
count=$(list | tr -cd '\0' | wc -c)
bad=$(cat "$out"/batch.* | grep -oE '^[^:]+:[0-9]+:[0-9]+: error: code should be clang-formatted' |
  cut -d: -f1 | sort -u || true)
others=$(cat "$out"/batch.* | grep -E 'error' | grep -v 'code should be clang-formatted' || true)
if [[ -n "$bad" ]]; then
  echo "check-format: not formatted (run clang-format -i):" >&2
  sed 's/^/  /' <<<"$bad" >&2
fi
if [[ -n "$others" ]] || { ((rc != 0)) && [[ -z "$bad" ]]; }; then
  echo "check-format: clang-format failed:" >&2
  cat "$out"/batch.* >&2
fi
((rc == 0)) || exit 1
echo "check-format: $count files formatted"
