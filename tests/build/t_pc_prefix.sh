#!/bin/bash
# `make install PREFIX=X` after a plain `make` installs a libbuse.pc for X
# (issue 15): install to two prefixes in turn; pkg-config must report each
# one's directories, and a program built only from the installed headers
# (<buse/buse.h> including <buse/uapi.h>, nothing under include/linux/) and
# pkg-config's flags must compile, link and run against the installed
# library (rpath, as README says for a non-standard prefix).
. "$(dirname "$0")/lib.sh"

command -v pkg-config >/dev/null || die "pkg-config not installed"
make -s programs   # the default prefix first, as a user's plain `make`

cat >"$T/prog.c" <<'C'
#include <buse/buse.h>
#include <stdio.h>
int main(void)
{
	struct buse_params p;

	buse_params_init(&p);
	printf("abi %d state %s\n", BUSE_ABI_VERSION, buse_state_name(0));
	return 0;
}
C

for n in 1 2; do
	P=$T/prefix$n
	make -s install PREFIX="$P" >/dev/null
	pc() { PKG_CONFIG_PATH=$P/lib/pkgconfig pkg-config "$@" libbuse; }
	[ "$(pc --variable=prefix)" = "$P" ] ||
		die "prefix$n: pkg-config prefix is '$(pc --variable=prefix)', want $P"
	[ "$(pc --cflags | xargs)" = "-I$P/include" ] ||
		die "prefix$n: --cflags '$(pc --cflags)', want -I$P/include"
	case " $(pc --libs) " in
	*" -L$P/lib -lbuse "*) ;;
	*) die "prefix$n: --libs '$(pc --libs)' lacks -L$P/lib -lbuse" ;;
	esac
	[ -f "$P/include/buse/uapi.h" ] || die "prefix$n: no include/buse/uapi.h"
	[ ! -e "$P/include/linux" ] || die "prefix$n: installed under include/linux/"
	# shellcheck disable=SC2046  # pkg-config prints words
	cc -std=c11 -Wall -Wextra -Werror -o "$T/prog$n" "$T/prog.c" \
		$(pc --cflags) $(pc --libs) -Wl,-rpath,"$P/lib"
	ldd "$T/prog$n" | grep -q "$P/lib/libbuse.so.1" ||
		die "prefix$n: prog does not use $P/lib/libbuse.so.1: $(ldd "$T/prog$n")"
	out=$("$T/prog$n")
	case "$out" in
	"abi "[0-9]*" state "?*) log "prefix$n: $out" ;;
	*) die "prefix$n: prog printed '$out'" ;;
	esac
done
log "both prefixes: pkg-config and an outside build agree with the install"
