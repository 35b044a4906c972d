#!/bin/bash
# timeout: 240
# A delete waiting in del_gendisk() for a read the daemon holds must not
# hold the device's lock (issue 14, medium 6): meanwhile `buse list` and
# `buse info` answer at once (state "deleting"), an ATTACH (a would-be new
# daemon) is refused at once, a second `buse del` waits for the first and
# the daemon's queue threads carry on.  Then the driver lets the read go and
# everything tears down cleanly.  Also for a recoverable device whose
# daemon dies while the delete waits (the read fails, the delete ends).
. "$(dirname "$0")/lib.sh"
load_module

now() { echo "$EPOCHREALTIME"; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

for how in unstall kill; do
	extra=()
	[ "$how" = kill ] && extra=(--recoverable --recovery-timeout 120)
	dev=$(testdrv_add --size 32M --timeout 120 --stall-sector 2048:8 "${extra[@]}") || die "$how: add"
	n=$(dev_id "$dev")
	pid=$(daemon_pid "$n")
	rm -f "$TEST_TMP/rd.rc" "$TEST_TMP/del.rc"
	(rc=0; timeout 200 dd if="$dev" of=/dev/null bs=4k skip=256 count=1 iflag=direct status=none || rc=$?
	 echo $rc >"$TEST_TMP/rd.rc") &
	rdpid=$!
	sleep 0.5
	t0=$(now)
	(rc=0; timeout 200 "$BUSE" del "$n" 2>"$TEST_TMP/del.err" || rc=$?
	 echo $rc >"$TEST_TMP/del.rc") &
	delpid=$!
	sleep 1
	alive "$delpid" || die "$how: the delete did not wait for the stalled read: $(cat "$TEST_TMP/del.err")"

	timeout 5 "$BUSE" list >"$TEST_TMP/list" || die "$how: buse list did not answer while the delete waits"
	grep -q "buse$n" "$TEST_TMP/list" || die "$how: buse list does not show buse$n: $(cat "$TEST_TMP/list")"
	timeout 5 "$BUSE" info "$n" >"$TEST_TMP/info" || die "$how: buse info did not answer while the delete waits"
	grep -q deleting "$TEST_TMP/info" || die "$how: buse info does not say deleting: $(cat "$TEST_TMP/info")"
	# A new daemon may not attach to a device being deleted: refused at once.
	if timeout 5 "$TESTDRV" --size 32M --recover "$n" >"$TEST_TMP/rec.out" 2>&1; then
		die "$how: a daemon recovered a device being deleted"
	fi
	awk -v s="$(since "$t0")" 'BEGIN { exit !(s < 15) }' ||
		die "$how: the control operations took $(since "$t0") s"
	alive "$delpid" || die "$how: the delete ended before the read was let go"
	# A second delete waits for the first rather than returning early.
	(timeout 200 "$BUSE" del "$n" >/dev/null 2>&1 || true) &
	del2pid=$!
	sleep 0.5
	alive "$del2pid" || die "$how: a second delete returned while the first still waits"
	log "$how: list, info, attach answered in $(since "$t0") s while the delete waits"

	case $how in
	unstall) kill -USR1 "$pid" ;;
	kill) kill -9 "$pid" ;;
	esac
	wait "$delpid" || true
	wait "$rdpid" || true
	wait "$del2pid" || true
	log "$how: delete ended $(since "$t0") s after it began, status $(cat "$TEST_TMP/del.rc"), read status $(cat "$TEST_TMP/rd.rc")"
	[ -e "/sys/block/buse$n" ] && die "$how: device still present after the delete"
	for _ in $(seq 100); do alive "$pid" || break; sleep 0.1; done
	alive "$pid" && die "$how: daemon still running after the delete"
	case $how in
	unstall)
		[ "$(cat "$TEST_TMP/del.rc")" = 0 ] || die "unstall: buse del failed: $(cat "$TEST_TMP/del.err")"
		[ "$(cat "$TEST_TMP/rd.rc")" = 0 ] || die "unstall: the released read failed"
		;;
	kill)
		[ "$(cat "$TEST_TMP/rd.rc")" != 0 ] || die "kill: the read of a dead daemon succeeded"
		;;
	esac
done
"$BUSE" list | grep -q buse && die "devices left: $("$BUSE" list)"
log "control operations answer while a delete waits; teardown clean"
