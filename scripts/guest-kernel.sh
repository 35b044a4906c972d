#!/bin/bash
# scripts/guest-kernel.sh - print the kernel version BUSE is built and tested
# for: the one rule shared by the Makefile (default KVER of `make`/`make
# module`) and tests/vm/run (the kernel the test guest boots), so that the
# module always matches the guest.
#
#   scripts/guest-kernel.sh [--root DIR]
#
# The rule, first match wins:
#   1. $BUSE_KVER, if set (printed as given; callers check it exists);
#   2. Debian's default kernel: the linux-image-VER that the installed
#      linux-image-amd64 package depends on (6.1.0-NN-amd64 on Debian 12),
#      if it is usable (below);
#   3. the newest usable kernel (sort -V).
# Usable means /boot/vmlinuz-VER (to boot it), /lib/modules/VER/kernel (its
# modules, for the guest's initramfs) and /lib/modules/VER/build (headers,
# to build buse.ko against) all exist.  Rule 2 keeps the guest on the
# distribution's kernel when another one is installed next to it (e.g. the
# 6.12 image for the 6.12 smoke boot), on every machine alike.
#
# This is the *test* kernel.  A native install on a machine that can load
# modules wants the running kernel instead: `make install-module` defaults
# to `uname -r`, and DKMS builds for each installed kernel (see README.md).
#
# --root DIR looks for /boot, /lib/modules and dpkg's database
# (var/lib/dpkg) below DIR instead of / (for tests/build/t_kernel_choice.sh).
# Prints nothing and exits 1 when no kernel qualifies.

set -euo pipefail

ROOT=
while [ $# -gt 0 ]; do
	case "$1" in
	--root) ROOT=${2:?--root needs a directory}; ROOT=${ROOT%/}; shift 2 ;;
	-h | --help) sed -n '2,/^$/s/^# \{0,1\}//p' "$0"; exit 0 ;;
	*) echo "guest-kernel: unknown argument $1" >&2; exit 2 ;;
	esac
done

if [ -n "${BUSE_KVER:-}" ]; then
	echo "$BUSE_KVER"
	exit 0
fi

usable() {
	[ -f "$ROOT/boot/vmlinuz-$1" ] && [ -d "$ROOT/lib/modules/$1/kernel" ] &&
		[ -d "$ROOT/lib/modules/$1/build" ]
}

admin=$ROOT/var/lib/dpkg
if [ -d "$admin" ] && [ "$(dpkg-query --admindir="$admin" -W \
	-f='${db:Status-Status}' linux-image-amd64 2>/dev/null)" = installed ]; then
	v=$(dpkg-query --admindir="$admin" -W -f='${Depends}' linux-image-amd64 \
		2>/dev/null | sed -n 's/^linux-image-\([^ ,|]*\).*/\1/p')
	if [ -n "$v" ] && usable "$v"; then
		echo "$v"
		exit 0
	fi
fi

newest=$(for f in "$ROOT"/boot/vmlinuz-*; do
	[ -e "$f" ] || continue
	v=${f##*/vmlinuz-}
	if usable "$v"; then echo "$v"; fi
done | sort -V | tail -n 1)
[ -n "$newest" ] || exit 1
echo "$newest"
