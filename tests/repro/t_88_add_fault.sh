#!/bin/bash
# Reproducer: BUSE_CTL_ADD whose result cannot be copied back must remove
# only the device it created itself.  buse-hostile --mode addrace holds the
# copy_to_user() of an ADD in a userfaultfd write-protect fault; meanwhile
# the half-created device (already in the id table) is deleted and another
# ADD takes its id; then the copy fails with EFAULT.  buse_ctl_add() cleans
# up with buse_dev_del(p.dev_id), by id, and so deletes the other device.
. "$(dirname "$0")/lib.sh"
load_module
HOSTILE=$REPO/build/tests/buse-hostile
[ -x "$HOSTILE" ] || die "$HOSTILE not built (run make)"
"$HOSTILE" --mode addrace --hang 30 || die "buse-hostile --mode addrace failed"
