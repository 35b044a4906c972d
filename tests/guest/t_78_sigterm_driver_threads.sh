#!/bin/bash
# SIGTERM reaches a daemon whose driver started its own thread before
# buse_run(), with the signal unblocked there (issue 15): the test driver's
# persister thread (--persist-delay --backing).  The kernel delivers the
# process-directed signal to that thread, since libbuse's threads block it;
# libbuse must still delete the device cleanly, not let the default action
# kill the daemon with the device left dead (which would stay in sysfs).
. "$(dirname "$0")/lib.sh"
load_module

img=$TEST_TMP/backing.img
for round in 1 2 3; do
	dev=$(testdrv_add --size 16M --write-back --persist-delay 50 --backing "$img") ||
		die "round $round: add"
	n=$(dev_id "$dev")
	pid=$(daemon_pid "$n")
	[ "$(ls "/proc/$pid/task" | wc -l)" -ge 3 ] || die "the driver's own thread is missing"
	dd if=/dev/urandom of="$dev" bs=64k count=16 oflag=direct status=none || die "round $round: write"
	kill -TERM "$pid"
	for _ in $(seq 150); do alive "$pid" || break; sleep 0.1; done
	if alive "$pid"; then
		dump_threads "$pid"
		die "round $round: the daemon ignored SIGTERM"
	fi
	# Killed by the signal, the daemon would leave the device dead, present.
	wait_gone "/sys/block/buse$n"
done
log "SIGTERM with a driver thread: device deleted by libbuse, 3 rounds"
