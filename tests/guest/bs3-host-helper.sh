#!/bin/bash
# tests/guest/bs3-host-helper.sh OUT S3DIR - runs on the HOST, beside a
# guest boot (scripts/check.sh starts and stops it): lets a guest test stop
# the S3 server for a while (t_95_bs3_outage), which a guest cannot do by
# itself, as the server is a host process.
#
# The guest writes "stop ID" or "cont ID" to OUT/s3-helper.req (the 9p share
# it sees as $BUSE_OUT); this helper sends SIGSTOP or SIGCONT to the server's
# proxy (scripts/s3-server.sh pid proxy --dir S3DIR) and answers with the
# same line in OUT/s3-helper.ack.  A proxy is never left stopped: not for
# more than 60 s, and not after this helper ends.

set -uo pipefail
OUT=${1:?usage: bs3-host-helper.sh OUT S3DIR}
DIR=${2:?usage: bs3-host-helper.sh OUT S3DIR}
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
pid=$("$REPO/scripts/s3-server.sh" pid proxy --dir "$DIR") || exit 1
[[ $pid =~ ^[0-9]+$ ]] || exit 1

stopped=
finish() {
	kill -CONT "$pid" 2>/dev/null
	rm -f "$OUT/s3-helper.ready"
	exit 0
}
trap finish EXIT TERM INT

rm -f "$OUT/s3-helper.req" "$OUT/s3-helper.ack"
echo "$pid" >"$OUT/s3-helper.ready"
last=
while :; do
	req=$(cat "$OUT/s3-helper.req" 2>/dev/null) || req=
	if [ -n "$req" ] && [ "$req" != "$last" ]; then
		case ${req%% *} in
		stop) kill -STOP "$pid" && stopped=$SECONDS ;;
		cont) kill -CONT "$pid"; stopped= ;;
		esac
		echo "$req" >"$OUT/s3-helper.ack.tmp"
		mv -f "$OUT/s3-helper.ack.tmp" "$OUT/s3-helper.ack"
		echo "bs3-host-helper: $req (proxy $pid)"
		last=$req
	fi
	if [ -n "$stopped" ] && [ $((SECONDS - stopped)) -gt 60 ]; then
		kill -CONT "$pid"
		stopped=
	fi
	sleep 0.2
done
