#!/bin/bash
# timeout: 1200
# A normal (not recoverable) BS3 device whose daemon is killed: what was
# flushed is in S3, so attaching the volume again, from S3 alone, gives it
# back.
. "$(dirname "$0")/bs3-lib.sh"

b=$(new_bucket t94)
url=s3://$b/vol
"$BUSE" bs3 create "$url" --size 64M || die "bs3 create"
dev=$(bs3_add "$url" --no-recoverable) || die "buse add bs3"
n=$(dev_id "$dev")
"$BUSE" info "$n" | grep -q recoverable && die "recoverable despite --no-recoverable"

head -c 8M /dev/urandom >"$TEST_TMP/a"
dd if="$TEST_TMP/a" of="$dev" bs=1M oflag=direct conv=fsync status=none || die "write + fsync"
want=$(sha256sum <"$TEST_TMP/a" | cut -d' ' -f1)
# Unflushed writes after it may be lost; they must not be needed.
head -c 1M /dev/urandom | dd of="$dev" bs=1M seek=16 oflag=direct status=none
pid=$(daemon_pid "$n")
kill -9 "$pid"
for _ in $(seq 50); do alive "$pid" || break; sleep 0.1; done
buse_del "$n"

dev=$(bs3_add "$url") || die "attach again"
got=$(dd if="$dev" bs=1M count=8 iflag=direct status=none | sha256sum | cut -d' ' -f1)
[ "$got" = "$want" ] || die "flushed data lost after the daemon died"
buse_del "$(dev_id "$dev")"
"$BUSE" bs3 check "$url" || die "bs3 check not clean"
log "daemon of a normal device killed: the flushed 8 MiB came back from S3"
