#!/bin/bash
# Man pages and bash completion (issue 12): each page renders without a
# warning (mandoc -Tlint, groff -ww), buse(8) and the completion know every
# option `buse help add` and `buse help DRIVER` list, the completion offers
# commands, drivers and options, and `make install` puts both in place.
. "$(dirname "$0")/lib.sh"

command -v mandoc >/dev/null || die "mandoc not installed"
make -s build/buse
for f in man/*.[0-9]; do
	if so=$(sed -n '1s/^\.so //p' "$f") && [ -n "$so" ]; then
		[ -f "man/${so#man*/}" ] || die "$f: .so to a missing page $so"
		continue
	fi
	out=$(mandoc -Tlint -W warning "$f" 2>&1) || die "$f: mandoc: $out"
	[ -z "$out" ] || die "$f: mandoc: $out"
	out=$(groff -ww -z -man "$f" 2>&1)
	[ -z "$out" ] || die "$f: groff: $out"
done
log "$(ls man/*.[0-9] | wc -l) pages lint-clean or links"

# Every option the tool documents is in the man page and the completion.
opts=$( { build/buse help add; for d in file bs3; do build/buse help $d; done; } |
	grep -o -- '--[a-z][a-z-]*' | sort -u)
page=$(mandoc -Tascii -Owidth=200 man/buse.8 | sed 's/.\x08//g')
for o in $opts; do
	grep -q -- "$o" <<<"$page" || die "buse(8) lacks $o"
	grep -q -- "$o" contrib/bash-completion/buse || die "the completion lacks $o"
done
log "buse(8) and the completion cover $(wc -w <<<"$opts") options"

# One page per public function (a .so link to libbuse(3) where grouped).
for fn in $(grep -ho '^BUSE_EXPORT [^(]*' lib/*.c | awk '{print $NF}' | tr -d '*'); do
	[ -e "man/$fn.3" ] || die "no man page for $fn"
	grep -q "$fn" man/libbuse.3 || die "libbuse(3) does not name $fn"
done

# The completion, as bash runs it.
bash -n contrib/bash-completion/buse || die "completion: syntax"
complete_of() {
	bash -c '. contrib/bash-completion/buse; COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); _buse; printf "%s\n" "${COMPREPLY[@]}"' _ "$@"
}
[ "$(complete_of buse "" | tr '\n' ' ')" = "add recover list info del bs3 help --version " ] ||
	die "commands: $(complete_of buse "")"
complete_of buse add "" | grep -qx file || die "drivers not offered"
complete_of buse add file --gr | grep -qx -- --grow || die "file options not offered"
complete_of buse add ram --write | grep -qx -- --write-back || die "add options not offered"
complete_of buse del 0 --f | grep -qx -- --force || die "del --force not offered"
complete_of buse add ram --sched l | grep -qx latency || die "--sched values not offered"
log "completion: commands, drivers, options, values"

# make install: pages and completion where man and bash-completion look.
make -s install DESTDIR="$T/root" PREFIX=/usr >/dev/null
for p in man8/buse.8 man3/libbuse.3 man3/buse_run.3; do
	[ -f "$T/root/usr/share/man/$p" ] || die "make install lacks $p"
done
[ -f "$T/root/usr/share/bash-completion/completions/buse" ] || die "make install lacks the completion"
if command -v man >/dev/null; then
	MANPATH=$T/root/usr/share/man man -P cat buse_run 2>/dev/null | grep -q "buse_run" ||
		die "man buse_run does not find libbuse(3) through the .so link"
fi
log "installed: man pages and completion"
