#!/bin/bash
# DKMS (issue 12): dkms.conf builds buse.ko with `dkms add/build` from the
# source tree `make dkms-source` lays out (what buse-dkms ships), against
# Debian 12's default kernel headers (6.1) and every installed Debian 6.12
# kernel's headers (scripts/packages.txt installs one); each module's
# vermagic names its kernel.  Private DKMS tree (scripts/dkms-build.sh):
# the system's DKMS state is untouched.
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" = 0 ] || die "needs root (dkms)"
kernels=("$(env -u BUSE_KVER scripts/guest-kernel.sh)") || die "no default kernel"
for d in /lib/modules/6.12.*+deb12-amd64/build; do
	[ -d "$d" ] || continue
	k=${d#/lib/modules/}
	kernels+=("${k%/build}")
done
[ ${#kernels[@]} -ge 2 ] ||
	die "no 6.12 kernel headers (linux-headers-6.12.*+deb12-amd64, in scripts/packages.txt)"
log "kernels: ${kernels[*]}"

scripts/dkms-build.sh --dir "$T/dkms" "${kernels[@]}" >"$T/built"
cat "$T/built"
grep -q '@VERSION@' "$T"/dkms/src/*/dkms.conf && die "dkms.conf still has @VERSION@"
for k in "${kernels[@]}"; do
	m=$(awk -v k="$k" '$1 == k { print $2 }' "$T/built")
	[ -n "$m" ] && [ -f "$m" ] || die "no module built for $k"
	v=$(modinfo -F vermagic "$m")
	[ "${v%% *}" = "$k" ] || die "$m: vermagic '$v', want $k"
	[ "$(modinfo -F name "$m")" = buse ] || die "$m: module name is not buse"
	log "ok: $k: $m"
done
