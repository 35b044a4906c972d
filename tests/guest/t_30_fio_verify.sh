#!/bin/bash
# fio with crc32c verification on every driver that stores data: random and
# sequential writes at 4k, 64k and 1M, iodepth 1 and 32, one and two queues.
# Each block's verify header carries its offset, so a data path that mixes
# up offsets, tags or slots fails here.
. "$(dirname "$0")/lib.sh"
load_module
modprobe brd rd_nr=1 rd_size=$((160 * 1024)) || die "brd"

# fio_matrix DEV QUEUES: 12 verified jobs, one after another.  With two
# queues, two writers pinned to different CPUs (so to different hardware
# queues) work on separate halves at once.
fio_matrix() {
	local dev=$1 queues=$2 job=/tmp/matrix.fio bs rw qd
	{
		echo "[global]"
		echo "filename=$dev"
		echo "ioengine=io_uring"
		echo "direct=1"
		echo "verify=crc32c"
		echo "verify_fatal=1"
		echo "do_verify=1"
		echo "size=16m"
		echo "numjobs=$queues"
		echo "offset_increment=64m"
		echo "cpus_allowed=0-1"
		echo "cpus_allowed_policy=split"
		echo "group_reporting=1"
		for bs in 4k 64k 1m; do
			for rw in randwrite write; do
				for qd in 1 32; do
					echo "[$rw-$bs-qd$qd]"
					echo "stonewall"
					echo "rw=$rw"
					echo "bs=$bs"
					echo "iodepth=$qd"
				done
			done
		done
	} >"$job"
	fio "$job" >/tmp/matrix.out 2>&1 || { tail -40 /tmp/matrix.out; return 1; }
	if grep -Eq 'err= *[1-9]|verify failed|bad magic|bad header' /tmp/matrix.out; then
		grep -E 'err=|verify|bad' /tmp/matrix.out | head -20
		return 1
	fi
}

for q in 1 2; do
	dev=$(buse_add ram --size 160M --queues $q --max-io 1M) || die "ram add"
	fio_matrix "$dev" $q || die "ram, $q queues: fio verify failed"
	log "ram, $q queue(s): 12 verified jobs ok"
	buse_del "$(dev_id "$dev")"

	rm -f /tmp/backing.img
	dev=$(buse_add file --path /tmp/backing.img --size 160M --queues $q) ||
		die "file add"
	fio_matrix "$dev" $q || die "file, $q queues: fio verify failed"
	log "file (buffered), $q queue(s): 12 verified jobs ok"
	buse_del "$(dev_id "$dev")"

	dev=$(buse_add file --path /dev/ram0 --direct --queues $q) ||
		die "file --direct add"
	fio_matrix "$dev" $q || die "file --direct, $q queues: fio verify failed"
	log "file (O_DIRECT on brd), $q queue(s): 12 verified jobs ok"
	buse_del "$(dev_id "$dev")"
done
rm -f /tmp/backing.img
rmmod brd
