#!/bin/bash
# tests/build/run.sh - host-side build and packaging tests (no guest):
# runs every executable tests/build/t_*.sh (or those named as arguments,
# e.g. `tests/build/run.sh t_pc_prefix`), each under `timeout` (a hang
# guard, $BUSE_BUILD_TEST_TIMEOUT s, default 1800) from the repository root.
# Each test's output goes to build/build-tests/NAME.log (shown when it fails).
# Prints "ok - NAME" or "not ok - NAME" per test and ends with
# "build: N passed, N failed"; exits 1 on any failure.
set -uo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
cd "$REPO" || exit 1
LOGS=$REPO/build/build-tests
TMO=${BUSE_BUILD_TEST_TIMEOUT:-1800}
mkdir -p "$LOGS"

tests=()
if [ $# -gt 0 ]; then
	for n in "$@"; do tests+=("tests/build/${n%.sh}.sh"); done
else
	for t in tests/build/t_*.sh; do [ -x "$t" ] && tests+=("$t"); done
fi

pass=0
fail=0
for t in "${tests[@]}"; do
	name=$(basename "$t" .sh)
	echo "==== $name"
	start=$SECONDS
	timeout --kill-after=10 "$TMO" "$t" >"$LOGS/$name.log" 2>&1
	rc=$?
	if [ "$rc" -eq 0 ]; then
		pass=$((pass + 1))
		echo "ok - $name ($((SECONDS - start))s)"
	else
		fail=$((fail + 1))
		tail -n 40 "$LOGS/$name.log" | sed 's/^/    /'
		[ "$rc" -ne 124 ] || echo "    (killed after ${TMO}s)"
		echo "not ok - $name (exit $rc, log $LOGS/$name.log)"
	fi
done
echo "build: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
