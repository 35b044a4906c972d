#!/bin/bash
# Tear-down under load: `buse del` and rmmod racing with I/O from many
# threads never hang and leave nothing behind; 100 create/delete cycles with
# I/O (write-through, write-back, recoverable, several shapes) bring slab
# and vmalloc usage back to where they started.
# timeout: 900
. "$(dirname "$0")/lib.sh"
require_cmd fio
load_module

CYCLES=${BUSE_TEARDOWN_CYCLES:-100}
SLAB_TOL_KB=${BUSE_SLAB_TOL_KB:-3072}	# unreclaimable slab growth allowed
VMALLOC_TOL_KB=${BUSE_VMALLOC_TOL_KB:-1024}

# mem: "SUnreclaim VmallocUsed" in kB, after dropping caches; the smallest
# of three samples a second apart (RCU and deferred frees settle).
mem() {
	local i s v best_s='' best_v=''
	for i in 1 2 3; do
		sync
		echo 3 >/proc/sys/vm/drop_caches
		sleep 1
		read -r s v < <(awk '/^SUnreclaim:/ { s = $2 } /^VmallocUsed:/ { v = $2 }
			END { print s, v }' /proc/meminfo)
		[ -n "$best_s" ] && [ "$best_s" -le "$s" ] || best_s=$s
		[ -n "$best_v" ] && [ "$best_v" -le "$v" ] || best_v=$v
	done
	echo "$best_s $best_v"
}

# check_mem WHAT BASE_S BASE_V: fail if usage grew beyond the tolerance.
check_mem() {
	local what=$1 s0=$2 v0=$3 s v
	read -r s v < <(mem)
	log "$what: SUnreclaim $s0 -> $s kB ($((s - s0))), VmallocUsed $v0 -> $v kB ($((v - v0)))"
	[ $((s - s0)) -le "$SLAB_TOL_KB" ] ||
		die "$what: unreclaimable slab grew by $((s - s0)) kB (> $SLAB_TOL_KB)"
	[ $((v - v0)) -le "$VMALLOC_TOL_KB" ] ||
		die "$what: vmalloc usage grew by $((v - v0)) kB (> $VMALLOC_TOL_KB)"
}

no_devices() {
	local left
	left=$(ls -d /sys/block/buse* 2>/dev/null || true)
	[ -z "$left" ] || die "$1: devices left: $left"
}

# cycle I: create a device of shape I % 6, do some I/O, delete it.
cycle() {
	local i=$1 dev n opts
	case $((i % 6)) in
	0) opts=(--queues 1) ;;
	1) opts=(--queues 2 --depth 32) ;;
	2) opts=(--write-back --log-size 1M) ;;
	3) opts=(--recoverable --recovery-timeout 5) ;;
	4) opts=(--block-size 4096 --max-io 64K --depth 4) ;;
	5) opts=(--write-back --recoverable --queues 2) ;;
	esac
	dev=$(buse_add ram --size 16M "${opts[@]}") || die "cycle $i: add ${opts[*]}"
	n=$(dev_id "$dev")
	dd if=/dev/urandom of="$dev" bs=64k count=16 oflag=direct conv=nocreat status=none ||
		die "cycle $i: write to $dev (${opts[*]})"
	dd if="$dev" of=/dev/null bs=64k count=16 iflag=direct status=none ||
		die "cycle $i: read from $dev (${opts[*]})"
	# Some page-cache I/O too: del must write it back or drop it.
	dd if=/dev/zero of="$dev" bs=4k count=8 seek=$((i % 64)) conv=nocreat status=none ||
		die "cycle $i: buffered write"
	if ((i % 10 == 0)); then
		fio --name=c --filename="$dev" --ioengine=io_uring --direct=1 \
			--rw=randrw --bs=4k --iodepth=8 --size=4M --verify=crc32c \
			--do_verify=1 --verify_fatal=1 --output="$TEST_TMP/c.out" >/dev/null ||
			{ cat "$TEST_TMP/c.out" >&2; die "cycle $i: fio"; }
	fi
	timeout 60 "$BUSE" del "$n" || die "cycle $i: buse del $n failed or hung"
	wait_gone "$dev"
}

# --- 1. create/delete cycles: no leak --------------------------------------
for i in 0 1 2 3 4 5; do cycle "$i"; done	# warm up the caches
read -r s0 v0 < <(mem)
t0=$SECONDS
for ((i = 0; i < CYCLES; i++)); do cycle "$i"; done
log "$CYCLES cycles in $((SECONDS - t0)) s"
no_devices "cycles"
check_mem "after $CYCLES cycles" "$s0" "$v0"

# --- 2. del racing with I/O from many threads ------------------------------
# race_del ROUND OPTIONS...: fio (6 jobs) plus dd readers and a buffered
# writer hammer the device; `buse del` must return within 60 s, every I/O
# process must end (with errors) within 30 s, the daemon must exit.
race_del() {
	local round=$1 dev n pid pids=() p i
	shift
	dev=$(buse_add ram --size 128M "$@") || die "race $round: add $*"
	n=$(dev_id "$dev")
	pid=$(daemon_pid "$n")
	fio --name=race --filename="$dev" --ioengine=io_uring --direct=1 \
		--rw=randrw --bsrange=4k-128k --iodepth=16 --numjobs=6 \
		--time_based --runtime=300 --output="$TEST_TMP/race.$round" \
		>/dev/null 2>&1 &
	pids+=($!)
	for i in 1 2 3; do
		while dd if="$dev" of=/dev/null bs=1M count=4 skip=$((i * 8)) \
			iflag=direct status=none 2>/dev/null; do :; done &
		pids+=($!)
	done
	while dd if=/dev/zero of="$dev" bs=64k count=64 conv=fsync,nocreat \
		status=none 2>/dev/null; do :; done &
	pids+=($!)
	sleep 3
	for p in "${pids[@]}"; do
		kill -0 "$p" 2>/dev/null || die "race $round: I/O ended before del"
	done
	local t=$SECONDS
	timeout 60 "$BUSE" del "$n" || die "race $round: buse del during I/O failed or hung ($*)"
	log "race $round ($*): del took $((SECONDS - t)) s"
	local running=1
	for ((i = 0; i < 300; i++)); do
		running=0
		for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && running=1; done
		[ "$running" = 0 ] && break
		sleep 0.1
	done
	if [ "$running" = 1 ]; then
		ps -o pid,stat,wchan:30,args -p "$(IFS=,; echo "${pids[*]}")" >&2 || true
		kill -9 "${pids[@]}" 2>/dev/null
		die "race $round: I/O still running 30 s after del"
	fi
	wait "${pids[@]}" 2>/dev/null || true
	alive "$pid" && die "race $round: daemon $pid still alive after del"
	[ -e "/sys/block/buse$n" ] && die "race $round: buse$n still present"
	return 0
}
race_del 1 --queues 2
race_del 2 --write-back --log-size 4M --queues 2
race_del 3 --queues 1 --depth 8 --max-io 16K
race_del 4 --recoverable --recovery-timeout 10 --queues 2

# --- 3. rmmod racing with I/O and with del --------------------------------
dev=$(buse_add ram --size 64M --queues 2) || die "add for rmmod race"
n=$(dev_id "$dev")
fio --name=busy --filename="$dev" --ioengine=io_uring --direct=1 --rw=randrw \
	--bs=4k --iodepth=16 --numjobs=2 --time_based --runtime=300 \
	--output="$TEST_TMP/busy.out" >/dev/null 2>&1 &
fio_pid=$!
sleep 2
for i in $(seq 20); do
	rc=0
	timeout 10 rmmod buse 2>/dev/null || rc=$?
	[ "$rc" -ne 0 ] || die "rmmod succeeded under I/O"
	[ "$rc" -ne 124 ] || die "rmmod hung under I/O"
done
[ -c /dev/buse-control ] || die "control node gone after refused rmmods"
kill -0 "$fio_pid" || die "fio died from the refused rmmods"
# An unload loop waits while del tears the device down under I/O.
timeout 90 bash -c 'until rmmod buse 2>/dev/null; do sleep 0.05; done' &
rm_pid=$!
sleep 0.5
timeout 60 "$BUSE" del "$n" || die "del during the rmmod loop failed or hung"
for _ in $(seq 300); do kill -0 "$fio_pid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$fio_pid" 2>/dev/null && { kill -9 "$fio_pid"; die "fio still running after del"; }
wait "$fio_pid" 2>/dev/null || true
wait "$rm_pid" || die "rmmod never succeeded after the last device went"
grep -q '^buse ' /proc/modules && die "module still loaded"
load_module

# Unload/load loop against an add/del loop: adds may fail while the module
# is away, nothing may hang or be left half-done.
timeout 60 bash -c "end=\$((SECONDS + 15)); while [ \$SECONDS -lt \$end ]; do
	rmmod buse 2>/dev/null && { sleep 0.05; insmod '$BUSE_KO' || exit 1; }
	sleep 0.02; done" &
loop_pid=$!
end=$((SECONDS + 15))
adds=0
while [ $SECONDS -lt $end ]; do
	rc=0
	dev=$(timeout 30 "$BUSE" add ram --size 8M 2>/dev/null) || rc=$?
	[ "$rc" -ne 124 ] || die "buse add hung in the unload race"
	if [ "$rc" = 0 ]; then
		adds=$((adds + 1))
		dd if=/dev/zero of="$dev" bs=64k count=4 oflag=direct conv=nocreat status=none 2>/dev/null || true
		timeout 30 "$BUSE" del "$(dev_id "$dev")" || die "del in the unload race failed or hung"
	fi
done
wait "$loop_pid" || die "the unload/load loop failed (insmod?) or hung"
log "unload race: $adds devices created and deleted"
load_module
no_devices "unload race"

check_mem "at the end" "$s0" "$v0"
log "teardown ok"
