#!/bin/bash
# timeout: 900
# Bad input gets one clear line and a non-zero exit, and changes nothing in
# the bucket: a missing bucket, wrong credentials, no volume, an existing
# volume, a corrupt superblock, bad usage, delete without --yes.
. "$(dirname "$0")/bs3-lib.sh"

# expect_fail STATUS PATTERN CMD...: CMD exits STATUS and says PATTERN.
expect_fail() {
	local want=$1 pat=$2 rc=0
	shift 2
	"$@" >"$TEST_TMP/out" 2>"$TEST_TMP/err" </dev/null || rc=$?
	[ "$rc" = "$want" ] || die "'$*' exited $rc, want $want: $(cat "$TEST_TMP/err")"
	grep -Eqi "$pat" "$TEST_TMP/err" || die "'$*' said '$(cat "$TEST_TMP/err")', want /$pat/"
	[ "$(wc -l <"$TEST_TMP/err")" -le 2 ] || die "'$*': more than one clear line: $(cat "$TEST_TMP/err")"
	log "ok: $* -> $(head -1 "$TEST_TMP/err")"
}
no_devices() { ! ls /sys/block | grep -q '^buse' || die "a device was left behind"; }

b=$(new_bucket t98)
url=s3://$b/vol
"$BUSE" bs3 create "$url" --size 16M || die "bs3 create"
before=$(bucket_listing "$b")

expect_fail 1 "bucket" "$BUSE" bs3 create "s3://nobucket-$b/vol" --size 16M
expect_fail 1 "bucket" "$BUSE" bs3 info "s3://nobucket-$b/vol"
expect_fail 1 "bucket" "$BUSE" add bs3 "s3://nobucket-$b/vol"
no_devices
AWS_SECRET_ACCESS_KEY=wrong expect_fail 1 "signature|denied|403|credential" "$BUSE" bs3 info "$url"
AWS_SECRET_ACCESS_KEY=wrong expect_fail 1 "signature|denied|403|credential" "$BUSE" add bs3 "$url"
no_devices
expect_fail 1 "no BS3 volume|superblock" "$BUSE" bs3 info "s3://$b/none"
expect_fail 1 "no BS3 volume|superblock" "$BUSE" add bs3 "s3://$b/none"
no_devices
expect_fail 1 "exists" "$BUSE" bs3 create "$url" --size 16M
expect_fail 2 "size" "$BUSE" bs3 create "s3://$b/other"
expect_fail 2 "s3://" "$BUSE" bs3 info "$b/vol"
# a wrong command line: exit 2 (issue 15)
expect_fail 2 "size" "$BUSE" add bs3 "$url" --size 1G
expect_fail 2 "yes" "$BUSE" bs3 delete "$url"
[ "$(bucket_listing "$b")" = "$before" ] || die "the bucket changed"

# A corrupt superblock: one byte flipped.
s3 GET "/$b/vol/super" -o "$TEST_TMP/super" || die "get super"
python3 -c 'import sys; d = bytearray(open(sys.argv[1], "rb").read()); d[len(d) // 2] ^= 0x5a; open(sys.argv[1], "wb").write(d)' "$TEST_TMP/super"
S3_SHA=$(sha256sum <"$TEST_TMP/super" | cut -d' ' -f1) \
	s3 PUT "/$b/vol/super" --data-binary "@$TEST_TMP/super" >/dev/null || die "put super"
before=$(bucket_listing "$b")
expect_fail 1 "superblock|corrupt|checksum" "$BUSE" add bs3 "$url"
no_devices
expect_fail 1 "superblock|corrupt|checksum" "$BUSE" bs3 info "$url"
expect_fail 1 "superblock|corrupt|checksum|problem" "$BUSE" bs3 check "$url"
[ "$(bucket_listing "$b")" = "$before" ] || die "the bucket changed after a corrupt superblock"

"$BUSE" bs3 delete "$url" --yes || die "delete --yes"
[ "$(bucket_keys "$b")" = 0 ] || die "keys left after delete: $(bucket_listing "$b")"
log "every bad input: one clear line, non-zero exit, bucket unchanged"
