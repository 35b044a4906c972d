#!/bin/bash
# Only CAP_SYS_ADMIN controls BUSE: the control node is 0600 root, the
# kernel refuses open and ioctl without CAP_SYS_ADMIN even when an admin
# relaxed the node's mode or handed over an open fd, and a device's block
# node is not world-writable.
. "$(dirname "$0")/lib.sh"
load_module

HOSTILE=$REPO/build/tests/buse-hostile
[ -x "$HOSTILE" ] || die "$HOSTILE not built (run make)"
CTL=/dev/buse-control
nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
# buse-hostile --try-open PATH prints "open=ok ioctl=X del=Y" or "open=ERRNO".
expect() { # expect WHAT WANT GOT
	[ "$3" = "$2" ] || die "$1: got '$3', want '$2'"
	log "$1: $3"
}

mode=$(stat -c '%a %U %G' "$CTL")
expect "control node mode" "600 root root" "$mode"

# Root can; ENOENT from GET_INFO and DEL: no device, but allowed.
expect "root" "open=ok ioctl=ENOENT del=ENOENT" "$("$HOSTILE" --try-open "$CTL")"

# nobody: the mode says no.
expect "nobody, mode 0600" "open=EACCES" "$(nobody "$HOSTILE" --try-open "$CTL")"

# An admin relaxed the mode: the kernel still says no.
on_exit "chmod 0600 $CTL"
chmod 0666 "$CTL"
expect "nobody, mode 0666" "open=EPERM" "$(nobody "$HOSTILE" --try-open "$CTL")"
python3 - "$CTL" <<'PY' || die "python open check failed"
import errno, os, sys
os.setgroups([]); os.setgid(65534); os.setuid(65534)
try:
    os.close(os.open(sys.argv[1], os.O_RDWR))
    sys.exit("nobody opened the control node")
except OSError as e:
    assert e.errno == errno.EPERM, errno.errorcode[e.errno]
PY

# uid 0 without CAP_SYS_ADMIN: no.
expect "root without CAP_SYS_ADMIN" "open=EPERM" \
	"$(setpriv --inh-caps=-sys_admin --bounding-set=-sys_admin "$HOSTILE" --try-open "$CTL")"

# An fd opened by root and used after dropping to nobody: every ioctl EPERM.
expect "fd kept after dropping privileges" "open=ok ioctl=EPERM del=EPERM" \
	"$("$HOSTILE" --try-open "$CTL" --drop-privs)"
chmod 0600 "$CTL"
"$BUSE" list >/dev/null || die "buse list after the mode change"
if nobody "$BUSE" add null --size 16M >/dev/null 2>&1; then
	die "nobody created a device"
fi

# The block device: not world-writable, nobody cannot open it read-write.
dev=$(buse_add ram --size 16M) || die "add"
n=$(dev_id "$dev")
perm=$(stat -c '%a' "$dev")
log "$dev: mode $(stat -c '%a %U:%G' "$dev")"
(((8#$perm & 8#002) == 0)) || die "$dev is world-writable (mode $perm)"
expect "nobody opens $dev read-write" "open=EACCES" "$(nobody "$HOSTILE" --try-open "$dev")"
if nobody dd if=/dev/zero of="$dev" bs=4k count=1 oflag=direct conv=nocreat status=none 2>/dev/null; then
	die "nobody wrote to $dev"
fi
# Nor can nobody change its settings in sysfs.
ww=$(find "/sys/block/buse$n/" -xdev -type f -perm -o+w 2>/dev/null | head -n 5)
[ -z "$ww" ] || die "world-writable sysfs files: $ww"
buse_del "$n"
log "permissions ok"
