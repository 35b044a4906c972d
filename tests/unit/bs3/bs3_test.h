/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Helpers shared by the BS3 engine's unit tests (test_bs3_engine.c,
 * test_bs3_recovery.c, test_bs3_gc.c): a volume on the fake S3, blocks
 * that say which block and generation they are, a model of the volume,
 * crashes as snapshots of the store, the keys of a seq, recorded callbacks
 * and progress lines.  No cmocka in here: every file of tests/unit/bs3/ is
 * linked into the host tests too, which do not link it.
 */
#ifndef BS3_TEST_H
#define BS3_TEST_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bs3.h"
#include "fake_s3.h"

#define BS3T_BUCKET "test-bucket"
#define BS3T_VOL    "vol"
#define BS3T_BS	    4096u

void bs3t_quiet(void *arg, const char *line);
void bs3t_nop(void *arg, int status);
void bs3t_sleep_ms(unsigned int ms);

/* Options for BS3T_BUCKET/BS3T_VOL on f: no background GC, quiet. */
struct bs3_opts bs3t_opts(struct fake_s3 *f);

/* A new fake S3 holding the bucket and an empty volume; NULL if not. */
struct fake_s3 *bs3t_volume(uint64_t size, uint32_t object_size);

/*
 * The world after a crash: a new fake S3 holding a copy of f's store as it
 * is now.  The old engine may go on (and be closed) on f; what it does
 * there no longer matters.
 */
struct fake_s3 *bs3t_crash(struct fake_s3 *f);

/*
 * A model of a volume of nblocks blocks: the generation each block was last
 * written with, 0 = never (zeros).  Generation g of block lba starts with
 * the words lba and g, then a stream seeded by both, so a block read back
 * from the wrong place or time, or garbled, shows.
 */
struct bs3t_model {
	uint64_t nblocks;
	uint32_t *gen;
};

int bs3t_model_init(struct bs3t_model *m, uint64_t nblocks);
void bs3t_model_free(struct bs3t_model *m);
void bs3t_fill(void *buf, uint64_t lba, uint32_t nblocks, uint32_t gen);
/*
 * What a block read back from lba is: the generation it was filled with,
 * 0 if all zeros, -1 if it is no block of ours at lba (torn, garbled,
 * misplaced).
 */
int64_t bs3t_block_gen(const void *blk, uint64_t lba);

/*
 * Write blocks lba..+n as generation gen and record it in m (NULL: no
 * model).  The buffer is the engine's until the release, which frees it.
 * Returns what bs3_write() returned.
 */
int bs3t_write(struct bs3_vol *v, struct bs3t_model *m, uint64_t lba,
	       uint32_t n, uint32_t gen);
/* Discard blocks lba..+n (recorded as zeros in m), not waiting. */
int bs3t_discard(struct bs3_vol *v, struct bs3t_model *m, uint64_t lba,
		 uint64_t n);

/*
 * Read the whole volume and compare it with m: 0 if equal, else the read's
 * negative errno or 1 after printing the first wrong block to stderr.
 */
int bs3t_verify(struct bs3_vol *v, const struct bs3t_model *m);

/* The seq the next sealed object of v gets. */
uint64_t bs3t_next_seq(struct bs3_vol *v);

/*
 * "vol/d/<hh>/<seq>-": a substring of the data keys of seq (any epoch) and
 * of nothing else, for fake_s3_hold() / fake_s3_tear_puts().
 */
void bs3t_seq_sub(char *buf, size_t len, uint64_t seq);
/* The data key of seq with the highest epoch in f; false if none. */
bool bs3t_data_key(struct fake_s3 *f, uint64_t seq, char *key, size_t len);
/* Keys (and their bytes) under "vol/<sub>", e.g. "d/", "c/". */
size_t bs3t_count(struct fake_s3 *f, const char *sub, uint64_t *bytes);
/* Flip the bits of byte off (from the end if negative) of key; -errno. */
int bs3t_corrupt(struct fake_s3 *f, const char *key, long off);
/* Keep only the first keep bytes of key; -errno. */
int bs3t_truncate(struct fake_s3 *f, const char *key, size_t keep);

/* Callbacks (release, done) recorded in the order they ran. */
#define BS3T_MAX_EVENTS 256

struct bs3t_rec {
	pthread_mutex_t m;
	pthread_cond_t c;
	unsigned int n;
	int id[BS3T_MAX_EVENTS];
	int status[BS3T_MAX_EVENTS];
};

/* The arg of bs3t_rec_cb: which recorder, and what to record. */
struct bs3t_ev {
	struct bs3t_rec *rec;
	int id;
};

void bs3t_rec_init(struct bs3t_rec *r);
void bs3t_rec_destroy(struct bs3t_rec *r);
void bs3t_rec_cb(void *arg, int status);
unsigned int bs3t_rec_count(struct bs3t_rec *r);
/* Wait until r holds n events; false after ms (a hang guard). */
bool bs3t_rec_wait(struct bs3t_rec *r, unsigned int n, unsigned int ms);

/* Progress lines collected (bs3_opts.progress = bs3t_log_line). */
struct bs3t_log {
	pthread_mutex_t m;
	char text[16384];
	size_t len;
};

void bs3t_log_init(struct bs3t_log *l);
void bs3t_log_destroy(struct bs3t_log *l);
void bs3t_log_clear(struct bs3t_log *l);
void bs3t_log_line(void *arg, const char *line);
/* Was a line containing sub printed? */
bool bs3t_log_has(struct bs3t_log *l, const char *sub);

#endif /* BS3_TEST_H */
