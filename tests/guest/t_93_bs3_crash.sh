#!/bin/bash
# timeout: 2400
# BS3 loses nothing when its daemon is killed: ext4 on a recoverable BS3
# device, a writer creating files of random data (and a periodic sync), the
# daemon killed with SIGKILL at random moments and replaced by `buse
# recover`, 20 times.  Then every file written is there with its checksum
# (read back from the device, page cache dropped) and fsck is clean.
. "$(dirname "$0")/bs3-lib.sh"
require_cmd mkfs.ext4 fsck.ext4 sha256sum
ROUNDS=${BS3_CRASH_ROUNDS:-20}

b=$(new_bucket t93)
url=s3://$b/vol
"$BUSE" bs3 create "$url" --size 128M || die "bs3 create"
dev=$(bs3_add "$url" --recovery-timeout 300) || die "buse add bs3"
n=$(dev_id "$dev")
mnt=$TEST_TMP/mnt
mkdir -p "$mnt"
mkfs.ext4 -q -F "$dev"
mount "$dev" "$mnt"
on_exit "umount '$mnt' 2>/dev/null || true"

# The writer: 64 KiB files of random data, their sums in a list kept
# outside the device; a sync every 8 files; overwrites old files too.
stop=$TEST_TMP/stop
writer() {
	local i=0 f
	while [ ! -e "$stop" ]; do
		f=$mnt/f$((i % 200))
		head -c 64K /dev/urandom >"$TEST_TMP/blk"
		cp "$TEST_TMP/blk" "$f" || { echo "writer: cp failed" >&2; return 1; }
		echo "$(sha256sum <"$TEST_TMP/blk" | cut -d' ' -f1) f$((i % 200))" >>"$TEST_TMP/list"
		i=$((i + 1))
		[ $((i % 8)) -ne 0 ] || sync || { echo "writer: sync failed" >&2; return 1; }
		sleep 0.05
	done
}
writer &
wpid=$!

for r in $(seq "$ROUNDS"); do
	sleep "$(awk -v s="$RANDOM" 'BEGIN { srand(s); printf "%.2f", 0.5 + rand() * 2.5 }')"
	pid=$(daemon_pid "$n")
	kill -9 "$pid"
	for _ in $(seq 300); do alive "$pid" || break; sleep 0.1; done
	if alive "$pid"; then
		grep State "/proc/$pid/status"
		for t in /proc/"$pid"/task/*; do
			echo "thread ${t##*/}: $(cat "$t/comm") $(grep State "$t/status")"
			cat "$t/stack" 2>/dev/null
		done
		die "daemon $pid survived kill -9 for 30 s"
	fi
	"$BUSE" recover "$n" bs3 "$url" --log "$TEST_TMP/bs3-daemon.log" >/dev/null ||
		{ tail -20 "$TEST_TMP/bs3-daemon.log"; die "round $r: buse recover failed"; }
	log "round $r: daemon $pid killed, $(daemon_pid "$n") serves"
done
touch "$stop"
wait "$wpid" || die "the writer saw an error"
sync

# The newest content of each file, read from the device itself.
echo 3 >/proc/sys/vm/drop_caches
tac "$TEST_TMP/list" | awk '!seen[$2]++' >"$TEST_TMP/last"
bad=0
while read -r sum name; do
	[ "$(sha256sum <"$mnt/$name" | cut -d' ' -f1)" = "$sum" ] || { log "$name differs"; bad=$((bad + 1)); }
done <"$TEST_TMP/last"
[ "$bad" -eq 0 ] || die "$bad files differ after $ROUNDS kills"
umount "$mnt"
fsck.ext4 -fn "$dev" || die "fsck after $ROUNDS kills"
buse_del "$n"
"$BUSE" bs3 check "$url" || die "bs3 check not clean"
log "$ROUNDS kill -9 + buse recover under a writer: $(wc -l <"$TEST_TMP/last") files intact, fsck clean"
