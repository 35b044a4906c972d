#!/bin/bash
# timeout: 1500
# BS3 end to end over the guest's S3 path: fio verify=crc32c on a BS3
# device with two queues, 4 KiB random writes and 1 MiB sequential writes
# (each read back and checked), then detach, attach again from S3 alone and
# verify the 1 MiB data once more.
. "$(dirname "$0")/bs3-lib.sh"

b=$(new_bucket t91)
url=s3://$b/vol
"$BUSE" bs3 create "$url" --size 256M || die "bs3 create"
dev=$(bs3_add "$url" --queues 2) || die "buse add bs3"
n=$(dev_id "$dev")
[ "$(blockdev --getsize64 "$dev")" = $((256 << 20)) ] || die "size is not the volume's"
[ "$(blockdev --getss "$dev")" = 4096 ] || die "block size is not the volume's"
"$BUSE" info "$n" | grep -q "write-back" || die "not write-back"
"$BUSE" info "$n" | grep -q "recoverable" || die "not recoverable"

two_jobs=(--numjobs=2 --offset_increment=128m --cpus_allowed=0-1 --cpus_allowed_policy=split)
fio_verify "$dev" --bs=4k --rw=randwrite --iodepth=16 --size=8m "${two_jobs[@]}"
seq_job=(--bs=1m --rw=write --iodepth=4 --offset=64m --size=8m "${two_jobs[@]}")
fio_verify "$dev" "${seq_job[@]}"

# `buse info` shows the daemon's BS3 stats (written every second).
for _ in $(seq 30); do
	"$BUSE" info "$n" --json >"$TEST_TMP/info.json" 2>/dev/null &&
		grep -q '"bs3"' "$TEST_TMP/info.json" && break
	sleep 1
done
up=$(bs3_json "$TEST_TMP/info.json" bs3.uploads) || die "no bs3 stats in buse info --json"
[ "$up" -gt 0 ] || die "no object stored after 32 MiB of writes"
"$BUSE" info "$n" | grep -q "dirty bytes:" || die "no bs3 stats in buse info"

buse_del "$n"
dev=$(bs3_add "$url" --queues 2) || die "attach again"
fio_verify "$dev" "${seq_job[@]}" --verify_only=1
buse_del "$(dev_id "$dev")"
"$BUSE" bs3 check "$url" || die "bs3 check not clean"
log "fio verify on BS3 (4k random, 1M sequential, 2 queues) and after re-attach: ok"
