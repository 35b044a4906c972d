#!/bin/bash
# The example driver of docs/drivers.md (examples/memdisk), built as its
# author would but against this tree's libbuse, serves a real device:
# verified fio, ext4 with fsck, and SIGTERM deletes the device.
# timeout: 600
. "$(dirname "$0")/lib.sh"
load_module
require_cmd cc mkfs.ext4 fsck.ext4

bin=$TEST_TMP/memdisk
cc -std=c11 -O2 -Wall -Wextra -Werror -I"$REPO/include" -o "$bin" \
	"$REPO/examples/memdisk/main.c" "$REPO/examples/memdisk/memdisk.c" \
	"$REPO/build/libbuse.a" -lpthread || die "the example does not build"
start_daemon "$bin" 96
pid=$DAEMON_PID
dev=
for _ in $(seq 100); do
	for d in /sys/block/buse*; do
		[ -e "$d" ] || continue
		[ "$(cat "$d/size")" = $((96 * 2048)) ] && dev=/dev/${d##*/}
	done
	[ -n "$dev" ] && [ -b "$dev" ] && break
	sleep 0.1
done
[ -n "$dev" ] || die "memdisk's device did not appear"
"$BUSE" info "$(dev_id "$dev")" | grep -q "driver: *memdisk" || die "info does not name memdisk"
fio_verify "$dev" --size=32M --iodepth=16
mnt=$TEST_TMP/mnt
mkdir -p "$mnt"
mkfs.ext4 -q -F "$dev" || die "mkfs"
mount "$dev" "$mnt" || die "mount"
cp -r "$REPO/include" "$mnt/" && sync
sums() { (cd "$1" && find . -type f -print0 | sort -z | xargs -0 md5sum); }
sum_in=$(sums "$REPO/include")
umount "$mnt"
fsck.ext4 -n -f "$dev" >/dev/null || die "fsck found errors"
mount "$dev" "$mnt" || die "remount"
sum_out=$(sums "$mnt/include")
umount "$mnt"
[ -n "$sum_in" ] && [ "$sum_in" = "$sum_out" ] || die "files changed on the example driver"
kill -TERM "$pid"
for _ in $(seq 100); do alive "$pid" || break; sleep 0.1; done
alive "$pid" && die "memdisk did not exit on SIGTERM"
wait "$pid" || die "memdisk exited $? on SIGTERM"
[ -e "/sys/block/${dev#/dev/}" ] && die "SIGTERM left the device"
log "example driver: fio verify, ext4 + fsck, SIGTERM deletes"
