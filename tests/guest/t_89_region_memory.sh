#!/bin/bash
# Creating devices whose shared regions do not fit in memory fails with
# ENOMEM, without the OOM killer or allocation-failure splats: buse-hostile
# --mode bigmem adds 1 GiB one-queue devices until the kernel refuses (the
# page allocations themselves fail), and makes itself the OOM killer's first
# choice so that a failure does not take the rest of the guest with it.
# timeout: 300
. "$(dirname "$0")/lib.sh"
load_module
HOSTILE=$REPO/build/tests/buse-hostile
[ -x "$HOSTILE" ] || die "$HOSTILE not built (run make)"
rc=0
"$HOSTILE" --mode bigmem --hang 200 || rc=$?
[ "$rc" -ne 137 ] || die "buse-hostile was OOM-killed inside BUSE_CTL_ADD"
[ "$rc" -eq 0 ] || die "buse-hostile --mode bigmem failed (status $rc)"
