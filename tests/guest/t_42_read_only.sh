#!/bin/bash
# A read-only device stays read-only for the driver even after BLKROSET
# (blockdev --setrw) made the disk writable for the block layer (issue 14,
# low 11): writes fail with EIO and never reach the driver.
. "$(dirname "$0")/lib.sh"
load_module

stats=$TEST_TMP/stats
dev=$(testdrv_add --size 16M --read-only --stats "$stats") || die "add"
n=$(dev_id "$dev")
blockdev --setrw "$dev" || die "blockdev --setrw"
if dd if=/dev/zero of="$dev" bs=4k count=1 oflag=direct status=none 2>/dev/null; then
	die "a write to a read-only device succeeded after BLKROSET"
fi
dd if="$dev" of=/dev/null bs=4k count=1 iflag=direct status=none || die "read failed"
buse_del "$n"
writes=$(awk '$1 == "writes" { print $2 }' "$stats")
[ "${writes:-0}" = 0 ] || die "$writes writes reached the driver of a read-only device"
log "writes fail on a read-only device whatever BLKROSET says"
