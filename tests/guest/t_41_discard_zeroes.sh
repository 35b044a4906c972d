#!/bin/bash
# Discard and write-zeroes read back zeros, only where they were asked for.
. "$(dirname "$0")/lib.sh"
load_module

zeros() { head -c "$1" /dev/zero; }
# region DEV OFFSET_MIB LEN_MIB: print that part of the device
region() { dd if="$1" bs=1M skip="$2" count="$3" iflag=direct status=none; }

check_driver() {
	local dev=$1 what=$2
	dd if=/dev/urandom of=/tmp/rnd bs=1M count=16 status=none
	dd if=/tmp/rnd of="$dev" bs=1M oflag=direct status=none || die "$what: fill"
	[ "$(cat /sys/block/$(basename "$dev")/queue/discard_max_bytes)" != 0 ] ||
		die "$what: discard not advertised"
	blkdiscard -o $((2 << 20)) -l $((3 << 20)) "$dev" || die "$what: blkdiscard"
	blkdiscard -z -o $((8 << 20)) -l $((1 << 20)) "$dev" || die "$what: write zeroes"
	# A sub-MiB discard inside a chunk must zero exactly its blocks.
	blkdiscard -z -o $(((12 << 20) + 4096)) -l 8192 "$dev" || die "$what: small zeroes"
	region "$dev" 2 3 | cmp -s - <(zeros $((3 << 20))) || die "$what: discarded range not zero"
	region "$dev" 8 1 | cmp -s - <(zeros $((1 << 20))) || die "$what: zeroed range not zero"
	region "$dev" 0 2 | cmp -s - <(head -c $((2 << 20)) /tmp/rnd) || die "$what: data before changed"
	region "$dev" 5 3 | cmp -s - <(tail -c +$(((5 << 20) + 1)) /tmp/rnd | head -c $((3 << 20))) ||
		die "$what: data between changed"
	dd if="$dev" bs=4096 skip=$((12 * 256 + 1)) count=2 iflag=direct status=none |
		cmp -s - <(zeros 8192) || die "$what: small zeroed range not zero"
	dd if="$dev" bs=4096 skip=$((12 * 256)) count=1 iflag=direct status=none |
		cmp -s - <(tail -c +$(((12 << 20) + 1)) /tmp/rnd | head -c 4096) ||
		die "$what: block before small range changed"
	dd if="$dev" bs=4096 skip=$((12 * 256 + 3)) count=1 iflag=direct status=none |
		cmp -s - <(tail -c +$(((12 << 20) + 12289)) /tmp/rnd | head -c 4096) ||
		die "$what: block after small range changed"
	log "$what: discard and write-zeroes ok"
}

dev=$(buse_add ram --size 64M --queues 2) || die "ram add"
check_driver "$dev" ram
buse_del "$(dev_id "$dev")"

rm -f /tmp/backing.img
dev=$(buse_add file --path /tmp/backing.img --size 64M --queues 2) || die "file add"
check_driver "$dev" file
buse_del "$(dev_id "$dev")"
# What the device read back is what the file holds.
dd if=/tmp/backing.img bs=1M skip=2 count=3 status=none | cmp -s - <(zeros $((3 << 20))) ||
	die "file: backing file not zero where discarded"
rm -f /tmp/backing.img /tmp/rnd
