#!/bin/bash
# SIGTERM to a daemon writes back cached data, deletes the device and exits
# cleanly; list/info report a dead daemon.
. "$(dirname "$0")/lib.sh"
load_module

img=$TEST_TMP/disk.img
dev=$(buse_add file --path "$img" --size 32M) || die "add"
n=$(dev_id "$dev")
pid=$(daemon_pid "$n")
head -c $((4 << 20)) /dev/urandom >"$TEST_TMP/p"
# Buffered: the data sits in the page cache until the device goes away.
dd if="$TEST_TMP/p" of="$dev" bs=1M status=none
kill -TERM "$pid"
for _ in $(seq 100); do alive "$pid" || break; sleep 0.1; done
alive "$pid" && die "daemon ignored SIGTERM"
wait_gone "/sys/block/buse$n"
cmp <(head -c $((4 << 20)) "$img") "$TEST_TMP/p" || die "cached data lost on SIGTERM"
log "SIGTERM: device removed, data written back"

dev=$(buse_add ram --size 16M) || die "add 2"
n=$(dev_id "$dev")
kill -9 "$(daemon_pid "$n")"
sleep 0.5
"$BUSE" list | grep "buse$n" | grep -q dead || die "list does not show the dead daemon"
"$BUSE" info "$n" --json | python3 -c 'import json,sys; assert json.load(sys.stdin)["state"] == "dead"' ||
	die "info --json does not say dead"
buse_del "$n"
log "dead daemon reported"
