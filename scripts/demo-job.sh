#!/bin/bash
# scripts/demo-job.sh - the main job, on a kernel that can load buse.ko (run
# as root; scripts/demo.sh runs it in a QEMU guest when this one cannot):
# load the module, create a `ram` and a `file` device, put ext4 on each,
# copy files in, check them, remove the devices.  BUSE_INSTALLED=1 uses the
# installed tool (buse in PATH) and module (modprobe, e.g. from buse-dkms)
# instead of the build tree's.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
BUSE=build/buse
[ "${BUSE_INSTALLED:-0}" != 1 ] || BUSE=$(command -v buse)
say() { printf '\n>>> %s\n' "$*"; }
run() { printf '$ %s\n' "$*" >&2; "$@"; }

say "load the module"
if grep -q '^buse ' /proc/modules; then
	:
elif [ "${BUSE_INSTALLED:-0}" = 1 ]; then
	run modprobe buse
	say "module: $(modinfo -F filename buse)"
else
	run insmod kernel/buse.ko
fi
work=$(mktemp -d /tmp/buse-demo.XXXXXX)
cleanup() {
	local rc=$? d
	# Best effort, and never the job's status: a successful run has
	# unmounted and deleted everything already.
	set +e
	mountpoint -q "$work/mnt" && umount "$work/mnt"
	for d in /sys/block/buse*; do
		if [ -e "$d" ]; then "$BUSE" del "${d##*/}"; fi
	done
	rm -rf "$work"
	exit $rc
}
trap cleanup EXIT
mkdir -p "$work/mnt" "$work/src"

say "files to copy: 32 MiB of random data and a source tree"
head -c $((32 << 20)) /dev/urandom >"$work/src/random.bin"
cp -r /usr/include/linux "$work/src/"
(cd "$work/src" && find . -type f -print0 | sort -z | xargs -0 sha256sum) >"$work/sums"
echo "$(wc -l <"$work/sums") files"

demo() { # DEV LABEL
	local dev=$1
	run "$BUSE" info "$dev"
	run mkfs.ext4 -q -L "$2" "$dev"
	run mount "$dev" "$work/mnt"
	run cp -a "$work/src/." "$work/mnt/"
	run umount "$work/mnt"
	echo 3 >/proc/sys/vm/drop_caches
	run mount -o ro "$dev" "$work/mnt"
	printf '$ sha256sum -c (%s files)\n' "$(wc -l <"$work/sums")"
	(cd "$work/mnt" && sha256sum --quiet -c "$work/sums") && echo "all checksums match"
	run umount "$work/mnt"
	run fsck.ext4 -fn "$dev"
}

say "a RAM-backed device (sparse, 256 MiB, one queue per CPU)"
ram=$(run "$BUSE" add ram --size 256M)
echo "created $ram"
demo "$ram" ramdisk

say "a file-backed device (io_uring on $work/disk.img, 256 MiB)"
file=$(run "$BUSE" add file --path "$work/disk.img" --size 256M)
echo "created $file"
demo "$file" filedisk

say "all devices"
run "$BUSE" list

say "remove the devices"
run "$BUSE" del "$ram"
run "$BUSE" del "$file"
run "$BUSE" list
say "done: both devices held an ext4 file system with intact files"
