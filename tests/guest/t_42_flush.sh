#!/bin/bash
# Flushes and FUA writes reach the driver; without flush support the block
# layer sends none.
. "$(dirname "$0")/lib.sh"
load_module

stats=/tmp/drv.stats
stat_of() { awk -v k="$1" '$1 == k { print $2 }' "$stats"; }

dev=$(testdrv_add --size 64M --stats "$stats") || die "add"
n=$(dev_id "$dev")
[ "$(cat /sys/block/buse$n/queue/write_cache)" = "write back" ] || die "no volatile cache advertised"
[ "$(cat /sys/block/buse$n/queue/fua)" = 1 ] || die "FUA not advertised"
dd if=/dev/zero of="$dev" bs=4k count=1 oflag=direct status=none
sleep 0.2
f0=$(stat_of flushes); f0=${f0:-0}
# fsync of a block device sends a flush.
dd if=/dev/zero of="$dev" bs=4k count=8 oflag=direct conv=fsync status=none || die "fsync write"
sleep 0.2
f1=$(stat_of flushes)
[ "${f1:-0}" -gt "$f0" ] || die "fsync sent no flush to the driver ($f0 -> $f1)"
# O_DSYNC direct writes are FUA writes.
u0=$(stat_of fua_writes); u0=${u0:-0}
dd if=/dev/zero of="$dev" bs=4k count=4 oflag=direct,dsync status=none || die "dsync write"
sleep 0.2
u1=$(stat_of fua_writes)
[ "${u1:-0}" -gt "$u0" ] || die "O_DSYNC write was not FUA ($u0 -> $u1)"
buse_del "$n"

rm -f "$stats"
dev=$(testdrv_add --size 64M --stats "$stats" --no-flush) || die "add --no-flush"
n=$(dev_id "$dev")
[ "$(cat /sys/block/buse$n/queue/write_cache)" = "write through" ] || die "cache advertised without flush"
dd if=/dev/zero of="$dev" bs=4k count=8 oflag=direct,dsync conv=fsync status=none || die "write"
buse_del "$n"
[ "$(stat_of flushes)" = 0 ] || die "flush sent to a driver without flush support"
[ "$(stat_of fua_writes)" = 0 ] || die "FUA sent to a driver without flush support"
rm -f "$stats"
log "flush and FUA ok"
