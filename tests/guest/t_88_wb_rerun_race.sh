#!/bin/bash
# Write-back with a healthy daemon and a one-record log: a write that finds
# the log full waits for an acknowledgement to rerun the queue.  When that
# acknowledgement comes after ->queue_rq() saw the full log but before
# blk-mq put the request back, only blk-mq's delayed rerun
# (BLK_STS_RESOURCE) finds the request again.  buse-hostile --mode wbrace
# runs one writer for 40 s; a write stuck for 3 s fails the test.
# timeout: 150
. "$(dirname "$0")/lib.sh"
load_module
HOSTILE=$REPO/build/tests/buse-hostile
[ -x "$HOSTILE" ] || die "$HOSTILE not built (run make)"
"$HOSTILE" --mode wbrace --time "${BUSE_WBRACE_TIME:-40}" --hang 60 ||
	die "buse-hostile --mode wbrace failed"
