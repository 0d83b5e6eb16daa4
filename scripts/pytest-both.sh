#!/usr/bin/env bash
# Every Python test, in three pytest processes at once: the browser tests (tests/browser/, real
# Chromium, much of their time spent waiting on the app) in two halves by file, and all the
# other tests. Browser tests cannot share a process with the others (Playwright's sync API
# keeps an event loop on the main thread that asyncio tests cannot use); side by side the whole
# run takes about the time of its longest part. The other tests print as they go; each browser
# half's output follows, then one status for all three.
set -uo pipefail
cd "$(dirname "$0")/.."
mapfile -t files < <(printf '%s\n' tests/browser/test_*.py | sort)
halves=("" "")
for i in "${!files[@]}"; do halves[$((i % 2))]+="${files[$i]} "; done
logs=("$(mktemp)" "$(mktemp)")
trap 'rm -f "${logs[@]}"' EXIT
pids=()
for h in 0 1; do
  # shellcheck disable=SC2086  # one word per file
  .venv/bin/pytest ${halves[$h]} "$@" >"${logs[$h]}" 2>&1 &
  pids+=("$!")
done
.venv/bin/pytest --ignore=tests/browser "$@"
others=$?
failed=$((others != 0))
for h in 0 1; do
  wait "${pids[$h]}"
  status=$?
  echo "---------------- browser tests, half $((h + 1)) of 2 (run alongside): ${halves[$h]}"
  cat "${logs[$h]}"
  failed=$((failed || status != 0))
done
if [ "$failed" -ne 0 ]; then
  echo "pytest failed (see the summaries above)" >&2
  exit 1
fi
