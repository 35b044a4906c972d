#!/bin/bash
# The buse tool's refusals on the host, without the module (issue 15): the
# exit status says what went wrong (2: the command line, 1: it failed), and
# each message names the limit or rule it hit, in one line.
. "$(dirname "$0")/lib.sh"

make -s build/buse
B=build/buse

# expect STATUS PATTERN ARGS...: buse ARGS exits STATUS, says PATTERN.
expect() {
	local want=$1 pat=$2 rc=0
	shift 2
	"$B" "$@" >"$T/out" 2>"$T/err" </dev/null || rc=$?
	[ "$rc" = "$want" ] || die "buse $* exited $rc, want $want: $(cat "$T/err")"
	grep -Eq -- "$pat" "$T/err" || die "buse $* said '$(cat "$T/err")', want /$pat/"
	log "ok: buse $* -> $rc: $(head -1 "$T/err")"
}

# usage errors: 2
rc=0; "$B" 2>"$T/err" || rc=$?
[ "$rc" = 2 ] && grep -q "usage: buse add" "$T/err" || die "bare buse: exit $rc"
expect 2 "unknown command 'frob'" frob
expect 2 "unknown driver 'nosuch'" add nosuch
expect 2 "driver comes first" add --size 16M null
expect 2 "too large" add null --size 99999999T
expect 2 "out of range: want 1 to 4096" add null --size 16M --depth 100000
expect 2 "limit is 1G per queue \(depth x max-io\)" add null --size 16M --depth 4096 --max-io 4M
expect 2 "log must hold the largest request" add null --size 16M --log-size 64K --max-io 1M
expect 2 "pinned memory: the limit is half of RAM" add null --size 16M --queues 256 --depth 4096 --max-io 256K
expect 2 "not a multiple of 512" add null --size 1000
expect 2 "usage: buse info DEV" info
expect 2 "not N, buseN, /dev/buseN or a name" info .frob
expect 2 "unexpected argument '--frob'" del 0 --frob
expect 2 "unexpected argument" list --frob
expect 2 "usage: buse recover" recover 0
expect 2 "no such command or driver" help frob
# test-only options are not advertised
"$B" help ram >"$T/out"
! grep -q delay-queue "$T/out" || die "buse help ram shows the test-only --delay-queue"
"$B" help file | grep -q -- "--grow" || die "buse help file lacks --grow"
"$B" help | grep -q "Exit status: 0 done, 1 failed, 2 wrong command line" ||
	die "buse help does not document the exit statuses"

# operational errors: 1 (no module here)
if [ ! -e /dev/buse-control ]; then
	expect 1 "is the buse module loaded" add null --size 16M
	expect 1 "is the buse module loaded" info 0
	expect 1 "is the buse module loaded" del 0 --force
	expect 1 "is the buse module loaded" recover 0 ram
fi
# not root: said so, not a bare EACCES
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
	rc=0
	setpriv --reuid=65534 --regid=65534 --clear-groups "$B" list 2>"$T/err" || rc=$?
	[ "$rc" = 1 ] || die "non-root list exited $rc"
	grep -q "root only" "$T/err" || die "non-root list said: $(cat "$T/err")"
	log "ok: non-root -> root only"
fi
log "every refusal: its exit status and the limit it hit"
