#!/bin/bash
# The main job (scripts/demo-job.sh, what README's first command runs) ends
# with exit status 0 when it worked: a cleanup that fails on an already
# unmounted directory once made it exit 32 after printing success.
# timeout: 900
. "$(dirname "$0")/lib.sh"

load_module
rc=0
scripts/demo-job.sh >"$TEST_TMP/demo.log" 2>&1 || rc=$?
tail -n 5 "$TEST_TMP/demo.log"
grep -q '>>> done' "$TEST_TMP/demo.log" || die "the demo job did not finish (exit $rc)"
[ "$rc" -eq 0 ] || die "the demo job finished but exited $rc"
[ -z "$(ls -d /sys/block/buse* 2>/dev/null)" ] || die "the demo job left devices behind"
log "demo job: exit 0, no devices left"
