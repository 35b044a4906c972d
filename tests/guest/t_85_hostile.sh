#!/bin/bash
# A hostile userspace cannot hurt the kernel: build/tests/buse-hostile talks
# the raw ABI for about two minutes (BUSE_HOSTILE_TIME) with random and
# boundary ADD parameters, bad pointers, unknown ioctls, lifecycle misuse,
# hostile mmaps, and daemons (write-through, write-back, recoverable) that
# answer I/O with garbage, stop answering, die, or are deleted under it.
# Every call must return with a result the ABI allows and no device may be
# left behind; afterwards the module still serves a ram device (fio verify)
# and unloads.  BUSE_HOSTILE_SEED repeats a run.
# timeout: 480
. "$(dirname "$0")/lib.sh"
require_cmd fio
load_module

HOSTILE=$REPO/build/tests/buse-hostile
[ -x "$HOSTILE" ] || die "$HOSTILE not built (run make)"
seed=${BUSE_HOSTILE_SEED:-$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}
log "buse-hostile --seed $seed (BUSE_HOSTILE_SEED=$seed repeats this run)"

failed=
rc=0
# BUSE_HOSTILE_MODES narrows the run (default: all of the random modes).
"$HOSTILE" --seed "$seed" --time "${BUSE_HOSTILE_TIME:-90}" --hang 60 \
	--mode "${BUSE_HOSTILE_MODES:-all}" || rc=$?
case $rc in
0) ;;
3) failed="buse-hostile: a call hung (status 3, seed $seed)" ;;
*) failed="buse-hostile failed (status $rc, seed $seed)" ;;
esac

# Nothing left behind, whatever happened.
left=$(ls -d /sys/block/buse* 2>/dev/null || true)
[ -z "$left" ] || failed="${failed:+$failed; }devices left: $left"

# The module still works...
dev=$(buse_add ram --size 64M --queues 2) || die "${failed:+$failed; }add after the attack failed"
fio_verify "$dev" --size=16M
buse_del "$(dev_id "$dev")"
wait_gone "$dev"

# ...and unloads, and loads again.
unload_module
grep -q '^buse ' /proc/modules && die "${failed:+$failed; }rmmod after the attack failed"
load_module
[ -c /dev/buse-control ] || die "no control node after reload"

[ -z "$failed" ] || die "$failed"
log "hostile userspace survived (seed $seed)"
