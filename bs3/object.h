/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Encoding and decoding of everything BS3 stores (format.h), key names and
 * checksums.  In-memory structures are host-endian and independent of the
 * packed disk layout; these functions are the only place that converts.
 *
 * Decoders return 0, or:
 *   -EAGAIN          the buffer is too short; *need says how many bytes
 *                    (object headers only: superblock, epoch claim and
 *                    checkpoint are whole objects, so short is -EBADMSG)
 *   -EBADMSG         wrong magic, bad checksum, inconsistent fields
 *   -EPROTONOSUPPORT a newer format version than this build reads
 *   -EXDEV           another volume's uuid (a uuid of NULL checks none)
 */
#ifndef BS3_OBJECT_H
#define BS3_OBJECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "format.h"

/* CRC32C, chainable: crc = bs3_crc32c(crc, p, n), starting from 0. */
uint32_t bs3_crc32c(uint32_t crc, const void *p, size_t n);

/* ---- superblock ---- */
struct bs3_super {
	uint32_t version;
	uint8_t uuid[BS3_UUID_LEN];
	uint64_t size;
	uint32_t block_size;
	uint32_t object_size;
	uint64_t created;
};

/* out: sizeof(struct bs3_disk_super) bytes */
void bs3_super_encode(const struct bs3_super *s, void *out);
int bs3_super_decode(const void *buf, size_t len, struct bs3_super *s);
/* Geometry checks of create: 0 or -EINVAL with a reason in err. */
int bs3_super_validate(const struct bs3_super *s, char *err, size_t errlen);

/* ---- epoch claim ---- */
struct bs3_epoch {
	uint8_t uuid[BS3_UUID_LEN];
	uint64_t epoch;
	uint8_t writer_id[16];
	uint64_t time;
	uint32_t pid;
	char host[56];
};

void bs3_epoch_encode(const struct bs3_epoch *e, void *out); /* 128 bytes */
int bs3_epoch_decode(const void *buf, size_t len, const uint8_t *uuid,
		     struct bs3_epoch *e);

/* ---- data objects ---- */
struct bs3_extent {
	uint64_t lba;
	uint32_t nblocks;
	uint32_t kind; /* enum bs3_ext_kind */
	uint32_t data_off;
	uint32_t src_off;
	uint64_t src_seq;
};

struct bs3_obj_info {
	uint32_t flags; /* BS3_OBJ_* */
	uint8_t uuid[BS3_UUID_LEN];
	uint64_t seq;
	uint64_t epoch;
	uint32_t nr_extents;
	uint32_t data_offset;
	uint32_t data_len;
	uint32_t data_crc;
	uint64_t time;
};

/* Bytes before the data for nr_extents records (a multiple of 512). */
uint32_t bs3_obj_data_offset(uint32_t nr_extents);

/*
 * Write the header and records into out (info->data_offset bytes, which
 * must equal bs3_obj_data_offset(info->nr_extents)), padding with zeros.
 * info->data_crc must already be the CRC of the data.
 */
void bs3_obj_encode(const struct bs3_obj_info *info,
		    const struct bs3_extent *ext, void *out);

/*
 * Decode a header from the first len bytes of an object.  On success
 * *ext is a malloc'd array of info->nr_extents records (free()).  Checks
 * magic, version, uuid, header CRC and that every extent lies within the
 * data and, given nr_blocks (the volume's size in blocks; 0 skips it), the
 * volume.  block_size is the volume's.
 */
int bs3_obj_decode(const void *buf, size_t len, const uint8_t *uuid,
		   uint32_t block_size, uint64_t nr_blocks,
		   struct bs3_obj_info *info, struct bs3_extent **ext,
		   size_t *need);

/*
 * Check the data CRC of a whole object (buf = the object, len its size,
 * which must be exactly data_offset + data_len: a torn object is shorter).
 */
int bs3_obj_check_data(const struct bs3_obj_info *info, const void *buf,
		       size_t len);

/* ---- checkpoints ---- */
struct bs3_ckpt_obj {
	uint64_t seq;
	uint64_t epoch;
	uint32_t data_offset;
	uint32_t data_len;
	uint32_t live_blocks;
	uint32_t flags;
};

struct bs3_ckpt_ext {
	uint64_t lba;
	uint32_t nblocks;
	uint32_t obj; /* index into objs */
	uint32_t off;
};

struct bs3_ckpt {
	uint8_t uuid[BS3_UUID_LEN];
	uint64_t seq;
	uint64_t epoch;
	uint64_t time;
	uint64_t nr_objects;
	uint64_t nr_extents;
	struct bs3_ckpt_obj *objs;
	struct bs3_ckpt_ext *exts;
};

size_t bs3_ckpt_size(uint64_t nr_objects, uint64_t nr_extents);
/* out: bs3_ckpt_size() bytes */
void bs3_ckpt_encode(const struct bs3_ckpt *c, void *out);
/*
 * Decode (and allocate c->objs, c->exts: free with bs3_ckpt_free()).
 * Also checks that extents are sorted, do not overlap, lie inside
 * nr_blocks (0: unchecked) and name existing table entries.
 */
int bs3_ckpt_decode(const void *buf, size_t len, const uint8_t *uuid,
		    uint64_t nr_blocks, struct bs3_ckpt *c);
void bs3_ckpt_free(struct bs3_ckpt *c);

/* ---- keys ---- */
/* Which of the 256 data prefixes seq goes under. */
unsigned bs3_key_hash(uint64_t seq);
/* "VOL/super", "VOL/e/<epoch>", "VOL/c/<seq>-<epoch>", "VOL/d/<hh>/<seq>-<epoch>" */
void bs3_key_super(char *buf, size_t len, const char *vol);
void bs3_key_epoch(char *buf, size_t len, const char *vol, uint64_t epoch);
void bs3_key_ckpt(char *buf, size_t len, const char *vol, uint64_t seq,
		  uint64_t epoch);
void bs3_key_data(char *buf, size_t len, const char *vol, uint64_t seq,
		  uint64_t epoch);

enum bs3_key_type {
	BS3_KEY_OTHER,
	BS3_KEY_SUPER,
	BS3_KEY_EPOCH,
	BS3_KEY_CKPT,
	BS3_KEY_DATA,
};

/*
 * Classify a full key of volume vol and parse its numbers (seq/epoch may be
 * NULL).  A key that only looks similar (wrong hash prefix, bad digits)
 * is BS3_KEY_OTHER.
 */
enum bs3_key_type bs3_key_parse(const char *key, const char *vol,
				uint64_t *seq, uint64_t *epoch);

#endif /* BS3_OBJECT_H */
