#!/bin/sh
# /init of the BUSE test initramfs (run by busybox sh as PID 1).
#
# tests/vm/run builds the initramfs around this file: /bin/busybox, the
# modules needed for a 9p root (decompressed, listed in load order in
# /modules.list) and this script.  It
#   1. mounts proc, sysfs and devtmpfs,
#   2. inserts the modules,
#   3. mounts the host's root read-only over 9p (mount_tag "host") with a
#      tmpfs overlay on top, so the guest sees the host's files and what it
#      writes stays in RAM,
#   4. switch_roots into it and execs the guest script named by buse_init= on
#      the kernel command line (tests/vm/guest-init.sh of the repo).
# Any failure powers the guest off; the host then finds no exit status.

PATH=/bin
export PATH

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
# The kernel may have found no /dev/console before devtmpfs was mounted.
exec </dev/console >/dev/console 2>&1

fail() {
	echo "initramfs: FATAL: $*"
	echo "initramfs: powering off"
	poweroff -f
	echo o >/proc/sysrq-trigger
	sleep 60
}

buse_init=
for arg in $(cat /proc/cmdline); do
	case "$arg" in
	buse_init=*) buse_init=${arg#buse_init=} ;;
	esac
done
[ -n "$buse_init" ] || fail "no buse_init= on the kernel command line"

while read -r mod; do
	insmod "/modules/$mod" || fail "insmod $mod failed"
done </modules.list

mkdir -p /lower /upper /newroot
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=512000 host /lower ||
	fail "cannot mount the host root over 9p (mount_tag host)"
mount -t tmpfs -o mode=0755 tmpfs /upper || fail "tmpfs"
mkdir -p /upper/u /upper/w
mount -t overlay overlay \
	-o lowerdir=/lower,upperdir=/upper/u,workdir=/upper/w /newroot ||
	fail "cannot mount the overlay root"
[ -f "/newroot$buse_init" ] || fail "$buse_init not found in the host root"

for fs in proc sys dev; do
	mkdir -p "/newroot/$fs"
	mount --move "/$fs" "/newroot/$fs" || fail "mount --move /$fs"
done

# shellcheck disable=SC2093  # fail only runs if the exec fails
exec switch_root /newroot /bin/bash "$buse_init"
fail "switch_root failed"
