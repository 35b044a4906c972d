#!/bin/bash
# timeout: 180
# Recovery of a multi-queue write-back device: queue 0 holds write 1, queue 1
# applies write 2 and holds write 3; kill -9, recover.  The new daemon must
# apply both replayed writes (write 3 must not wait for write 2, which the
# old daemon applied and the new one never sees), and the queue must keep
# serving.
. "$(dirname "$0")/lib.sh"
load_module

pat() { head -c 4096 /dev/zero | tr '\0' "$1"; }
dev=$(testdrv_add --size 32M --queues 2 --write-back --timeout 5 --recoverable \
	--recovery-timeout 60 --stall-sector 512:8 --stall-sector 4096:8) || die "add"
n=$(dev_id "$dev")
pat a | taskset -c 0 dd of="$dev" bs=4k seek=64 count=1 oflag=direct status=none || die "write 1"
pat b | taskset -c 1 dd of="$dev" bs=4k seek=256 count=1 oflag=direct status=none || die "write 2"
pat c | taskset -c 1 dd of="$dev" bs=4k seek=512 count=1 oflag=direct status=none || die "write 3"
pid=$(daemon_pid "$n")
kill -9 "$pid"
for _ in $(seq 50); do alive "$pid" || break; sleep 0.1; done
"$TESTDRV" --daemon --size 32M --recover "$n" >/dev/null || die "recover"
# Write 3 must be applied (its read is held until then), and queue 1 serve.
for s in 64:a 512:c; do
	got=$(taskset -c 1 timeout 30 dd if="$dev" bs=4k skip=${s%:*} count=1 iflag=direct status=none | tr -d "${s#*:}" | wc -c) ||
		die "read of block ${s%:*} failed after recovery"
	[ "$got" = 0 ] || die "block ${s%:*} does not hold the replayed write"
done
taskset -c 1 timeout 30 dd if="$dev" of=/dev/null bs=4k skip=1000 count=1 iflag=direct status=none ||
	die "an unrelated read on queue 1 failed"
"$BUSE" info "$n" | grep -q live || die "device not live after recovery: $("$BUSE" info "$n")"
log "both replayed writes applied, queue 1 serves"
buse_del "$n"
