#!/bin/bash
# Stable names (issue 12): `buse add --name NAME` shows NAME in
# /sys/block/buseN/serial, `buse info`/`list`/`--json`, makes NAME and
# /dev/disk/by-id/buse-NAME work as DEV for the other commands, and the
# shipped udev rule links /dev/disk/by-id/buse-NAME and -partN (checked with
# `udevadm test`, then with a running udevd).  A taken name is refused and
# leaves no device; a malformed one is a command-line error.
# timeout: 300
. "$(dirname "$0")/lib.sh"
load_module
require_cmd udevadm
require_cmd sfdisk

for bad in .hidden -dash 7 buse3 "a/b" "$(printf 'x%.0s' $(seq 32))"; do
	rc=0
	"$BUSE" add null --size 16M --name "$bad" >/dev/null 2>&1 || rc=$?
	[ "$rc" -eq 2 ] || die "--name '$bad': status $rc, want 2"
done

dev=$(buse_add ram --size 64M --name data) || die "add --name data"
n=$(dev_id "$dev")
[ "$(cat /sys/block/buse$n/serial)" = data ] || die "serial attribute: $(cat /sys/block/buse$n/serial)"
"$BUSE" info data | grep -q "^name: *data" || die "info by name: $("$BUSE" info data)"
"$BUSE" list | grep "buse$n " | grep -q " data " || die "list lacks the name: $("$BUSE" list)"
"$BUSE" info "$n" --json | python3 -c 'import json,sys; assert json.load(sys.stdin)["name"] == "data"' ||
	die "json name"

# A second device of that name: refused, nothing left behind.
rc=0
err=$("$BUSE" add null --size 16M --name data 2>&1 >/dev/null) || rc=$?
[ "$rc" -eq 1 ] || die "a taken name: status $rc, want 1"
grep -q "name is taken" <<<"$err" || die "a taken name: $err"
[ "$("$BUSE" list --json | grep -o '"dev_id"' | wc -l)" -eq 1 ] || die "a refused add left a device"
other=$(buse_add null --size 16M --name data-2) || die "add another name"
rc=0
"$BUSE" info nosuch >/dev/null 2>&1 || rc=$?
[ "$rc" -eq 1 ] || die "info of an unknown name: status $rc, want 1"

# The udev rule: what udev would do, without a daemon.
mkdir -p /etc/udev/rules.d
cp "$REPO/udev/60-buse.rules" /etc/udev/rules.d/
echo ',,L' | sfdisk -q "$dev" || die "sfdisk"
blockdev --rereadpt "$dev" 2>/dev/null || partx -u "$dev" || true
[ -e "/sys/block/buse$n/buse${n}p1" ] || die "no partition buse${n}p1"
udevadm test --action=add "/sys/block/buse$n" 2>&1 | grep -q "disk/by-id/buse-data\b" ||
	die "udevadm test: no by-id link for the disk"
udevadm test --action=add "/sys/block/buse$n/buse${n}p1" 2>&1 | grep -q "disk/by-id/buse-data-part1" ||
	die "udevadm test: no by-id link for the partition"
log "udevadm test: by-id links for the disk and its partition"

# With udevd running, the links exist and work as DEV.
UDEVD=/lib/systemd/systemd-udevd
[ -x "$UDEVD" ] || die "$UDEVD missing"
"$UDEVD" --daemon || die "udevd did not start"
on_exit 'udevadm control --exit 2>/dev/null || pkill -f systemd-udevd'
udevadm trigger --action=add --sysname-match="buse*" --settle 2>/dev/null ||
	{ udevadm trigger --action=add --sysname-match="buse*"; udevadm settle -t 30; }
[ "$(readlink -f /dev/disk/by-id/buse-data)" = "$dev" ] || die "by-id link: $(ls -l /dev/disk/by-id/ 2>&1)"
[ "$(readlink -f /dev/disk/by-id/buse-data-part1)" = "${dev}p1" ] || die "by-id partition link"
"$BUSE" info /dev/disk/by-id/buse-data | grep -q "buse$n " || die "info by the by-id path"
buse_del data
udevadm settle -t 30
[ -e /dev/disk/by-id/buse-data ] && die "by-id link left after del"
"$BUSE" del data-2 || die "del by name"
log "names ok"
