/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * BS3: a block volume whose blocks live in an S3 bucket, log-structured.
 * This is the engine's whole interface, used by the BUSE driver
 * (drivers/bs3.c), the tool's `buse bs3 ...` commands and the tests; it
 * runs on any host, no kernel module needed.  docs/bs3.md is the design,
 * docs/bs3-format.md the format.
 *
 * Data path in one paragraph: bs3_write() applies a write to the in-memory
 * map at once (a read issued after it returns sees the new data) and keeps
 * a pointer to the caller's buffer, which must stay valid until the
 * write's release callback runs.  Writes gather into an open object of
 * object_size bytes, sealed when full, at a flush, or after seal_ms; sealed
 * objects upload in parallel straight from those buffers (no object is
 * assembled; libcurl copies each body piecewise into its send buffer).  A
 * write is released when its object and every object before it are stored,
 * i.e. in the order recovery replays them.  A flush completes when every
 * object with earlier writes is stored and the writer is still the volume's
 * owner (fencing).
 *
 * Callbacks (release, done) run on the engine's thread, never inside the
 * call that registered them, and must not block; they may call into the
 * engine again.
 */
#ifndef BS3_BS3_H
#define BS3_BS3_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "s3.h"

struct bs3_vol;

/* "s3://BUCKET/VOLUME" -> malloc'd bucket and volume; -1 + err if invalid. */
int bs3_parse_url(const char *url, char **bucket, char **volume, char *err,
		  size_t errlen);

struct bs3_opts {
	const char *bucket;
	const char *volume; /* key prefix of the volume, without a trailing '/' */
	/* Where and who; ignored when client is set. */
	const struct s3_config *s3;
	/* A client to use instead (not freed by the engine): the tests' fake. */
	struct s3_client *client;

	const char *cache_dir; /* local read cache; NULL: none */
	uint64_t cache_size;   /* bytes; default 1 GiB when cache_dir is set */
	/* Unstored bytes before bs3_write() waits; default 256 MiB. */
	uint64_t dirty_limit;
	unsigned uploads;     /* objects uploading at once; default 8 */
	unsigned seal_ms;     /* seal a non-empty open object after; default 1000 */
	unsigned ckpt_objects; /* checkpoint after this many objects; default 64 */
	unsigned ckpt_seconds; /* ... or this many seconds; default 300 */
	/* GC rewrites objects whose live share is below this %; 0: default 50 */
	unsigned gc_live_pct;
	bool no_gc; /* tests: no background GC */
	bool read_only;
	/* Progress of attach/recovery, one line at a time; NULL: stderr. */
	void (*progress)(void *arg, const char *line);
	void *progress_arg;
	/* Bracket every burst of callbacks (e.g. buse_batch_begin/end). */
	void (*cb_begin)(void *arg);
	void (*cb_end)(void *arg);
	void *cb_arg;
};

/* Volume geometry. */
struct bs3_geometry {
	uint64_t size;
	uint32_t block_size;
	uint32_t object_size;
	uint8_t uuid[16];
	uint32_t version;
};

/*
 * Make a new, empty volume (writes VOL/super).  Refuses (-EEXIST) when
 * anything exists under VOL/.  Checks the bucket first; returns 0 or a
 * negative errno with one clear line in err, and changes nothing in the
 * bucket on failure.
 */
int bs3_create(const struct bs3_opts *o, uint64_t size, uint32_t block_size,
	       uint32_t object_size, char *err, size_t errlen);

/*
 * Attach: read the superblock (never creates), claim a new writer epoch,
 * load the newest valid checkpoint, roll forward over the unbroken run of
 * objects after it, write the epoch's first object, remove what lies
 * beyond a gap, start uploads and GC.  Read-only attach claims nothing.
 */
int bs3_open(const struct bs3_opts *o, struct bs3_vol **out, char *err,
	     size_t errlen);

/*
 * Detach: seal and store everything, write a checkpoint, stop.  Returns 0
 * or the first error that made data not durable (-EIO, -ESTALE if fenced).
 * Every pending callback has run when it returns.
 */
int bs3_close(struct bs3_vol *v);

const struct bs3_geometry *bs3_geometry(const struct bs3_vol *v);

/* Return value of the asynchronous calls: the callback will run later. */
#define BS3_PENDING 1

typedef void (*bs3_cb)(void *arg, int status);

/*
 * Apply a write (off, len multiples of block_size, inside the volume).
 * Returns 0 once applied; buf must stay valid until release(arg, status)
 * runs: status 0 when stored, negative when it never will be (fenced,
 * closed after a permanent error).  Waits while dirty_limit bytes are
 * unstored.  Returns a negative errno (and never calls release) if the
 * write was not accepted.
 */
int bs3_write(struct bs3_vol *v, uint64_t off, uint32_t len, const void *buf,
	      bs3_cb release, void *arg);

/*
 * Read into buf.  Returns 0 when served at once (memory, cache, zeros),
 * BS3_PENDING when done(arg, status) will run, or a negative errno.
 */
int bs3_read(struct bs3_vol *v, uint64_t off, uint32_t len, void *buf,
	     bs3_cb done, void *arg);

/*
 * Discard / write-zeroes (the range reads as zeros from now on): applied at
 * once, done(arg, status) when durable.  BS3_PENDING or negative errno.
 */
int bs3_discard(struct bs3_vol *v, uint64_t off, uint64_t len, bs3_cb done,
		void *arg);

/*
 * Flush: done(arg, 0) when every write, discard applied before the call is
 * stored and this writer still owns the volume; -ESTALE when a newer
 * writer took over (fenced), -EIO on a permanent upload failure.
 */
int bs3_flush(struct bs3_vol *v, bs3_cb done, void *arg);

/* Blocking conveniences for tools and tests (not from callbacks). */
int bs3_read_sync(struct bs3_vol *v, uint64_t off, uint32_t len, void *buf);
int bs3_flush_sync(struct bs3_vol *v);

struct bs3_stats {
	/* the volume */
	uint64_t objects;      /* data objects in the bucket (known) */
	uint64_t bytes_stored; /* their bytes (inspect: as listed) */
	uint64_t live_bytes;   /* data bytes the map refers to */
	double garbage_ratio;  /* 1 - live/stored */
	uint64_t ckpt_seq;     /* last checkpoint's object seq */
	uint64_t ckpt_time;    /* Unix seconds */
	uint64_t checkpoints;  /* checkpoint objects in the bucket */
	uint64_t epoch;	       /* writer epoch */
	uint64_t next_seq;
	uint64_t map_extents;
	uint64_t map_bytes;
	/* an attached volume */
	uint64_t dirty_bytes;	  /* applied, not yet stored */
	uint32_t uploads_in_flight;
	uint64_t uploads;	  /* objects stored */
	uint64_t upload_bytes;	  /* their size, headers included */
	uint64_t retries;	  /* S3 request retries */
	uint64_t reads_memory;	  /* reads served from unstored data */
	uint64_t cache_hits;
	uint64_t cache_misses;
	uint64_t gc_rewritten;	  /* objects rewritten by GC */
	uint64_t gc_deleted;	  /* objects deleted */
	bool fenced;
};

void bs3_get_stats(struct bs3_vol *v, struct bs3_stats *st);

/* Offline, read-only: the volume's state without attaching. */
int bs3_inspect(const struct bs3_opts *o, struct bs3_geometry *g,
		struct bs3_stats *st, char *err, size_t errlen);

/*
 * Read every object: header and data checksums, uuid, and that the map
 * (checkpoint + roll-forward) refers only to existing objects and to data
 * inside them.  Prints findings to report; returns 0 if clean, -EBADMSG if
 * anything is wrong, other negative errno if it could not check.
 */
int bs3_check(const struct bs3_opts *o, FILE *report, char *err,
	      size_t errlen);

/* Remove every key of the volume. */
int bs3_destroy(const struct bs3_opts *o, char *err, size_t errlen);

/* Run one GC pass now (tests); returns objects rewritten or -errno. */
int bs3_gc_now(struct bs3_vol *v);
/* Write a checkpoint now (tests); 0 or -errno. */
int bs3_checkpoint_now(struct bs3_vol *v);

#endif /* BS3_BS3_H */
