#!/bin/bash
# The daemon of a recoverable device exits while BUSE_CTL_DEL waits in
# del_gendisk() for a request that daemon holds.  No daemon can attach any
# more (the device is being deleted), so the queue is not orphaned: the
# request fails at once and DEL returns in seconds, not after the recovery
# timeout (20 s here).
# timeout: 120
. "$(dirname "$0")/lib.sh"
load_module
HOSTILE=$REPO/build/tests/buse-hostile
[ -x "$HOSTILE" ] || die "$HOSTILE not built (run make)"
"$HOSTILE" --mode recoverdel --hang 60 || die "buse-hostile --mode recoverdel failed"
