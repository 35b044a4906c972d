#!/bin/bash
# The build's default kernel and the test guest's are one rule
# (scripts/guest-kernel.sh, issue 15): on fake /boot, /lib/modules and dpkg
# trees it picks Debian's default kernel (linux-image-amd64's dependency)
# over a newer one, the newest usable one without that package, skips
# kernels without an image, modules or headers, and yields to $BUSE_KVER;
# the Makefile's default KVER and `tests/vm/run --print-kernel` are that
# rule's answer on this machine.
. "$(dirname "$0")/lib.sh"

R=$T/root
# kernel VER [image] [modules] [build]: a fake installed kernel with the parts named
kernel() {
	local v=$1 part
	shift
	for part in "$@"; do
		case $part in
		image) mkdir -p "$R/boot" && : >"$R/boot/vmlinuz-$v" ;;
		modules) mkdir -p "$R/lib/modules/$v/kernel" ;;
		build) mkdir -p "$R/lib/modules/$v/build" ;;
		esac
	done
}
# meta VER|none: linux-image-amd64 depending on linux-image-VER, or absent
meta() {
	mkdir -p "$R/var/lib/dpkg"
	if [ "$1" = none ]; then : >"$R/var/lib/dpkg/status"; return; fi
	cat >"$R/var/lib/dpkg/status" <<ST
Package: linux-image-amd64
Status: install ok installed
Maintainer: Debian Kernel Team <debian-kernel@lists.debian.org>
Architecture: amd64
Version: 6.1.99-1
Depends: linux-image-$1 (= 6.1.99-1)
Description: Linux for 64-bit PCs (meta-package)

ST
}
pick() { env -u BUSE_KVER scripts/guest-kernel.sh --root "$R" 2>/dev/null; }
expect() { # expect WANT WHY
	local got
	got=$(pick) || got="(none, exit $?)"
	[ "$got" = "$1" ] || die "$2: picked '$got', want '$1'"
	log "ok: $2 -> $1"
}

kernel 6.1.0-9-amd64 image modules build
kernel 6.12.9+deb12-amd64 image modules build
kernel 6.13.0-fake image modules           # no headers: cannot build for it
kernel 6.14.0-fake modules build           # no image: cannot boot it
kernel 6.15.0-fake image build             # no modules: no initramfs
meta 6.1.0-9-amd64
expect 6.1.0-9-amd64 "Debian's default kernel although 6.12 is newer"
meta none
expect 6.12.9+deb12-amd64 "no linux-image-amd64: the newest usable"
meta 6.2.0-gone-amd64
expect 6.12.9+deb12-amd64 "linux-image-amd64's kernel not installed: the newest usable"
meta 6.1.0-9-amd64
rm -rf "$R/lib/modules/6.1.0-9-amd64/build"
expect 6.12.9+deb12-amd64 "default kernel without headers: the newest usable"
got=$(BUSE_KVER=7.0-mine scripts/guest-kernel.sh --root "$R")
[ "$got" = 7.0-mine ] || die "BUSE_KVER ignored: got $got"
rm -rf "$R/boot" "$R/lib"
if got=$(pick); then die "no kernels at all: picked '$got'"; fi
log "ok: BUSE_KVER wins; no kernel -> exit 1"

# The two callers use that rule, on this machine's trees.
want=$(env -u BUSE_KVER scripts/guest-kernel.sh) || die "no kernel on this machine"
mk=$(env -u BUSE_KVER -u KVER make -s --no-print-directory -f Makefile \
	-f - print-kver <<<'print-kver: ; @echo $(KVER)')
[ "$mk" = "$want" ] || die "Makefile's default KVER is '$mk', the rule says '$want'"
vm=$(env -u BUSE_KVER tests/vm/run --print-kernel)
[ "$vm" = "$want" ] || die "tests/vm/run boots '$vm', the rule says '$want'"
[ "$(BUSE_KVER=$want tests/vm/run --print-kernel)" = "$want" ] || die "tests/vm/run ignores BUSE_KVER"
log "ok: make and tests/vm/run both default to $want"
