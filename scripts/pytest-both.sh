#!/usr/bin/env bash
# Every Python test, in two pytest processes at once: the browser tests (tests/browser/, real
# Chromium, mostly waiting on the app) and all the others. They cannot share one process
# (Playwright's sync API keeps an event loop on the main thread that asyncio tests cannot use),
# and side by side the whole run takes about the time of the browser tests alone. The other
# tests print as they go; the browser tests' output follows, then one status for both.
set -uo pipefail
cd "$(dirname "$0")/.."
log=$(mktemp)
trap 'rm -f "$log"' EXIT
.venv/bin/pytest tests/browser "$@" >"$log" 2>&1 &
browser=$!
.venv/bin/pytest --ignore=tests/browser "$@"
others=$?
wait "$browser"
browsers=$?
echo "---------------- tests/browser (run alongside the tests above) ----------------"
cat "$log"
if [ "$others" -ne 0 ] || [ "$browsers" -ne 0 ]; then
  echo "pytest failed: tests/browser exit $browsers, the other tests exit $others" >&2
  exit 1
fi
