#!/bin/bash
# timeout: 600
# Write-back mode keeps data right: the fio verify matrix on ram and file,
# ext4 and xfs with checksums and fsck, a flush that returns only after every
# earlier write (from another CPU) was applied, and a write log far smaller
# than the load: writes wait, nothing fails or is lost.
. "$(dirname "$0")/lib.sh"
load_module

for q in 1 2; do
	dev=$(buse_add ram --size 160M --queues $q --max-io 1M --write-back) || die "ram add"
	fio_matrix "$dev" $q || die "ram write-back, $q queues: fio verify failed"
	buse_del "$(dev_id "$dev")"
	log "ram write-back, $q queue(s): 12 verified jobs ok"
done
dev=$(buse_add file --path "$TEST_TMP/wb.img" --size 160M --queues 2 --write-back) || die "file add"
fio_matrix "$dev" 2 || die "file write-back: fio verify failed"
buse_del "$(dev_id "$dev")"
log "file write-back, 2 queues: 12 verified jobs ok"

# File systems.
mkdir -p "$TEST_TMP/src" "$TEST_TMP/mnt"
head -c $((16 << 20)) /dev/urandom >"$TEST_TMP/src/big"
cp -r /usr/include/linux "$TEST_TMP/src/"
(cd "$TEST_TMP/src" && find . -type f -print0 | sort -z | xargs -0 sha256sum) >"$TEST_TMP/sums"
for fs in ext4 xfs; do
	dev=$(buse_add ram --size 512M --queues 2 --write-back) || die "add for $fs"
	case $fs in
	ext4) mkfs.ext4 -q -F "$dev" ;;
	xfs) mkfs.xfs -q -f "$dev" ;;
	esac || die "mkfs.$fs"
	mount "$dev" "$TEST_TMP/mnt" || die "mount $fs"
	cp -a "$TEST_TMP/src/." "$TEST_TMP/mnt/" || die "copy to $fs"
	umount "$TEST_TMP/mnt"
	echo 3 >/proc/sys/vm/drop_caches
	mount -o ro "$dev" "$TEST_TMP/mnt" || die "remount $fs"
	(cd "$TEST_TMP/mnt" && sha256sum --quiet -c "$TEST_TMP/sums") || die "$fs: checksums differ"
	umount "$TEST_TMP/mnt"
	case $fs in
	ext4) fsck.ext4 -fn "$dev" >"$TEST_TMP/fsck" 2>&1 ;;
	xfs) xfs_repair -n "$dev" >"$TEST_TMP/fsck" 2>&1 ;;
	esac || { cat "$TEST_TMP/fsck"; die "$fs: fsck"; }
	buse_del "$(dev_id "$dev")"
	log "$fs on write-back ram: files intact, fsck clean"
done

# Flush: 300 writes from CPU 0 on a slow driver, then a flush from CPU 1
# (another hardware queue).  When it returns, the driver must have applied
# all 300: the test driver records its counters at each flush.
stats=$TEST_TMP/stats
dev=$(testdrv_add --size 32M --queues 2 --write-back --delay-us 2000 --stats "$stats") || die "testdrv add"
taskset -c 0 dd if=/dev/urandom of="$dev" bs=4k count=300 oflag=direct status=none || die "writes"
taskset -c 1 dd if=/dev/null of="$dev" count=0 conv=notrunc,fsync status=none || die "flush"
applied=$(awk '$1 == "writes" { print $2 }' "$stats")
flushes=$(awk '$1 == "flushes" { print $2 }' "$stats")
[ "${flushes:-0}" -ge 1 ] || die "the flush did not reach the driver"
[ "${applied:-0}" -ge 300 ] || die "flush returned with only ${applied:-0} of 300 writes applied"
buse_del "$(dev_id "$dev")"
log "flush waited for all 300 earlier writes"

# A failed logged write makes the next flush fail.
dev=$(testdrv_add --size 32M --write-back --fail-sector 2048:8) || die "testdrv add 2"
dd if=/dev/zero of="$dev" bs=4k seek=256 count=1 oflag=direct status=none ||
	die "a logged write should complete before the driver sees it"
if dd if=/dev/null of="$dev" count=0 conv=notrunc,fsync status=none 2>/dev/null; then
	die "flush after a failed logged write succeeded"
fi
dd if=/dev/null of="$dev" count=0 conv=notrunc,fsync status=none || die "the error was reported twice"
buse_del "$(dev_id "$dev")"
log "a lost write fails the next flush, once"

# Log full: a 256 KiB log, a slow driver and a burst of 64 KiB writes.
dev=$(testdrv_add --size 64M --queues 2 --write-back --log-size 256K --delay-us 300) || die "testdrv add 3"
timeout 300 fio --name=burst --filename="$dev" --ioengine=io_uring --direct=1 \
	--rw=randwrite --bs=64k --iodepth=32 --numjobs=2 --offset_increment=32m \
	--size=16m --cpus_allowed=0-1 --cpus_allowed_policy=split \
	--verify=crc32c --verify_fatal=1 --output="$TEST_TMP/burst.out" ||
	{ cat "$TEST_TMP/burst.out"; die "burst into a full log failed or hung"; }
grep -Eq 'err= *[1-9]' "$TEST_TMP/burst.out" && die "errors with a full log"
buse_del "$(dev_id "$dev")"
log "full log: writes waited, all verified"

# A log exactly one maximal write large: after a small write moved the log's
# position, a maximal write must still fit once the log has drained.
dev=$(testdrv_add --size 16M --queues 1 --write-back --log-size 64K --max-io 64K) || die "testdrv add 4"
for i in 1 2 3; do
	timeout 20 dd if=/dev/urandom of="$dev" bs=4k seek=$((i * 40)) count=1 oflag=direct status=none ||
		die "small logged write $i failed or hung"
	timeout 20 dd if=/dev/urandom of="$dev" bs=64k seek=$i count=1 oflag=direct status=none ||
		die "a write as large as the log waited forever after a smaller one"
done
buse_del "$(dev_id "$dev")"
log "a log-sized write fits after smaller ones"
