#!/bin/bash
# `buse del` while fio runs, and when the daemon is already dead: nothing
# hangs, fio sees errors, the daemon exits, the device disappears.
. "$(dirname "$0")/lib.sh"
load_module

dev=$(buse_add ram --size 128M --queues 2) || die "add"
n=$(dev_id "$dev")
pid=$(daemon_pid "$n")
[ -n "$pid" ] && alive "$pid" || die "no daemon pid"
fio --name=busy --filename="$dev" --ioengine=io_uring --direct=1 --rw=randrw \
	--bs=4k --iodepth=32 --numjobs=2 --time_based --runtime=120 \
	--output=/tmp/fio.out &
fio_pid=$!
sleep 3
kill -0 $fio_pid || die "fio ended early"
timeout 60 "$BUSE" del "$n" || die "buse del during I/O failed or hung"
# fio must notice within seconds, not run its two minutes.
for _ in $(seq 60); do kill -0 $fio_pid 2>/dev/null || break; sleep 1; done
if kill -0 $fio_pid 2>/dev/null; then kill -9 $fio_pid; die "fio still running after del"; fi
wait $fio_pid && die "fio succeeded on a deleted device"
alive "$pid" && die "daemon $pid still alive after del"
[ -e "/sys/block/buse$n" ] && die "device still present"
log "delete during I/O ok"

# kill -9 of the daemon during heavy fio: in-flight and later requests fail
# within seconds, nothing hangs.
dev=$(buse_add ram --size 128M --queues 2) || die "add 3"
n=$(dev_id "$dev")
fio --name=busy --filename="$dev" --ioengine=io_uring --direct=1 --rw=randrw \
	--bs=4k --iodepth=32 --numjobs=2 --time_based --runtime=120 \
	--output=/tmp/fio.out &
fio_pid=$!
sleep 3
kill -9 "$(daemon_pid "$n")"
start=$(date +%s)
for _ in $(seq 100); do kill -0 $fio_pid 2>/dev/null || break; sleep 0.1; done
if kill -0 $fio_pid 2>/dev/null; then kill -9 $fio_pid; die "fio still running 10 s after the daemon died"; fi
wait $fio_pid && die "fio succeeded with a dead daemon"
grep -q "Input/output error" /tmp/fio.out || die "fio did not see EIO"
log "kill -9 under fio: fio saw EIO after $(($(date +%s) - start))s"
timeout 30 "$BUSE" del "$n" || die "del after kill -9 failed"

# Dead daemon: requests fail at once, del still works.
dev=$(buse_add ram --size 64M) || die "add 2"
n=$(dev_id "$dev")
pid=$(daemon_pid "$n")
kill -9 "$pid"
for _ in $(seq 50); do alive "$pid" || break; sleep 0.1; done
if timeout 20 dd if="$dev" of=/dev/null bs=4k count=1 iflag=direct 2>/tmp/dd.err; then
	die "read from a device with a dead daemon succeeded"
fi
grep -q "Input/output error" /tmp/dd.err || die "dead daemon: not EIO: $(cat /tmp/dd.err)"
"$BUSE" info "$n" | grep -qi dead || die "buse info does not say dead"
timeout 30 "$BUSE" del "$n" || die "del with a dead daemon failed"
[ -e "/sys/block/buse$n" ] && die "device still present"
log "delete with a dead daemon ok"
