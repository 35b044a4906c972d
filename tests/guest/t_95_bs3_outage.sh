#!/bin/bash
# timeout: 1200
# The S3 server stops answering for 10 s in the middle of verified writes
# (its proxy SIGSTOPped on the host by tests/guest/bs3-host-helper.sh):
# writers wait once the dirty limit is reached, nothing fails, and all the
# data is there, also after a detach and attach from S3.
. "$(dirname "$0")/bs3-lib.sh"

b=$(new_bucket t95)
url=s3://$b/vol
"$BUSE" bs3 create "$url" --size 64M || die "bs3 create"
dev=$(bs3_add "$url" --dirty-limit 4M) || die "buse add bs3"
on_exit "s3_outage cont 2>/dev/null"

job=(--bs=64k --rw=write --iodepth=8 --size=16m --rate=1m)
fio_verify "$dev" "${job[@]}" &
fpid=$!
sleep 3
s3_outage stop
log "S3 proxy stopped"
sleep 10
n=$(dev_id "$dev")
timeout 20 "$BUSE" info "$n" --json >"$TEST_TMP/info.json" 2>&1
dirty=$(bs3_json "$TEST_TMP/info.json" bs3.dirty_bytes) || dirty=
s3_outage cont
[ -n "$dirty" ] || { cat "$TEST_TMP/info.json"; die "buse info shows no bs3 stats during the outage"; }
log "S3 proxy running again (dirty bytes during the outage: $dirty)"
# the outage must have reached the writes: they waited with data unstored
[ "$dirty" -ge $((1 << 20)) ] || die "only $dirty bytes unstored during the outage"
wait "$fpid" || die "fio failed across the outage"
sync
buse_del "$n"
dev=$(bs3_add "$url") || die "attach again"
fio_verify "$dev" "${job[@]}" --verify_only=1
buse_del "$(dev_id "$dev")"
log "10 s S3 outage mid-write: no error, data intact"
