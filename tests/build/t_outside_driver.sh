#!/bin/bash
# A driver outside the repository (issue 15), as docs/drivers.md section 8
# walks it: `make install` into a prefix, the example driver copied to a
# directory of its own, built with pkg-config against that prefix, and its
# tests run against the installed fake kernel (libbuse-fake), no module and
# no root needed.  A bug put into the driver makes those tests fail, so
# they test something.
. "$(dirname "$0")/lib.sh"

pfx=$T/prefix
make -s install PREFIX="$pfx" >/dev/null || die "make install PREFIX=$pfx"
for f in include/buse/fake.h lib/libbuse-fake.a lib/pkgconfig/libbuse-fake.pc \
	share/doc/buse/examples/memdisk/Makefile; do
	[ -f "$pfx/$f" ] || die "make install did not install $f"
done
export PKG_CONFIG_PATH=$pfx/lib/pkgconfig
pkg-config --exists libbuse-fake || die "pkg-config does not find libbuse-fake"

src=$T/memdisk
cp -r "$pfx/share/doc/buse/examples/memdisk" "$src"
make -C "$src" >"$T/build.log" 2>&1 || { cat "$T/build.log"; die "the example does not build"; }
LD_LIBRARY_PATH=$pfx/lib ldd "$src/memdisk" | grep -q "$pfx/lib/libbuse.so.1" ||
	die "memdisk is not linked to the installed libbuse"
make -C "$src" test >"$T/test.log" 2>&1 || { cat "$T/test.log"; die "the example's tests fail"; }
grep -q "PASSED.*3 test" "$T/test.log" || die "not all three tests ran: $(cat "$T/test.log")"
log "built outside the tree against $pfx; 3 tests pass on the fake kernel"

# A discard that does nothing: the tests must notice.
sed -i 's/memset(md->data + off, 0, len);/(void)off; (void)len;/' "$src/memdisk.c"
grep -q '(void)off; (void)len;' "$src/memdisk.c" || die "could not break the driver"
make -C "$src" test >"$T/broken.log" 2>&1 && die "the tests pass with a broken discard"
grep -q "FAILED.*test_discard_flush" "$T/broken.log" || die "the wrong test failed: $(tail -n 5 "$T/broken.log")"
log "a broken discard fails test_discard_flush"
