# shellcheck shell=bash
# tests/guest/bs3-lib.sh - helpers for the BS3 guest tests (t_9*_bs3_*.sh).
#
#   . "$(dirname "$0")/bs3-lib.sh"      (instead of lib.sh, which it sources)
#
# The guest reaches the host's S3 test server, and nothing else, through
# QEMU user networking (tests/vm/run --s3-port PORT, which scripts/check.sh
# passes): 10.0.2.100:80 in the guest is 127.0.0.1:PORT on the host.
# Sourcing this file brings eth0 up, exports the endpoint and the test
# server's credentials (the AWS_* variables every S3 tool reads, so no secret
# is ever on a command line), loads the module, and fails the test at once,
# with a clear message, if the server does not answer.
#
# Functions: s3 (signed curl), new_bucket, bucket_keys, bucket_listing,
#            bs3_add, bs3_json FIELD..., wait_s3_objects, s3_outage.

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

S3_HOST=10.0.2.100
S3_URL=http://$S3_HOST:80
export AWS_ENDPOINT_URL=$S3_URL
export AWS_ACCESS_KEY_ID=test:tester
export AWS_SECRET_ACCESS_KEY=testing
export AWS_REGION=us-east-1
unset AWS_SESSION_TOKEN AWS_PROFILE AWS_SHARED_CREDENTIALS_FILE
# sha256 of nothing: s3api wants x-amz-content-sha256 on every request.
EMPTY_SHA=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855

# bs3_net_up: eth0 on QEMU's user network (idempotent).
bs3_net_up() {
	grep -qw 'buse_s3=10.0.2.100:80' /proc/cmdline ||
		die "no path to the S3 server: run the guest with tests/vm/run --s3-port PORT (scripts/check.sh does)"
	modprobe virtio_net 2>/dev/null || true
	local i
	for ((i = 0; i < 50; i++)); do
		[ -e /sys/class/net/eth0 ] && break
		sleep 0.1
	done
	[ -e /sys/class/net/eth0 ] || die "no eth0 in the guest"
	ip link set eth0 up
	ip -4 addr show dev eth0 | grep -q 10.0.2.15/24 ||
		ip addr add 10.0.2.15/24 dev eth0
}

# s3 METHOD PATH [CURL ARGS...]: one SigV4-signed request to the server
# (PATH is /bucket[/key][?query], pre-encoded and pre-sorted for curl 7.88;
# the key id goes in the URL, encoded, as curl's --user splits at its colon);
# the body on stdout; fails unless the answer is 2xx.
# With --data-binary @FILE among the args, give S3_SHA=<its sha256>.
s3() {
	local method=$1 path=$2
	shift 2
	# The URL (with the key) through a config on stdin, not argv.
	printf 'url = "http://%s:%s@%s:80%s"\n' "${AWS_ACCESS_KEY_ID//:/%3A}" \
		"$AWS_SECRET_ACCESS_KEY" "$S3_HOST" "$path" |
	curl -K - -sS --fail-with-body --max-time 120 -X "$method" \
		--aws-sigv4 "aws:amz:$AWS_REGION:s3" \
		-H "x-amz-content-sha256: ${S3_SHA:-$EMPTY_SHA}" \
		"$@"
}

# Waits until the server answers a signed ListBuckets.
bs3_wait_server() {
	local i
	for ((i = 0; i < 60; i++)); do
		s3 GET / >/dev/null 2>&1 && return 0
		sleep 1
	done
	s3 GET / >&2 || true
	die "the S3 server at $S3_URL does not answer"
}

# new_bucket PREFIX: create a fresh bucket and print its name.
new_bucket() {
	local b
	b=$(printf '%s-%04x%04x' "$1" $RANDOM $RANDOM)
	s3 PUT "/$b" >/dev/null || die "cannot create bucket $b"
	echo "$b"
}

# bucket_listing BUCKET: "key etag size" lines, sorted (ListObjectsV2, all
# pages).
bucket_listing() {
	local b=$1 token= out
	while :; do
		if [ -n "$token" ]; then
			out=$(s3 GET "/$b?continuation-token=$(python3 -c 'import sys,urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$token")&list-type=2") || return 1
		else
			out=$(s3 GET "/$b?list-type=2") || return 1
		fi
		token=$(python3 -c '
import sys, xml.etree.ElementTree as ET
r = ET.fromstring(sys.stdin.read())
ns = {"s": r.tag.split("}")[0].strip("{")} if r.tag.startswith("{") else {}
p = "s:" if ns else ""
for c in r.findall(p + "Contents", ns):
    print(c.find(p + "Key", ns).text, c.find(p + "ETag", ns).text.strip("\""),
          c.find(p + "Size", ns).text, file=sys.stderr)
t = r.find(p + "NextContinuationToken", ns)
print(t.text if t is not None and t.text else "")
' <<<"$out" 2>>"$TEST_TMP/listing.$$") || return 1
		[ -n "$token" ] || break
	done
	sort "$TEST_TMP/listing.$$" 2>/dev/null
	rm -f "$TEST_TMP/listing.$$"
}

# bucket_keys BUCKET: the number of keys in it.
bucket_keys() { bucket_listing "$1" | wc -l; }

# bs3_add s3://B/V [OPTIONS...]: `buse add bs3`, print /dev/buseN.
bs3_add() {
	buse_add bs3 "$@" --log "$TEST_TMP/bs3-daemon.log"
}

# bs3_json FILE|- FIELD...: print JSON fields (dotted paths), one per line.
bs3_json() {
	local src=$1
	shift
	python3 -c '
import json, sys
d = json.load(sys.stdin)
for f in sys.argv[1:]:
    v = d
    for k in f.split("."):
        v = v[k]
    print(v)
' "$@" <"$([ "$src" = - ] && echo /dev/stdin || echo "$src")"
}

# s3_outage stop|cont: ask the host (tests/guest/bs3-host-helper.sh, run by
# scripts/check.sh) to SIGSTOP or SIGCONT the S3 server's proxy, and wait
# for it to confirm.  A guest cannot signal a host process; the request
# travels through the writable 9p share $BUSE_OUT.
s3_outage() {
	local what=$1 id i
	[ -n "${BUSE_OUT:-}" ] && [ -f "$BUSE_OUT/s3-helper.ready" ] ||
		die "no host helper for S3 outages (scripts/check.sh runs tests/guest/bs3-host-helper.sh)"
	id="$what $$ $RANDOM"
	echo "$id" >"$BUSE_OUT/s3-helper.req.tmp"
	mv "$BUSE_OUT/s3-helper.req.tmp" "$BUSE_OUT/s3-helper.req"
	for ((i = 0; i < 300; i++)); do
		[ "$(cat "$BUSE_OUT/s3-helper.ack" 2>/dev/null)" = "$id" ] && return 0
		sleep 0.1
	done
	die "the host helper did not confirm '$what'"
}

bs3_net_up
bs3_wait_server
load_module
