#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# tests/bs3/run.sh - BS3's host integration tests against a real S3 server
# on loopback (scripts/s3-server.sh, its own DIR and PORT under build/).
#
# Runs every executable build/tests/bs3/* and every tests/bs3/t_*.sh, each
# under `timeout` (a generous hang guard, $BS3_HOST_TIMEOUT s, default 600)
# with the server's environment exported (AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID,
# AWS_SECRET_ACCESS_KEY, AWS_REGION) and BS3_S3_PROXY_PID (the proxy's pid,
# for outage tests that SIGSTOP it) and BS3_S3_DIR (for scripts/s3-server.sh
# --dir).  Output of each goes to build/bs3-host/NAME.log.  The server is
# stopped at the end, also on failure.  Ends with
# "bs3-host: N passed, N failed" (one count per binary/script); exit 1 on any
# failure.  The server takes the first free block of five ports from
# $BS3_S3_PORT (default 18500) on, in steps of 10: parallel runs and other
# engineers' servers do not collide.
set -uo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
cd "$REPO" || exit 1

DIR=$REPO/build/s3-host
PORT=${BS3_S3_PORT:-18500}
LOGS=$REPO/build/bs3-host
TMO=${BS3_HOST_TIMEOUT:-600}

rm -rf "$DIR" "$LOGS"
mkdir -p "$LOGS"
trap 'scripts/s3-server.sh stop --dir "$DIR" >/dev/null 2>&1' EXIT

busy() {
	local p
	for p in $(seq "$1" $(($1 + 4))); do
		(exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && return 0
	done
	return 1
}
for i in $(seq 20); do
	busy "$PORT" || break
	PORT=$((PORT + 10))
done
if ! scripts/s3-server.sh start --dir "$DIR" --port "$PORT"; then
	echo "bs3-host: the S3 server did not start (logs in $DIR/log)"
	echo "bs3-host: 0 passed, 1 failed"
	exit 1
fi
eval "$(scripts/s3-server.sh env --dir "$DIR")"
BS3_S3_PROXY_PID=$(scripts/s3-server.sh pid proxy --dir "$DIR")
export BS3_S3_PROXY_PID BS3_S3_DIR=$DIR

pass=0
fail=0
for t in build/tests/bs3/* tests/bs3/t_*.sh; do
	[ -f "$t" ] && [ -x "$t" ] || continue
	name=$(basename "$t")
	echo "==== $name"
	timeout --kill-after=10 "$TMO" "$t" >"$LOGS/$name.log" 2>&1
	rc=$?
	grep -E '^(not ok|ok) ' "$LOGS/$name.log" | grep '^not ok' || true
	if [ "$rc" -eq 0 ]; then
		pass=$((pass + 1))
		echo "PASS: $name"
	else
		fail=$((fail + 1))
		[ "$rc" -eq 124 ] && echo "$name: timed out after $TMO s"
		echo "FAIL: $name (exit $rc; log $LOGS/$name.log)"
		tail -n 20 "$LOGS/$name.log"
	fi
	# A test that died with the proxy stopped must not hang the next one.
	kill -CONT "$BS3_S3_PROXY_PID" 2>/dev/null
done
echo "bs3-host: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
