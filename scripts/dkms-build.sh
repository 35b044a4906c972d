#!/bin/bash
# scripts/dkms-build.sh - build buse.ko with DKMS, as a DKMS install would,
# for the kernels named, without touching the system's DKMS tree: the source
# tree `make dkms-source` lays out (what the buse-dkms package ships) is
# added to a private DKMS tree under DIR and built there (dkms --sourcetree
# --dkmstree), so the build is repeatable and leaves nothing behind.
#
#   scripts/dkms-build.sh [--dir DIR] KVER...
#
# DIR defaults to build/dkms (emptied first).  For each KVER (which needs
# /lib/modules/KVER/build) prints one line "KVER PATH", PATH being the
# module DKMS built (DIR/KVER/buse.ko or .ko.xz: DKMS compresses as that
# kernel's own modules are).  Exits 1 if any build fails (its log,
# DIR/tree/buse/VERSION/build/make.log, is printed).  Needs root (dkms).

set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
DIR=$REPO/build/dkms
while [ $# -gt 0 ]; do
	case "$1" in
	--dir) DIR=${2:?--dir needs a folder}; shift 2 ;;
	-h | --help) sed -n '2,/^$/s/^# \{0,1\}//p' "$0"; exit 0 ;;
	-*) echo "dkms-build: unknown option $1" >&2; exit 2 ;;
	*) break ;;
	esac
done
[ $# -gt 0 ] || { echo "dkms-build: no kernel version given" >&2; exit 2; }
command -v dkms >/dev/null || { echo "dkms-build: dkms not installed" >&2; exit 1; }

VERSION=$(make -s --no-print-directory -C "$REPO" -f Makefile -f - print-version \
	<<<'print-version: ; @echo $(VERSION)')
rm -rf "$DIR"
mkdir -p "$DIR/src" "$DIR/tree"
make -s --no-print-directory -C "$REPO" dkms-source DESTDIR="$DIR/src" \
	DKMSDIR="/buse-$VERSION" >/dev/null
dk=(--sourcetree "$DIR/src" --dkmstree "$DIR/tree")
dkms add -m buse -v "$VERSION" "${dk[@]}" >/dev/null
rc=0
for k in "$@"; do
	if ! dkms build -m buse -v "$VERSION" -k "$k" "${dk[@]}" >"$DIR/build-$k.log" 2>&1; then
		echo "dkms-build: dkms build for $k failed:" >&2
		grep -v '^readelf: Warning' "$DIR/build-$k.log" >&2 || true
		cat "$DIR/tree/buse/$VERSION/build/make.log" >&2 2>/dev/null || true
		rc=1
		continue
	fi
	mkdir -p "$DIR/$k"
	for m in "$DIR/tree/buse/$VERSION/$k"/*/module/buse.ko*; do
		cp "$m" "$DIR/$k/"
		echo "$k $DIR/$k/${m##*/}"
	done
done
exit "$rc"
