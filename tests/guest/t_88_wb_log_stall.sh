#!/bin/bash
# A write-back device whose log is full and whose daemon stops acknowledging
# logged writes: the write waiting for log space goes on within a few
# request timeouts (the unacknowledged logged writes are dropped and the
# next flush would fail), and DEL works.  buse-hostile --mode wbstall kills
# its daemon after 10 s to unblock the kernel, so a failing run leaves
# nothing stuck.
# timeout: 120
. "$(dirname "$0")/lib.sh"
load_module
HOSTILE=$REPO/build/tests/buse-hostile
[ -x "$HOSTILE" ] || die "$HOSTILE not built (run make)"
"$HOSTILE" --mode wbstall --hang 60 || die "buse-hostile --mode wbstall failed"
