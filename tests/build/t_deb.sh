#!/bin/bash
# Debian packages (issue 12): `make deb` builds buse, libbuse1, libbuse-dev
# and buse-dkms; lintian reports no error; each holds what it should;
# `apt-get install ./*.deb` installs them on this machine, DKMS builds the
# module for the guest's kernel, a driver builds against the installed
# library with pkg-config, and the demo job runs in the guest with the
# installed tool and the DKMS-built module (modprobe).  The packages are
# purged at the end, whatever happens.
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" = 0 ] || die "needs root (apt-get, dkms)"
for c in dpkg-buildpackage lintian dkms apt-get; do
	command -v "$c" >/dev/null || die "$c not installed"
done
kver=$(scripts/guest-kernel.sh) || die "no guest kernel"
PKGS=(buse buse-dkms libbuse1 libbuse-dev)

make -s deb >"$T/deb.log" 2>&1 || { tail -n 30 "$T/deb.log"; die "make deb failed"; }
D=build/deb
for p in "${PKGS[@]}"; do
	ls "$D/${p}_"*.deb >/dev/null 2>&1 || die "no $p package"
done
out=$(lintian --fail-on error "$D"/*.changes 2>&1 | grep -v 'running with root privileges' || true)
grep -q '^E: ' <<<"$out" && die "lintian errors: $out"
log "4 packages, lintian: no errors"

has() { # has PACKAGE PATH-PATTERN: the package holds a matching file
	dpkg-deb -c "$D/${1}_"*.deb | awk '{print $6}' | grep -qE "$2" ||
		die "$1 lacks $2"
}
lacks() {
	dpkg-deb -c "$D/${1}_"*.deb | awk '{print $6}' | grep -qE "$2" &&
		die "$1 holds $2"
	return 0
}
has buse '^\./usr/sbin/buse$'
has buse 'lib/systemd/system/buse@\.service$'
has buse 'lib/udev/rules\.d/60-buse\.rules$'
has buse 'man8/buse\.8\.gz$'
has buse 'completions/buse$'
has libbuse1 'libbuse\.so\.1$'
has libbuse-dev 'include/buse/buse\.h$'
has libbuse-dev 'include/buse/uapi\.h$'
has libbuse-dev 'pkgconfig/libbuse\.pc$'
has libbuse-dev 'man3/buse_run\.3\.gz$'
has libbuse-dev 'include/buse/fake\.h$'
has libbuse-dev 'libbuse-fake\.a$'
has libbuse-dev 'pkgconfig/libbuse-fake\.pc$'
has libbuse-dev 'examples/memdisk/test_memdisk\.c$'
has buse-dkms 'usr/src/buse-[0-9.]*/dkms\.conf$'
has buse-dkms 'usr/src/buse-[0-9.]*/kernel/buse_dev\.c$'
for p in buse libbuse1 libbuse-dev; do lacks "$p" 'dkms\.conf$'; done

purge() {
	apt-get purge -y "${PKGS[@]}" >"$T/purge.log" 2>&1 || true
}
on_exit purge
DEBIAN_FRONTEND=noninteractive apt-get install -y "$PWD/$D/"buse_*.deb \
	"$PWD/$D/"buse-dkms_*.deb "$PWD/$D/"libbuse1_*.deb "$PWD/$D/"libbuse-dev_*.deb \
	>"$T/install.log" 2>&1 || { tail -n 30 "$T/install.log"; die "apt-get install failed"; }
ver=$(dpkg-query -W -f='${Version}' buse-dkms)
# The postinst builds for the running kernel; the guest's is one more.
dkms status -m buse -v "$ver" -k "$kver" | grep -q installed ||
	dkms install -m buse -v "$ver" -k "$kver" >"$T/dkms.log" 2>&1 ||
	{ tail -n 20 "$T/dkms.log"; die "dkms install for $kver failed"; }
ko=$(modinfo -k "$kver" -F filename buse) || die "modinfo: no buse module for $kver"
[[ "$ko" == */updates/dkms/* ]] || die "modprobe would load $ko, not the DKMS one"
log "installed; DKMS module for $kver: $ko"

[ "$(command -v buse)" = /usr/sbin/buse ] || die "buse is not /usr/sbin/buse"
/usr/sbin/buse --version >/dev/null || die "the installed tool does not run"
cat >"$T/drv.c" <<'C'
#include <buse/buse.h>
int main(void)
{
	struct buse_params p;

	buse_params_init(&p);
	return p.size != 0;
}
C
# shellcheck disable=SC2046  # pkg-config's words
cc -std=c11 -Wall -Werror -o "$T/drv" "$T/drv.c" $(pkg-config --cflags --libs libbuse) ||
	die "a driver does not build against the installed libbuse"
"$T/drv" || die "a driver built against the installed libbuse does not run"
log "a driver builds and runs against the installed libbuse"
# The packaged example: its tests run against the installed libbuse-fake.
cp -r /usr/share/doc/buse/examples/memdisk "$T/memdisk"
make -C "$T/memdisk" test >"$T/example.log" 2>&1 ||
	{ tail -n 20 "$T/example.log"; die "the packaged example's tests failed"; }
grep -q "PASSED.*3 test" "$T/example.log" || die "the example's tests did not all run"
log "the packaged example builds and passes its tests against the fake kernel"

tests/vm/run --kernel "$kver" --out "$REPO/build/deb-vm" -- \
	env BUSE_INSTALLED=1 scripts/demo-job.sh >"$T/demo.log" 2>&1 ||
	{ tail -n 30 "$T/demo.log"; die "the demo job failed in the guest with the packages"; }
grep -q '>>> done' "$T/demo.log" || die "the demo job did not finish"
grep -q "module: .*/updates/dkms/buse.ko" "$T/demo.log" || die "the guest did not load the DKMS module"
log "demo job in the guest: installed tool and DKMS module"

purge
dpkg-query -W buse >/dev/null 2>&1 && die "buse still installed after purge"
[ -e /usr/sbin/buse ] && die "/usr/sbin/buse left after purge"
dkms status -m buse | grep -q . && die "dkms still knows buse after purge: $(dkms status -m buse)"
log "purged cleanly"
