# BUSE top-level build.  `make` builds the kernel module and the userspace;
# outputs: kernel/buse.ko, build/libbuse.so, build/libbuse.a, build/buse,
# build/libbuse.pc.  `make check` runs every test (see README.md).

KVER ?= $(shell uname -r)
# The running kernel's build dir; else the newest installed kernel that can
# also be booted (has a /boot/vmlinuz), so the module matches the test guest.
KDIR ?= $(shell if [ -d /lib/modules/$(KVER)/build ]; then \
	echo /lib/modules/$(KVER)/build; else \
	for v in $$(ls /lib/modules 2>/dev/null | sort -rV); do \
	[ -f /boot/vmlinuz-$$v ] && [ -d /lib/modules/$$v/build ] && \
	{ echo /lib/modules/$$v/build; break; }; done; fi)

CC      ?= cc
CFLAGS  ?= -O2 -g
WFLAGS  := -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow \
	   -Wno-unused-parameter
CPPFLAGS += -Iinclude -Iinclude/uapi -Ibs3
SAN     := -fsanitize=address,undefined -fno-omit-frame-pointer \
	   -fno-sanitize-recover=all
B       := build
PREFIX  ?= /usr/local

LIB_SRCS  := $(wildcard lib/*.c)
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

.PHONY: all module userspace unit check demo clean install checkpatch

all: module userspace

userspace: $(B)/libbuse.so $(B)/libbuse.a $(B)/buse $(B)/libbuse.pc \
	   $(TDRV_BINS) $(UNIT_BINS) $(B)/libbs3.a $(BS3_UBINS) $(BS3_HBINS)

module:
	@test -n "$(KDIR)" || { echo "no kernel build dir: set KDIR" >&2; exit 1; }
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
	$(CC) -shared -Wl,-soname,libbuse.so.1 -o $@ $^ -lpthread

$(B)/libbuse.a: $(LIB_OBJS)
	rm -f $@ && ar rcs $@ $^

$(B)/buse: $(TOOL_OBJS) $(B)/libbuse.a $(B)/libbs3.a
	$(CC) -o $@ $(TOOL_OBJS) $(B)/libbuse.a $(B)/libbs3.a -luring $(BS3_LIBS)

$(B)/tests/%: tests/drivers/%.c $(B)/libbuse.a $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(WFLAGS) $(CFLAGS) -o $@ $< $(B)/libbuse.a -lpthread

# Unit tests build the library sources again, with ASan and UBSan.
$(B)/tests/test_%: tests/unit/test_%.c $(LIB_SRCS) $(UNIT_HELP) $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -Ilib $(WFLAGS) -O1 -g $(SAN) -o $@ $< \
		$(LIB_SRCS) $(UNIT_HELP) -lcmocka -lpthread

# Static: the generic test_% rule above would otherwise win (its
# prerequisites exist, these need a chained object).
$(BS3_UBINS): $(B)/tests/test_bs3_%: $(B)/san/tests/unit/test_bs3_%.o $(BS3_SAN)
	@mkdir -p $(dir $@)
	$(CC) $(SAN) -o $@ $^ -lcmocka $(BS3_LIBS)

$(B)/tests/bs3/%: $(B)/san/tests/bs3/%.o $(BS3_SAN)
	@mkdir -p $(dir $@)
	$(CC) $(SAN) -o $@ $^ $(BS3_LIBS)

$(B)/libbuse.pc: lib/libbuse.pc.in
	@mkdir -p $(B)
	sed -e 's|@PREFIX@|$(PREFIX)|' $< > $@

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

install: userspace
	install -D -m 0755 $(B)/buse $(DESTDIR)$(PREFIX)/sbin/buse
	install -D -m 0644 $(B)/libbuse.so $(DESTDIR)$(PREFIX)/lib/libbuse.so.1
	ln -sf libbuse.so.1 $(DESTDIR)$(PREFIX)/lib/libbuse.so
	install -D -m 0644 $(B)/libbuse.a $(DESTDIR)$(PREFIX)/lib/libbuse.a
	install -D -m 0644 include/buse/buse.h $(DESTDIR)$(PREFIX)/include/buse/buse.h
	install -D -m 0644 include/uapi/linux/buse.h $(DESTDIR)$(PREFIX)/include/linux/buse.h
	install -D -m 0644 $(B)/libbuse.pc $(DESTDIR)$(PREFIX)/lib/pkgconfig/libbuse.pc

clean:
	rm -rf $(B)
	$(MAKE) -C $(KDIR) M=$(CURDIR)/kernel clean 2>/dev/null || true

# bench/s3bench: PUT/GET throughput of the S3 client (not run by the tests;
# only the client's objects, so it builds while the engine is in progress).
S3BENCH_OBJS := $(addprefix $(B)/obj/bs3/,s3.o s3_xml.o s3_config.o sigv4.o)
$(B)/s3bench: bench/s3bench.c $(S3BENCH_OBJS) $(HDRS)
	$(CC) $(CPPFLAGS) $(WFLAGS) $(CFLAGS) -o $@ bench/s3bench.c \
		$(S3BENCH_OBJS) $(BS3_LIBS)
