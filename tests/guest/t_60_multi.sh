#!/bin/bash
# Four devices at once, each under verified fio at the same time.
. "$(dirname "$0")/lib.sh"
load_module

rm -f /tmp/multi.img
devs=()
devs+=("$(buse_add ram --size 64M --queues 2)") || die "add 1"
devs+=("$(buse_add ram --size 64M --queues 1 --block-size 4096)") || die "add 2"
devs+=("$(buse_add file --path /tmp/multi.img --size 64M --queues 2)") || die "add 3"
devs+=("$(buse_add ram --size 64M --queues 2 --block-size 1024 --depth 16)") || die "add 4"
[ "$(ls /sys/block | grep -c '^buse')" = 4 ] || die "not four devices"
[ "$("$BUSE" list --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" = 4 ] ||
	die "buse list does not show four devices"
pids=()
for d in "${devs[@]}"; do
	fio --name=multi --filename="$d" --ioengine=io_uring --direct=1 \
		--rw=randwrite --bs=4k --iodepth=16 --size=24m --verify=crc32c \
		--verify_fatal=1 --output="/tmp/$(basename "$d").out" &
	pids+=($!)
done
fail=0
for i in "${!pids[@]}"; do
	wait "${pids[$i]}" || { fail=1; cat "/tmp/$(basename "${devs[$i]}").out"; }
done
[ $fail = 0 ] || die "fio failed on at least one device"
for d in "${devs[@]}"; do buse_del "$(dev_id "$d")"; done
[ -z "$(ls /sys/block | grep '^buse')" ] || die "devices left behind"
rm -f /tmp/multi.img
log "four devices ok"
