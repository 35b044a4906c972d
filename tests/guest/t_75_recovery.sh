#!/bin/bash
# timeout: 400
# Recoverable devices: the daemon is killed ten times during verified fio
# and a new one takes over each time with `buse recover`; fio sees not a
# single error.  Without a new daemon, I/O fails once the recovery timeout
# is up; `buse del` of an orphaned device works at once.
. "$(dirname "$0")/lib.sh"
load_module

# takeovers LABEL KILLS [ADD OPTIONS]: verified fio across KILLS kill -9s.
takeovers() {
	local label=$1 kills=$2 img=$TEST_TMP/disk.img dev n fio_pid i pid new state
	shift 2
	rm -f "$img"
	dev=$(buse_add file --path "$img" --size 96M --queues 2 --recoverable \
		--recovery-timeout 60 "$@") || die "add"
	n=$(dev_id "$dev")
	"$BUSE" info "$n" | grep -q recoverable || die "info does not say recoverable"

	# Sequential writes at a bounded rate last long enough for the
	# takeovers, then fio reads everything back and checks it.
	fio --name=recover --filename="$dev" --ioengine=io_uring --direct=1 \
		--rw=write --bs=16k --iodepth=16 --numjobs=2 --offset_increment=48m \
		--size=40m --rate=1500k --cpus_allowed=0-1 --cpus_allowed_policy=split \
		--verify=crc32c --do_verify=1 --verify_fatal=1 \
		--output="$TEST_TMP/fio.out" &
	fio_pid=$!
	for i in $(seq "$kills"); do
		sleep 1.5
		pid=$(daemon_pid "$n")
		kill -9 "$pid"
		for _ in $(seq 50); do alive "$pid" || break; sleep 0.1; done
		state=$("$BUSE" info "$n" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])')
		[ "$state" = orphaned ] || die "$label: state after kill $i is '$state', want orphaned"
		sleep 0.5
		"$BUSE" recover "$n" file --path "$img" >/dev/null || die "$label: recover $i failed"
		new=$(daemon_pid "$n")
		[ "$new" != "$pid" ] || die "daemon pid did not change"
		log "$label: takeover $i: daemon $pid killed, $new serves"
	done
	wait $fio_pid || { cat "$TEST_TMP/fio.out"; die "$label: fio failed across recoveries"; }
	grep -Eq 'err= *[1-9]|verify failed' "$TEST_TMP/fio.out" &&
		{ cat "$TEST_TMP/fio.out"; die "$label: fio reported errors"; }
	buse_del "$n"
	log "$label: $kills kills and takeovers under verified fio: no error"
}
takeovers write-through 10
# Logged writes not yet applied when the daemon dies go to the next one.
takeovers write-back 6 --write-back

# Nobody comes back: I/O waits, then fails with EIO when the limit is up.
dev=$(buse_add ram --size 16M --recoverable --recovery-timeout 3) || die "add 2"
n=$(dev_id "$dev")
kill -9 "$(daemon_pid "$n")"
sleep 0.5
start=$(date +%s)
if dd if="$dev" of=/dev/null bs=4k count=1 iflag=direct 2>"$TEST_TMP/dd.err"; then
	die "read succeeded with no daemon"
fi
took=$(($(date +%s) - start))
grep -q "Input/output error" "$TEST_TMP/dd.err" || die "not EIO: $(cat "$TEST_TMP/dd.err")"
[ "$took" -ge 1 ] && [ "$took" -le 20 ] || die "failed after ${took}s, want about 3"
"$BUSE" info "$n" | grep -q dead || die "state is not dead after the recovery limit"
buse_del "$n"

# An orphaned device is deleted at once, with I/O waiting on it.
dev=$(buse_add ram --size 16M --recoverable --recovery-timeout 300) || die "add 3"
n=$(dev_id "$dev")
kill -9 "$(daemon_pid "$n")"
sleep 0.5
dd if="$dev" of=/dev/null bs=4k count=1 iflag=direct 2>/dev/null &
dd_pid=$!
sleep 1
timeout 20 "$BUSE" del "$n" || die "del of an orphaned device failed or hung"
for _ in $(seq 100); do alive $dd_pid || break; sleep 0.1; done
alive $dd_pid && die "I/O still waiting after del"
wait $dd_pid && die "I/O on a deleted orphan succeeded"
log "recovery limits ok"
