#!/bin/bash
# timeout: 1500
# ext4 on BS3: mkfs, copy files, checksums, fsck; detach (everything
# stored), check the volume, attach again from S3, the same checksums; and
# `buse bs3 info` shows sane numbers.
. "$(dirname "$0")/bs3-lib.sh"
require_cmd mkfs.ext4 fsck.ext4 sha256sum

b=$(new_bucket t92)
url=s3://$b/vol
"$BUSE" bs3 create "$url" --size 128M || die "bs3 create"
dev=$(bs3_add "$url") || die "buse add bs3"
mnt=$TEST_TMP/mnt
mkdir -p "$mnt"
mkfs.ext4 -q -F "$dev"
mount "$dev" "$mnt"
on_exit "umount '$mnt' 2>/dev/null || true"
cp -a "$REPO/lib" "$REPO/tool" "$REPO/bs3" "$mnt/"
head -c 6M /dev/urandom >"$mnt/random.bin"
(cd "$mnt" && find . -type f ! -name sums -print0 | sort -z | xargs -0 sha256sum >"$TEST_TMP/sums")
[ "$(wc -l <"$TEST_TMP/sums")" -gt 20 ] || die "too few files copied"
umount "$mnt"
fsck.ext4 -fn "$dev" || die "fsck after the copy"
buse_del "$(dev_id "$dev")"

"$BUSE" bs3 check "$url" || die "bs3 check not clean after detach"
"$BUSE" bs3 info "$url" --json >"$TEST_TMP/info.json" || die "bs3 info"
read -r objects stored live epoch size < <(bs3_json "$TEST_TMP/info.json" \
	objects bytes_stored live_bytes epoch size | paste -sd' ')
log "bs3 info: $objects objects, $stored bytes stored, $live live, epoch $epoch"
[ "$size" = $((128 << 20)) ] || die "info: size $size"
[ "$objects" -gt 0 ] || die "info: no objects"
[ "$live" -gt $((6 << 20)) ] || die "info: live bytes $live < the data written"
[ "$stored" -ge "$live" ] || die "info: stored $stored < live $live"
[ "$epoch" -ge 1 ] || die "info: epoch $epoch"
"$BUSE" bs3 info "$url" | grep -q "^garbage ratio:" || die "bs3 info text"

dev=$(bs3_add "$url") || die "attach again"
fsck.ext4 -fn "$dev" || die "fsck after re-attach"
mount "$dev" "$mnt"
(cd "$mnt" && sha256sum --quiet -c "$TEST_TMP/sums") || die "checksums differ after re-attach"
umount "$mnt"
buse_del "$(dev_id "$dev")"
log "ext4 on BS3: files, checksums and fsck survive detach and attach"
