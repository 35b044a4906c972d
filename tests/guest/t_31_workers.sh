#!/bin/bash
# buse_params.workers (issue 15): a driver with plain blocking callbacks
# (the test driver; every write sleeps --delay-us) on one queue.  With a
# pool of 8 workers its writes run concurrently (the driver's own count of
# writes sleeping at once) and fio's verified random read/write passes;
# without workers they run one at a time, as the queue thread calls them.
. "$(dirname "$0")/lib.sh"
load_module

stat_of() { awk -v k="$2" '$1 == k { print $2 }' "$1"; }

run() {
	local label=$1 stats=$TEST_TMP/$1.stats dev n
	shift
	dev=$(testdrv_add --size 64M --queues 1 --delay-us 2000 --stats "$stats" "$@") ||
		die "$label: add"
	n=$(dev_id "$dev")
	fio --name=pool --filename="$dev" --ioengine=io_uring --direct=1 --rw=randrw \
		--bs=4k --iodepth=16 --size=8M --verify=crc32c --verify_fatal=1 \
		--do_verify=1 --output="$TEST_TMP/$label.fio" >/dev/null ||
		{ cat "$TEST_TMP/$label.fio"; die "$label: fio verify failed"; }
	buse_del "$n"
	stat_of "$stats" max_slow_writes
}

most=$(run pool --workers 8)
log "8 workers: up to $most writes sleeping at once"
[ "${most:-0}" -ge 2 ] || die "with 8 workers the blocking writes never overlapped"
most=$(run serial)
log "no workers: up to $most writes sleeping at once"
[ "${most:-0}" = 1 ] || die "without workers the writes of one queue overlapped ($most)"
log "workers: blocking callbacks run concurrently, data verified"
