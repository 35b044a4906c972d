#!/bin/bash
# A request the driver never completes fails with EIO after --timeout; the
# device keeps working for the other sectors.
. "$(dirname "$0")/lib.sh"
load_module

dev=$(testdrv_add --size 32M --timeout 2 --stall-sector 4096:8) || die "add"
n=$(dev_id "$dev")
"$BUSE" info "$n" | grep -Eq 'timeout: +2 s' || die "timeout not accepted: $("$BUSE" info "$n" | grep timeout)"
start=$(date +%s)
if timeout 60 dd if="$dev" of=/dev/null bs=4k skip=512 count=1 iflag=direct 2>"$TEST_TMP/dd.err"; then
	die "read of a stalled sector succeeded"
fi
took=$(($(date +%s) - start))
grep -q "Input/output error" "$TEST_TMP/dd.err" || die "not EIO: $(cat "$TEST_TMP/dd.err")"
[ "$took" -le 30 ] || die "took ${took}s"
log "stalled read failed after ${took}s"
dd if=/dev/urandom of="$TEST_TMP/p" bs=4k count=16 status=none
dd if="$TEST_TMP/p" of="$dev" bs=4k seek=16 oflag=direct status=none || die "write elsewhere"
dd if="$dev" bs=4k skip=16 count=16 iflag=direct status=none | cmp - "$TEST_TMP/p" ||
	die "data elsewhere wrong after a timeout"
# A late completion of the timed-out tag can never be applied to a new
# request: new requests reuse tags with new cookies (see t_85_hostile).
buse_del "$n"

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
timeout 120 "$BUSE" del "$n" || die "del with a stalled logged write failed"
log "timeouts ok"
