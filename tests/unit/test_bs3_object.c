// SPDX-License-Identifier: LGPL-2.1-or-later
/* BS3's record codec: round trips, every corruption, truncation, keys. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "object.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

static const uint8_t UUID[16] = {1, 2,	3,  4,	5,  6,	7,  8,
				 9, 10, 11, 12, 13, 14, 15, 16};
static const uint8_t OTHER[16] = {16, 15, 14, 13, 12, 11, 10, 9,
				  8,  7,  6,  5,  4,  3,  2,  1};

#define BS 4096u

static void test_crc_known(void **state)
{
	const char *s = "123456789";

	(void)state;
	assert_int_equal(bs3_crc32c(0, s, 9), 0xe3069283u);
	/* Chainable: in two pieces gives the same value. */
	assert_int_equal(bs3_crc32c(bs3_crc32c(0, s, 4), s + 4, 5),
			 0xe3069283u);
	assert_int_equal(bs3_crc32c(0, s, 0), 0);
}

/* Change one little-endian field of a record and re-seal its CRC. */
static void reseal_super(uint8_t *b)
{
	uint32_t crc;

	memset(b + offsetof(struct bs3_disk_super, crc), 0, 4);
	crc = bs3_crc32c(0, b, 128);
	b[124] = crc & 0xff;
	b[125] = crc >> 8 & 0xff;
	b[126] = crc >> 16 & 0xff;
	b[127] = crc >> 24;
}

static struct bs3_super good_super(void)
{
	struct bs3_super s = {
		.size = 1ull << 30,
		.block_size = BS,
		.object_size = 4u << 20,
		.created = 1700000000,
	};

	memcpy(s.uuid, UUID, 16);
	return s;
}

static void test_super(void **state)
{
	struct bs3_super s = good_super(), t;
	uint8_t b[128];
	char err[128];

	(void)state;
	bs3_super_encode(&s, b);
	assert_memory_equal(b, BS3_MAGIC_SUPER, 8);
	assert_int_equal(b[12], 0); /* flags, little-endian at 12 */
	assert_int_equal(bs3_super_decode(b, sizeof(b), &t), 0);
	assert_int_equal(t.version, BS3_FORMAT_VERSION);
	assert_memory_equal(t.uuid, UUID, 16);
	assert_int_equal(t.size, s.size);
	assert_int_equal(t.block_size, BS);
	assert_int_equal(t.object_size, s.object_size);
	assert_int_equal(t.created, s.created);
	/* little-endian size: 1 GiB has byte 3 of the size field = 0x40 */
	assert_int_equal(b[offsetof(struct bs3_disk_super, size) + 3], 0x40);

	for (size_t i = 0; i < sizeof(b); i++) {
		uint8_t c[128];

		memcpy(c, b, sizeof(c));
		c[i] ^= 0x01;
		assert_true(bs3_super_decode(c, sizeof(c), &t) < 0);
	}
	assert_int_equal(bs3_super_decode(b, 127, &t), -EBADMSG);

	/* A newer version is refused as such, even with a valid CRC. */
	s.version = BS3_FORMAT_VERSION + 1;
	bs3_super_encode(&s, b);
	assert_int_equal(bs3_super_decode(b, sizeof(b), &t), -EPROTONOSUPPORT);

	/* Checksummed but impossible geometry: corrupt. */
	s = good_super();
	bs3_super_encode(&s, b);
	b[offsetof(struct bs3_disk_super, block_size)] = 0x01; /* 4097 */
	reseal_super(b);
	assert_int_equal(bs3_super_decode(b, sizeof(b), &t), -EBADMSG);

	assert_int_equal(bs3_super_validate(&s, err, sizeof(err)), 0);
}

static void test_super_validate(void **state)
{
	struct bs3_super s;
	char err[128];
	static const uint32_t bad_bs[] = {0, 256, 1000, 8192, 3072};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(bad_bs); i++) {
		s = good_super();
		s.block_size = bad_bs[i];
		err[0] = 0;
		assert_int_equal(bs3_super_validate(&s, err, sizeof(err)),
				 -EINVAL);
		assert_non_null(strstr(err, "block size"));
	}
	for (uint32_t bs = 512; bs <= 4096; bs *= 2) {
		s = good_super();
		s.block_size = bs;
		assert_int_equal(bs3_super_validate(&s, err, sizeof(err)), 0);
	}
	s = good_super();
	s.size = 0;
	assert_int_equal(bs3_super_validate(&s, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "size"));
	s.size = (1ull << 30) + 512;
	assert_int_equal(bs3_super_validate(&s, err, sizeof(err)), -EINVAL);

	s = good_super();
	s.object_size = (4u << 20) + 512;
	assert_int_equal(bs3_super_validate(&s, err, sizeof(err)), -EINVAL);
	s.object_size = 60 * 1024;
	assert_int_equal(bs3_super_validate(&s, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "64 KiB"));
	s.object_size = 64 * 1024;
	assert_int_equal(bs3_super_validate(&s, err, sizeof(err)), 0);
	s.object_size = 256u << 20;
	assert_int_equal(bs3_super_validate(&s, err, sizeof(err)), 0);
	s.object_size = (256u << 20) + BS;
	assert_int_equal(bs3_super_validate(&s, err, sizeof(err)), -EINVAL);
	/* 512-byte blocks: 65536 blocks is 32 MiB, the limit. */
	s.block_size = 512;
	s.object_size = 32u << 20;
	assert_int_equal(bs3_super_validate(&s, err, sizeof(err)), 0);
	s.object_size = (32u << 20) + 512;
	assert_int_equal(bs3_super_validate(&s, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "65536"));
}

static void test_epoch(void **state)
{
	struct bs3_epoch e = {.epoch = 0x1122334455667788ull,
			      .time = 42,
			      .pid = 1234},
			 f;
	uint8_t b[128];

	(void)state;
	memcpy(e.uuid, UUID, 16);
	memset(e.writer_id, 0xab, 16);
	/* 56 characters: only 55 are kept, the record stays terminated. */
	memset(e.host, 'h', sizeof(e.host));
	bs3_epoch_encode(&e, b);
	assert_int_equal(bs3_epoch_decode(b, sizeof(b), UUID, &f), 0);
	assert_int_equal(f.epoch, e.epoch);
	assert_int_equal(f.time, 42);
	assert_int_equal(f.pid, 1234);
	assert_memory_equal(f.writer_id, e.writer_id, 16);
	assert_int_equal(strlen(f.host), 55);
	assert_int_equal(bs3_epoch_decode(b, sizeof(b), NULL, &f), 0);
	assert_int_equal(bs3_epoch_decode(b, sizeof(b), OTHER, &f), -EXDEV);
	assert_int_equal(bs3_epoch_decode(b, 100, UUID, &f), -EBADMSG);
	for (size_t i = 0; i < sizeof(b); i++) {
		uint8_t c[128];

		memcpy(c, b, sizeof(c));
		c[i] ^= 0x80;
		assert_true(bs3_epoch_decode(c, sizeof(c), UUID, &f) < 0);
	}
}

/* An object of 16 blocks with three extents, one of each kind. */
struct obj {
	struct bs3_obj_info info;
	struct bs3_extent ext[3];
	uint8_t *buf;
	size_t len;
};

static void make_obj(struct obj *o)
{
	memset(o, 0, sizeof(*o));
	o->ext[0] = (struct bs3_extent){
		.lba = 100, .nblocks = 8, .kind = BS3_EXT_DATA, .data_off = 0};
	o->ext[1] = (struct bs3_extent){
		.lba = 500, .nblocks = 1000, .kind = BS3_EXT_ZERO};
	o->ext[2] = (struct bs3_extent){.lba = 7,
					.nblocks = 8,
					.kind = BS3_EXT_MOVE,
					.data_off = 8,
					.src_off = 65528,
					.src_seq = 3};
	o->info.flags = BS3_OBJ_GC;
	memcpy(o->info.uuid, UUID, 16);
	o->info.seq = 9;
	o->info.epoch = 2;
	o->info.nr_extents = 3;
	o->info.data_offset = bs3_obj_data_offset(3);
	o->info.data_len = 16 * BS;
	o->info.time = 77;
	o->len = o->info.data_offset + o->info.data_len;
	o->buf = malloc(o->len);
	assert_non_null(o->buf);
	for (size_t i = 0; i < o->info.data_len; i++)
		o->buf[o->info.data_offset + i] = (uint8_t)(i * 7 + 3);
	o->info.data_crc =
		bs3_crc32c(0, o->buf + o->info.data_offset, o->info.data_len);
	memset(o->buf, 0xee, o->info.data_offset); /* encode must pad */
	bs3_obj_encode(&o->info, o->ext, o->buf);
}

static int decode(const struct obj *o, const uint8_t *b, size_t len,
		  const uint8_t *uuid, uint64_t nr_blocks,
		  struct bs3_obj_info *info, size_t *need)
{
	struct bs3_extent *x = NULL;
	int r = bs3_obj_decode(b, len, uuid, BS, nr_blocks, info, &x, need);

	(void)o;
	if (r)
		assert_null(x);
	free(x);
	return r;
}

static void test_obj_roundtrip(void **state)
{
	struct obj o;
	struct bs3_obj_info info;
	struct bs3_extent *x = NULL;
	size_t need = 0;

	(void)state;
	assert_int_equal(bs3_obj_data_offset(0), 512);
	assert_int_equal(bs3_obj_data_offset(13), 512); /* 80 + 416 = 496 */
	assert_int_equal(bs3_obj_data_offset(14), 1024);
	assert_int_equal(bs3_obj_data_offset(65536) % 512, 0);
	assert_true(bs3_obj_data_offset(65536) >= 80 + 65536u * 32);

	make_obj(&o);
	/* Zero padding between the records and the data. */
	for (size_t i = 80 + 3 * 32; i < o.info.data_offset; i++)
		assert_int_equal(o.buf[i], 0);
	assert_int_equal(
		bs3_obj_decode(o.buf, o.len, UUID, BS, 10000, &info, &x, &need),
		0);
	assert_memory_equal(&info, &o.info, sizeof(info));
	assert_memory_equal(x, o.ext, sizeof(o.ext));
	free(x);
	assert_int_equal(bs3_obj_check_data(&info, o.buf, o.len), 0);
	/* Header only (what a reader GETs first) is enough to decode. */
	assert_int_equal(
		decode(&o, o.buf, o.info.data_offset, NULL, 0, &info, &need),
		0);

	/* Data corruption is caught by the data CRC, not the header's. */
	o.buf[o.len - 1] ^= 1;
	assert_int_equal(decode(&o, o.buf, o.len, UUID, 0, &info, &need), 0);
	assert_int_equal(bs3_obj_check_data(&info, o.buf, o.len), -EBADMSG);
	o.buf[o.len - 1] ^= 1;
	assert_int_equal(bs3_obj_check_data(&info, o.buf, o.len - BS),
			 -EBADMSG);
	free(o.buf);
}

static void test_obj_empty(void **state)
{
	struct bs3_obj_info info = {.flags = BS3_OBJ_EPOCH_START,
				    .seq = 1,
				    .epoch = 1,
				    .data_offset = bs3_obj_data_offset(0)},
			    out;
	struct bs3_extent *x = NULL;
	uint8_t b[512];
	size_t need;

	(void)state;
	memcpy(info.uuid, UUID, 16);
	info.data_crc = bs3_crc32c(0, NULL, 0);
	bs3_obj_encode(&info, NULL, b);
	assert_int_equal(
		bs3_obj_decode(b, sizeof(b), UUID, BS, 0, &out, &x, &need), 0);
	assert_int_equal(out.nr_extents, 0);
	assert_int_equal(out.flags, BS3_OBJ_EPOCH_START);
	free(x);
	assert_int_equal(bs3_obj_check_data(&out, b, sizeof(b)), 0);
}

static void test_obj_corrupt(void **state)
{
	struct obj o;
	struct bs3_obj_info info;
	size_t need, hdr = 80 + 3 * 32;

	(void)state;
	make_obj(&o);
	for (size_t i = 0; i < hdr; i++) {
		for (int bit = 0; bit < 8; bit++) {
			int r;

			o.buf[i] ^= (uint8_t)(1 << bit);
			r = decode(&o, o.buf, o.len, UUID, 0, &info, &need);
			o.buf[i] ^= (uint8_t)(1 << bit);
			/* version bytes: maybe "newer"; else always corrupt */
			if (i >= 8 && i < 12)
				assert_true(r == -EBADMSG ||
					    r == -EPROTONOSUPPORT);
			else
				assert_int_equal(r, -EBADMSG);
		}
	}
	/* The padding is not covered, and not read. */
	o.buf[hdr] ^= 1;
	assert_int_equal(decode(&o, o.buf, o.len, UUID, 0, &info, &need), 0);
	free(o.buf);
}

static void test_obj_truncated(void **state)
{
	struct obj o;
	struct bs3_obj_info info;
	size_t need;

	(void)state;
	make_obj(&o);
	for (size_t len = 0; len < 80; len++) {
		need = 0;
		assert_int_equal(decode(&o, o.buf, len, UUID, 0, &info, &need),
				 -EAGAIN);
		assert_int_equal(need, 80);
	}
	for (size_t len = 80; len < 80 + 3 * 32; len++) {
		need = 0;
		assert_int_equal(decode(&o, o.buf, len, UUID, 0, &info, &need),
				 -EAGAIN);
		assert_int_equal(need, 80 + 3 * 32);
	}
	assert_int_equal(decode(&o, o.buf, 80 + 3 * 32, UUID, 0, &info, &need),
			 0);
	free(o.buf);
}

static void test_obj_version_uuid(void **state)
{
	struct obj o;
	struct bs3_obj_info info;
	size_t need;

	(void)state;
	make_obj(&o);
	assert_int_equal(decode(&o, o.buf, o.len, OTHER, 0, &info, &need),
			 -EXDEV);
	assert_int_equal(decode(&o, o.buf, o.len, NULL, 0, &info, &need), 0);
	/* A newer version is refused before its (unknown) layout is read. */
	o.buf[8] = BS3_FORMAT_VERSION + 1;
	assert_int_equal(decode(&o, o.buf, 12, UUID, 0, &info, &need),
			 -EPROTONOSUPPORT);
	assert_int_equal(decode(&o, o.buf, 11, UUID, 0, &info, &need), -EAGAIN);
	assert_int_equal(decode(&o, o.buf, o.len, UUID, 0, &info, &need),
			 -EPROTONOSUPPORT);
	o.buf[8] = 0;
	assert_int_equal(decode(&o, o.buf, o.len, UUID, 0, &info, &need),
			 -EBADMSG);
	free(o.buf);
}

/* Re-encode o with extent i replaced; expect decode's verdict r. */
static void bad_extent(struct bs3_extent e, uint64_t nr_blocks, int want)
{
	struct obj o;
	struct bs3_obj_info info;
	size_t need;

	make_obj(&o);
	o.ext[1] = e;
	bs3_obj_encode(&o.info, o.ext, o.buf);
	assert_int_equal(
		decode(&o, o.buf, o.len, UUID, nr_blocks, &info, &need), want);
	free(o.buf);
}

static void test_obj_bad_extents(void **state)
{
	(void)state;
	/* The good one, for contrast. */
	bad_extent((struct bs3_extent){.lba = 0,
				       .nblocks = 16,
				       .kind = BS3_EXT_DATA},
		   0, 0);
	/* Beyond the data (16 blocks). */
	bad_extent((struct bs3_extent){.lba = 0,
				       .nblocks = 17,
				       .kind = BS3_EXT_DATA},
		   0, -EBADMSG);
	bad_extent((struct bs3_extent){.lba = 0,
				       .nblocks = 1,
				       .kind = BS3_EXT_DATA,
				       .data_off = 16},
		   0, -EBADMSG);
	bad_extent((struct bs3_extent){.lba = 0,
				       .nblocks = 2,
				       .kind = BS3_EXT_MOVE,
				       .data_off = 15,
				       .src_seq = 1},
		   0, -EBADMSG);
	bad_extent((struct bs3_extent){.lba = 0,
				       .nblocks = 1,
				       .kind = BS3_EXT_DATA,
				       .data_off = UINT32_MAX},
		   0, -EBADMSG);
	/* Beyond the volume (only when nr_blocks is given). */
	bad_extent((struct bs3_extent){.lba = 1000,
				       .nblocks = 100,
				       .kind = BS3_EXT_ZERO},
		   1099, -EBADMSG);
	bad_extent((struct bs3_extent){.lba = 1000,
				       .nblocks = 100,
				       .kind = BS3_EXT_ZERO},
		   1100, 0);
	bad_extent((struct bs3_extent){.lba = UINT64_MAX,
				       .nblocks = 2,
				       .kind = BS3_EXT_ZERO},
		   0, -EBADMSG);
	/* Empty, unknown kinds, stray fields. */
	bad_extent((struct bs3_extent){.lba = 0,
				       .nblocks = 0,
				       .kind = BS3_EXT_ZERO},
		   0, -EBADMSG);
	bad_extent((struct bs3_extent){.lba = 0, .nblocks = 1, .kind = 0}, 0,
		   -EBADMSG);
	bad_extent((struct bs3_extent){.lba = 0, .nblocks = 1, .kind = 4}, 0,
		   -EBADMSG);
	bad_extent((struct bs3_extent){.lba = 0,
				       .nblocks = 1,
				       .kind = BS3_EXT_ZERO,
				       .data_off = 1},
		   0, -EBADMSG);
	bad_extent((struct bs3_extent){.lba = 0,
				       .nblocks = 1,
				       .kind = BS3_EXT_DATA,
				       .src_seq = 1},
		   0, -EBADMSG);
	/* A MOVE names an older object, within an object's limits. */
	bad_extent((struct bs3_extent){.lba = 0,
				       .nblocks = 1,
				       .kind = BS3_EXT_MOVE},
		   0, -EBADMSG);
	bad_extent((struct bs3_extent){.lba = 0,
				       .nblocks = 1,
				       .kind = BS3_EXT_MOVE,
				       .src_seq = 9},
		   0, -EBADMSG);
	bad_extent((struct bs3_extent){.lba = 0,
				       .nblocks = 1,
				       .kind = BS3_EXT_MOVE,
				       .src_seq = 8,
				       .src_off = 65535},
		   0, 0);
	bad_extent((struct bs3_extent){.lba = 0,
				       .nblocks = 2,
				       .kind = BS3_EXT_MOVE,
				       .src_seq = 8,
				       .src_off = 65535},
		   0, -EBADMSG);
}

static void test_obj_bad_header(void **state)
{
	struct obj o;
	struct bs3_obj_info info;
	size_t need;

	(void)state;
	/* data_offset not the one for nr_extents */
	make_obj(&o);
	o.info.data_offset = 1024;
	bs3_obj_encode(&o.info, o.ext, o.buf);
	assert_int_equal(decode(&o, o.buf, o.len, UUID, 0, &info, &need),
			 -EBADMSG);
	free(o.buf);
	/* data not whole blocks */
	make_obj(&o);
	o.info.data_len = 16 * BS - 512;
	bs3_obj_encode(&o.info, o.ext, o.buf);
	assert_int_equal(decode(&o, o.buf, o.len, UUID, 0, &info, &need),
			 -EBADMSG);
	free(o.buf);
	/* seq 0, unknown flags */
	make_obj(&o);
	o.info.seq = 0;
	o.ext[2].src_seq = 0;
	o.ext[2].kind = BS3_EXT_DATA;
	o.ext[2].src_off = 0;
	bs3_obj_encode(&o.info, o.ext, o.buf);
	assert_int_equal(decode(&o, o.buf, o.len, UUID, 0, &info, &need),
			 -EBADMSG);
	free(o.buf);
	make_obj(&o);
	o.info.flags = 1u << 7;
	bs3_obj_encode(&o.info, o.ext, o.buf);
	assert_int_equal(decode(&o, o.buf, o.len, UUID, 0, &info, &need),
			 -EBADMSG);
	free(o.buf);
	/* Too many extents is refused before asking for the bytes. */
	make_obj(&o);
	o.buf[offsetof(struct bs3_disk_obj, nr_extents) + 2] =
		0x02; /* 131075 */
	need = 0;
	assert_int_equal(decode(&o, o.buf, 80, UUID, 0, &info, &need),
			 -EBADMSG);
	free(o.buf);
}

/* A checkpoint of two objects and three extents. */
static uint8_t *make_ckpt(struct bs3_ckpt *c, struct bs3_ckpt_obj *objs,
			  struct bs3_ckpt_ext *exts, size_t *len)
{
	uint8_t *b;

	memset(c, 0, sizeof(*c));
	memcpy(c->uuid, UUID, 16);
	c->seq = 10;
	c->epoch = 3;
	c->time = 99;
	c->nr_objects = 2;
	c->nr_extents = 3;
	objs[0] = (struct bs3_ckpt_obj){4, 1, 512, 16 * BS, 10, 0};
	objs[1] = (struct bs3_ckpt_obj){10, 3, 1024, 8 * BS, 8, BS3_OBJ_GC};
	exts[0] = (struct bs3_ckpt_ext){.lba = 0, .nblocks = 4, .obj = 1};
	exts[1] = (struct bs3_ckpt_ext){
		.lba = 4, .nblocks = 10, .obj = 0, .off = 6};
	exts[2] = (struct bs3_ckpt_ext){
		.lba = 100, .nblocks = 4, .obj = 1, .off = 4};
	c->objs = objs;
	c->exts = exts;
	*len = bs3_ckpt_size(2, 3);
	assert_int_equal(*len, 80 + 2 * 32 + 3 * 24);
	b = malloc(*len);
	assert_non_null(b);
	bs3_ckpt_encode(c, b);
	return b;
}

static void test_ckpt(void **state)
{
	struct bs3_ckpt c, d;
	struct bs3_ckpt_obj objs[2];
	struct bs3_ckpt_ext exts[3];
	size_t len;
	uint8_t *b = make_ckpt(&c, objs, exts, &len);

	(void)state;
	assert_int_equal(bs3_ckpt_decode(b, len, UUID, 104, &d), 0);
	assert_int_equal(d.seq, 10);
	assert_int_equal(d.epoch, 3);
	assert_int_equal(d.time, 99);
	assert_int_equal(d.nr_objects, 2);
	assert_int_equal(d.nr_extents, 3);
	assert_memory_equal(d.objs, objs, sizeof(objs));
	for (int i = 0; i < 3; i++) {
		assert_int_equal(d.exts[i].lba, exts[i].lba);
		assert_int_equal(d.exts[i].nblocks, exts[i].nblocks);
		assert_int_equal(d.exts[i].obj, exts[i].obj);
		assert_int_equal(d.exts[i].off, exts[i].off);
	}
	bs3_ckpt_free(&d);
	assert_null(d.objs);

	assert_int_equal(bs3_ckpt_decode(b, len, OTHER, 0, &d), -EXDEV);
	assert_int_equal(bs3_ckpt_decode(b, len - 1, UUID, 0, &d), -EBADMSG);
	assert_int_equal(bs3_ckpt_decode(b, 79, UUID, 0, &d), -EBADMSG);
	/* Outside the volume */
	assert_int_equal(bs3_ckpt_decode(b, len, UUID, 103, &d), -EBADMSG);
	for (size_t i = 0; i < len; i++) {
		int r;

		b[i] ^= 0x10;
		r = bs3_ckpt_decode(b, len, UUID, 0, &d);
		b[i] ^= 0x10;
		assert_true(r == -EBADMSG || r == -EPROTONOSUPPORT);
		assert_null(d.objs);
	}
	b[8] = 2;
	assert_int_equal(bs3_ckpt_decode(b, len, UUID, 0, &d),
			 -EPROTONOSUPPORT);
	free(b);
}

static void ckpt_expect(struct bs3_ckpt *c, int want)
{
	size_t len = bs3_ckpt_size(c->nr_objects, c->nr_extents);
	uint8_t *b = malloc(len);
	struct bs3_ckpt d;

	assert_non_null(b);
	bs3_ckpt_encode(c, b);
	assert_int_equal(bs3_ckpt_decode(b, len, UUID, 0, &d), want);
	if (!want)
		bs3_ckpt_free(&d);
	free(b);
}

static void test_ckpt_bad_extents(void **state)
{
	struct bs3_ckpt c;
	struct bs3_ckpt_obj objs[2];
	struct bs3_ckpt_ext exts[3];
	size_t len;

	(void)state;
	free(make_ckpt(&c, objs, exts, &len));
	ckpt_expect(&c, 0);
	exts[1].lba = 3; /* overlaps extent 0 */
	ckpt_expect(&c, -EBADMSG);
	exts[1].lba = 200; /* unsorted */
	ckpt_expect(&c, -EBADMSG);
	exts[1].lba = 4;
	exts[1].obj = 2; /* no such object */
	ckpt_expect(&c, -EBADMSG);
	exts[1].obj = 0;
	exts[1].nblocks = 0;
	ckpt_expect(&c, -EBADMSG);
	exts[1].nblocks = 10;
	exts[1].off = 65530; /* beyond any object */
	ckpt_expect(&c, -EBADMSG);
	exts[1].off = 6;
	objs[1].seq = 11; /* after the checkpoint's own seq */
	ckpt_expect(&c, -EBADMSG);
	objs[1].seq = 10;
	ckpt_expect(&c, 0);
	/* Empty checkpoint (a fresh volume) */
	c.nr_objects = 0;
	c.nr_extents = 0;
	ckpt_expect(&c, 0);
}

static void test_keys(void **state)
{
	char k[256];
	uint64_t seq, epoch;

	(void)state;
	bs3_key_super(k, sizeof(k), "vol");
	assert_string_equal(k, "vol/super");
	bs3_key_epoch(k, sizeof(k), "vol", 0xabc);
	assert_string_equal(k, "vol/e/0000000000000abc");
	bs3_key_ckpt(k, sizeof(k), "a/b", 0x10, 0xff);
	assert_string_equal(k, "a/b/c/0000000000000010-00000000000000ff");
	bs3_key_data(k, sizeof(k), "a/b", 0xdeadbeef, 7);
	char want[128];

	snprintf(want, sizeof(want),
		 "a/b/d/%02x/00000000deadbeef-0000000000000007",
		 bs3_key_hash(0xdeadbeef));
	assert_string_equal(k, want);

	/* Round trips, volumes with '/' */
	assert_int_equal(bs3_key_parse(k, "a/b", &seq, &epoch), BS3_KEY_DATA);
	assert_int_equal(seq, 0xdeadbeef);
	assert_int_equal(epoch, 7);
	assert_int_equal(bs3_key_parse(k, "a", &seq, &epoch), BS3_KEY_OTHER);
	assert_int_equal(bs3_key_parse(k, "a/b/d", &seq, &epoch),
			 BS3_KEY_OTHER);
	assert_int_equal(
		bs3_key_parse("a/b/c/0000000000000010-00000000000000ff", "a/b",
			      &seq, &epoch),
		BS3_KEY_CKPT);
	assert_int_equal(seq, 0x10);
	assert_int_equal(epoch, 0xff);
	assert_int_equal(
		bs3_key_parse("vol/e/0000000000000abc", "vol", NULL, &epoch),
		BS3_KEY_EPOCH);
	assert_int_equal(epoch, 0xabc);
	assert_int_equal(bs3_key_parse("vol/super", "vol", NULL, NULL),
			 BS3_KEY_SUPER);
	assert_int_equal(bs3_key_parse("vol/super", "vo", NULL, NULL),
			 BS3_KEY_OTHER);
	assert_int_equal(bs3_key_parse("volx/super", "vol", NULL, NULL),
			 BS3_KEY_OTHER);

	/* Strict: every near miss is OTHER. */
	static const char *const bad[] = {
		"vol/super2",
		"vol/supe",
		"vol/e/0000000000000ABC",
		"vol/e/000000000000abc",
		"vol/e/00000000000000abc",
		"vol/e/0000000000000abc/",
		"vol/e/",
		"vol/c/0000000000000010-00000000000000f",
		"vol/c/0000000000000010_00000000000000ff",
		"vol/c/0000000000000010-00000000000000ff0",
		"vol/c/0000000000000010-00000000000000fF",
		"vol/c/000000000000001g-00000000000000ff",
		"vol/d/",
		"vol/d/00",
		"vol/x/0000000000000010",
		"vol//super",
		"",
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		assert_int_equal(bs3_key_parse(bad[i], "vol", &seq, &epoch),
				 BS3_KEY_OTHER);

	/* Data keys: wrong or upper-case hash prefix, junk. */
	bs3_key_data(k, sizeof(k), "vol", 5, 1);
	assert_int_equal(bs3_key_parse(k, "vol", NULL, NULL), BS3_KEY_DATA);
	char *h = k + 6;
	char save = h[1];

	h[1] = save == '0' ? '1' : '0';
	assert_int_equal(bs3_key_parse(k, "vol", NULL, NULL), BS3_KEY_OTHER);
	h[1] = save;
	strcat(k, "x");
	assert_int_equal(bs3_key_parse(k, "vol", NULL, NULL), BS3_KEY_OTHER);
	for (uint64_t s = 1; s < 300; s++) {
		bs3_key_data(k, sizeof(k), "vol", s, 1);
		if (k[6] >= 'a' || k[7] >= 'a') {
			for (char *c = k + 6; c < k + 8; c++)
				if (*c >= 'a')
					*c = (char)(*c - 'a' + 'A');
			assert_int_equal(bs3_key_parse(k, "vol", NULL, NULL),
					 BS3_KEY_OTHER);
		}
	}
	/* Truncated output stays a terminated string. */
	bs3_key_data(k, 10, "vol", 5, 1);
	assert_int_equal(strlen(k), 9);
}

static void test_key_spread(void **state)
{
	unsigned int count[256] = {0};
	unsigned int max = 0, min = ~0u;

	(void)state;
	for (uint64_t s = 1; s <= 4096; s++) {
		unsigned int h = bs3_key_hash(s);

		assert_true(h < 256);
		count[h]++;
	}
	for (int i = 0; i < 256; i++) {
		max = count[i] > max ? count[i] : max;
		min = count[i] < min ? count[i] : min;
	}
	/* Mean 16: every prefix used, none more than 3x the mean. */
	assert_true(min > 0);
	assert_true(max <= 48);
	/* Also for a later stretch of the log. */
	memset(count, 0, sizeof(count));
	for (uint64_t s = 1000000; s < 1000000 + 4096; s++)
		count[bs3_key_hash(s)]++;
	for (int i = 0; i < 256; i++)
		assert_true(count[i] > 0 && count[i] <= 48);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crc_known),
		cmocka_unit_test(test_super),
		cmocka_unit_test(test_super_validate),
		cmocka_unit_test(test_epoch),
		cmocka_unit_test(test_obj_roundtrip),
		cmocka_unit_test(test_obj_empty),
		cmocka_unit_test(test_obj_corrupt),
		cmocka_unit_test(test_obj_truncated),
		cmocka_unit_test(test_obj_version_uuid),
		cmocka_unit_test(test_obj_bad_extents),
		cmocka_unit_test(test_obj_bad_header),
		cmocka_unit_test(test_ckpt),
		cmocka_unit_test(test_ckpt_bad_extents),
		cmocka_unit_test(test_keys),
		cmocka_unit_test(test_key_spread),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
