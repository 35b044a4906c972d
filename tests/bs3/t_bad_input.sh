#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# tests/bs3/t_bad_input.sh - `buse bs3 create|info|check|delete` on bad
# input against the real S3 server on loopback (run by tests/bs3/run.sh,
# which sets AWS_ENDPOINT_URL and the credentials): a wrong secret, an
# unknown access key, a missing bucket, a wrong region (Swift's s3api
# checks it: 400 AuthorizationHeaderMalformed), an endpoint that is not
# S3 (an HTML server; a closed port), a volume of a newer format, a corrupt
# and a truncated superblock, a missing volume, a volume that exists.  Each
# must exit 1 with exactly one line on stderr that names the problem,
# nothing on stdout, and leave the bucket's listing (keys, sizes, ETags,
# times) as it was.  Raw S3 access (listings, crafting superblocks) is
# curl's --aws-sigv4.  "ok - ..." / "not ok - ..." lines; exit 1 on any
# failure.
set -uo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
BUSE=$REPO/build/buse
PY=/usr/bin/python3
fails=0

ok() { echo "ok - $1"; }
not_ok() {
	echo "not ok - $1: $2"
	fails=$((fails + 1))
}

if [ -z "${AWS_ENDPOINT_URL:-}" ] || [ ! -x "$BUSE" ]; then
	echo "not ok - setup: needs build/buse (make) and the environment of" \
		"scripts/s3-server.sh env (tests/bs3/run.sh sets it)"
	exit 1
fi

T=$(mktemp -d /tmp/bs3-bad-input.XXXXXX)
HTTP_PID=
cleanup() {
	[ -n "$HTTP_PID" ] && kill "$HTTP_PID" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT

# The right environment, kept: the commands under test get a wrong one.
KEY=$AWS_ACCESS_KEY_ID SECRET=$AWS_SECRET_ACCESS_KEY
REGION=${AWS_REGION:-us-east-1}
HOSTPORT=${AWS_ENDPOINT_URL#http://}
enc() { "$PY" -c 'import sys, urllib.parse as u; print(u.quote(sys.argv[1], safe=""))' "$1"; }
AUTH="$(enc "$KEY"):$(enc "$SECRET")"
EMPTY_SHA=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855

# s3 METHOD PATH [FILE]: body to stdout, fails unless HTTP 2xx.  curl signs
# with SigV4 but neither sorts nor encodes the query: give it that way.
s3() {
	local sha=$EMPTY_SHA data=()
	if [ -n "${3:-}" ]; then
		sha=$(sha256sum "$3" | cut -d' ' -f1)
		data=(--data-binary "@$3")
	fi
	curl -sS -f --max-time 60 --aws-sigv4 "aws:amz:$REGION:s3" \
		-H "x-amz-content-sha256: $sha" -X "$1" "${data[@]}" \
		"http://$AUTH@$HOSTPORT/$2"
}

BUCKET=bs3-bad-input-$$-$(date +%s)
listing() { s3 GET "$BUCKET?list-type=2" || echo "listing failed"; }
bucket_exists() { curl -s -o /dev/null -w '%{http_code}' -I --max-time 60 \
	--aws-sigv4 "aws:amz:$REGION:s3" -H "x-amz-content-sha256: $EMPTY_SHA" \
	"http://$AUTH@$HOSTPORT/$1" | grep -q '^200$'; }

# refused NAME REGEX CMD...: CMD exits 1, prints nothing on stdout and one
# line on stderr that matches REGEX (case-insensitive), and the bucket's
# listing is unchanged.
refused() {
	local name=$1 re=$2 before after rc lines
	shift 2
	before=$(listing)
	"$@" >"$T/out" 2>"$T/err" </dev/null
	rc=$?
	after=$(listing)
	lines=$(wc -l <"$T/err")
	if [ "$rc" -ne 1 ]; then
		not_ok "$name" "exit $rc, stderr: $(head -c 600 "$T/err")"
	elif [ "$lines" -ne 1 ]; then
		not_ok "$name" "$lines lines on stderr: $(head -c 600 "$T/err")"
	elif ! grep -qiE "$re" "$T/err"; then
		not_ok "$name" "message does not say /$re/: $(cat "$T/err")"
	elif [ -s "$T/out" ]; then
		not_ok "$name" "stdout not empty: $(head -c 300 "$T/out")"
	elif [ "$before" != "$after" ]; then
		not_ok "$name" "the bucket changed: before $before after $after"
	else
		ok "$name"
		echo "#   $(cat "$T/err")"
	fi
}

# --- a bucket with a good volume -------------------------------------------
if "$BUSE" bs3 create "s3://$BUCKET/good" --size 64M --object-size 1M \
	--create-bucket >"$T/out" 2>&1; then
	ok "create a volume (and its bucket)"
else
	not_ok "create a volume (and its bucket)" "$(cat "$T/out")"
	exit 1
fi
if "$BUSE" bs3 info "s3://$BUCKET/good" >"$T/out" 2>&1 &&
	grep -q 'format version 1' "$T/out"; then
	ok "info of the good volume"
else
	not_ok "info of the good volume" "$(cat "$T/out")"
fi
GOOD=s3://$BUCKET/good

# --- a volume that exists, one that does not --------------------------------
refused "create where a volume exists refuses" "already exists" \
	"$BUSE" bs3 create "$GOOD" --size 64M
refused "info of a missing volume: it does not exist" "no BS3 volume" \
	"$BUSE" bs3 info "s3://$BUCKET/missing"
refused "check of a missing volume: it does not exist" "no BS3 volume" \
	"$BUSE" bs3 check "s3://$BUCKET/missing"
refused "delete of a missing volume: it does not exist" "no BS3 volume" \
	"$BUSE" bs3 delete --yes "s3://$BUCKET/missing"

# --- credentials -------------------------------------------------------------
CRED_RE='SignatureDoesNotMatch|InvalidAccessKeyId|AccessDenied|credentials'
for cmd in info check "delete --yes"; do
	# shellcheck disable=SC2086 # cmd is a command and its option
	refused "wrong secret key: bs3 $cmd" "$CRED_RE" \
		env AWS_SECRET_ACCESS_KEY=wrong-secret "$BUSE" bs3 $cmd "$GOOD"
done
refused "wrong secret key: bs3 create" "$CRED_RE" \
	env AWS_SECRET_ACCESS_KEY=wrong-secret "$BUSE" bs3 create \
	"s3://$BUCKET/new" --size 64M
refused "unknown access key: bs3 info" "$CRED_RE" \
	env AWS_ACCESS_KEY_ID=nobody:nobody "$BUSE" bs3 info "$GOOD"
NEWB=bs3-bad-input-new-$$
refused "wrong secret key: create --create-bucket" "$CRED_RE" \
	env AWS_SECRET_ACCESS_KEY=wrong-secret "$BUSE" bs3 create \
	"s3://$NEWB/v" --size 64M --create-bucket
if bucket_exists "$NEWB"; then
	not_ok "no bucket made with wrong credentials" "$NEWB exists"
else
	ok "no bucket made with wrong credentials"
fi

# --- a missing bucket --------------------------------------------------------
NOB=bs3-no-such-bucket-$$
BUCKET_RE='NoSuchBucket|bucket does not exist|no such bucket'
for cmd in info check "delete --yes"; do
	# shellcheck disable=SC2086
	refused "missing bucket: bs3 $cmd" "$BUCKET_RE" \
		"$BUSE" bs3 $cmd "s3://$NOB/v"
done
refused "missing bucket: bs3 create" "$BUCKET_RE" \
	"$BUSE" bs3 create "s3://$NOB/v" --size 64M
if bucket_exists "$NOB"; then
	not_ok "the missing bucket is still missing" "$NOB exists"
else
	ok "the missing bucket is still missing"
fi

# --- a wrong region (s3api is configured with location us-east-1) ------------
for cmd in info check; do
	refused "wrong region: bs3 $cmd" "region" \
		env AWS_REGION=eu-west-1 AWS_DEFAULT_REGION=eu-west-1 \
		"$BUSE" bs3 "$cmd" "$GOOD"
done
refused "wrong region: bs3 create" "region" \
	env AWS_REGION=eu-west-1 "$BUSE" bs3 create "s3://$BUCKET/new" \
	--size 64M

# --- endpoints that are not S3 ----------------------------------------------
# An HTTP server that answers HTML (404 pages): port 0, told on a file.
"$PY" - "$T/port" "$T" >"$T/http.log" 2>&1 <<'EOF' &
import http.server, os, sys
os.chdir(sys.argv[2])
s = http.server.HTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write(str(s.server_address[1]))
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
s.serve_forever()
EOF
HTTP_PID=$!
for _ in $(seq 100); do
	[ -s "$T/port" ] && break
	sleep 0.1
done
if [ -s "$T/port" ]; then
	HTML=http://127.0.0.1:$(cat "$T/port")
	refused "an HTML server is not S3: bs3 info" "not S3" \
		"$BUSE" bs3 info --endpoint "$HTML" "$GOOD"
	refused "an HTML server is not S3: bs3 create" "not S3" \
		"$BUSE" bs3 create --endpoint "$HTML" "s3://$BUCKET/new" \
		--size 64M
else
	not_ok "an HTML server is not S3" "the HTTP server did not start:" \
		"$(cat "$T/http.log")"
fi
# A port where nobody listens: refused connections are retried (an outage
# looks the same) for about a minute, then one line says so.
CLOSED=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
refused "a closed port: bs3 info gives up" "connect" \
	"$BUSE" bs3 info --endpoint "http://127.0.0.1:$CLOSED" "$GOOD"

# --- crafted superblocks -----------------------------------------------------
# craft VOLUME HOW: create VOLUME, then rewrite its 128-byte superblock:
# "newer" (version 2, checksum right), "corrupt" (a byte of the volume id
# flipped), "short" (the first 64 bytes only).  The CRC32C is checked
# against the engine's on the original first.
craft() {
	"$BUSE" bs3 create "s3://$BUCKET/$1" --size 64M >/dev/null || return 1
	s3 GET "$BUCKET/$1/super" >"$T/super" || return 1
	"$PY" - "$T/super" "$2" <<'EOF' || return 1
import struct, sys
path, how = sys.argv[1], sys.argv[2]
b = bytearray(open(path, "rb").read())

def crc32c(data):
    c = 0xFFFFFFFF
    for x in data:
        c ^= x
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
    return c ^ 0xFFFFFFFF

def crc(b):  # over the 128 bytes with the crc field (the last 4) zero
    return crc32c(bytes(b[:124]) + b"\0" * 4)

if len(b) != 128 or b[:8] != b"BS3SUPER" or \
        struct.unpack_from("<I", b, 124)[0] != crc(b):
    sys.exit("superblock not as docs/bs3-format.md says")
if how == "newer":
    struct.pack_into("<I", b, 8, struct.unpack_from("<I", b, 8)[0] + 1)
    struct.pack_into("<I", b, 124, crc(b))
elif how == "corrupt":
    b[20] ^= 0xFF
elif how == "short":
    b = b[:64]
open(path, "wb").write(bytes(b))
EOF
	s3 PUT "$BUCKET/$1/super" "$T/super" >/dev/null
}

for how in newer corrupt short; do
	if ! craft "$how" "$how" 2>"$T/craft"; then
		not_ok "craft a $how superblock" "$(cat "$T/craft")"
		continue
	fi
	case $how in
	newer) re="newer format" ;;
	*) re="corrupt" ;;
	esac
	for cmd in info check; do
		refused "$how superblock: bs3 $cmd" "$re" \
			"$BUSE" bs3 "$cmd" "s3://$BUCKET/$how"
	done
	refused "$how superblock: create over it refuses" "already exists" \
		"$BUSE" bs3 create "s3://$BUCKET/$how" --size 64M
done

# The good volume is still good, and delete works on it.
if "$BUSE" bs3 check "$GOOD" >"$T/out" 2>&1; then
	ok "the good volume checks clean"
else
	not_ok "the good volume checks clean" "$(cat "$T/out")"
fi
if "$BUSE" bs3 delete --yes "$GOOD" >"$T/out" 2>&1 &&
	! listing | grep -q '<Key>good/'; then
	ok "delete removes the good volume"
else
	not_ok "delete removes the good volume" "$(cat "$T/out")"
fi

echo "# $fails failed"
[ "$fails" -eq 0 ]
