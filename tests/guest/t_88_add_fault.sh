#!/bin/bash
# BUSE_CTL_ADD whose result cannot be copied back removes only the device it
# created itself.  buse-hostile --mode addrace holds the copy_to_user() of
# an ADD in a userfaultfd write-protect fault; meanwhile the half-created
# device (already in the id table) is deleted and another ADD takes its id;
# then the copy fails with EFAULT, and the other device must survive (the
# kernel cleans up by device pointer, not by id).
. "$(dirname "$0")/lib.sh"
load_module
HOSTILE=$REPO/build/tests/buse-hostile
[ -x "$HOSTILE" ] || die "$HOSTILE not built (run make)"
"$HOSTILE" --mode addrace --hang 30 || die "buse-hostile --mode addrace failed"
