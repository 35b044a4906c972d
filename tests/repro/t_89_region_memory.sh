#!/bin/bash
# Reproducer: creating devices whose shared regions do not fit in memory must
# fail with ENOMEM, not invoke the OOM killer (or print allocation-failure
# splats).  Each queue's region (depth x max I/O, up to 1 GiB, plus the
# write-back log) is vmalloc_user()ed and zeroed at ADD, with GFP_KERNEL
# and no __GFP_RETRY_MAYFAIL/__GFP_NOWARN/__GFP_ACCOUNT, and the limit is
# per queue while a device has one queue per CPU.  buse-hostile --mode
# bigmem adds 1 GiB-per-queue devices until the kernel refuses; it makes
# itself the OOM killer's first choice so that a failure does not take the
# rest of the guest with it.
# timeout: 300
. "$(dirname "$0")/lib.sh"
load_module
HOSTILE=$REPO/build/tests/buse-hostile
[ -x "$HOSTILE" ] || die "$HOSTILE not built (run make)"
rc=0
"$HOSTILE" --mode bigmem --hang 200 || rc=$?
[ "$rc" -ne 137 ] || die "buse-hostile was OOM-killed inside BUSE_CTL_ADD"
[ "$rc" -eq 0 ] || die "buse-hostile --mode bigmem failed (status $rc)"
