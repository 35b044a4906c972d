#!/bin/bash
# Reproducer: a write-back device whose log is full and whose daemon stops
# acknowledging logged writes.  The write waiting for log space must fail
# within a few request timeouts, and DEL must work.  Today the write is
# refused with BLK_STS_DEV_RESOURCE before blk_mq_start_request(), so no
# timeout ever fires, and DEL blocks in del_gendisk() waiting for it while
# log space is only freed by buse_queue_shutdown(), called after
# del_gendisk().  buse-hostile --mode wbstall kills its daemon after 10 s to
# unblock the kernel, so a failing run leaves nothing stuck.
# timeout: 120
. "$(dirname "$0")/lib.sh"
load_module
HOSTILE=$REPO/build/tests/buse-hostile
[ -x "$HOSTILE" ] || die "$HOSTILE not built (run make)"
"$HOSTILE" --mode wbstall --hang 60 || die "buse-hostile --mode wbstall failed"
