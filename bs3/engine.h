/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * BS3 engine internals shared by volume.c, writer.c, reader.c,
 * checkpoint.c, gc.c and fence.c.  docs/bs3.md explains the design; this
 * header only says who owns what.
 *
 * Locking: one mutex (v->lock) protects everything below except the
 * constant fields (geometry, names, client).  Callbacks to the user are
 * never called with it held: they are queued (bs3_cb_queue) and run by the
 * callback thread.  S3 requests are submitted after dropping the lock.
 */
#ifndef BS3_ENGINE_H
#define BS3_ENGINE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "bs3.h"
#include "cache.h"
#include "map.h"
#include "object.h"
#include "s3.h"

/*
 * The read cache's chunk: a miss reads whole chunks, so this is also the
 * read amplification of a small cold read with a cache (none without).
 */
#define BS3_READ_CHUNK (64u * 1024)

enum bs3_obj_state {
	BS3_OBJ_OPEN = 1,  /* gathering writes, no seq yet */
	BS3_OBJ_SEALED,	   /* has a seq and a header, waiting for an upload slot */
	BS3_OBJ_UPLOADING, /* PUT in flight */
	BS3_OBJ_STORED,	   /* in the bucket (maybe not yet released) */
};

struct bs3_cbent {
	bs3_cb cb;
	void *arg;
	int status;
};

/* A growable list of callbacks. */
struct bs3_cblist {
	struct bs3_cbent *v;
	size_t n, cap;
};

/* One entry of the object table; its index is the map's object id. */
struct bs3_objslot {
	struct bs3_vol *vol;
	uint32_t id;
	int state;
	uint64_t seq, epoch;
	uint32_t flags;	      /* BS3_OBJ_* */
	uint32_t data_offset; /* bytes before the data (known once sealed) */
	uint32_t nblocks;     /* data blocks */
	unsigned pins;	      /* reads in flight from the bucket */
	bool orphan;	      /* not indexed by seq (a recovery leftover) */
	bool released;	      /* its writes have been released */
	/*
	 * In-memory data until released: iov[0] is the header, iov[1..] the
	 * data, iov_blk[i] the first data block of iov[i].
	 */
	struct iovec *iov;
	uint32_t *iov_blk;
	size_t niov, iov_cap;
	struct bs3_extent *ext;
	size_t next, ext_cap;
	struct bs3_cblist cbs; /* released in order when stored */
	void *hdr;
	void *own;	/* a buffer the engine owns (GC data), freed at release */
	uint64_t dirty; /* bytes it adds to v->dirty */
	struct s3_req req;
	char key[256];
};

struct bs3_flushent {
	uint64_t target; /* done when every seq <= target is stored + fenced */
	bs3_cb cb;
	void *arg;
};

struct bs3_seqep {
	uint64_t seq, epoch;
};

/* A checkpoint we keep (the newest two), and what it refers to. */
struct bs3_kept {
	bool valid;
	uint64_t seq, epoch;
	struct bs3_seqep *objs; /* sorted */
	size_t nobj;
};

struct bs3_vol {
	struct bs3_opts o;
	char *bucket, *vol;
	struct s3_client *cl;
	bool own_client;
	struct bs3_super sb;
	struct bs3_geometry geo;
	uint64_t nr_blocks;
	uint32_t bs;
	bool read_only;

	pthread_mutex_t lock;
	pthread_cond_t cond;   /* any state change (stores, dirty, fencing) */
	pthread_cond_t bgcond; /* wakes the background thread */
	pthread_cond_t cbcond; /* wakes the callback thread */

	struct bs3_map *map;
	struct bs3_cache *cache; /* optional local read cache (own lock) */
	struct bs3_objslot **slots;
	size_t nslots;
	uint32_t *free_ids;
	size_t nfree;
	void *seq_root; /* tsearch tree of slots by seq */

	struct bs3_objslot *open;
	uint64_t open_since_ms; /* first write into the open object */
	/* sealed, not yet released objects, in seq order */
	uint64_t stored_blocks; /* data blocks of every stored object */
	bool gc_stalled;	/* the last GC pass could do nothing */
	struct bs3_objslot **fifo;
	size_t fifo_n, fifo_cap;
	uint64_t next_seq;
	uint64_t stored_upto; /* every seq <= this is stored */
	unsigned inflight;
	uint64_t dirty;
	int failed; /* 0, -ESTALE (fenced) or -EIO: nothing more is stored */

	/* fencing */
	uint64_t epoch;
	uint8_t writer_id[16];
	char epoch_etag[80];

	/* flushes waiting for stores and a fence check */
	struct bs3_flushent *flushes;
	size_t nflush, flush_cap;

	/* callbacks waiting for the callback thread */
	struct bs3_cblist cbq;
	bool cb_busy;

	pthread_t cb_thread, bg_thread;
	bool threads;
	bool stop;
	bool closing;

	/* checkpoints */
	struct bs3_kept kept[2]; /* [0] newest */
	uint64_t ckpt_time;
	uint64_t objs_since_ckpt;
	uint64_t last_ckpt_ms;
	bool ckpt_busy;
	bool gc_busy;

	/* counters */
	uint64_t st_uploads, st_upload_bytes, st_retries, st_reads_memory,
		st_gc_rewritten, st_gc_deleted;
};

/* ---- volume.c ---- */
uint64_t bs3_now_ms(void);
void bs3_progress(struct bs3_vol *v, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Queue a callback for the callback thread (lock held). */
void bs3_cb_queue(struct bs3_vol *v, bs3_cb cb, void *arg, int status);
int bs3_cblist_add(struct bs3_cblist *l, bs3_cb cb, void *arg, int status);
/* A new, empty slot (lock held or single-threaded); NULL on ENOMEM. */
struct bs3_objslot *bs3_slot_new(struct bs3_vol *v);
/* Index / unindex a slot by seq; find the indexed slot of a seq. */
int bs3_slot_index(struct bs3_vol *v, struct bs3_objslot *s);
void bs3_slot_unindex(struct bs3_vol *v, struct bs3_objslot *s);
struct bs3_objslot *bs3_slot_by_seq(struct bs3_vol *v, uint64_t seq);
/* Mark a slot's object stored (counts it in stored_blocks). */
void bs3_slot_set_stored(struct bs3_vol *v, struct bs3_objslot *s);
/* Drop a slot whose object is gone from the bucket (live 0, no pins). */
void bs3_slot_free(struct bs3_vol *v, struct bs3_objslot *s);
/* Drop the in-memory data of a released object. */
void bs3_slot_drop_data(struct bs3_objslot *s);
/* Synchronous GET of a whole object into a malloc'd buffer. */
int bs3_get_whole(struct bs3_vol *v, const char *key, void **buf,
		  size_t *len);
/* Synchronous PUT of one buffer; retry_ms as in struct s3_req. */
int bs3_put_buf(struct bs3_vol *v, const char *key, const void *buf,
		size_t len, uint32_t retry_ms, bool if_none_match, char *etag);

/* ---- writer.c ---- */
/* Seal the open object if it has anything (lock held). */
void bs3_seal_open(struct bs3_vol *v);
/*
 * Give a ready object (header encoded, data in iov) the next seq and queue
 * it for upload; used by sealing and by GC (lock held).
 */
void bs3_queue_object(struct bs3_vol *v, struct bs3_objslot *s);
/* Submit queued uploads up to the limit (takes and drops the lock). */
void bs3_kick_uploads(struct bs3_vol *v);
/* Stop storing: fail every unstored write and every flush (lock held). */
void bs3_fail(struct bs3_vol *v, int err);
/* Complete the flushes a fence check that covered `covers` allows. */
void bs3_flush_complete(struct bs3_vol *v, uint64_t covers, int status);
/* Wait until nothing is sealed-unstored (lock held); 0 or v->failed. */
int bs3_wait_stored(struct bs3_vol *v, uint64_t seq);

/* ---- reader.c ---- */
/* (bs3_read in bs3.h) */

/* ---- fence.c ---- */
/* Claim a new epoch: PUT VOL/e/<epoch> (see docs/bs3.md). */
int bs3_fence_claim(struct bs3_vol *v, char *err, size_t errlen);
/* 0 if we still own the volume, -ESTALE if fenced, other -errno if the
 * check could not be made. */
int bs3_fence_check(struct bs3_vol *v);

/* ---- checkpoint.c ---- */
/*
 * Build the state from the bucket: newest valid checkpoint + roll-forward.
 * With `write`, also remove what lies beyond the run and write the epoch's
 * first object.
 */
int bs3_recover(struct bs3_vol *v, bool write, char *err, size_t errlen);
/* Write a checkpoint of the current map (no lock held). */
int bs3_checkpoint(struct bs3_vol *v);
void bs3_kept_free(struct bs3_kept *k);
/*
 * Nothing was written since the newest checkpoint: verify that it reads
 * back whole, then forget (and delete) the older one, so that what only
 * it named may be deleted (no lock held).
 */
int bs3_checkpoint_retire(struct bs3_vol *v);
/* Does the kept checkpoint's object table name (seq, epoch)? */
bool bs3_kept_has(const struct bs3_kept *k, uint64_t seq, uint64_t epoch);

/* ---- gc.c ---- */
/* One GC pass: rewrite emptiest objects, delete dead ones (no lock). */
int bs3_gc_pass(struct bs3_vol *v, bool force);
/* Is a background pass worth it now? (lock held) */
bool bs3_gc_wanted(struct bs3_vol *v);
/*
 * Dead objects wait only for a checkpoint (deletion needs that no kept
 * checkpoint name them or precede them), and they outweigh what writing
 * one costs? (lock held)
 */
bool bs3_gc_ckpt_wanted(struct bs3_vol *v);
/*
 * The bucket's bound in bytes: 2 x live data (GC keeps every object at
 * least gc_live_pct = 50% live) + 8 objects + twice a checkpoint's size
 * (dead objects wait for at most two checkpoints).  (lock held)
 */
uint64_t bs3_gc_bound(struct bs3_vol *v);
/* The bucket exceeds its bound. (lock held) */
bool bs3_gc_over(struct bs3_vol *v);
/* Writes must wait for GC: over, and GC can still help. (lock held) */
bool bs3_gc_behind(struct bs3_vol *v);
/* Delete objects nothing needs any more (no lock); count deleted. */
int bs3_gc_delete(struct bs3_vol *v);

#endif /* BS3_ENGINE_H */
