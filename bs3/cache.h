/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * BS3's optional local read cache: data of stored objects, kept in one
 * file, DIR/bs3-cache, of at most size_bytes.  The file is emptied at open
 * and its index lives only in memory: objects are immutable, so nothing
 * in it can go stale while a volume is attached, and nothing needs to
 * survive a detach.  The file is locked (flock) so two devices cannot
 * share a directory.
 *
 * The cache holds fixed-size chunks of an object's data: chunk i of object
 * seq holds data bytes i*chunk_bytes.. (offsets are within the object's
 * data, not counting its header).  A chunk holds a prefix of those bytes
 * (an object's last chunk is usually short).  Eviction is CLOCK: a chunk
 * read since it was cached survives one sweep.  Seqs name objects of the
 * attached volume only (a seq is never reused within one attach).
 *
 * Thread-safe: one mutex around the index; file I/O runs outside it with
 * the chunk pinned, so eviction never reuses a chunk being read or
 * written.
 */
#ifndef BS3_CACHE_H
#define BS3_CACHE_H

#include <stddef.h>
#include <stdint.h>

#define BS3_CACHE_FILE	"bs3-cache"
#define BS3_CACHE_CHUNK (256u * 1024) /* default chunk size */

struct bs3_cache;

struct bs3_cache_stats {
	uint64_t hits;	     /* bs3_cache_get() calls served */
	uint64_t misses;     /* ... not served */
	uint64_t hit_bytes;  /* bytes served */
	uint64_t bytes;	     /* valid bytes held now */
	uint64_t chunks;     /* chunks held now */
	uint64_t capacity;   /* the size limit, rounded down to chunks */
	uint64_t evictions;  /* chunks evicted for room */
	uint64_t put_errors; /* puts that failed (file errors, all pinned) */
};

/*
 * Open (creating dir and the file if needed) a cache of at most size_bytes
 * (>= one chunk) in chunks of chunk_bytes (a power of two from 4 KiB to
 * 64 MiB; 0: BS3_CACHE_CHUNK).  0, or a negative errno with one line in err.
 */
int bs3_cache_open(const char *dir, uint64_t size_bytes, uint32_t chunk_bytes,
		   struct bs3_cache **out, char *err, size_t errlen);
/* Close, emptying the file.  No call may be running. */
void bs3_cache_close(struct bs3_cache *c);

/*
 * Read data bytes off..off+len-1 of object seq into buf: 0 when every byte
 * was cached, else -ENOENT (buf's contents undefined).  A file read error
 * drops the chunk and counts as a miss.
 */
int bs3_cache_get(struct bs3_cache *c, uint64_t seq, uint64_t off, size_t len,
		  void *buf);

/*
 * Offer data bytes off..off+len-1 of object seq.  Stored: every chunk whose
 * start lies in the range, from its start up to the end of the range or of
 * the chunk (a chunk starting before off is not stored).  A chunk already
 * holding as many bytes is kept.  0, or -EBUSY (no chunk free: all in use)
 * or a file error; the cache stays consistent and callers may ignore it.
 */
int bs3_cache_put(struct bs3_cache *c, uint64_t seq, uint64_t off,
		  const void *buf, size_t len);

/* Forget every chunk of object seq (deleted by GC). */
void bs3_cache_drop(struct bs3_cache *c, uint64_t seq);

void bs3_cache_get_stats(struct bs3_cache *c, struct bs3_cache_stats *st);

/* The chunk size, bytes. */
uint32_t bs3_cache_chunk(const struct bs3_cache *c);

/*
 * Tests only: fn(arg) runs inside bs3_cache_get() with a chunk pinned,
 * just before its file read, so a test can evict around a pinned chunk.
 */
void bs3_cache_set_read_hook(struct bs3_cache *c, void (*fn)(void *arg),
			     void *arg);

#endif /* BS3_CACHE_H */
