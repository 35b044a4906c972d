# BUSE top-level build.  `make` builds the kernel module and the userspace;
# outputs: kernel/buse.ko, build/libbuse.so, build/libbuse.a, build/buse,
# build/libbuse.pc.  `make check` runs every test (see README.md).

# KVER: the kernel buse.ko is built for.  `make` and `make module` default
# to the test guest's kernel, chosen by scripts/guest-kernel.sh (also used by
# tests/vm/run): $BUSE_KVER, else Debian's default kernel (the one
# linux-image-amd64 depends on), else the newest with /boot/vmlinuz and
# headers; so a second installed kernel does not change what `make check`
# builds and boots.  `make install-module`, `uninstall-module` and
# `uninstall` default to the running kernel (a native install).  DKMS (dkms.conf) passes its own.
ifeq ($(origin KVER),undefined)
ifneq ($(filter install-module uninstall-module uninstall,$(MAKECMDGOALS)),)
KVER := $(shell uname -r)
else
KVER := $(shell $(CURDIR)/scripts/guest-kernel.sh)
endif
endif
KDIR ?= /lib/modules/$(KVER)/build

CC      ?= cc
CFLAGS  ?= -O2 -g
WFLAGS  := -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow \
	   -Wno-unused-parameter
CPPFLAGS += -Iinclude -Iinclude/uapi -Ibs3
SAN     := -fsanitize=address,undefined -fno-omit-frame-pointer \
	   -fno-sanitize-recover=all
B       := build
VERSION := $(shell sed -n 's/^\#define BUSE_TOOL_VERSION "\(.*\)"/\1/p' tool/tool.h)

# Install locations (make install / uninstall; debian/rules sets them too).
PREFIX     ?= /usr/local
SBINDIR    ?= $(PREFIX)/sbin
LIBDIR     ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
MANDIR     ?= $(PREFIX)/share/man
DOCDIR     ?= $(PREFIX)/share/doc/buse
COMPLDIR   ?= $(PREFIX)/share/bash-completion/completions
UNITDIR    ?= $(PREFIX)/lib/systemd/system
UDEVDIR    ?= $(PREFIX)/lib/udev/rules.d
# make install-module: the module's place among the kernel's modules.
MODDIR     ?= /lib/modules/$(KVER)/updates
# make dkms-source: the source tree dkms add takes.
DKMSDIR    ?= /usr/src/buse-$(VERSION)

LIB_SRCS  := $(wildcard lib/*.c)
# The fake kernel: libbuse-fake.a (installed) and the unit tests.
FAKE_SRC  := lib/fake/fake.c
TOOL_SRCS := $(wildcard tool/*.c) $(wildcard drivers/*.c)
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_HELP := $(filter-out $(UNIT_SRCS),$(wildcard tests/unit/*.c))
TDRV_SRCS := $(wildcard tests/drivers/*.c)
# BS3: the engine library (bs3/), its unit tests (tests/unit/test_bs3_*.c,
# helpers in tests/unit/bs3/) and its host tests against a real S3 server
# (tests/bs3/*.c, run by tests/bs3/run.sh).
BS3_SRCS  := $(wildcard bs3/*.c)
BS3_UNIT  := $(wildcard tests/unit/test_bs3_*.c)
BS3_HELP  := $(wildcard tests/unit/bs3/*.c)
BS3_HOST  := $(wildcard tests/bs3/*.c)
BS3_LIBS  := -lcurl -lssl -lcrypto -lexpat -lisal -lm -lpthread
UNIT_SRCS := $(filter-out $(BS3_UNIT),$(UNIT_SRCS))
HDRS      := $(wildcard include/buse/*.h include/uapi/linux/*.h lib/*.h \
	       tool/*.h drivers/*.h bs3/*.h tests/unit/bs3/*.h)

LIB_OBJS  := $(LIB_SRCS:%.c=$(B)/pic/%.o)
TOOL_OBJS := $(TOOL_SRCS:%.c=$(B)/obj/%.o)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(B)/tests/%)
TDRV_BINS := $(TDRV_SRCS:tests/drivers/%.c=$(B)/tests/%)
BS3_OBJS  := $(BS3_SRCS:%.c=$(B)/obj/%.o)
BS3_SAN   := $(BS3_SRCS:%.c=$(B)/san/%.o) $(BS3_HELP:%.c=$(B)/san/%.o)
BS3_UBINS := $(BS3_UNIT:tests/unit/%.c=$(B)/tests/%)
BS3_HBINS := $(BS3_HOST:tests/bs3/%.c=$(B)/tests/bs3/%)

.PHONY: all module userspace programs unit check demo clean install \
	uninstall install-module uninstall-module dkms-source deb checkpatch \
	FORCE

all: module userspace

userspace: programs \
	   $(TDRV_BINS) $(UNIT_BINS) $(B)/libbs3.a $(BS3_UBINS) $(BS3_HBINS)

# What make install installs (debian/rules builds just this).
programs: $(B)/buse $(B)/libbuse.so $(B)/libbuse.a $(B)/libbuse.pc \
	$(B)/libbuse-fake.a $(B)/libbuse-fake.pc

module:
	@test -n "$(KVER)" || { echo "no kernel with headers found: install \
linux-headers-amd64, or set KVER (scripts/guest-kernel.sh)" >&2; exit 1; }
	@test -d "$(KDIR)" || { echo "no kernel build dir $(KDIR) for KVER=$(KVER): \
install linux-headers-$(KVER), or set KVER or KDIR" >&2; exit 1; }
	$(MAKE) -C $(KDIR) M=$(CURDIR)/kernel modules

$(B)/pic/%.o: %.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(WFLAGS) $(CFLAGS) -fPIC -fvisibility=hidden -c $< -o $@

$(B)/obj/%.o: %.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(WFLAGS) $(CFLAGS) -c $< -o $@

# Sanitized objects for the BS3 unit and host tests, built once.
$(B)/san/%.o: %.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(WFLAGS) -O1 -g $(SAN) -c $< -o $@

$(B)/libbs3.a: $(BS3_OBJS)
	rm -f $@ && ar rcs $@ $^

$(B)/libbuse.so: $(LIB_OBJS)
	$(CC) $(LDFLAGS) -shared -Wl,-soname,libbuse.so.1 -o $@ $^ -lpthread

$(B)/libbuse.a: $(LIB_OBJS)
	rm -f $@ && ar rcs $@ $^

# libbuse and the fake kernel in one static library: a driver's tests link
# it instead of libbuse (pkg-config libbuse-fake).
$(B)/pic/lib/fake/fake.o: $(FAKE_SRC) $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -Ilib $(WFLAGS) $(CFLAGS) -fPIC -c $< -o $@

$(B)/libbuse-fake.a: $(LIB_OBJS) $(B)/pic/lib/fake/fake.o
	rm -f $@ && ar rcs $@ $^

$(B)/buse: $(TOOL_OBJS) $(B)/libbuse.a $(B)/libbs3.a
	$(CC) $(LDFLAGS) -o $@ $(TOOL_OBJS) $(B)/libbuse.a $(B)/libbs3.a \
		-luring $(BS3_LIBS)

$(B)/tests/%: tests/drivers/%.c $(B)/libbuse.a $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(WFLAGS) $(CFLAGS) -o $@ $< $(B)/libbuse.a -lpthread

# Unit tests build the library sources again, with ASan and UBSan.
$(B)/tests/test_%: tests/unit/test_%.c $(LIB_SRCS) $(FAKE_SRC) $(UNIT_HELP) $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -Ilib $(WFLAGS) -O1 -g $(SAN) -o $@ $< \
		$(LIB_SRCS) $(FAKE_SRC) $(UNIT_HELP) -lcmocka -lpthread

# The bundled drivers' test takes the file driver too: liburing and the
# tool's parsing helpers.
$(B)/tests/test_tool_drivers: tests/unit/test_tool_drivers.c $(LIB_SRCS) \
		$(FAKE_SRC) $(UNIT_HELP) drivers/*.c tool/size.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -Ilib $(WFLAGS) -O1 -g $(SAN) -DBUSE_TEST_FILE_DRIVER \
		-o $@ $< $(LIB_SRCS) $(FAKE_SRC) $(UNIT_HELP) tool/size.c \
		-lcmocka -lpthread -luring

# Static: the generic test_% rule above would otherwise win (its
# prerequisites exist, these need a chained object).
$(BS3_UBINS): $(B)/tests/test_bs3_%: $(B)/san/tests/unit/test_bs3_%.o $(BS3_SAN)
	@mkdir -p $(dir $@)
	$(CC) $(SAN) -o $@ $^ -lcmocka $(BS3_LIBS)

$(B)/tests/bs3/%: $(B)/san/tests/bs3/%.o $(BS3_SAN)
	@mkdir -p $(dir $@)
	$(CC) $(SAN) -o $@ $^ $(BS3_LIBS)

# libbuse.pc names the install directories: rebuilt whenever one of them
# changes (the stamp holds them and is rewritten only then), so that
# `make install PREFIX=X` after a plain `make` installs a .pc for X.
PC_VARS := $(PREFIX) $(LIBDIR) $(INCLUDEDIR) $(VERSION)
$(B)/pc-vars: FORCE
	@mkdir -p $(B)
	@echo '$(PC_VARS)' | cmp -s - $@ 2>/dev/null || echo '$(PC_VARS)' > $@

$(B)/%.pc: lib/%.pc.in $(B)/pc-vars
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' \
		-e 's|@INCLUDEDIR@|$(INCLUDEDIR)|' -e 's|@VERSION@|$(VERSION)|' \
		$< > $@

unit: $(UNIT_BINS) $(BS3_UBINS)
	@pass=0; fail=0; for t in $(UNIT_BINS) $(BS3_UBINS); do \
		if $$t; then pass=$$((pass+1)); else fail=$$((fail+1)); \
		echo "FAIL: $$t"; fi; done; \
	echo "unit: $$pass passed, $$fail failed"; test $$fail -eq 0

check:
	./scripts/check.sh

demo:
	./scripts/demo.sh

checkpatch:
	./scripts/checkpatch.sh

# Every file make install installs, as MODE:SOURCE:DESTINATION; uninstall
# removes the same list.  The uapi header goes to <buse/uapi.h> (what
# buse/buse.h includes), never among the system's <linux/...> headers.
INSTALL_FILES := \
	0755:$(B)/buse:$(SBINDIR)/buse \
	0644:$(B)/libbuse.so:$(LIBDIR)/libbuse.so.1 \
	0644:$(B)/libbuse.a:$(LIBDIR)/libbuse.a \
	0644:$(B)/libbuse.pc:$(LIBDIR)/pkgconfig/libbuse.pc \
	0644:$(B)/libbuse-fake.a:$(LIBDIR)/libbuse-fake.a \
	0644:$(B)/libbuse-fake.pc:$(LIBDIR)/pkgconfig/libbuse-fake.pc \
	0644:include/buse/fake.h:$(INCLUDEDIR)/buse/fake.h \
	$(foreach f,$(wildcard examples/memdisk/*),0644:$(f):$(DOCDIR)/$(f)) \
	0644:include/buse/buse.h:$(INCLUDEDIR)/buse/buse.h \
	0644:include/uapi/linux/buse.h:$(INCLUDEDIR)/buse/uapi.h \
	$(foreach f,$(wildcard man/*.[0-9]),0644:$(f):$(MANDIR)/man$(subst .,,$(suffix $(f)))/$(notdir $(f))) \
	$(foreach f,$(wildcard contrib/bash-completion/buse),0644:$(f):$(COMPLDIR)/buse) \
	$(foreach f,$(wildcard contrib/systemd/*.service),0644:$(f):$(UNITDIR)/$(notdir $(f))) \
	$(foreach f,$(wildcard contrib/systemd/*.conf.example),0644:$(f):$(DOCDIR)/$(notdir $(f))) \
	$(foreach f,$(wildcard udev/*.rules),0644:$(f):$(UDEVDIR)/$(notdir $(f)))
# Symbolic links, as TARGET:LINK.
INSTALL_LINKS := libbuse.so.1:$(LIBDIR)/libbuse.so

install: programs
	@set -e; for e in $(INSTALL_FILES); do \
		m=$${e%%:*}; r=$${e#*:}; s=$${r%%:*}; d=$(DESTDIR)$${r#*:}; \
		echo "install $$s $$d"; install -D -m $$m "$$s" "$$d"; done
	@set -e; for e in $(INSTALL_LINKS); do \
		d=$(DESTDIR)$${e#*:}; echo "ln -sf $${e%%:*} $$d"; \
		ln -sf "$${e%%:*}" "$$d"; done

uninstall:
	@for e in $(INSTALL_FILES) $(INSTALL_LINKS); do \
		d=$(DESTDIR)$${e##*:}; \
		if [ -e "$$d" ] || [ -L "$$d" ]; then echo "rm $$d"; rm -f "$$d"; fi; \
		done
	@for d in $(INCLUDEDIR)/buse $(DOCDIR); do \
		rmdir "$(DESTDIR)$$d" 2>/dev/null || true; done
	@if [ -e "$(DESTDIR)$(MODDIR)/buse.ko" ]; then \
		$(MAKE) --no-print-directory uninstall-module; fi

# The module for KVER (default: the running kernel) among the kernel's
# modules, so `modprobe buse` finds it; DKMS is the route that follows
# kernel updates.  depmod only for the live tree (not with DESTDIR).
install-module: module
	install -D -m 0644 kernel/buse.ko $(DESTDIR)$(MODDIR)/buse.ko
	test -n "$(DESTDIR)" || depmod -a $(KVER)

uninstall-module:
	rm -f $(DESTDIR)$(MODDIR)/buse.ko
	test -n "$(DESTDIR)" || depmod -a $(KVER)

# The source tree `dkms add` takes (dkms.conf and what kernel/ builds from);
# buse-dkms ships the same tree.
DKMS_FILES := dkms.conf kernel/Makefile $(wildcard kernel/*.[ch]) \
	include/uapi/linux/buse.h
dkms-source:
	@set -e; for f in $(DKMS_FILES); do \
		install -D -m 0644 $$f $(DESTDIR)$(DKMSDIR)/$$f; done
	sed -i 's|@VERSION@|$(VERSION)|' $(DESTDIR)$(DKMSDIR)/dkms.conf

# Debian packages (buse, libbuse1, libbuse-dev, buse-dkms) in build/deb/,
# built from a copy of the tree so that the checkout stays clean.
deb:
	rm -rf $(B)/deb && mkdir -p $(B)/deb/src
	tar --exclude=./build --exclude=./.git -cf - . | tar -xf - -C $(B)/deb/src
	cd $(B)/deb/src && dpkg-buildpackage -us -uc -b
	@ls $(B)/deb/*.deb

clean:
	rm -rf $(B)
	$(MAKE) -C $(KDIR) M=$(CURDIR)/kernel clean 2>/dev/null || true

# bench/s3bench: PUT/GET throughput of the S3 client (not run by the tests;
# only the client's objects, so it builds while the engine is in progress).
S3BENCH_OBJS := $(addprefix $(B)/obj/bs3/,s3.o s3_xml.o s3_config.o sigv4.o)
$(B)/s3bench: bench/s3bench.c $(S3BENCH_OBJS) $(HDRS)
	$(CC) $(CPPFLAGS) $(WFLAGS) $(CFLAGS) -o $@ bench/s3bench.c \
		$(S3BENCH_OBJS) $(BS3_LIBS)
