#!/bin/bash
# The control node exists, is root-only, and the tool talks to it.
. "$(dirname "$0")/lib.sh"
load_module

[ -c /dev/buse-control ] || die "/dev/buse-control missing"
mode=$(stat -c '%a %U' /dev/buse-control)
[ "$mode" = "600 root" ] || die "control node mode is '$mode', want '600 root'"

"$BUSE" list >/dev/null || die "buse list failed"
"$BUSE" list --json | python3 -c 'import json,sys; assert json.load(sys.stdin) == []' ||
	die "buse list --json is not an empty JSON array"

# An unprivileged user can neither list nor create devices.
if setpriv --reuid=65534 --regid=65534 --clear-groups "$BUSE" list >/dev/null 2>&1; then
	die "non-root buse list succeeded"
fi
if setpriv --reuid=65534 --regid=65534 --clear-groups \
	"$BUSE" add null --size 16M >/dev/null 2>&1; then
	die "non-root buse add succeeded"
fi
"$BUSE" list --json | python3 -c 'import json,sys; assert json.load(sys.stdin) == []' ||
	die "a device appeared after a refused add"
log "control node ok"
