#!/bin/bash
# The module refuses to unload while a device exists, unloads cleanly once
# none is left, and loads again.
. "$(dirname "$0")/lib.sh"
load_module

dev=$(buse_add null --size 16M) || die "add"
n=$(dev_id "$dev")
if rmmod buse 2>/dev/null; then die "rmmod succeeded with a device present"; fi
[ -c /dev/buse-control ] || die "control node gone after refused rmmod"
buse_del "$n"
# The daemon may take a moment to close its queues.
for _ in $(seq 50); do rmmod buse 2>/dev/null && break; sleep 0.2; done
grep -q '^buse ' /proc/modules && die "rmmod failed with no device left"
[ -e /dev/buse-control ] && die "control node left after unload"
load_module
dev=$(buse_add ram --size 16M) || die "add after reload"
dd if=/dev/zero of="$dev" bs=4k count=16 oflag=direct status=none || die "I/O after reload"
buse_del "$(dev_id "$dev")"
log "unload ok"
