#!/bin/bash
# A real file system on ram and file devices: mkfs.ext4, copy files in,
# check their sha256 after a remount (and, for file, after re-creating the
# device on the same backing file), then fsck.
. "$(dirname "$0")/lib.sh"
load_module

mnt=/tmp/mnt
mkdir -p "$mnt" /tmp/src
head -c $((24 << 20)) /dev/urandom >/tmp/src/big
cp -r /usr/share/doc/fio /usr/include/linux /tmp/src/ 2>/dev/null
(cd /tmp/src && find . -type f -print0 | sort -z | xargs -0 sha256sum) >/tmp/src.sha

fill_and_check() { # DEV WHAT
	mkfs.ext4 -q -F "$1" || die "$2: mkfs.ext4"
	mount "$1" "$mnt" || die "$2: mount"
	cp -a /tmp/src/. "$mnt/" || die "$2: copy"
	umount "$mnt" || die "$2: umount"
	check_fs "$@"
}
check_fs() { # DEV WHAT
	echo 3 >/proc/sys/vm/drop_caches
	mount -o ro "$1" "$mnt" || die "$2: remount"
	(cd "$mnt" && sha256sum --quiet -c /tmp/src.sha) || die "$2: checksums differ"
	umount "$mnt"
	fsck.ext4 -fn "$1" >/tmp/fsck.out 2>&1 || { cat /tmp/fsck.out; die "$2: fsck"; }
	log "$2: ext4 files intact, fsck clean"
}

dev=$(buse_add ram --size 256M --queues 2) || die "ram add"
fill_and_check "$dev" ram
buse_del "$(dev_id "$dev")"

img=/tmp/ext4.img
rm -f "$img"
dev=$(buse_add file --path "$img" --size 256M --queues 2) || die "file add"
fill_and_check "$dev" file
buse_del "$(dev_id "$dev")"
dev=$(buse_add file --path "$img" --queues 1) || die "file re-add"
check_fs "$dev" "file, new device"
buse_del "$(dev_id "$dev")"
rm -rf "$img" /tmp/src /tmp/src.sha
