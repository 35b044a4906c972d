#!/bin/bash
# timeout: 2400
# Garbage collection: endless overwrites of a tiny volume keep the bucket
# bounded all along (the bound docs/bs3.md gives), and once idle GC brings
# it down to twice the live data plus a few objects; the data stays intact.
. "$(dirname "$0")/bs3-lib.sh"

b=$(new_bucket t96)
url=s3://$b/vol
"$BUSE" bs3 create "$url" --size 8M --object-size 1M || die "bs3 create"
# A small dirty limit keeps what is applied but not yet stored, which
# the bound also counts, small.
dev=$(bs3_add "$url" --dirty-limit 4M) || die "buse add bs3"
n=$(dev_id "$dev")
job=(--bs=64k --rw=randwrite --iodepth=8 --size=8m)
# The bound docs/bs3.md gives: 2 x live + 8 objects + 2 checkpoints (tiny
# here) + the dirty limit; live is at most the volume, 8 MiB.
bound=$((2 * (8 << 20) + 8 * (1 << 20) + (1 << 20) + (4 << 20)))
stored_now() {
	"$BUSE" info "$n" --json >"$TEST_TMP/info.json" &&
		bs3_json "$TEST_TMP/info.json" bs3.bytes_stored
}
# Eleven times the volume, overwritten; the bucket sampled all along.
max=0
for pass in $(seq 11); do
	fio --name=over --filename="$dev" --ioengine=io_uring --direct=1 \
		"${job[@]}" --randseed=$pass --fsync=32 --output="$TEST_TMP/over.out" &
	fpid=$!
	while kill -0 "$fpid" 2>/dev/null; do
		s=$(stored_now) || die "no bs3 stats in buse info"
		[ "$s" -le "$max" ] || max=$s
		sleep 0.5
	done
	wait "$fpid" || { cat "$TEST_TMP/over.out"; die "overwrite pass $pass"; }
done
log "88 MiB of overwrites: at most $max bytes stored (bound $bound)"
[ "$max" -le "$bound" ] || die "bucket not bounded: $max bytes stored > $bound"
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
log "after the overwrites and GC: $objects objects, $stored bytes stored, $live live"
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
