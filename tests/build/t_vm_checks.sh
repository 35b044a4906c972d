#!/bin/bash
# tests/vm/run refuses at once, before the lock and the boot (issue 15), a
# module built for another kernel than the guest boots (naming both and the
# fix) and a repository the guest cannot see; it accepts a matching module
# and a checkout under /tmp (guest-init.sh keeps that visible).  Uses
# --dry-run, which makes those checks and exits 0 instead of booting, and
# a fake module: an object with only a .modinfo section.
. "$(dirname "$0")/lib.sh"

KVER=$(tests/vm/run --print-kernel) || die "no kernel to boot"
fake_ko() { # fake_ko FILE VERMAGIC
	printf 'vermagic=%s SMP preempt mod_unload modversions \0name=buse\0' "$2" >"$T/modinfo"
	echo 'int buse_fake;' | cc -c -x c - -o "$T/empty.o"
	objcopy --add-section .modinfo="$T/modinfo" "$T/empty.o" "$1"
}

fake_ko "$T/other.ko" 9.9.9-other
rc=0
out=$(BUSE_KO=$T/other.ko timeout 60 tests/vm/run --dry-run -- true 2>&1) || rc=$?
[ "$rc" -eq 2 ] || die "mismatched module: exit $rc, want 2; output: $out"
for want in "built for kernel 9.9.9-other" "would boot $KVER" \
	"make KVER=$KVER module" "BUSE_KVER=9.9.9-other"; do
	grep -qF -- "$want" <<<"$out" || die "mismatch message lacks '$want': $out"
done
log "mismatch refused: $out"

fake_ko "$T/same.ko" "$KVER"
out=$(BUSE_KO=$T/same.ko timeout 60 tests/vm/run --dry-run -- true 2>&1) ||
	die "matching module refused: $out"
grep -qF "would boot $KVER with $T/same.ko" <<<"$out" || die "dry run said: $out"
log "matching module accepted"

# The lock is held: a refusal must not wait for it.
exec 9>>/tmp/buse-vm.lock
if flock -n 9; then
	rc=0
	out=$(BUSE_KO=$T/other.ko timeout 20 tests/vm/run -- true 2>&1) || rc=$?
	flock -u 9
	[ "$rc" -eq 2 ] || die "with the lock held, a mismatch gave exit $rc (waited?): $out"
	log "refused without waiting for the lock"
else
	log "another guest holds the lock; skipped the no-wait check"
fi
exec 9>&-

# Where the checkout lives: a copy of tests/vm and scripts is enough for
# the checks (the repository is two levels above tests/vm/run).
copy_to() {
	mkdir -p "$1/tests" "$1/scripts" "$1/kernel"
	cp -a tests/vm "$1/tests/"
	cp -a scripts/guest-kernel.sh "$1/scripts/"
	cp "$T/same.ko" "$1/kernel/buse.ko"
}
copy_to "$T/repo"
out=$(env -u BUSE_KO "$T/repo/tests/vm/run" --dry-run 2>&1) ||
	die "a checkout under /tmp refused: $out"
log "checkout under /tmp accepted: $out"
if [ -d /dev/shm ] && [ -w /dev/shm ]; then
	d=$(mktemp -d /dev/shm/buse-t.XXXXXX)
	on_exit "rm -rf '$d'"
	copy_to "$d"
	"$d/tests/vm/run" --dry-run >/dev/null 2>&1 || die "a checkout under /dev/shm refused"
fi
d=/dev/buse-build-test.$$
if mkdir "$d" 2>/dev/null; then
	on_exit "rm -rf '$d'"
	copy_to "$d"
	rc=0
	out=$(env -u BUSE_KO "$d/tests/vm/run" --dry-run 2>&1) || rc=$?
	[ "$rc" -eq 2 ] && grep -q "guest cannot see a repository at $d" <<<"$out" ||
		die "a checkout under /dev: exit $rc: $out"
	log "checkout under /dev refused: $out"
fi
