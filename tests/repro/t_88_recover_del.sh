#!/bin/bash
# Reproducer: the daemon of a recoverable device exits while BUSE_CTL_DEL
# waits in del_gendisk() for a request that daemon holds.  No daemon can
# attach any more (the device is being deleted), so the request must fail
# (at once or by its 1 s timeout) and DEL return in seconds.  Today
# buse_queue_release() orphans the queue because it only looks at
# q->shutdown, which buse_dev_del() sets after del_gendisk(); the request
# then waits the whole recovery timeout (20 s here, up to an hour).
# timeout: 120
. "$(dirname "$0")/lib.sh"
load_module
HOSTILE=$REPO/build/tests/buse-hostile
[ -x "$HOSTILE" ] || die "$HOSTILE not built (run make)"
"$HOSTILE" --mode recoverdel --hang 60 || die "buse-hostile --mode recoverdel failed"
