#!/bin/bash
# timeout: 2400
# Garbage collection: endless overwrites of a tiny volume keep the bucket
# bounded (bytes stored at most twice the live data plus a few objects, as
# docs/bs3.md promises) and the data intact.
. "$(dirname "$0")/../bs3-lib.sh"

b=$(new_bucket t96)
url=s3://$b/vol
"$BUSE" bs3 create "$url" --size 8M --object-size 1M || die "bs3 create"
dev=$(bs3_add "$url") || die "buse add bs3"
n=$(dev_id "$dev")
job=(--bs=64k --rw=randwrite --iodepth=8 --size=8m)
# Ten times the volume, overwritten.
for pass in $(seq 10); do
	fio --name=over --filename="$dev" --ioengine=io_uring --direct=1 \
		"${job[@]}" --randseed=$pass --fsync=32 --output="$TEST_TMP/over.out" ||
		{ cat "$TEST_TMP/over.out"; die "overwrite pass $pass"; }
done
fio_verify "$dev" "${job[@]}"
sync

# GC runs in the background: give it time to catch up, then judge.
ok=0
for _ in $(seq 120); do
	"$BUSE" info "$n" --json >"$TEST_TMP/info.json"
	read -r stored live objects < <(bs3_json "$TEST_TMP/info.json" \
		bs3.bytes_stored bs3.live_bytes bs3.objects | paste -sd' ')
	if [ "$stored" -le $((2 * live + 4 * (1 << 20))) ]; then
		ok=1
		break
	fi
	sleep 1
done
log "after 88 MiB written to an 8 MiB volume: $objects objects, $stored bytes stored, $live live"
[ "$ok" = 1 ] || die "bucket not bounded: $stored bytes stored for $live live"
[ "$live" -le $((8 << 20)) ] || die "live bytes $live > the volume"
buse_del "$n"
"$BUSE" bs3 check "$url" || die "bs3 check not clean after GC"
keys=$(bucket_keys "$b")
log "bucket keys after detach: $keys"
[ "$keys" -le 64 ] || die "$keys keys in the bucket of an 8 MiB volume"
dev=$(bs3_add "$url") || die "attach again"
fio_verify "$dev" "${job[@]}" --verify_only=1
buse_del "$(dev_id "$dev")"
log "GC under overwrites: bounded and intact"
