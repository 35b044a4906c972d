#!/bin/bash
# timeout: 1200
# Fencing: a second writer attaching the same volume takes it over; the
# first one's next flush fails with EIO, nothing it writes afterwards is
# ever seen, and the volume holds what the second one wrote.
. "$(dirname "$0")/bs3-lib.sh"

b=$(new_bucket t97)
url=s3://$b/vol
"$BUSE" bs3 create "$url" --size 32M || die "bs3 create"
dev1=$(bs3_add "$url" --no-recoverable) || die "first writer"
n1=$(dev_id "$dev1")
for x in a b c; do head -c 1M /dev/urandom >"$TEST_TMP/$x"; done
dd if="$TEST_TMP/a" of="$dev1" bs=1M oflag=direct conv=fsync status=none || die "first writer: write"

dev2=$(bs3_add "$url" --no-recoverable) || die "second writer"
n2=$(dev_id "$dev2")
[ "$(dd if="$dev2" bs=1M count=1 iflag=direct status=none | sha256sum)" = "$(sha256sum <"$TEST_TMP/a")" ] ||
	die "the second writer does not see the first one's flushed data"

# The old writer: its write may be accepted, its flush must not be.
if dd if="$TEST_TMP/b" of="$dev1" bs=1M oflag=direct conv=fsync status=none 2>"$TEST_TMP/dd.err"; then
	die "the fenced writer's fsync succeeded"
fi
grep -q "Input/output error" "$TEST_TMP/dd.err" || die "fenced fsync: not EIO: $(cat "$TEST_TMP/dd.err")"
log "fenced writer: $(head -1 "$TEST_TMP/dd.err")"

dd if="$TEST_TMP/c" of="$dev2" bs=1M oflag=direct conv=fsync status=none || die "second writer: write"
buse_del "$n1"
buse_del "$n2"

dev=$(bs3_add "$url") || die "attach again"
got=$(dd if="$dev" bs=1M count=1 iflag=direct status=none | sha256sum)
[ "$got" = "$(sha256sum <"$TEST_TMP/c")" ] || die "the volume does not hold the second writer's data"
buse_del "$(dev_id "$dev")"
"$BUSE" bs3 check "$url" || die "bs3 check not clean"
log "second writer fenced the first: EIO at its flush, the newer data wins"
