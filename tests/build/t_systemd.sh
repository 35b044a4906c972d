#!/bin/bash
# The systemd template unit (issue 12): `make install` puts buse@.service and
# the example configuration in place, and `systemd-analyze verify` of an
# instance, against that installed tree with the host's own units, reports
# nothing (its commands exist, its man page is there, every setting parses).
# A unit with a setting broken on purpose is reported, so the check works.
. "$(dirname "$0")/lib.sh"

command -v systemd-analyze >/dev/null || die "systemd-analyze not installed"
command -v man >/dev/null || die "man (man-db) not installed"
root=$T/root
make -s install DESTDIR="$root" PREFIX=/usr >/dev/null || die "make install"
unit=$root/usr/lib/systemd/system/buse@.service
[ -f "$unit" ] || die "make install did not install buse@.service"
[ -f "$root/usr/share/doc/buse/buse.conf.example" ] || die "no buse.conf.example installed"
cp -an /usr/lib/systemd/system/. "$root/usr/lib/systemd/system/"

verify() { # verify: systemd-analyze's complaints about buse@data.service
	(cd "$root" && MANPATH=$root/usr/share/man \
		systemd-analyze verify --root="$root" buse@data.service 2>&1)
}
out=$(verify) || die "systemd-analyze verify failed: $out"
[ -z "$out" ] || die "systemd-analyze verify: $out"
log "buse@.service verifies clean"

# The unit's contract with the tool: the options it adds exist.
grep -q -- '--foreground --supervise --name %i' "$unit" || die "the unit does not supervise and name the device"
grep -q '^KillMode=mixed' "$unit" || die "the unit does not stop through the supervisor"
args=$(sed -n 's/^BUSE_ARGS=//p' "$root/usr/share/doc/buse/buse.conf.example")
[ -n "$args" ] || die "the example sets no BUSE_ARGS"
# shellcheck disable=SC2086  # split into words, as systemd does
build/buse add $args --foreground --supervise --name data --help >/dev/null ||
	die "the example's BUSE_ARGS are not a valid command line"

sed -i 's/^Type=exec/Type=bogus/' "$unit"
out=$(verify)
grep -q "Type\|service type" <<<"$out" || die "a broken unit verified clean: $out"
log "a broken unit is reported"
