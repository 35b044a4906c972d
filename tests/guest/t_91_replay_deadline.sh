#!/bin/bash
# timeout: 240
# A request handed to a new daemon after recovery gets a full request
# timeout from then on, not what is left of the one it started with (issue
# 14, medium 5).  Request timeout 10 s; a read issued at 0 is stalled by the
# daemon, which is killed at +1 s; a new daemon takes over at +4.5 s.
#  A. The new daemon serves the read 8 s late (+12.5 s): it must succeed,
#     not fail at +10 s with the queue.
#  B. The new daemon never serves it: it must fail a full timeout after the
#     recovery (+14.5 s), not at +10 s and not a whole extra timeout later.
#  C. Write-back: the read is held behind a logged write the old daemon
#     never applied; the new daemon applies the replayed write 6 s late: the
#     held read must then be served, not fail at +10 s.
. "$(dirname "$0")/lib.sh"
load_module

pat() { head -c 4096 /dev/zero | tr '\0' "$1"; }
now() { echo "$EPOCHREALTIME"; }
# since T: seconds since T, with one decimal.
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
# sleep_until T S: until S seconds after T.
sleep_until() { sleep "$(awk -v a="$1" -v s="$2" -v b="$(now)" 'BEGIN { d = a + s - b; print (d > 0 ? d : 0) }')"; }

# run CASE WB NEW_DAEMON_OPTIONS...: the scenario; leaves the read's exit
# status in $TEST_TMP/rc and its end (seconds since issue) in $TEST_TMP/end.
run() {
	local name=$1 wb=$2 dev n pid t0 rdpid
	shift 2
	dev=$(testdrv_add --size 32M --timeout 10 --recoverable --recovery-timeout 60 \
		$wb --stall-sector 2048:8) || die "$name: add"
	n=$(dev_id "$dev")
	[ -n "$wb" ] && { pat w | dd of="$dev" bs=4k seek=256 count=1 oflag=direct status=none || die "$name: logged write"; }
	t0=$(now)
	( rc=0; out=$(timeout 60 dd if="$dev" bs=4k skip=256 count=1 iflag=direct status=none | tr -d w | wc -c) || rc=$?
	  [ -z "$wb" ] || [ "$out" = 0 ] || rc=99
	  echo "$rc" >"$TEST_TMP/rc"; since "$t0" >"$TEST_TMP/end" ) &
	rdpid=$!
	sleep 1
	pid=$(daemon_pid "$n")
	kill -9 "$pid"
	for _ in $(seq 50); do alive "$pid" || break; sleep 0.1; done
	alive "$pid" && die "$name: old daemon still alive"
	sleep_until "$t0" 4.5
	"$TESTDRV" --daemon --size 32M --recover "$n" "$@" >/dev/null || die "$name: recover"
	log "$name: recovered at +$(since "$t0") s"
	wait "$rdpid" || true
	log "$name: read ended at +$(cat "$TEST_TMP/end") s with status $(cat "$TEST_TMP/rc")"
	LAST_DEV=$n
}

# Every case runs; the test fails at the end if any did.
FAILED=()
fail() { log "FAIL: $*"; FAILED+=("${1%%:*}"); }
# del_dev N: delete it, unless its daemon did already (a failed queue).
del_dev() {
	"$BUSE" del "$1" 2>/dev/null || [ ! -e "/sys/block/buse$1" ] || fail "$1: buse del failed"
	wait_gone "/sys/block/buse$1" 30
}

# A: served late by the new daemon.
run A "" --slow-sector 2048:8 --slow-ms 8000
if [ "$(cat "$TEST_TMP/rc")" != 0 ]; then
	fail "A: the re-handed read failed at +$(cat "$TEST_TMP/end") s (its old deadline)"
elif ! "$BUSE" info "$LAST_DEV" | grep -q live; then
	fail "A: device not live: $("$BUSE" info "$LAST_DEV")"
elif ! timeout 30 dd if=/dev/buse"$LAST_DEV" of=/dev/null bs=4k count=1 iflag=direct status=none; then
	fail "A: queue not serving"
fi
del_dev "$LAST_DEV"

# B: never served by the new daemon either: one full timeout after recovery.
run B "" --stall-sector 2048:8
if [ "$(cat "$TEST_TMP/rc")" = 0 ]; then
	fail "B: a read nobody served succeeded"
elif ! awk -v e="$(cat "$TEST_TMP/end")" 'BEGIN { exit !(e >= 13.5 && e <= 17) }'; then
	fail "B: the read failed at +$(cat "$TEST_TMP/end") s, want ~14.5 s (recovery + timeout)"
fi
del_dev "$LAST_DEV"

# C: write-back, a read held behind a replayed write the new daemon applies late.
run C --write-back --slow-sector 2048:8 --slow-ms 6000
if [ "$(cat "$TEST_TMP/rc")" != 0 ]; then
	fail "C: the held read failed (status $(cat "$TEST_TMP/rc")) at +$(cat "$TEST_TMP/end") s"
elif ! "$BUSE" info "$LAST_DEV" | grep -q live; then
	fail "C: device not live: $("$BUSE" info "$LAST_DEV")"
fi
del_dev "$LAST_DEV"
[ ${#FAILED[@]} = 0 ] || die "failed cases: ${FAILED[*]}"
log "re-handed and held requests get a full timeout after recovery"
