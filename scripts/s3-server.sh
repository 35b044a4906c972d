#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# A real S3 server on loopback for BS3's tests and benchmarks: OpenStack
# Swift with its s3api middleware, from Debian's packages, single node,
# one replica, everything (configs, rings, data, pids, logs) under one DIR.
# See docs of the setup in ../shared/docs/s3-server.md.
#
#   scripts/s3-server.sh start [--dir DIR] [--port PORT]
#   scripts/s3-server.sh stop  [--dir DIR]
#   scripts/s3-server.sh env   [--dir DIR]     export lines for clients
#   scripts/s3-server.sh pid NAME [--dir DIR]  NAME: proxy object container
#                                              account memcached
#   scripts/s3-server.sh status [--dir DIR]
#
# Ports PORT..PORT+4: S3 (proxy), object, container, account, memcached.
# Credentials: access key test:tester, secret testing, region us-east-1.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DIR=$ROOT/build/s3
PORT=18080
PY=/usr/bin/python3 # not a pyenv shim: it must have the swift module
SERVERS="account container object proxy"

die() { echo "s3-server: $*" >&2; exit 1; }

cmd=${1:-}
[ -n "$cmd" ] || die "usage: $0 start|stop|env|pid NAME|status [--dir DIR] [--port PORT]"
shift
name=
if [ "$cmd" = pid ]; then
	name=${1:-}
	[ -n "$name" ] || die "usage: $0 pid proxy|object|container|account|memcached"
	shift
fi
while [ $# -gt 0 ]; do
	case $1 in
	--dir) DIR=$2; shift 2 ;;
	--port) PORT=$2; shift 2 ;;
	*) die "unknown argument: $1" ;;
	esac
done
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)

# The port of a running instance is recorded, so env/stop need only --dir.
[ "$cmd" != start ] && [ -f "$DIR/run/port" ] && PORT=$(cat "$DIR/run/port")

# Something accepts connections there (bash's /dev/tcp: no iproute2 needed).
port_busy() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

pid_alive() {
	[ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null
}

write_configs() {
	local e=$DIR/etc
	mkdir -p "$e" "$DIR/srv/node/d1" "$DIR/run" "$DIR/log" "$DIR/lib"
	cat >"$e/proxy-server.conf" <<EOF
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = $PORT
workers = 0
user = root
swift_dir = $e
log_level = INFO
log_name = proxy-server

[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats s3compat s3api tempauth copy slo dlo proxy-logging proxy-server

[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true
# defaults 10 s / 0.5 s; loopback on a busy 2-core box can be slower
node_timeout = 60
conn_timeout = 5

[filter:s3api]
use = egg:swift#s3api
location = us-east-1

[filter:tempauth]
use = egg:swift#tempauth
user_test_tester = testing .admin

[filter:cache]
use = egg:swift#memcache
memcache_servers = 127.0.0.1:$((PORT + 4))

[filter:catch_errors]
use = egg:swift#catch_errors

[filter:gatekeeper]
use = egg:swift#gatekeeper

[filter:healthcheck]
use = egg:swift#healthcheck

[filter:proxy-logging]
use = egg:swift#proxy_logging

[filter:listing_formats]
use = egg:swift#listing_formats

[filter:copy]
use = egg:swift#copy

[filter:slo]
use = egg:swift#slo

[filter:dlo]
use = egg:swift#dlo

[filter:s3compat]
paste.filter_factory = s3compat:filter_factory
EOF
	local s p
	for s in account container object; do
		case $s in
		object) p=$((PORT + 1)) ;;
		container) p=$((PORT + 2)) ;;
		account) p=$((PORT + 3)) ;;
		esac
		cat >"$e/$s-server.conf" <<EOF
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = $p
workers = 0
user = root
swift_dir = $e
devices = $DIR/srv/node
mount_check = false
disable_fallocate = true
log_level = INFO
log_name = $s-server

[pipeline:main]
pipeline = $s-server

[app:$s-server]
use = egg:swift#$s
EOF
	done
	# Wait for the listing updates instead of leaving async_pendings that
	# no updater would apply (objects missing from listings under load).
	cat >>"$e/container-server.conf" <<EOF
node_timeout = 30
conn_timeout = 5
EOF
	cat >>"$e/object-server.conf" <<EOF
container_update_timeout = 30
node_timeout = 30
conn_timeout = 5
EOF
}

# The s3compat shim: new SDKs send DeleteObjects with x-amz-checksum-crc32
# and no Content-MD5, which Swift 2.30's s3api refuses; check the CRC32
# and add the Content-MD5 it wants.
write_shim() {
	cat >"$DIR/lib/s3compat.py" <<'EOF'
import base64
import hashlib
import io
import zlib


class S3Compat(object):
    def __init__(self, app):
        self.app = app

    def __call__(self, env, start_response):
        if (env.get('REQUEST_METHOD') == 'POST'
                and 'delete' in [q.split('=')[0] for q in
                                 env.get('QUERY_STRING', '').split('&')]
                and 'HTTP_CONTENT_MD5' not in env
                and 'HTTP_X_AMZ_CHECKSUM_CRC32' in env):
            n = int(env.get('CONTENT_LENGTH') or 0)
            body = env['wsgi.input'].read(n)
            crc = zlib.crc32(body).to_bytes(4, 'big')
            if base64.b64encode(crc).decode() != \
                    env['HTTP_X_AMZ_CHECKSUM_CRC32']:
                start_response('400 Bad Request',
                               [('Content-Type', 'application/xml')])
                return [b'<?xml version="1.0" encoding="UTF-8"?>'
                        b'<Error><Code>BadDigest</Code><Message>'
                        b'x-amz-checksum-crc32 does not match the body'
                        b'</Message></Error>']
            env['HTTP_CONTENT_MD5'] = base64.b64encode(
                hashlib.md5(body).digest()).decode()
            env['wsgi.input'] = io.BytesIO(body)
            env['CONTENT_LENGTH'] = str(len(body))
        return self.app(env, start_response)


def filter_factory(global_conf, **local_conf):
    return S3Compat
EOF
}

# Nine swift-ring-builder runs take seconds; one python process ~0.5 s.
build_rings() {
	"$PY" - "$DIR/etc" "$PORT" <<'EOF'
import sys
from swift.common.ring import RingBuilder
etc, port = sys.argv[1], int(sys.argv[2])
for name, p in (('object', port + 1), ('container', port + 2),
                ('account', port + 3)):
    b = RingBuilder(6, 1, 0)
    b.add_dev({'id': 0, 'region': 1, 'zone': 1, 'ip': '127.0.0.1',
               'port': p, 'device': 'd1', 'weight': 100.0,
               'meta': ''})
    b.rebalance()
    b.save('%s/%s.builder' % (etc, name))
    b.get_ring().save('%s/%s.ring.gz' % (etc, name))
EOF
}

# SigV4-signed ListBuckets; s3api wants x-amz-content-sha256 (empty body).
probe() {
	curl -s -o /dev/null -w '%{http_code}' --max-time 5 \
		--aws-sigv4 "aws:amz:us-east-1:s3" \
		-H "x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" \
		"http://test%3Atester:testing@127.0.0.1:$PORT/" 2>/dev/null || true
}

do_stop() {
	local f pids=
	for f in "$DIR"/run/*.pid; do
		[ -f "$f" ] || continue
		if pid_alive "$f"; then
			pids="$pids $(cat "$f")"
		fi
	done
	if [ -n "$pids" ]; then
		# A stopped (SIGSTOPped by a test) process ignores TERM until CONT.
		kill -CONT $pids 2>/dev/null || true
		kill -TERM $pids 2>/dev/null || true
		local i
		for i in $(seq 50); do
			local left=
			for p in $pids; do
				kill -0 "$p" 2>/dev/null && left="$left $p"
			done
			pids=$left
			[ -z "$pids" ] && break
			sleep 0.1
		done
		[ -n "$pids" ] && kill -KILL $pids 2>/dev/null || true
	fi
	rm -f "$DIR"/run/*.pid "$DIR/run/port"
}

do_start() {
	[ -d /etc/swift ] && [ -f /etc/swift/swift.conf ] ||
		die "/etc/swift/swift.conf missing: install the swift packages (scripts/packages.txt)"
	for s in $SERVERS; do
		command -v "swift-$s-server" >/dev/null ||
			die "swift-$s-server not found: install scripts/packages.txt"
	done
	command -v memcached >/dev/null || die "memcached not found"
	for f in "$DIR"/run/*.pid; do
		pid_alive "$f" && die "already running in $DIR (stop it first)"
	done
	local p
	for p in $(seq "$PORT" $((PORT + 4))); do
		port_busy "$p" && die "port $p on 127.0.0.1 is in use: choose another --port"
	done
	write_configs
	write_shim
	build_rings
	# Swift stores metadata in user.* xattrs: refuse a file system without.
	if ! "$PY" -c "import os,sys; os.setxattr(sys.argv[1], 'user.bs3probe', b'1')" \
		"$DIR/srv/node/d1" 2>/dev/null; then
		die "$DIR does not support user.* xattrs (tmpfs?): use --dir on ext4"
	fi
	echo "$PORT" >"$DIR/run/port"

	memcached -u root -l 127.0.0.1 -p $((PORT + 4)) -U 0 -m 64 \
		>"$DIR/log/memcached.log" 2>&1 &
	echo $! >"$DIR/run/memcached.pid"
	for s in $SERVERS; do
		# s3compat.py is found through PYTHONPATH.
		PYTHONPATH=$DIR/lib "swift-$s-server" "$DIR/etc/$s-server.conf" -v \
			>"$DIR/log/$s.log" 2>&1 </dev/null &
		echo $! >"$DIR/run/$s.pid"
	done

	local code i
	for i in $(seq 120); do
		code=$(probe)
		[ "$code" = 200 ] && break
		for s in $SERVERS memcached; do
			if ! pid_alive "$DIR/run/$s.pid"; then
				echo "s3-server: $s exited; last log lines:" >&2
				tail -n 20 "$DIR/log/$s.log" >&2 || true
				do_stop
				exit 1
			fi
		done
		sleep 0.25
	done
	if [ "$code" != 200 ]; then
		echo "s3-server: not ready after 30 s (ListBuckets: HTTP $code); logs in $DIR/log" >&2
		do_stop
		exit 1
	fi
	echo "s3-server: ready at http://127.0.0.1:$PORT (dir $DIR)"
}

case $cmd in
start) do_start ;;
stop) do_stop ;;
env)
	echo "export AWS_ENDPOINT_URL=http://127.0.0.1:$PORT AWS_ACCESS_KEY_ID=test:tester AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1"
	;;
pid)
	f=$DIR/run/$name.pid
	pid_alive "$f" || die "$name is not running in $DIR"
	cat "$f"
	;;
status)
	for s in $SERVERS memcached; do
		if pid_alive "$DIR/run/$s.pid"; then
			echo "$s: running, pid $(cat "$DIR/run/$s.pid")"
		else
			echo "$s: stopped"
		fi
	done
	;;
*) die "unknown command: $cmd" ;;
esac
