// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Encoding and decoding of BS3's records (format.h <-> object.h), key names
 * and CRC32C.  Every decoder treats its input as hostile: lengths are
 * checked before they are used, counts are bounded before any allocation.
 */
#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <isa-l/crc.h>

#include "object.h"

uint32_t bs3_crc32c(uint32_t crc, const void *p, size_t n)
{
	const unsigned char *c = p;

	/*
	 * crc32_iscsi() takes and returns the raw register: pre- and
	 * post-inverting makes the result the standard CRC32C and lets calls
	 * chain.  Its length is an int, so feed it in pieces.
	 */
	crc = ~crc;
	while (n) {
		size_t k = n > (1u << 30) ? (1u << 30) : n;

		crc = crc32_iscsi((unsigned char *)c, (int)k, crc);
		c += k;
		n -= k;
	}
	return ~crc;
}

/* CRC of a record whose 32-bit crc field at crc_at is taken as 0. */
static uint32_t crc_with_hole(const void *buf, size_t len, size_t crc_at)
{
	static const uint8_t zero[4];
	const uint8_t *b = buf;
	uint32_t crc;

	crc = bs3_crc32c(0, b, crc_at);
	crc = bs3_crc32c(crc, zero, sizeof(zero));
	return bs3_crc32c(crc, b + crc_at + 4, len - crc_at - 4);
}

/* Magic and version: the checks every record starts with. */
static int check_head(const char *magic, const char *want, uint32_t le_version)
{
	uint32_t v = le32toh(le_version);

	if (memcmp(magic, want, 8))
		return -EBADMSG;
	if (v > BS3_FORMAT_VERSION)
		return -EPROTONOSUPPORT;
	if (v == 0)
		return -EBADMSG;
	return 0;
}

static int check_uuid(const uint8_t *have, const uint8_t *want)
{
	if (want && memcmp(have, want, BS3_UUID_LEN))
		return -EXDEV;
	return 0;
}

static bool valid_block_size(uint32_t bs)
{
	return bs >= BS3_MIN_BLOCK && bs <= BS3_MAX_BLOCK && !(bs & (bs - 1));
}

/* ---- superblock ---- */

void bs3_super_encode(const struct bs3_super *s, void *out)
{
	struct bs3_disk_super d;

	memset(&d, 0, sizeof(d));
	memcpy(d.magic, BS3_MAGIC_SUPER, 8);
	d.version = htole32(s->version ? s->version : BS3_FORMAT_VERSION);
	memcpy(d.uuid, s->uuid, BS3_UUID_LEN);
	d.size = htole64(s->size);
	d.block_size = htole32(s->block_size);
	d.object_size = htole32(s->object_size);
	d.created = htole64(s->created);
	d.crc = htole32(crc_with_hole(&d, sizeof(d),
				      offsetof(struct bs3_disk_super, crc)));
	memcpy(out, &d, sizeof(d));
}

int bs3_super_validate(const struct bs3_super *s, char *err, size_t errlen)
{
	const char *why = NULL;

	if (!valid_block_size(s->block_size))
		why = "block size must be a power of two from 512 to 4096";
	else if (!s->size || s->size % s->block_size)
		why = "size must be a non-zero multiple of the block size";
	else if (s->object_size % s->block_size)
		why = "object size must be a multiple of the block size";
	else if (s->object_size < 64 * 1024)
		why = "object size must be at least 64 KiB";
	else if (s->object_size / s->block_size > BS3_MAX_OBJ_BLOCKS)
		why = "object size must be at most 65536 blocks";
	else if (s->object_size > 256u * 1024 * 1024)
		why = "object size must be at most 256 MiB";
	if (!why)
		return 0;
	if (err && errlen)
		snprintf(err, errlen, "%s", why);
	return -EINVAL;
}

int bs3_super_decode(const void *buf, size_t len, struct bs3_super *s)
{
	struct bs3_disk_super d;
	int r;

	if (len < sizeof(d))
		return -EBADMSG;
	memcpy(&d, buf, sizeof(d));
	r = check_head(d.magic, BS3_MAGIC_SUPER, d.version);
	if (r)
		return r;
	if (le32toh(d.crc) !=
	    crc_with_hole(&d, sizeof(d), offsetof(struct bs3_disk_super, crc)))
		return -EBADMSG;
	if (d.flags)
		return -EBADMSG;
	memset(s, 0, sizeof(*s));
	s->version = le32toh(d.version);
	memcpy(s->uuid, d.uuid, BS3_UUID_LEN);
	s->size = le64toh(d.size);
	s->block_size = le32toh(d.block_size);
	s->object_size = le32toh(d.object_size);
	s->created = le64toh(d.created);
	/* A checksummed superblock with impossible geometry is still corrupt. */
	if (bs3_super_validate(s, NULL, 0))
		return -EBADMSG;
	return 0;
}

/* ---- epoch claim ---- */

void bs3_epoch_encode(const struct bs3_epoch *e, void *out)
{
	struct bs3_disk_epoch d;

	memset(&d, 0, sizeof(d));
	memcpy(d.magic, BS3_MAGIC_EPOCH, 8);
	d.version = htole32(BS3_FORMAT_VERSION);
	memcpy(d.uuid, e->uuid, BS3_UUID_LEN);
	d.epoch = htole64(e->epoch);
	memcpy(d.writer_id, e->writer_id, sizeof(d.writer_id));
	d.time = htole64(e->time);
	d.pid = htole32(e->pid);
	/* Always NUL-terminated within the 56 bytes. */
	memcpy(d.host, e->host, strnlen(e->host, sizeof(d.host) - 1));
	d.crc = htole32(crc_with_hole(&d, sizeof(d),
				      offsetof(struct bs3_disk_epoch, crc)));
	memcpy(out, &d, sizeof(d));
}

int bs3_epoch_decode(const void *buf, size_t len, const uint8_t *uuid,
		     struct bs3_epoch *e)
{
	struct bs3_disk_epoch d;
	int r;

	if (len < sizeof(d))
		return -EBADMSG;
	memcpy(&d, buf, sizeof(d));
	r = check_head(d.magic, BS3_MAGIC_EPOCH, d.version);
	if (r)
		return r;
	if (le32toh(d.crc) !=
	    crc_with_hole(&d, sizeof(d), offsetof(struct bs3_disk_epoch, crc)))
		return -EBADMSG;
	if (d.flags || d.host[sizeof(d.host) - 1])
		return -EBADMSG;
	r = check_uuid(d.uuid, uuid);
	if (r)
		return r;
	memset(e, 0, sizeof(*e));
	memcpy(e->uuid, d.uuid, BS3_UUID_LEN);
	e->epoch = le64toh(d.epoch);
	memcpy(e->writer_id, d.writer_id, sizeof(e->writer_id));
	e->time = le64toh(d.time);
	e->pid = le32toh(d.pid);
	memcpy(e->host, d.host, sizeof(e->host));
	return 0;
}

/* ---- data objects ---- */

#define OBJ_FLAGS_KNOWN (BS3_OBJ_EPOCH_START | BS3_OBJ_GC)

uint32_t bs3_obj_data_offset(uint32_t nr_extents)
{
	uint64_t n = sizeof(struct bs3_disk_obj) +
		     (uint64_t)nr_extents * sizeof(struct bs3_disk_ext);

	return (uint32_t)((n + 511) & ~511ull);
}

void bs3_obj_encode(const struct bs3_obj_info *info,
		    const struct bs3_extent *ext, void *out)
{
	struct bs3_disk_obj d;
	uint8_t *o = out;
	size_t hdr = sizeof(d) +
		     (size_t)info->nr_extents * sizeof(struct bs3_disk_ext);
	uint32_t crc;

	memset(o, 0, info->data_offset);
	for (uint32_t i = 0; i < info->nr_extents; i++) {
		struct bs3_disk_ext x = {
			.lba = htole64(ext[i].lba),
			.nblocks = htole32(ext[i].nblocks),
			.kind = htole32(ext[i].kind),
			.data_off = htole32(ext[i].data_off),
			.src_off = htole32(ext[i].src_off),
			.src_seq = htole64(ext[i].src_seq),
		};

		memcpy(o + sizeof(d) + i * sizeof(x), &x, sizeof(x));
	}
	memset(&d, 0, sizeof(d));
	memcpy(d.magic, BS3_MAGIC_OBJ, 8);
	d.version = htole32(BS3_FORMAT_VERSION);
	d.flags = htole32(info->flags);
	memcpy(d.uuid, info->uuid, BS3_UUID_LEN);
	d.seq = htole64(info->seq);
	d.epoch = htole64(info->epoch);
	d.nr_extents = htole32(info->nr_extents);
	d.data_offset = htole32(info->data_offset);
	d.data_len = htole32(info->data_len);
	d.data_crc = htole32(info->data_crc);
	d.time = htole64(info->time);
	memcpy(o, &d, sizeof(d));
	crc = crc_with_hole(o, hdr, offsetof(struct bs3_disk_obj, hdr_crc));
	d.hdr_crc = htole32(crc);
	memcpy(o + offsetof(struct bs3_disk_obj, hdr_crc), &d.hdr_crc, 4);
}

/* One extent against its object and volume; 0 or -EBADMSG. */
static int check_extent(const struct bs3_extent *x, uint64_t seq,
			uint32_t data_blocks, uint64_t nr_blocks)
{
	if (!x->nblocks)
		return -EBADMSG;
	if (nr_blocks &&
	    (x->lba >= nr_blocks || x->nblocks > nr_blocks - x->lba))
		return -EBADMSG;
	if (x->lba + x->nblocks < x->lba)
		return -EBADMSG;
	switch (x->kind) {
	case BS3_EXT_DATA:
		if (x->src_off || x->src_seq)
			return -EBADMSG;
		break;
	case BS3_EXT_ZERO:
		if (x->data_off || x->src_off || x->src_seq)
			return -EBADMSG;
		return 0;
	case BS3_EXT_MOVE:
		/* GC moves live data of an older object only. */
		if (!x->src_seq || x->src_seq >= seq)
			return -EBADMSG;
		if (x->src_off > BS3_MAX_OBJ_BLOCKS ||
		    x->nblocks > BS3_MAX_OBJ_BLOCKS - x->src_off)
			return -EBADMSG;
		break;
	default:
		return -EBADMSG;
	}
	if (x->data_off > data_blocks || x->nblocks > data_blocks - x->data_off)
		return -EBADMSG;
	return 0;
}

int bs3_obj_decode(const void *buf, size_t len, const uint8_t *uuid,
		   uint32_t block_size, uint64_t nr_blocks,
		   struct bs3_obj_info *info, struct bs3_extent **ext,
		   size_t *need)
{
	struct bs3_disk_obj d;
	const uint8_t *b = buf;
	struct bs3_extent *x;
	uint32_t n, data_blocks;
	size_t hdr;
	int r;

	*ext = NULL;
	if (!valid_block_size(block_size))
		return -EINVAL;
	/* Magic and version first: a newer layout is refused, not asked for. */
	if (len >= 12) {
		memcpy(&d, buf, 12);
		r = check_head(d.magic, BS3_MAGIC_OBJ, d.version);
		if (r)
			return r;
	}
	if (len < sizeof(d)) {
		*need = sizeof(d);
		return -EAGAIN;
	}
	memcpy(&d, buf, sizeof(d));
	/* Bound the count before asking for (or reading) more bytes. */
	n = le32toh(d.nr_extents);
	if (n > BS3_MAX_OBJ_EXTENTS ||
	    le32toh(d.data_offset) != bs3_obj_data_offset(n))
		return -EBADMSG;
	hdr = sizeof(d) + (size_t)n * sizeof(struct bs3_disk_ext);
	if (len < hdr) {
		*need = hdr;
		return -EAGAIN;
	}
	if (le32toh(d.hdr_crc) !=
	    crc_with_hole(b, hdr, offsetof(struct bs3_disk_obj, hdr_crc)))
		return -EBADMSG;
	r = check_uuid(d.uuid, uuid);
	if (r)
		return r;

	memset(info, 0, sizeof(*info));
	info->flags = le32toh(d.flags);
	memcpy(info->uuid, d.uuid, BS3_UUID_LEN);
	info->seq = le64toh(d.seq);
	info->epoch = le64toh(d.epoch);
	info->nr_extents = n;
	info->data_offset = le32toh(d.data_offset);
	info->data_len = le32toh(d.data_len);
	info->data_crc = le32toh(d.data_crc);
	info->time = le64toh(d.time);
	if ((info->flags & ~OBJ_FLAGS_KNOWN) || d.reserved || !info->seq ||
	    info->data_len % block_size ||
	    info->data_len / block_size > BS3_MAX_OBJ_BLOCKS)
		return -EBADMSG;
	data_blocks = info->data_len / block_size;

	x = calloc(n ? n : 1, sizeof(*x));
	if (!x)
		return -ENOMEM;
	for (uint32_t i = 0; i < n; i++) {
		struct bs3_disk_ext e;

		memcpy(&e, b + sizeof(d) + i * sizeof(e), sizeof(e));
		x[i].lba = le64toh(e.lba);
		x[i].nblocks = le32toh(e.nblocks);
		x[i].kind = le32toh(e.kind);
		x[i].data_off = le32toh(e.data_off);
		x[i].src_off = le32toh(e.src_off);
		x[i].src_seq = le64toh(e.src_seq);
		if (check_extent(&x[i], info->seq, data_blocks, nr_blocks)) {
			free(x);
			return -EBADMSG;
		}
	}
	*ext = x;
	return 0;
}

int bs3_obj_check_data(const struct bs3_obj_info *info, const void *buf,
		       size_t len)
{
	const uint8_t *b = buf;

	/* A torn (short) or padded object is not the object its header says. */
	if (len != (uint64_t)info->data_offset + info->data_len)
		return -EBADMSG;
	if (bs3_crc32c(0, b + info->data_offset, info->data_len) !=
	    info->data_crc)
		return -EBADMSG;
	return 0;
}

/* ---- checkpoints ---- */

size_t bs3_ckpt_size(uint64_t nr_objects, uint64_t nr_extents)
{
	return sizeof(struct bs3_disk_ckpt) +
	       nr_objects * sizeof(struct bs3_disk_ckpt_obj) +
	       nr_extents * sizeof(struct bs3_disk_ckpt_ext);
}

void bs3_ckpt_encode(const struct bs3_ckpt *c, void *out)
{
	struct bs3_disk_ckpt d;
	uint8_t *o = out, *p;
	size_t size = bs3_ckpt_size(c->nr_objects, c->nr_extents);

	memset(&d, 0, sizeof(d));
	memcpy(d.magic, BS3_MAGIC_CKPT, 8);
	d.version = htole32(BS3_FORMAT_VERSION);
	memcpy(d.uuid, c->uuid, BS3_UUID_LEN);
	d.seq = htole64(c->seq);
	d.epoch = htole64(c->epoch);
	d.nr_objects = htole64(c->nr_objects);
	d.nr_extents = htole64(c->nr_extents);
	d.time = htole64(c->time);
	memcpy(o, &d, sizeof(d));
	p = o + sizeof(d);
	for (uint64_t i = 0; i < c->nr_objects; i++) {
		const struct bs3_ckpt_obj *s = &c->objs[i];
		struct bs3_disk_ckpt_obj r = {
			.seq = htole64(s->seq),
			.epoch = htole64(s->epoch),
			.data_offset = htole32(s->data_offset),
			.data_len = htole32(s->data_len),
			.live_blocks = htole32(s->live_blocks),
			.flags = htole32(s->flags),
		};

		memcpy(p, &r, sizeof(r));
		p += sizeof(r);
	}
	for (uint64_t i = 0; i < c->nr_extents; i++) {
		const struct bs3_ckpt_ext *s = &c->exts[i];
		struct bs3_disk_ckpt_ext r = {
			.lba = htole64(s->lba),
			.nblocks = htole32(s->nblocks),
			.obj = htole32(s->obj),
			.off = htole32(s->off),
		};

		memcpy(p, &r, sizeof(r));
		p += sizeof(r);
	}
	d.crc = htole32(
		crc_with_hole(o, size, offsetof(struct bs3_disk_ckpt, crc)));
	memcpy(o + offsetof(struct bs3_disk_ckpt, crc), &d.crc, 4);
}

void bs3_ckpt_free(struct bs3_ckpt *c)
{
	free(c->objs);
	free(c->exts);
	c->objs = NULL;
	c->exts = NULL;
}

int bs3_ckpt_decode(const void *buf, size_t len, const uint8_t *uuid,
		    uint64_t nr_blocks, struct bs3_ckpt *c)
{
	struct bs3_disk_ckpt d;
	const uint8_t *p = buf;
	uint64_t no, ne, end = 0;
	int r;

	memset(c, 0, sizeof(*c));
	if (len < sizeof(d))
		return -EBADMSG;
	memcpy(&d, buf, sizeof(d));
	r = check_head(d.magic, BS3_MAGIC_CKPT, d.version);
	if (r)
		return r;
	no = le64toh(d.nr_objects);
	ne = le64toh(d.nr_extents);
	/* Bounded by len first, so the size below cannot overflow. */
	if (no > len / sizeof(struct bs3_disk_ckpt_obj) ||
	    ne > len / sizeof(struct bs3_disk_ckpt_ext) ||
	    len < bs3_ckpt_size(no, ne))
		return -EBADMSG;
	if (le32toh(d.crc) !=
	    crc_with_hole(buf, bs3_ckpt_size(no, ne),
			  offsetof(struct bs3_disk_ckpt, crc)))
		return -EBADMSG;
	r = check_uuid(d.uuid, uuid);
	if (r)
		return r;
	if (d.flags || d.reserved || no > UINT32_MAX)
		return -EBADMSG;

	memcpy(c->uuid, d.uuid, BS3_UUID_LEN);
	c->seq = le64toh(d.seq);
	c->epoch = le64toh(d.epoch);
	c->time = le64toh(d.time);
	c->nr_objects = no;
	c->nr_extents = ne;
	c->objs = calloc(no ? no : 1, sizeof(*c->objs));
	c->exts = calloc(ne ? ne : 1, sizeof(*c->exts));
	if (!c->objs || !c->exts) {
		bs3_ckpt_free(c);
		return -ENOMEM;
	}
	p += sizeof(d);
	for (uint64_t i = 0; i < no; i++) {
		struct bs3_disk_ckpt_obj o;
		struct bs3_ckpt_obj *s = &c->objs[i];

		memcpy(&o, p, sizeof(o));
		p += sizeof(o);
		s->seq = le64toh(o.seq);
		s->epoch = le64toh(o.epoch);
		s->data_offset = le32toh(o.data_offset);
		s->data_len = le32toh(o.data_len);
		s->live_blocks = le32toh(o.live_blocks);
		s->flags = le32toh(o.flags);
		/* Objects the checkpoint covers: at or before its seq. */
		if (!s->seq || s->seq > c->seq || s->data_offset % 512 ||
		    s->data_offset < bs3_obj_data_offset(0) ||
		    (s->flags & ~OBJ_FLAGS_KNOWN))
			goto bad;
	}
	for (uint64_t i = 0; i < ne; i++) {
		struct bs3_disk_ckpt_ext e;
		struct bs3_ckpt_ext *s = &c->exts[i];

		memcpy(&e, p, sizeof(e));
		p += sizeof(e);
		s->lba = le64toh(e.lba);
		s->nblocks = le32toh(e.nblocks);
		s->obj = le32toh(e.obj);
		s->off = le32toh(e.off);
		if (e.reserved || !s->nblocks || s->obj >= no || s->lba < end ||
		    s->lba + s->nblocks < s->lba ||
		    (nr_blocks && s->lba + s->nblocks > nr_blocks) ||
		    s->off > BS3_MAX_OBJ_BLOCKS ||
		    s->nblocks > BS3_MAX_OBJ_BLOCKS - s->off)
			goto bad;
		end = s->lba + s->nblocks;
	}
	return 0;
bad:
	bs3_ckpt_free(c);
	return -EBADMSG;
}

/* ---- keys ---- */

unsigned int bs3_key_hash(uint64_t seq)
{
	/* Fibonacci hashing: consecutive seqs land on well-spread prefixes. */
	return (unsigned int)((seq * 0x9E3779B97F4A7C15ull) >> 56);
}

void bs3_key_super(char *buf, size_t len, const char *vol)
{
	snprintf(buf, len, "%s/super", vol);
}

void bs3_key_epoch(char *buf, size_t len, const char *vol, uint64_t epoch)
{
	snprintf(buf, len, "%s/e/%016" PRIx64, vol, epoch);
}

void bs3_key_ckpt(char *buf, size_t len, const char *vol, uint64_t seq,
		  uint64_t epoch)
{
	snprintf(buf, len, "%s/c/%016" PRIx64 "-%016" PRIx64, vol, seq, epoch);
}

void bs3_key_data(char *buf, size_t len, const char *vol, uint64_t seq,
		  uint64_t epoch)
{
	snprintf(buf, len, "%s/d/%02x/%016" PRIx64 "-%016" PRIx64, vol,
		 bs3_key_hash(seq), seq, epoch);
}

/* Exactly n lower-case hex digits at s; the value in *v. */
static bool parse_hex(const char *s, size_t n, uint64_t *v)
{
	uint64_t x = 0;

	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (c >= '0' && c <= '9')
			x = x << 4 | (uint64_t)(c - '0');
		else if (c >= 'a' && c <= 'f')
			x = x << 4 | (uint64_t)(c - 'a' + 10);
		else
			return false;
	}
	*v = x;
	return true;
}

/* "<seq>-<epoch>" and nothing after. */
static bool parse_seq_epoch(const char *s, uint64_t *seq, uint64_t *epoch)
{
	return strlen(s) == 33 && s[16] == '-' && parse_hex(s, 16, seq) &&
	       parse_hex(s + 17, 16, epoch);
}

enum bs3_key_type bs3_key_parse(const char *key, const char *vol, uint64_t *seq,
				uint64_t *epoch)
{
	size_t vl = strlen(vol);
	uint64_t s = 0, e = 0, hh;
	enum bs3_key_type t = BS3_KEY_OTHER;
	const char *k;

	if (strncmp(key, vol, vl) || key[vl] != '/')
		return BS3_KEY_OTHER;
	k = key + vl + 1;
	if (!strcmp(k, "super")) {
		t = BS3_KEY_SUPER;
	} else if (!strncmp(k, "e/", 2)) {
		if (strlen(k + 2) == 16 && parse_hex(k + 2, 16, &e))
			t = BS3_KEY_EPOCH;
	} else if (!strncmp(k, "c/", 2)) {
		if (parse_seq_epoch(k + 2, &s, &e))
			t = BS3_KEY_CKPT;
	} else if (!strncmp(k, "d/", 2)) {
		if (parse_hex(k + 2, 2, &hh) && k[4] == '/' &&
		    parse_seq_epoch(k + 5, &s, &e) && hh == bs3_key_hash(s))
			t = BS3_KEY_DATA;
	}
	if (t == BS3_KEY_OTHER)
		return t;
	if (seq)
		*seq = s;
	if (epoch)
		*epoch = e;
	return t;
}
