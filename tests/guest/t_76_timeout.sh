#!/bin/bash
# A request the driver never completes fails with EIO after --timeout, and
# its queue is failed with it: the daemon may still be using the request's
# slot, so nothing of that queue is reused (as NBD fails its connection).
# New I/O fails at once, the daemon's SYNC says ETIMEDOUT and libbuse exits
# (deleting the device; a device left behind is dead, and `buse del` works).
. "$(dirname "$0")/lib.sh"
load_module

dev=$(testdrv_add --size 32M --queues 1 --timeout 2 --stall-sector 4096:8) || die "add"
n=$(dev_id "$dev")
pid=$(daemon_pid "$n")
"$BUSE" info "$n" | grep -Eq 'timeout: +2 s' || die "timeout not accepted: $("$BUSE" info "$n" | grep timeout)"
dd if=/dev/urandom of="$TEST_TMP/p" bs=4k count=16 status=none
dd if="$TEST_TMP/p" of="$dev" bs=4k seek=16 oflag=direct status=none || die "write before the timeout"
start=$(date +%s)
if timeout 60 dd if="$dev" of=/dev/null bs=4k skip=512 count=1 iflag=direct 2>"$TEST_TMP/dd.err"; then
	die "read of a stalled sector succeeded"
fi
took=$(($(date +%s) - start))
grep -q "Input/output error" "$TEST_TMP/dd.err" || die "not EIO: $(cat "$TEST_TMP/dd.err")"
[ "$took" -le 30 ] || die "took ${took}s"
log "stalled read failed after ${took}s"
start=$(date +%s)
if timeout 60 dd if="$dev" of=/dev/null bs=4k skip=16 count=1 iflag=direct 2>/dev/null; then
	die "a read of a failed queue succeeded"
fi
[ $(($(date +%s) - start)) -le 1 ] || die "I/O to a failed queue did not fail at once"
for ((i = 0; i < 100; i++)); do alive "$pid" || break; sleep 0.1; done
alive "$pid" && die "the daemon did not exit after its queue was failed"
# libbuse deletes the device on its way out; a daemon that does not leaves
# it dead, for `buse del`.
if "$BUSE" info "$n" --json >"$TEST_TMP/info.json" 2>/dev/null; then
	python3 -c 'import json,sys; assert json.load(open(sys.argv[1]))["state"] in ("dead", "deleting")' \
		"$TEST_TMP/info.json" || die "state after a timeout: $(cat "$TEST_TMP/info.json")"
	"$BUSE" del "$n" 2>/dev/null || true
fi
wait_gone "$dev"
log "a timeout fails the queue; the daemon exits and the device goes"

# Write-back: a logged write the driver never applies holds reads of its
# chunk; the request timeout ends them too, instead of hanging.
dev=$(testdrv_add --size 32M --timeout 2 --write-back --stall-sector 4096:8) || die "add wb"
n=$(dev_id "$dev")
dd if=/dev/zero of="$dev" bs=4k seek=512 count=1 oflag=direct status=none ||
	die "logged write did not complete"
if timeout 60 dd if="$dev" of=/dev/null bs=4k skip=512 count=1 iflag=direct 2>"$TEST_TMP/dd.err"; then
	die "read held behind a stalled write succeeded"
fi
grep -q "Input/output error" "$TEST_TMP/dd.err" || die "held read: not EIO: $(cat "$TEST_TMP/dd.err")"
dd if="$dev" of=/dev/null bs=4k skip=2048 count=1 iflag=direct status=none ||
	die "read of another chunk failed"
# The logged write was never applied: del removes the device but says the
# write was lost (EIO) instead of succeeding silently.
if timeout 120 "$BUSE" del "$n"; then
	die "del with a stalled (lost) logged write reported success"
fi
[ -e "/sys/block/buse$n" ] && die "del with a stalled logged write left the device"
log "timeouts ok"
