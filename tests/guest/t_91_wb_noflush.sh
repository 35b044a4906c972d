#!/bin/bash
# timeout: 120
# Write-back mode needs a volatile write cache: even for a driver without a
# flush callback the disk must say "write back" and send flushes, so that a
# logged write lost with its daemon fails the next fsync.
. "$(dirname "$0")/lib.sh"
load_module

dev=$(testdrv_add --size 32M --write-back --no-flush --delay-us 3000) || die "add"
n=$(dev_id "$dev")
wc=$(cat "/sys/block/buse$n/queue/write_cache")
[ "$wc" = "write back" ] || die "write-back device reports write cache '$wc'"
dd if=/dev/urandom of="$dev" bs=4k count=20 oflag=direct status=none || die "writes"
dd if=/dev/null of="$dev" count=0 conv=notrunc,fsync status=none || die "fsync with a live daemon failed"
log "write cache '$wc'; fsync through a driver without flush works"

dd if=/dev/urandom of="$dev" bs=4k count=400 oflag=direct status=none || die "writes 2"
kill -9 "$(daemon_pid "$n")"
sleep 0.5
if dd if=/dev/null of="$dev" count=0 conv=notrunc,fsync status=none 2>/dev/null; then
	die "fsync returned 0 although logged writes died with the daemon"
fi
log "writes lost with the daemon fail the next fsync"
buse_del "$n"
