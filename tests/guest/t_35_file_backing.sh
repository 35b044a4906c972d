#!/bin/bash
# The file driver stores each block at its own offset of the backing file,
# and the data survives deleting and re-creating the device.
. "$(dirname "$0")/lib.sh"
load_module

img=/tmp/backing.img
rm -f "$img"
head -c $((8 << 20)) /dev/urandom >/tmp/pattern
dev=$(buse_add file --path "$img" --size 64M --queues 2) || die "add"
# Write the pattern at an odd place: 5 MiB + 4 KiB.
dd if=/tmp/pattern of="$dev" bs=4k seek=$((5 * 256 + 1)) oflag=direct status=none ||
	die "write"
buse_del "$(dev_id "$dev")"

[ "$(stat -c %s "$img")" = $((64 << 20)) ] || die "backing file has the wrong size"
dd if="$img" bs=4k skip=$((5 * 256 + 1)) count=2048 status=none | cmp - /tmp/pattern ||
	die "backing file does not hold the data at the written offset"
dd if="$img" bs=4k count=$((5 * 256 + 1)) status=none | cmp -s - <(head -c $(((5 * 256 + 1) * 4096)) /dev/zero) ||
	die "data landed before the written offset"

dev=$(buse_add file --path "$img") || die "re-add"
n=$(dev_id "$dev")
[ "$(cat /sys/block/buse$n/size)" = $((64 * 2048)) ] || die "size not taken from the file"
dd if="$dev" bs=4k skip=$((5 * 256 + 1)) count=2048 iflag=direct status=none |
	cmp - /tmp/pattern || die "data not read back through a new device"
buse_del "$n"
rm -f "$img" /tmp/pattern
log "file backing ok"
