#!/bin/bash
# Reproducer: write-back with a healthy daemon.  A write that finds the log
# full gets BLK_STS_DEV_RESOURCE and is run again when an acknowledgement
# frees space (buse_wb_done(): need_rerun -> blk_mq_run_hw_queue()).  When
# the acknowledgement comes after ->queue_rq() saw the full log but before
# blk-mq put the request back on hctx->dispatch, that rerun finds nothing
# to do and clears need_rerun; blk-mq set SCHED_RESTART and waits for a
# request of that hctx to complete, which never happens when the writer is
# alone: the write waits forever.  buse-hostile --mode wbrace runs one
# writer against a one-record log for 40 s; a write stuck for 3 s fails the
# test (then an unrelated read runs the queue, which shows the diagnosis).
# timeout: 150
. "$(dirname "$0")/lib.sh"
load_module
HOSTILE=$REPO/build/tests/buse-hostile
[ -x "$HOSTILE" ] || die "$HOSTILE not built (run make)"
"$HOSTILE" --mode wbrace --time "${BUSE_WBRACE_TIME:-40}" --hang 60 ||
	die "buse-hostile --mode wbrace failed"
