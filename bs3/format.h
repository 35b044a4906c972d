/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * BS3's format in the bucket, version 1.  docs/bs3-format.md explains every
 * field; this header is the one definition.  All integers little-endian;
 * every record carries a CRC32C (Castagnoli, ISA-L's crc32_iscsi with seed
 * 0xffffffff, then inverted: the iSCSI CRC), computed with its crc field 0.
 *
 * A volume is a key prefix VOL inside a bucket (s3://BUCKET/VOL):
 *   VOL/super                          superblock, written once by create
 *   VOL/e/<epoch %016x>                one per writer that attached (fencing)
 *   VOL/c/<seq %016x>-<epoch %016x>    checkpoint of the map after object seq
 *   VOL/d/<hh>/<seq %016x>-<epoch %016x> data object; hh = bs3_key_hash(seq)
 *                                      spreads objects over 256 prefixes
 * Every object is written once and never modified (no read-modify-write).
 */
#ifndef BS3_FORMAT_H
#define BS3_FORMAT_H

#include <stdint.h>

#define BS3_FORMAT_VERSION 1

#define BS3_MAGIC_SUPER "BS3SUPER" /* 8 bytes, no NUL */
#define BS3_MAGIC_OBJ	"BS3OBJCT"
#define BS3_MAGIC_CKPT	"BS3CKPT1"
#define BS3_MAGIC_EPOCH "BS3EPOCH"

#define BS3_UUID_LEN 16

/* Limits a volume is created within. */
#define BS3_MIN_BLOCK	   512
#define BS3_MAX_BLOCK	   4096
#define BS3_MAX_OBJ_BLOCKS 65536 /* an object's data, in blocks */
#define BS3_MAX_OBJ_EXTENTS 65536

/* VOL/super: 128 bytes. */
struct bs3_disk_super {
	char magic[8];	  /* BS3_MAGIC_SUPER */
	uint32_t version; /* BS3_FORMAT_VERSION; a newer one is refused */
	uint32_t flags;	  /* 0 */
	uint8_t uuid[BS3_UUID_LEN]; /* volume id, in every object of it */
	uint64_t size;		    /* bytes, a multiple of block_size */
	uint32_t block_size;	    /* 512..4096, a power of two */
	uint32_t object_size;	    /* bytes of data per object, a multiple
				     * of block_size, <= BS3_MAX_OBJ_BLOCKS blocks */
	uint64_t created;	    /* Unix seconds */
	uint8_t reserved[68];	    /* 0 */
	uint32_t crc;		    /* CRC32C of the 128 bytes with crc = 0 */
} __attribute__((packed));

/* VOL/e/<epoch>: 128 bytes. */
struct bs3_disk_epoch {
	char magic[8]; /* BS3_MAGIC_EPOCH */
	uint32_t version;
	uint32_t flags; /* 0 */
	uint8_t uuid[BS3_UUID_LEN];
	uint64_t epoch;
	uint8_t writer_id[16]; /* random: tells two claims of one epoch apart */
	uint64_t time;	       /* Unix seconds */
	uint32_t pid;
	char host[56]; /* NUL-padded */
	uint32_t crc;
} __attribute__((packed));

/* Object flags */
#define BS3_OBJ_EPOCH_START (1U << 0) /* first object of an epoch (may be empty) */
#define BS3_OBJ_GC	    (1U << 1) /* written by garbage collection */

/*
 * Data object: header, then nr_extents extent records, zero padding up to
 * data_offset (a multiple of 512), then data_len bytes of data.
 */
struct bs3_disk_obj {
	char magic[8]; /* BS3_MAGIC_OBJ */
	uint32_t version;
	uint32_t flags; /* BS3_OBJ_* */
	uint8_t uuid[BS3_UUID_LEN];
	uint64_t seq;	/* position in the volume's log, from 1 */
	uint64_t epoch; /* writer epoch that wrote it */
	uint32_t nr_extents;
	uint32_t data_offset; /* bytes from the object's start */
	uint32_t data_len;    /* bytes, a multiple of the block size */
	uint32_t data_crc;    /* CRC32C of the data */
	uint64_t time;	      /* Unix seconds, informational */
	uint32_t reserved;    /* 0 */
	uint32_t hdr_crc;     /* CRC32C of header + extent records, this 0 */
} __attribute__((packed));

/* Extent kinds, applied to the map in record order. */
enum bs3_ext_kind {
	BS3_EXT_DATA = 1, /* lba..+nblocks now reads data_off..+nblocks of this object */
	BS3_EXT_ZERO = 2, /* discard / write-zeroes: lba..+nblocks read as zeros */
	BS3_EXT_MOVE = 3, /* GC: the blocks of lba..+nblocks that still map to
			   * (src_seq, src_off..) now map to (this, data_off..) */
};

/* 32 bytes. */
struct bs3_disk_ext {
	uint64_t lba; /* in blocks */
	uint32_t nblocks;
	uint32_t kind;	   /* enum bs3_ext_kind */
	uint32_t data_off; /* DATA/MOVE: block offset in this object's data */
	uint32_t src_off;  /* MOVE: block offset in the source object's data */
	uint64_t src_seq;  /* MOVE: the source object's seq */
} __attribute__((packed));

/*
 * Checkpoint: header, nr_objects object records, nr_extents extent records.
 * The map after applying every object up to and including seq.
 */
struct bs3_disk_ckpt {
	char magic[8]; /* BS3_MAGIC_CKPT */
	uint32_t version;
	uint32_t flags; /* 0 */
	uint8_t uuid[BS3_UUID_LEN];
	uint64_t seq;	/* last object applied */
	uint64_t epoch; /* of the writer that wrote it, and of object seq */
	uint64_t nr_objects;
	uint64_t nr_extents;
	uint64_t time;
	uint32_t reserved; /* 0 */
	uint32_t crc;	   /* CRC32C of the whole checkpoint, this 0 */
} __attribute__((packed));

/* 32 bytes: one object the map refers to; index = position in the table. */
struct bs3_disk_ckpt_obj {
	uint64_t seq;
	uint64_t epoch;
	uint32_t data_offset;
	uint32_t data_len;
	uint32_t live_blocks;
	uint32_t flags;
} __attribute__((packed));

/* 24 bytes, in lba order, not overlapping. */
struct bs3_disk_ckpt_ext {
	uint64_t lba;
	uint32_t nblocks;
	uint32_t obj; /* index into the object table */
	uint32_t off; /* block offset in that object's data */
	uint32_t reserved;
} __attribute__((packed));

_Static_assert(sizeof(struct bs3_disk_super) == 128, "super is 128 bytes");
_Static_assert(sizeof(struct bs3_disk_epoch) == 128, "epoch is 128 bytes");
_Static_assert(sizeof(struct bs3_disk_obj) == 80, "object header is 80 bytes");
_Static_assert(sizeof(struct bs3_disk_ext) == 32, "extent is 32 bytes");
_Static_assert(sizeof(struct bs3_disk_ckpt) == 80, "checkpoint header is 80 bytes");
_Static_assert(sizeof(struct bs3_disk_ckpt_obj) == 32, "ckpt object is 32 bytes");
_Static_assert(sizeof(struct bs3_disk_ckpt_ext) == 24, "ckpt extent is 24 bytes");

#endif /* BS3_FORMAT_H */
