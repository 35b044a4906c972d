#!/bin/bash
# fio with crc32c verification on every driver that stores data: random and
# sequential writes at 4k, 64k and 1M, iodepth 1 and 32, one and two queues
# (and the file driver once more on its worker pool).
# Each block's verify header carries its offset, so a data path that mixes
# up offsets, tags or slots fails here.
. "$(dirname "$0")/lib.sh"
load_module
modprobe brd rd_nr=1 rd_size=$((160 * 1024)) || die "brd"

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
# The worker pool (file --workers): blocking calls instead of io_uring.
dev=$(buse_add file --path /dev/ram0 --direct --queues 2 --workers 4) ||
	die "file --workers add"
fio_matrix "$dev" 2 || die "file --workers, 2 queues: fio verify failed"
log "file --workers 4 (O_DIRECT on brd), 2 queue(s): 12 verified jobs ok"
buse_del "$(dev_id "$dev")"
rm -f /tmp/backing.img
rmmod brd
