#!/bin/bash
# PID 1 of the BUSE test guest, after the initramfs switched into the host's
# root (read-only 9p + tmpfs overlay).  Started by tests/vm/run; see there.
#
#   - mounts the usual pseudo file systems and a tmpfs on /tmp and /run
#     (a repository below one of them stays visible at its path),
#   - mounts the host's output folder (9p mount_tag "out", writable) at
#     $BUSE_OUT,
#   - runs $BUSE_OUT/guest-cmd.sh (written by the host) from the repo root,
#     with stdout/stderr on the serial console, under a time limit,
#   - writes the kernel log to $BUSE_OUT/dmesg.txt and the exit status to
#     $BUSE_OUT/guest-status,
#   - powers the guest off.
#
# This is PID 1: it must never exit (the kernel would panic), so there is no
# "set -e" and every path ends in poweroff.

set -u
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root LANG=C.UTF-8 TERM=dumb
umask 022

BUSE_OUT=/mnt/buse-out
say() { echo "vm-guest: $*"; }

power_off() {
	sync
	busybox poweroff -f
	echo o >/proc/sysrq-trigger
	sleep 60
}

fatal() {
	say "FATAL: $*"
	power_off
}

# The repository is two levels above this script (tests/vm/guest-init.sh).
self=$(readlink -f "$0")
REPO=${self%/tests/vm/guest-init.sh}

# Settings from the kernel command line (written by tests/vm/run).
timeout_s=0
for arg in $(cat /proc/cmdline); do
	case "$arg" in
	buse_timeout=*) timeout_s=${arg#buse_timeout=} ;;
	esac
done

# --- file systems ------------------------------------------------------------
mnt() { # mnt TYPE DIR [OPTIONS]: mount unless already mounted
	mkdir -p "$2"
	mountpoint -q "$2" || mount -t "$1" ${3:+-o "$3"} "$1" "$2" ||
		say "warning: cannot mount $1 on $2"
}
mountpoint -q /proc || mount -t proc proc /proc
mountpoint -q /sys || mount -t sysfs sysfs /sys
mountpoint -q /dev || mount -t devtmpfs devtmpfs /dev
mnt devpts /dev/pts gid=5,mode=620,ptmxmode=666
# scratch_mnt DIR OPTIONS: a tmpfs on DIR that still shows the repository
# if it lives below DIR (a checkout in /tmp): it is bound aside first and
# bound back onto the same path in the new tmpfs.
scratch_mnt() {
	local keep=
	case "$REPO/" in
	"$1"/*)
		keep=/.buse-repo
		mkdir -p "$keep"
		mount --bind "$REPO" "$keep" || say "warning: cannot keep $REPO"
		;;
	esac
	mnt tmpfs "$1" "$2"
	if [ -n "$keep" ]; then
		mkdir -p "$REPO"
		mount --bind "$keep" "$REPO" || say "warning: $REPO hidden by $1"
		umount "$keep"
	fi
}
scratch_mnt /dev/shm mode=1777,nosuid,nodev
scratch_mnt /tmp mode=1777,nosuid,nodev
scratch_mnt /run mode=0755,nosuid,nodev
mkdir -p /run/lock
mnt debugfs /sys/kernel/debug
mnt tracefs /sys/kernel/tracing
modprobe -q configfs 2>/dev/null
mnt configfs /sys/kernel/config
[ -e /dev/fd ] || ln -s /proc/self/fd /dev/fd

mkdir -p "$BUSE_OUT"
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 out "$BUSE_OUT" ||
	fatal "cannot mount the output share (mount_tag out)"

hostname buse-guest 2>/dev/null || busybox hostname buse-guest
ip link set lo up 2>/dev/null || busybox ip link set lo up

[ -f "$BUSE_OUT/guest-cmd.sh" ] || fatal "no $BUSE_OUT/guest-cmd.sh"
cd "$REPO" || fatal "cannot cd to $REPO"
export BUSE_GUEST=1 BUSE_OUT

say "up after $(cut -d' ' -f1 /proc/uptime)s, kernel $(uname -r), repo $REPO"

# --- the command -------------------------------------------------------------
# timeout(1) runs the command in its own process group and kills it (and
# what it started in that group) when time is up.  0 means no limit.
timeout -k 10 "$timeout_s" bash "$BUSE_OUT/guest-cmd.sh" </dev/null
rc=$?
if [ "$rc" -eq 124 ] && [ "$timeout_s" -gt 0 ]; then
	say "command timed out after ${timeout_s}s; processes still around:"
	ps -eo pid,stat,wchan:30,etime,args 2>/dev/null | grep -v ' \[' | head -40
fi
say "command exited with status $rc"

# --- results -----------------------------------------------------------------
dmesg >"$BUSE_OUT/dmesg.txt" 2>&1 || say "warning: dmesg failed"
echo "$rc" >"$BUSE_OUT/guest-status"
sync
umount "$BUSE_OUT" 2>/dev/null
power_off
