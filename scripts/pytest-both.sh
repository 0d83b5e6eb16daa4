#!/usr/bin/env bash
# Every Python test, in three pytest processes at once: the browser tests (tests/browser/ and
# tests/deploy/, real Chromium, much of their time spent waiting on the app) in two halves, and all the
# other tests. Browser tests cannot share a process with the others (Playwright's sync API
# keeps an event loop on the main thread that asyncio tests cannot use); side by side the whole
# run takes about the time of its longest part. The other tests print as they go; each browser
# half's output follows, then one status for all three.
set -uo pipefail
cd "$(dirname "$0")/.."
# Every other browser test to each half (not every other file: a file's tests share a setup
# cost, and one heavy file would leave one half waiting for the other).
mapfile -t tests < <(.venv/bin/pytest --collect-only -q tests/browser tests/deploy "$@" 2>/dev/null | grep '::')
if [ "${#tests[@]}" -lt 2 ]; then
  echo "pytest-both: could not collect the browser tests (run: .venv/bin/pytest --collect-only tests/browser tests/deploy)" >&2
  exit 1
fi
first=() second=()
for i in "${!tests[@]}"; do
  if ((i % 2)); then second+=("${tests[$i]}"); else first+=("${tests[$i]}"); fi
done
logs=("$(mktemp)" "$(mktemp)")
trap 'rm -f "${logs[@]}"' EXIT
pids=()
# A browser test that fails is run up to twice more (pytest-rerunfailures; shown as R and in
# the summary), a guard on a loaded 2-core machine: the two account-sync flakes it was added
# for are fixed (the closing notes), but one test of test_retries.py still needed a rerun
# once, cause not yet looked at; a test failing three times fails the run.
rerun=(--reruns 2)
.venv/bin/pytest "${rerun[@]}" "${first[@]}" "$@" >"${logs[0]}" 2>&1 &
pids+=("$!")
.venv/bin/pytest "${rerun[@]}" "${second[@]}" "$@" >"${logs[1]}" 2>&1 &
pids+=("$!")
.venv/bin/pytest --ignore=tests/browser --ignore=tests/deploy "$@"
others=$?
failed=$((others != 0))
for h in 0 1; do
  wait "${pids[$h]}"
  status=$?
  echo "---------------- browser tests, half $((h + 1)) of 2 (run alongside, every other test)"
  cat "${logs[$h]}"
  failed=$((failed || status != 0))
done
if [ "$failed" -ne 0 ]; then
  echo "pytest failed (see the summaries above)" >&2
  exit 1
fi
