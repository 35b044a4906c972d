#!/bin/bash
# Shared regions are pinned memory, and all devices together may pin at most
# half of RAM (or the module's pinned_limit_mb): buse-hostile --mode bigmem
# adds 1 GiB one-queue devices until the kernel refuses with ENOMEM, before
# memory runs out (no OOM killer, no allocation-failure splat), checks that
# a DEL gives the memory back and that the parameter sets the budget.  It
# makes itself the OOM killer's first choice so that a failure does not take
# the rest of the guest with it.  Then the tool's refusal names the budget.
# timeout: 300
. "$(dirname "$0")/lib.sh"
load_module
HOSTILE=$REPO/build/tests/buse-hostile
[ -x "$HOSTILE" ] || die "$HOSTILE not built (run make)"
param=/sys/module/buse/parameters/pinned_limit_mb
[ -w "$param" ] || die "$param missing"
on_exit "echo 0 > $param"
rc=0
"$HOSTILE" --mode bigmem --hang 200 || rc=$?
[ "$rc" -ne 137 ] || die "buse-hostile was OOM-killed inside BUSE_CTL_ADD"
[ "$rc" -eq 0 ] || die "buse-hostile --mode bigmem failed (status $rc)"
[ "$(cat "$param")" = 0 ] || die "pinned_limit_mb not restored"

# The tool: a budget too small for one device is a plain refusal.
echo 1 > "$param"
rc=0
err=$("$BUSE" add null --size 16M 2>&1 >/dev/null) || rc=$?
echo 0 > "$param"
[ "$rc" -eq 1 ] || die "add under a 1 MiB budget: status $rc, want 1 ($err)"
grep -q "pinned_limit_mb" <<<"$err" || die "the refusal does not name the budget: $err"
[ -z "$("$BUSE" list --json | grep -o '"dev_id"')" ] || die "a refused add left a device"
dev=$(buse_add null --size 16M) || die "add after the budget is restored"
buse_del "$(dev_id "$dev")"
log "region memory ok"
