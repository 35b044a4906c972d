// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * BS3 garbage collection on the fake S3: which objects a pass rewrites
 * (below gc_live_pct, emptiest first), that nothing a kept checkpoint, a
 * roll-forward from it or a read in flight needs is deleted, that endless
 * overwrites keep the bucket within its bound, and crashes in the middle
 * of it.  The data is checked against a model throughout.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "bs3.h"
#include "object.h"
#include "bs3/bs3_test.h"

#define VOLSZ	 (4u << 20)
#define NBLOCKS	 (VOLSZ / BS3T_BS)
#define OBJ	 (64u << 10)
#define OBJ_BLKS (OBJ / BS3T_BS)

struct ctx {
	struct fake_s3 *f;
	struct bs3_opts o;
	struct bs3t_model m;
};

static int setup(void **state)
{
	struct ctx *c = calloc(1, sizeof(*c));

	if (!c || !(c->f = bs3t_volume(VOLSZ, OBJ)))
		return -1;
	c->o = bs3t_opts(c->f); /* GC only when a test runs a pass */
	c->o.ckpt_objects = 100000;
	c->o.ckpt_seconds = 100000;
	if (bs3t_model_init(&c->m, NBLOCKS))
		return -1;
	*state = c;
	return 0;
}

static int teardown(void **state)
{
	struct ctx *c = *state;

	fake_s3_free(c->f);
	bs3t_model_free(&c->m);
	free(c);
	return 0;
}

static struct bs3_vol *attach(struct ctx *c, struct fake_s3 *f)
{
	struct bs3_opts o = c->o;
	struct bs3_vol *v = NULL;
	char err[256];

	o.client = fake_s3_client(f);
	if (bs3_open(&o, &v, err, sizeof(err)))
		fail_msg("bs3_open: %s", err);
	return v;
}

static uint64_t put_obj(struct ctx *c, struct bs3_vol *v, uint64_t lba,
			uint32_t gen)
{
	uint64_t seq = bs3t_next_seq(v);

	assert_int_equal(bs3t_write(v, &c->m, lba, OBJ_BLKS, gen), 0);
	assert_int_equal(bs3t_next_seq(v), seq + 1); /* sealed, alone */
	return seq;
}

static bool has_seq(struct fake_s3 *f, uint64_t seq)
{
	char key[256];

	return bs3t_data_key(f, seq, key, sizeof(key));
}

static uint64_t ckpt(struct bs3_vol *v)
{
	struct bs3_stats st;

	assert_int_equal(bs3_checkpoint_now(v), 0);
	bs3_get_stats(v, &st);
	return st.ckpt_seq;
}

/*
 * One object per entry of live[], object i at blocks 16 i.., then all but
 * live[i] of its blocks overwritten (by other, full objects).  seqs[i]
 * gets object i's seq.
 */
static void make_objects(struct ctx *c, struct bs3_vol *v, const uint32_t *live,
			 unsigned int n, uint64_t *seqs)
{
	for (unsigned int i = 0; i < n; i++)
		seqs[i] = put_obj(c, v, i * OBJ_BLKS, 1);
	for (unsigned int i = 0; i < n; i++)
		if (live[i] < OBJ_BLKS)
			assert_int_equal(bs3t_write(v, &c->m,
						    i * OBJ_BLKS + live[i],
						    OBJ_BLKS - live[i], 2),
					 0);
	assert_int_equal(bs3_flush_sync(v), 0);
}

/*
 * The objects GC's object of seq gseq moved data from (sorted, distinct)
 * and how many blocks it moved; returns how many sources.
 */
static size_t gc_sources(struct fake_s3 *f, uint64_t gseq, uint64_t *src,
			 size_t max, uint32_t *moved)
{
	struct bs3_obj_info info;
	struct bs3_extent *ext = NULL;
	char key[256];
	size_t len, need, n = 0;
	void *buf;

	if (!bs3t_data_key(f, gseq, key, sizeof(key)))
		fail_msg("no object of seq %llu", (unsigned long long)gseq);
	buf = fake_s3_get(f, BS3T_BUCKET, key, &len);
	assert_non_null(buf);
	assert_int_equal(bs3_obj_decode(buf, len, NULL, BS3T_BS, NBLOCKS, &info,
					&ext, &need),
			 0);
	assert_true(info.flags & BS3_OBJ_GC);
	*moved = 0;
	for (uint32_t i = 0; i < info.nr_extents; i++) {
		size_t j = 0;

		assert_int_equal(ext[i].kind, BS3_EXT_MOVE);
		*moved += ext[i].nblocks;
		while (j < n && src[j] < ext[i].src_seq)
			j++;
		if (j < n && src[j] == ext[i].src_seq)
			continue;
		assert_true(n < max);
		memmove(src + j + 1, src + j, (n - j) * sizeof(*src));
		src[j] = ext[i].src_seq;
		n++;
	}
	free(ext);
	free(buf);
	return n;
}

/*
 * (a) A pass rewrites the objects whose live share is below gc_live_pct
 * (50%): not the one at exactly 50%, not the fuller ones.  The data reads
 * the same, before and after a reopen, and once a checkpoint no longer
 * names them the sources leave the bucket, which shrinks.
 */
static void test_rewrites_objects_below_threshold(void **state)
{
	struct ctx *c = *state;
	struct bs3_vol *v = attach(c, c->f);
	const uint32_t live[] = {12, 1, 8, 2, 16, 3};
	uint64_t seqs[6], src[8], gseq, before, after;
	uint32_t moved;

	make_objects(c, v, live, 6, seqs);
	bs3t_count(c->f, "d/", &before);
	gseq = bs3t_next_seq(v);
	assert_int_equal(bs3_gc_now(v), 3);
	assert_int_equal(bs3_flush_sync(v), 0); /* GC's object stored */
	assert_int_equal(gc_sources(c->f, gseq, src, 8, &moved), 3);
	assert_int_equal(src[0], seqs[1]);
	assert_int_equal(src[1], seqs[3]);
	assert_int_equal(src[2], seqs[5]);
	assert_int_equal(moved, 1 + 2 + 3);
	assert_int_equal(bs3t_verify(v, &c->m), 0);

	/* nothing is deleted before a checkpoint stops naming it */
	for (int i = 0; i < 6; i++)
		assert_true(has_seq(c->f, seqs[i]));
	ckpt(v);
	assert_int_equal(bs3_gc_now(v), 0); /* nothing more below 50% */
	for (int i = 0; i < 6; i++)
		assert_int_equal(has_seq(c->f, seqs[i]), live[i] >= 8);
	bs3t_count(c->f, "d/", &after);
	assert_true(after < before);
	assert_int_equal(bs3t_verify(v, &c->m), 0);
	assert_int_equal(bs3_close(v), 0);

	v = attach(c, c->f);
	assert_int_equal(bs3t_verify(v, &c->m), 0);
	assert_int_equal(bs3_close(v), 0);
}

/*
 * (a) The emptiest first, as many as one object holds: with 80%, four
 * candidates of 10, 3, 12 and 5 live blocks; 3 + 5 fit with 10 more, not
 * with 12 - so the pass takes the 3 and the 5 (not the first by seq, not
 * the fullest).
 */
static void test_rewrites_emptiest_first(void **state)
{
	struct ctx *c = *state;
	struct bs3_vol *v;
	const uint32_t live[] = {10, 3, 12, 5, 16};
	uint64_t seqs[5], src[8], gseq;
	uint32_t moved;

	c->o.gc_live_pct = 80;
	v = attach(c, c->f);
	make_objects(c, v, live, 5, seqs);
	gseq = bs3t_next_seq(v);
	assert_int_equal(bs3_gc_now(v), 2);
	assert_int_equal(bs3_flush_sync(v), 0);
	assert_int_equal(gc_sources(c->f, gseq, src, 8, &moved), 2);
	assert_int_equal(src[0], seqs[1]);
	assert_int_equal(src[1], seqs[3]);
	assert_int_equal(moved, 3 + 5);
	assert_int_equal(bs3t_verify(v, &c->m), 0);
	assert_int_equal(bs3_close(v), 0);
	v = attach(c, c->f);
	assert_int_equal(bs3t_verify(v, &c->m), 0);
	assert_int_equal(bs3_close(v), 0);
}

/*
 * (b) An object a kept checkpoint names, or that a roll-forward from the
 * older kept checkpoint passes, stays until checkpoints no longer need it:
 * A (named by C0, emptied by GC) and D (written after C0, overwritten
 * before C1) survive C1 - and a crash with C1 corrupt, which falls back
 * to C0, needs both - and go after C2.
 */
static void test_kept_checkpoints_keep_objects(void **state)
{
	struct ctx *c = *state;
	struct bs3_vol *v = attach(c, c->f);
	uint64_t a, d, c1;
	struct fake_s3 *g;
	char key[256];

	a = put_obj(c, v, 0, 1);
	put_obj(c, v, 16, 1);
	assert_int_equal(bs3_flush_sync(v), 0);
	ckpt(v); /* C0: names A */
	assert_int_equal(bs3t_write(v, &c->m, 2, 14, 2), 0);
	assert_int_equal(bs3_flush_sync(v), 0);
	d = put_obj(c, v, 64, 5);
	put_obj(c, v, 64, 6); /* D is dead */
	assert_int_equal(bs3_flush_sync(v), 0);
	assert_int_equal(bs3_gc_now(v), 1); /* A's 2 live blocks move */
	assert_int_equal(bs3_flush_sync(v), 0);
	assert_int_equal(bs3_gc_now(v), 0);
	assert_true(has_seq(c->f, a)); /* C0 names it */
	assert_true(has_seq(c->f, d)); /* no checkpoint after it */

	put_obj(c, v, 32, 3);
	assert_int_equal(bs3_flush_sync(v), 0);
	c1 = ckpt(v); /* C1: names neither; C0 still kept */
	assert_int_equal(bs3_gc_now(v), 0);
	assert_true(has_seq(c->f, a));
	assert_true(has_seq(c->f, d));

	g = bs3t_crash(c->f);
	bs3_key_ckpt(key, sizeof(key), BS3T_VOL, c1, 1);
	assert_int_equal(bs3t_corrupt(g, key, -1), 0);
	{
		struct bs3_vol *w = attach(c, g);
		struct bs3_stats st;

		bs3_get_stats(w, &st);
		assert_true(st.ckpt_seq < c1); /* C0 */
		assert_int_equal(bs3t_verify(w, &c->m), 0);
		assert_int_equal(bs3_close(w), 0);
	}
	fake_s3_free(g);

	put_obj(c, v, 48, 4);
	assert_int_equal(bs3_flush_sync(v), 0);
	ckpt(v); /* C2: C0 is no longer kept */
	assert_int_equal(bs3_gc_now(v), 0);
	assert_false(has_seq(c->f, a));
	assert_false(has_seq(c->f, d));
	assert_int_equal(bs3t_verify(v, &c->m), 0);
	assert_int_equal(bs3_close(v), 0);
	v = attach(c, c->f);
	assert_int_equal(bs3t_verify(v, &c->m), 0);
	assert_int_equal(bs3_close(v), 0);
}

/*
 * (b) A read in flight keeps its object: A is dead and no checkpoint
 * needs it, but its GET is held; GC leaves it until the read is done, and
 * the read returns A's data.
 */
static void test_read_in_flight_keeps_object(void **state)
{
	struct ctx *c = *state;
	struct bs3_vol *v = attach(c, c->f);
	uint8_t *buf = malloc(OBJ), *want = malloc(OBJ);
	struct bs3t_rec rec;
	struct bs3t_ev ev = {&rec, 1};
	char sub[128];
	uint64_t a;

	bs3t_rec_init(&rec);
	a = put_obj(c, v, 0, 1);
	assert_int_equal(bs3_flush_sync(v), 0);
	bs3t_seq_sub(sub, sizeof(sub), a);
	fake_s3_hold(c->f, 1u << S3_GET, sub);
	assert_int_equal(bs3_read(v, 0, OBJ, buf, bs3t_rec_cb, &ev),
			 BS3_PENDING);
	for (int t = 0; t < 10000 && fake_s3_held(c->f) < 1; t++)
		bs3t_sleep_ms(1); /* a hang guard */
	assert_int_equal(fake_s3_held(c->f), 1);

	put_obj(c, v, 0, 2); /* A is dead */
	put_obj(c, v, 16, 3);
	assert_int_equal(bs3_flush_sync(v), 0);
	ckpt(v);
	put_obj(c, v, 32, 4);
	assert_int_equal(bs3_flush_sync(v), 0);
	ckpt(v); /* neither kept checkpoint needs A */
	assert_int_equal(bs3_gc_now(v), 0);
	assert_true(has_seq(c->f, a));
	assert_int_equal(bs3t_rec_count(&rec), 0);

	fake_s3_hold(c->f, 0, NULL);
	assert_true(bs3t_rec_wait(&rec, 1, 10000));
	assert_int_equal(rec.status[0], 0);
	bs3t_fill(want, 0, OBJ_BLKS, 1);
	assert_memory_equal(buf, want, OBJ);
	assert_int_equal(bs3_gc_now(v), 0);
	assert_false(has_seq(c->f, a)); /* now it goes */
	assert_int_equal(bs3t_verify(v, &c->m), 0);
	assert_int_equal(bs3_close(v), 0);
	bs3t_rec_destroy(&rec);
	free(buf);
	free(want);
}

/*
 * The bucket's data bytes, at most: every data object has a header of at
 * least 512 bytes.
 */
/* Data bytes in the bucket, each object's first 512 header bytes left out. */
static uint64_t data_bytes(struct fake_s3 *f, size_t *nobj)
{
	uint64_t bytes;
	size_t n = bs3t_count(f, "d/", &bytes);

	*nobj = n;
	return bytes - 512 * (uint64_t)n;
}

static uint64_t max_ckpt_bytes(struct fake_s3 *f, uint64_t seen)
{
	uint64_t bytes;
	size_t n = bs3t_count(f, "c/", &bytes);

	/* the largest is at least the average */
	if (n && bytes / n > seen)
		seen = bytes / n;
	return seen;
}

/*
 * (c) Endless overwrites with the background GC: the bucket stays within
 * its bound all along (bs3_gc_bound in bs3/engine.h: twice the live data
 * + 8 objects + 2 checkpoints, plus the dirty limit of applied but not yet
 * stored data), and the data is intact, also after a reopen.
 */
static void test_overwrites_stay_bounded(void **state)
{
	struct ctx *c = *state;
	const uint64_t region = 256; /* blocks: 1 MiB of live data at most */
	const uint64_t dirty = 4 * OBJ;
	uint64_t most = 0, ckb = 0, total = 0;
	struct bs3_vol *v;
	struct bs3_stats st;

	c->o.no_gc = false;
	c->o.dirty_limit = dirty;
	c->o.ckpt_objects = 8;
	c->o.ckpt_seconds = 1;
	v = attach(c, c->f);
	srand(7);
	/* 24 times the region */
	while (total < 24 * region) {
		uint32_t n = 1 + (uint32_t)rand() % OBJ_BLKS;
		uint64_t lba = (uint64_t)rand() % (region - n + 1);
		uint64_t live = 0, bound, now;

		assert_int_equal(
			bs3t_write(v, &c->m, lba, n, (uint32_t)(total + 1)), 0);
		total += n;
		if (rand() % 16 == 0)
			assert_int_equal(bs3_flush_sync(v), 0);
		for (uint64_t b = 0; b < region; b++)
			live += c->m.gen[b] != 0;
		ckb = max_ckpt_bytes(c->f, ckb);
		size_t nobj;

		now = data_bytes(c->f, &nobj);
		/*
		 * A write is let in below the dirty limit: it may pass it.  A
		 * header with many extents takes a second 512-byte unit.
		 */
		bound = 2 * live * BS3T_BS + 8 * OBJ + 2 * ckb + dirty + OBJ +
			nobj * (bs3_obj_data_offset(OBJ_BLKS) - 512);
		if (now > most)
			most = now;
		if (now > bound)
			fail_msg(
				"after %llu blocks written: %llu bytes of data "
				"stored > bound %llu (live %llu)",
				(unsigned long long)total,
				(unsigned long long)now,
				(unsigned long long)bound,
				(unsigned long long)(live * BS3T_BS));
	}
	assert_int_equal(bs3_flush_sync(v), 0);
	bs3_get_stats(v, &st);
	assert_true(st.gc_rewritten > 0 && st.gc_deleted > 0);
	print_message("overwrote %llu KiB: at most %llu KiB of data stored "
		      "for %llu KiB live\n",
		      (unsigned long long)(total * BS3T_BS >> 10),
		      (unsigned long long)(most >> 10),
		      (unsigned long long)(region * BS3T_BS >> 10));
	assert_int_equal(bs3t_verify(v, &c->m), 0);
	assert_int_equal(bs3_close(v), 0);
	v = attach(c, c->f);
	assert_int_equal(bs3t_verify(v, &c->m), 0);
	assert_int_equal(bs3_close(v), 0);
}

/* Attach a copy of the bucket and compare it with m. */
static void check_crash(struct ctx *c, struct fake_s3 *g,
			const struct bs3t_model *m)
{
	struct bs3_vol *v = attach(c, g);

	assert_int_equal(bs3t_verify(v, m), 0);
	assert_int_equal(bs3_close(v), 0);
	v = attach(c, g);
	assert_int_equal(bs3t_verify(v, m), 0);
	assert_int_equal(bs3_close(v), 0);
	fake_s3_free(g);
}

/*
 * (d) Crashes during GC: before its object is stored (a later write is),
 * after it is stored but before any checkpoint, after one checkpoint
 * (sources still kept), and after the sources were deleted.  A write
 * that overwrites moved blocks after the pass wins in every case.
 */
static void test_crash_during_gc(void **state)
{
	struct ctx *c = *state;
	struct bs3_vol *v = attach(c, c->f);
	const uint32_t live[] = {2, 3, 4, 16};
	uint64_t seqs[4], gseq;
	struct bs3t_model before;
	struct fake_s3 *g[4];
	char sub[128];

	make_objects(c, v, live, 4, seqs);
	ckpt(v); /* C0 names the sources */
	assert_int_equal(bs3t_model_init(&before, NBLOCKS), 0);
	memcpy(before.gen, c->m.gen, NBLOCKS * sizeof(*before.gen));

	gseq = bs3t_next_seq(v);
	bs3t_seq_sub(sub, sizeof(sub), gseq);
	fake_s3_hold(c->f, 1u << S3_PUT, sub);
	assert_int_equal(bs3_gc_now(v), 3);
	/* over the blocks moved from seqs[2] (and others, none emptied) */
	put_obj(c, v, 32, 9);
	for (int t = 0; t < 10000 && fake_s3_held(c->f) < 1; t++)
		bs3t_sleep_ms(1);
	assert_int_equal(fake_s3_held(c->f), 1);
	fake_s3_drain(c->f);
	assert_true(has_seq(c->f, gseq + 1));
	g[0] = bs3t_crash(c->f); /* GC's object missing: a gap */
	fake_s3_hold(c->f, 0, NULL);
	assert_int_equal(bs3_flush_sync(v), 0);
	g[1] = bs3t_crash(c->f); /* stored, no checkpoint since */
	ckpt(v);
	assert_int_equal(bs3_gc_now(v), 0);
	assert_true(has_seq(c->f, seqs[0])); /* C0 still kept */
	g[2] = bs3t_crash(c->f);
	put_obj(c, v, 64, 10);
	assert_int_equal(bs3_flush_sync(v), 0);
	ckpt(v);
	assert_int_equal(bs3_gc_now(v), 0);
	for (int i = 0; i < 3; i++)
		assert_false(has_seq(c->f, seqs[i]));
	g[3] = bs3t_crash(c->f);
	assert_int_equal(bs3_close(v), 0);

	check_crash(c, g[0], &before);
	/* the last object at 64 is only in g[3]; the rest as now */
	check_crash(c, g[3], &c->m);
	for (int i = 64; i < 64 + (int)OBJ_BLKS; i++)
		c->m.gen[i] = before.gen[i];
	check_crash(c, g[1], &c->m);
	check_crash(c, g[2], &c->m);
	bs3t_model_free(&before);
}

int main(void)
{
#define T(t) cmocka_unit_test_setup_teardown(t, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_rewrites_objects_below_threshold),
		T(test_rewrites_emptiest_first),
		T(test_kept_checkpoints_keep_objects),
		T(test_read_in_flight_keeps_object),
		T(test_overwrites_stay_bounded),
		T(test_crash_during_gc),
	};
#undef T

	return cmocka_run_group_tests(tests, NULL, NULL);
}
