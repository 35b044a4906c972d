#!/bin/bash
# timeout: 400
# Write-back ordering across queues: writers and readers pinned to different
# CPUs (hardware queues) hammer overlapping blocks while the ram driver
# applies queue 0's writes slowly.  Every read must return the latest
# completed write (read after write) and, after a flush, every block the
# last write (write after write).  The same run with the ordering switched
# off (the test-only wb_unordered module parameter) must report violations:
# proof that the test can fail.  Once more with every write copied into the
# log by a worker, as large writes are.
. "$(dirname "$0")/lib.sh"
load_module
STRESS=$REPO/build/tests/buse-wbstress
knob=/sys/module/buse/parameters/wb_unordered
# The knob is read-only at run time (0444): set by reloading the module.
reload() { unload_module; load_module "$@"; }
on_exit 'if [ "$(cat $knob 2>/dev/null)" = Y ]; then _buse_del_all; reload; fi'

run_stress() { # LABEL: prints the result line, returns the tool's status
	local dev rc=0
	dev=$(buse_add ram --size 64M --queues 2 --write-back --log-size 4M \
		--delay-queue 0:1500) || die "add"
	"$STRESS" "$dev" --seconds 12 --blocks 64 --writers 2 --readers 2 \
		>"$TEST_TMP/$1.out" 2>&1 || rc=$?
	log "$1: $(cat "$TEST_TMP/$1.out")"
	buse_del "$(dev_id "$dev")"
	return $rc
}

[ "$(cat $knob)" = N ] || reload
run_stress ordered || die "ordering violated with the ordering on (status $?)"

# Every write copied into the log by a worker (the path of large writes),
# so copies finish out of order: the daemon must still see them in order.
offload=/sys/module/buse/parameters/copy_offload_bytes
def_offload=$(cat $offload)
echo 4096 >$offload || die "set copy_offload_bytes"
rc=0
run_stress offloaded || rc=$?
echo "$def_offload" >$offload
[ $rc = 0 ] || die "ordering violated with every copy offloaded (status $rc)"

reload wb_unordered=1
rc=0
run_stress unordered || rc=$?
reload
[ $rc = 2 ] || die "no violation with the ordering off (status $rc): the test cannot fail"
grep -Eq 'raw_violations [1-9]' "$TEST_TMP/unordered.out" ||
	die "no read-after-write violation with the ordering off"
log "ordering holds; switched off, violations are caught"
