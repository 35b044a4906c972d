#!/bin/bash
# timeout: 180
# Deleting a write-back device (buse del, or SIGTERM to its daemon) must not
# drop logged writes that were reported complete: 400 direct writes to a
# slow driver, then an immediate delete; the driver must have applied all
# 400 when its daemon exits.  A daemon that never applies a logged write
# makes the delete fail loudly instead of silently.
. "$(dirname "$0")/lib.sh"
load_module

stats=$TEST_TMP/stats
for how in del sigterm; do
	rm -f "$stats"
	dev=$(testdrv_add --size 32M --queues 2 --write-back --delay-us 2000 --stats "$stats") || die "add"
	n=$(dev_id "$dev")
	pid=$(daemon_pid "$n")
	dd if=/dev/urandom of="$dev" bs=4k count=400 oflag=direct status=none || die "writes"
	case $how in
	del) timeout 60 "$BUSE" del "$n" || die "buse del failed" ;;
	sigterm) kill -TERM "$pid" ;;
	esac
	for _ in $(seq 600); do alive "$pid" || break; sleep 0.1; done
	alive "$pid" && die "$how: daemon still running"
	applied=$(awk '$1 == "writes" { print $2 }' "$stats")
	[ "${applied:-0}" -ge 400 ] || die "$how: only ${applied:-0} of 400 completed writes reached the driver"
	log "$how: all 400 logged writes applied before the device went away"
done

# A logged write the daemon never applies: the delete says so.
dev=$(testdrv_add --size 32M --write-back --timeout 2 --stall-sector 2048:8) || die "add 2"
n=$(dev_id "$dev")
dd if=/dev/urandom of="$dev" bs=4k seek=256 count=1 oflag=direct status=none || die "stalled write"
if timeout 60 "$BUSE" del "$n" 2>"$TEST_TMP/del.err"; then
	die "buse del reported success although a completed write was never applied"
fi
[ -e "/sys/block/buse$n" ] && die "device still present after the failed-loudly delete"
dmesg >"$TEST_TMP/dmesg.txt"
grep -q "buse$n: .*lost" "$TEST_TMP/dmesg.txt" || die "no kernel message about the lost writes"
log "a never-applied write makes the delete fail loudly: $(cat "$TEST_TMP/del.err")"
