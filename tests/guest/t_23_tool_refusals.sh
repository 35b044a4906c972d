#!/bin/bash
# The tool explains itself (issue 15): `buse del` refuses a mounted device
# unless --force; the file driver never changes a file's size unasked and
# says why it refuses; `buse info`/`list` show what a device serves, and a
# dead device no longer claims its old daemon's pid.
. "$(dirname "$0")/lib.sh"
load_module

# expect STATUS PATTERN CMD...: CMD exits STATUS and says PATTERN.
expect() {
	local want=$1 pat=$2 rc=0
	shift 2
	"$@" >"$TEST_TMP/out" 2>"$TEST_TMP/err" </dev/null || rc=$?
	[ "$rc" = "$want" ] || die "'$*' exited $rc, want $want: $(cat "$TEST_TMP/err")"
	grep -Eq -- "$pat" "$TEST_TMP/err" || die "'$*' said '$(cat "$TEST_TMP/err")', want /$pat/"
	log "ok: $* -> $rc: $(head -1 "$TEST_TMP/err")"
}
no_devices() { ! ls /sys/block | grep -q '^buse' || die "a refused add left a device"; }

# del of a mounted device: refused, the file system keeps working.
dev=$(buse_add ram --size 64M) || die "add"
n=$(dev_id "$dev")
mkfs.ext4 -q -F "$dev" || die "mkfs"
mnt=$TEST_TMP/mnt
mkdir -p "$mnt"
mount "$dev" "$mnt" || die "mount"
expect 1 "buse$n is mounted on $mnt: unmount or release it first, or --force" "$BUSE" del "$n"
echo still >"$mnt/f" && sync || die "the file system broke after a refused del"
[ -e "/sys/block/buse$n" ] || die "a refused del deleted the device"
umount "$mnt"
buse_del "$n"

# --force deletes it anyway (the file system then sees EIO, as asked).
dev=$(buse_add ram --size 64M) || die "add 2"
n=$(dev_id "$dev")
mkfs.ext4 -q -F "$dev" && mount "$dev" "$mnt" || die "mount 2"
"$BUSE" del "$n" --force || die "del --force of a mounted device failed"
[ ! -e "/sys/block/buse$n" ] || die "del --force left the device"
# A real unmount (not lazy): it must release the dead disk and the module.
umount "$mnt" || die "umount after del --force"
for _ in $(seq 50); do [ "$(cat /sys/module/buse/refcnt)" = 0 ] && break; sleep 0.1; done
[ "$(cat /sys/module/buse/refcnt)" = 0 ] ||
	die "the module is still in use after unmounting the deleted disk"
log "del: refused while mounted, done with --force"

# A missing device is "no such device" to every command.
for c in "info 99" "del 99" "recover 99 ram"; do
	expect 1 "no such device: buse99" "$BUSE" $c
done

# file: a short file is not grown without --grow.
img=/var/tmp/t23.img
rm -f "$img"
truncate -s 1M "$img"
expect 2 "holds only 1M \(1048576 bytes\), less than --size 64M: add --grow" \
	"$BUSE" add file --path "$img" --size 64M
[ "$(stat -c %s "$img")" = 1048576 ] || die "the refused add changed the file's size"
no_devices
dev=$(buse_add file --path "$img" --size 64M --grow) || die "add --grow"
[ "$(stat -c %s "$img")" = $((64 << 20)) ] || die "--grow did not extend the file"
n=$(dev_id "$dev")
# what it serves, in info, info --json and list
"$BUSE" info "$n" | grep -q "^backing: *$img$" || die "info lacks the backing file: $("$BUSE" info "$n")"
"$BUSE" info "$n" --json | python3 -c '
import json, sys
i = json.load(sys.stdin)
assert i["backing"] == sys.argv[1], i["backing"]
assert i["read_only"] is False
assert i["params"]["recovery_timeout_ms"] == 0 and i["params"]["log_bytes"] == 0, i["params"]
' "$img" || die "info --json: backing, read_only or parameters wrong"
"$BUSE" list | grep "buse$n " | grep -q " $img$" || die "list lacks the backing file: $("$BUSE" list)"
buse_del "$n"

# a size that is not a multiple of the block size: refused, said why.
head -c 1000 /dev/zero >"$img"
expect 2 "holds 1000 bytes, not a multiple of the 512-byte block size" "$BUSE" add file --path "$img"
head -c 100 /dev/zero >"$img"
expect 2 "holds 100 bytes, less than the 512-byte block size" "$BUSE" add file --path "$img"
expect 2 "does not exist: give --size" "$BUSE" add file --path /var/tmp/t23-none.img
no_devices
rm -f "$img"
# O_DIRECT on tmpfs (the guest's /tmp)
truncate -s 16M "$TEST_TMP/direct.img"
if [ "$(stat -f -c %T "$TEST_TMP")" = tmpfs ]; then
	expect 2 "does not support O_DIRECT: drop --direct" "$BUSE" add file --path "$TEST_TMP/direct.img" --direct
	no_devices
fi
log "file: no silent growth or truncation; refusals explained"

# The recovery limit and log size the kernel accepted are shown.
dev=$(buse_add ram --size 16M --recoverable --recovery-timeout 7 --write-back --log-size 8M) || die "add 3"
n=$(dev_id "$dev")
"$BUSE" info "$n" --json | python3 -c '
import json, sys
p = json.load(sys.stdin)["params"]
assert p["recovery_timeout_ms"] == 7000 and p["log_bytes"] == 8 << 20, p
' || die "info --json lacks the recovery limit or log size"
"$BUSE" info "$n" | grep -q "recovery limit: *7000 ms" || die "info lacks the recovery limit"
"$BUSE" info "$n" | grep -q "write log: *8M per queue" || die "info lacks the log size"
pid=$(daemon_pid "$n")
kill -9 "$pid"
for _ in $(seq 50); do alive "$pid" || break; sleep 0.1; done
sleep 0.3
"$BUSE" info "$n" | grep -q "daemon pid: *none (was $pid)" || die "an orphaned device shows its dead daemon: $("$BUSE" info "$n")"
"$BUSE" info "$n" --json | python3 -c '
import json, sys
i = json.load(sys.stdin)
assert i["daemon_pid"] == 0 and i["last_daemon_pid"] == int(sys.argv[1]), i
' "$pid" || die "info --json: the dead daemon's pid as daemon_pid"
"$BUSE" del "$n" 2>/dev/null || [ ! -e "/sys/block/buse$n" ] || die "del of the orphaned device"
log "info: accepted parameters, backing, no stale pid"
