// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * BS3 recovery on the fake S3: volumes built through the engine, then the
 * bucket changed behind its back (objects deleted, torn, corrupted,
 * written by a fenced writer, checkpoints damaged) or frozen as a crash
 * left it, and attached again.  What a flush made durable must be there;
 * what lies beyond the unbroken run must neither be replayed nor stay.
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

#define VOLSZ	(4u << 20)
#define NBLOCKS (VOLSZ / BS3T_BS)
#define OBJ	(64u << 10)
#define OBJ_BLKS                                                               \
	(OBJ / BS3T_BS) /* one write of this many blocks = one object */
/*
 * GETs of an attach that reads nckpt checkpoints and nobj objects: the
 * superblock and three listings (e/, c/, d/; a listing is a GET too).
 */
#define ATTACH_GETS(nckpt, nobj) (1 + 3 + (nckpt) + (nobj))

struct ctx {
	struct fake_s3 *f;
	struct bs3_opts o;
	struct bs3t_model m;
	struct bs3t_log log;
};

static int setup(void **state)
{
	struct ctx *c = calloc(1, sizeof(*c));

	if (!c || !(c->f = bs3t_volume(VOLSZ, OBJ)))
		return -1;
	c->o = bs3t_opts(c->f);
	bs3t_log_init(&c->log);
	/* checkpoints only when a test asks for one */
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
	bs3t_log_destroy(&c->log);
	free(c);
	return 0;
}

static struct bs3_vol *attach(struct ctx *c, struct fake_s3 *f)
{
	struct bs3_opts o = c->o;
	struct bs3_vol *v = NULL;
	char err[256];

	o.client = fake_s3_client(f);
	o.progress = bs3t_log_line;
	o.progress_arg = &c->log;
	if (bs3_open(&o, &v, err, sizeof(err)))
		fail_msg("bs3_open: %s", err);
	return v;
}

/* One object of generation gen at lba; returns its seq. */
static uint64_t put_obj(struct ctx *c, struct bs3_vol *v, uint64_t lba,
			uint32_t gen)
{
	uint64_t seq = bs3t_next_seq(v);

	assert_int_equal(bs3t_write(v, &c->m, lba, OBJ_BLKS, gen), 0);
	/* a full object is sealed at once: nothing else shares it */
	assert_int_equal(bs3t_next_seq(v), seq + 1);
	return seq;
}

static bool has_seq(struct fake_s3 *f, uint64_t seq)
{
	char key[256];

	return bs3t_data_key(f, seq, key, sizeof(key));
}

static bool has_key(struct fake_s3 *f, uint64_t seq, uint64_t epoch)
{
	char key[256];
	size_t len;
	void *p;

	bs3_key_data(key, sizeof(key), BS3T_VOL, seq, epoch);
	p = fake_s3_get(f, BS3T_BUCKET, key, &len);
	free(p);
	return p;
}

static void key_of(struct fake_s3 *f, uint64_t seq, char *key, size_t len)
{
	if (!bs3t_data_key(f, seq, key, len))
		fail_msg("no object of seq %llu", (unsigned long long)seq);
}

/* (a) Every flushed byte is there after a close and after a crash. */
static void test_reopen_after_close_and_crash(void **state)
{
	struct ctx *c = *state;
	struct bs3_vol *v = attach(c, c->f);
	struct fake_s3 *g;
	struct bs3t_model crashed;

	for (uint32_t i = 0; i < 4; i++)
		put_obj(c, v, i * OBJ_BLKS, 1);
	assert_int_equal(bs3_flush_sync(v), 0);
	/* partial overwrite, discard, small writes sharing one object */
	assert_int_equal(bs3t_write(v, &c->m, 8, 8, 2), 0);
	assert_int_equal(bs3t_discard(v, &c->m, 36, 20), 0);
	assert_int_equal(bs3t_write(v, &c->m, 200, 3, 3), 0);
	assert_int_equal(bs3t_write(v, &c->m, 300, 1, 3), 0);
	assert_int_equal(bs3_flush_sync(v), 0);
	assert_int_equal(bs3_close(v), 0);

	v = attach(c, c->f);
	assert_int_equal(bs3t_verify(v, &c->m), 0);

	/* a checkpoint, more flushed writes after it, then a crash */
	assert_int_equal(bs3_checkpoint_now(v), 0);
	put_obj(c, v, 400, 4);
	assert_int_equal(bs3t_write(v, &c->m, 0, 2, 5), 0);
	assert_int_equal(bs3t_discard(v, &c->m, 410, 3), 0);
	assert_int_equal(bs3_flush_sync(v), 0);
	g = bs3t_crash(c->f);
	assert_int_equal(bs3t_model_init(&crashed, NBLOCKS), 0);
	memcpy(crashed.gen, c->m.gen, NBLOCKS * sizeof(*crashed.gen));
	/* written after the crash: must not matter */
	assert_int_equal(bs3t_write(v, &c->m, 500, 4, 6), 0);
	assert_int_equal(bs3_close(v), 0);

	v = attach(c, g);
	assert_int_equal(bs3t_verify(v, &crashed), 0);
	assert_int_equal(bs3_close(v), 0);
	/* and again from what that attach left (its own epoch, no writes) */
	v = attach(c, g);
	assert_int_equal(bs3t_verify(v, &crashed), 0);
	assert_int_equal(bs3_close(v), 0);
	bs3t_model_free(&crashed);
	fake_s3_free(g);
}

/*
 * Store objects a..a+n-1 (a = the next seq), with the PUT of seq `hole`
 * held so it never reaches the bucket, and crash with the others stored.
 * Returns the bucket after the crash; the model keeps the flushed state
 * (what was stored before) in *before.
 */
static struct fake_s3 *crash_with_hole(struct ctx *c, struct bs3_vol *v,
				       uint64_t hole, const uint64_t *lbas,
				       unsigned int n, uint32_t gen)
{
	char sub[128];
	struct fake_s3 *g;

	bs3t_seq_sub(sub, sizeof(sub), hole);
	fake_s3_hold(c->f, 1u << S3_PUT, sub);
	for (unsigned int i = 0; i < n; i++)
		assert_int_equal(
			bs3t_write(v, NULL, lbas[i], OBJ_BLKS, gen + i), 0);
	for (int t = 0; t < 10000 && fake_s3_held(c->f) < 1; t++)
		bs3t_sleep_ms(1); /* a hang guard */
	assert_int_equal(fake_s3_held(c->f), 1);
	fake_s3_drain(c->f);
	g = bs3t_crash(c->f);
	fake_s3_hold(c->f, 0, NULL);
	return g;
}

/*
 * (b) Object N missing: the run ends before it; objects after it are not
 * replayed (their blocks read as before) and are removed at attach.
 */
static void test_gap_ends_the_run(void **state)
{
	struct ctx *c = *state;
	struct bs3_vol *v = attach(c, c->f);
	uint64_t a, lbas[] = {16, 32, 0, 48};
	struct fake_s3 *g;

	a = put_obj(c, v, 0, 1);
	assert_int_equal(bs3_flush_sync(v), 0);
	/* a+1 (blocks 16..) is lost; a+2.. overwrite and add blocks */
	g = crash_with_hole(c, v, a + 1, lbas, 4, 10);
	assert_false(has_seq(g, a + 1));
	for (uint64_t s = a + 2; s <= a + 4; s++)
		assert_true(has_seq(g, s));
	assert_int_equal(bs3_close(v), 0);

	v = attach(c, g);
	assert_true(bs3t_log_has(&c->log, "(gap)"));
	assert_int_equal(bs3t_verify(v, &c->m), 0); /* only object a */
	for (uint64_t s = a + 2; s <= a + 4; s++)
		assert_false(has_key(g, s, 1));
	/* the volume goes on from there, and stays so */
	put_obj(c, v, 64, 20);
	assert_int_equal(bs3_flush_sync(v), 0);
	assert_int_equal(bs3_close(v), 0);
	v = attach(c, g);
	assert_int_equal(bs3t_verify(v, &c->m), 0);
	assert_int_equal(bs3_close(v), 0);
	fake_s3_free(g);
}

/* Objects a, a+1, a+2 stored and flushed, then a crash: the bucket. */
static struct fake_s3 *three_then_crash(struct ctx *c, uint64_t *a)
{
	struct bs3_vol *v = attach(c, c->f);
	struct fake_s3 *g;

	*a = put_obj(c, v, 0, 1);
	assert_int_equal(bs3_flush_sync(v), 0);
	/* a+1 overwrites object a's blocks, a+2 adds blocks 16.. */
	assert_int_equal(bs3t_write(v, NULL, 0, OBJ_BLKS, 2), 0);
	assert_int_equal(bs3t_write(v, NULL, 16, OBJ_BLKS, 3), 0);
	assert_int_equal(bs3_flush_sync(v), 0);
	g = bs3t_crash(c->f);
	assert_int_equal(bs3_close(v), 0);
	return g;
}

/*
 * Attach g whose object a+1 was damaged: the run ends at a (reason in the
 * progress), a+1 and a+2 are neither replayed nor kept.
 */
static void attach_damaged(struct ctx *c, struct fake_s3 *g, uint64_t a,
			   const char *reason)
{
	struct bs3_vol *v;

	bs3t_log_clear(&c->log);
	v = attach(c, g);
	assert_true(bs3t_log_has(&c->log, reason));
	assert_int_equal(bs3t_verify(v, &c->m), 0);
	/* the writer of them was epoch 1 (the new one starts at a + 1) */
	assert_true(has_key(g, a, 1));
	assert_false(has_key(g, a + 1, 1));
	assert_false(has_key(g, a + 2, 1));
	assert_int_equal(bs3_close(v), 0);
	v = attach(c, g);
	assert_int_equal(bs3t_verify(v, &c->m), 0);
	assert_int_equal(bs3_close(v), 0);
}

/* (c) A torn object (shorter than its header says) ends the run. */
static void test_torn_object_ends_the_run(void **state)
{
	struct ctx *c = *state;
	uint32_t full = bs3_obj_data_offset(1) + OBJ;
	/* inside the header, inside the data, one byte short */
	size_t keeps[] = {40, bs3_obj_data_offset(1) + OBJ / 2, full - 1};
	uint64_t a;
	struct fake_s3 *g = three_then_crash(c, &a);
	struct fake_store *s = fake_s3_snapshot(g);
	char key[256];

	key_of(g, a + 1, key, sizeof(key));
	for (size_t i = 0; i < sizeof(keeps) / sizeof(keeps[0]); i++) {
		fake_s3_restore(g, s);
		assert_int_equal(bs3t_truncate(g, key, keeps[i]), 0);
		attach_damaged(c, g, a, "(corrupt)");
	}
	fake_store_free(s);
	fake_s3_free(g);
}

/* (c) The same through the write path: a PUT the server stored torn. */
static void test_torn_put_ends_the_run(void **state)
{
	struct ctx *c = *state;
	struct bs3_vol *v = attach(c, c->f);
	char sub[128];
	uint64_t a;
	struct fake_s3 *g;

	a = put_obj(c, v, 0, 1);
	assert_int_equal(bs3_flush_sync(v), 0);
	bs3t_seq_sub(sub, sizeof(sub), a + 1);
	fake_s3_tear_puts(c->f, 1, sub, bs3_obj_data_offset(1) + 100);
	assert_int_equal(bs3t_write(v, NULL, 0, OBJ_BLKS, 2), 0);
	assert_int_equal(bs3t_write(v, NULL, 16, OBJ_BLKS, 3), 0);
	assert_int_equal(bs3_flush_sync(v), 0); /* the server said 200 */
	g = bs3t_crash(c->f);
	assert_int_equal(bs3_close(v), 0);
	attach_damaged(c, g, a, "(corrupt)");
	fake_s3_free(g);
}

/* (d) A bad data checksum ends the run. */
static void test_bad_data_crc_ends_the_run(void **state)
{
	struct ctx *c = *state;
	uint64_t a;
	struct fake_s3 *g = three_then_crash(c, &a);
	char key[256];

	key_of(g, a + 1, key, sizeof(key));
	assert_int_equal(bs3t_corrupt(g, key, -1000), 0); /* in the data */
	attach_damaged(c, g, a, "(corrupt)");
	fake_s3_free(g);
}

/*
 * (d) A bad header checksum ends the run: the byte flipped is the first
 * extent's lba, so a decoder that trusted it would map the data elsewhere.
 */
static void test_bad_header_crc_ends_the_run(void **state)
{
	struct ctx *c = *state;
	uint64_t a;
	struct fake_s3 *g = three_then_crash(c, &a);
	char key[256];

	key_of(g, a + 1, key, sizeof(key));
	assert_int_equal(bs3t_corrupt(g, key, 80), 0);
	attach_damaged(c, g, a, "(corrupt)");
	fake_s3_free(g);
}

/*
 * (e) Writer A (epoch 1) goes on writing after writer B (epoch 2) claimed
 * the volume: A's objects at seqs B also wrote lose to B's, and A's object
 * after B's last one is stale; none of A's late writes is replayed, and
 * they are removed.
 */
static void test_stale_epoch_not_replayed(void **state)
{
	struct ctx *c = *state;
	struct bs3_vol *a = attach(c, c->f), *b, *n;
	struct bs3_stats st;
	uint64_t s;
	struct fake_s3 *g;

	put_obj(c, a, 0, 1);
	assert_int_equal(bs3_flush_sync(a), 0);
	b = attach(c, c->f); /* epoch start at s */
	s = bs3t_next_seq(b) - 1;
	assert_int_equal(bs3t_next_seq(a), s);
	/* A: s, s+1, s+2 of epoch 1 */
	for (uint32_t i = 0; i < 3; i++)
		assert_int_equal(
			bs3t_write(a, NULL, 16 + i * OBJ_BLKS, OBJ_BLKS, 2 + i),
			0);
	fake_s3_drain(c->f);
	for (uint64_t q = s; q <= s + 2; q++)
		assert_true(has_key(c->f, q, 1)); /* stored, though stale */
	assert_int_equal(bs3_flush_sync(a), -ESTALE);
	bs3_get_stats(a, &st);
	assert_true(st.fenced);
	/* B: s+1 of epoch 2 */
	put_obj(c, b, 80, 7);
	assert_int_equal(bs3_flush_sync(b), 0);
	g = bs3t_crash(c->f);

	bs3t_log_clear(&c->log);
	n = attach(c, g);
	assert_true(bs3t_log_has(&c->log, "(stale epoch)"));
	assert_int_equal(bs3t_verify(n, &c->m), 0);
	for (uint64_t q = s; q <= s + 2; q++)
		assert_false(has_key(g, q, 1));
	assert_true(has_key(g, s, 2));
	assert_true(has_key(g, s + 1, 2));
	assert_int_equal(bs3_close(n), 0);
	n = attach(c, g);
	assert_int_equal(bs3t_verify(n, &c->m), 0);
	assert_int_equal(bs3_close(n), 0);
	assert_int_equal(bs3_close(a), -ESTALE);
	assert_int_equal(bs3_close(b), 0);
	fake_s3_free(g);
}

/*
 * Two checkpoints (seq *s1 and *s2) with objects between and after them,
 * everything flushed, then a crash.  *objs gets the data objects' seqs:
 * [0], [1] before s1, [2], [3] between, [4] after s2.
 */
static struct fake_s3 *two_ckpts_then_crash(struct ctx *c, uint64_t *s1,
					    uint64_t *s2, uint64_t *objs)
{
	struct bs3_vol *v = attach(c, c->f);
	struct bs3_stats st;
	struct fake_s3 *g;

	objs[0] = put_obj(c, v, 0, 1);
	objs[1] = put_obj(c, v, 16, 1);
	assert_int_equal(bs3_flush_sync(v), 0);
	assert_int_equal(bs3_checkpoint_now(v), 0);
	bs3_get_stats(v, &st);
	*s1 = st.ckpt_seq;
	objs[2] = put_obj(c, v, 32, 2);
	objs[3] = put_obj(c, v, 0, 3); /* the checkpoints differ */
	assert_int_equal(bs3_flush_sync(v), 0);
	assert_int_equal(bs3_checkpoint_now(v), 0);
	bs3_get_stats(v, &st);
	*s2 = st.ckpt_seq;
	assert_true(*s1 < objs[2] && objs[3] <= *s2);
	objs[4] = put_obj(c, v, 48, 4);
	assert_int_equal(bs3_flush_sync(v), 0);
	g = bs3t_crash(c->f);
	assert_int_equal(bs3_close(v), 0);
	assert_int_equal(bs3t_count(g, "c/", NULL), 2);
	return g;
}

struct keylist {
	char k[64][128];
	size_t n;
};

static void keylist_add(void *arg, const char *key)
{
	struct keylist *l = arg;

	if (l->n < 64)
		snprintf(l->k[l->n++], sizeof(l->k[0]), "%s", key);
}

/* The data and checkpoint keys of the volume. */
static void keys_of(struct fake_s3 *f, struct keylist *l)
{
	l->n = 0;
	fake_s3_keys(f, BS3T_BUCKET, BS3T_VOL "/c/", NULL, keylist_add, l);
	fake_s3_keys(f, BS3T_BUCKET, BS3T_VOL "/d/", NULL, keylist_add, l);
}

/*
 * (f) The newest checkpoint names an object that is gone.  Falling back to
 * the older checkpoint cannot work: its roll-forward needs that object as
 * well (or, if the older one names it too, nothing is left but the log
 * from seq 1).  Recovery must refuse with a clear error and change no
 * object, never attach with the flushed data after the hole missing.
 */
static void test_ckpt_naming_deleted_object(void **state)
{
	struct ctx *c = *state;
	uint64_t s1, s2, objs[5];
	struct fake_s3 *g = two_ckpts_then_crash(c, &s1, &s2, objs);
	struct fake_store *s = fake_s3_snapshot(g);
	/* named by the newest only; by both */
	uint64_t gone[] = {objs[2], objs[1]};

	for (size_t i = 0; i < 2; i++) {
		struct bs3_opts o = c->o;
		struct keylist before = {0}, after = {0};
		struct bs3_vol *v = NULL;
		struct bs3_geometry geo;
		struct bs3_stats st;
		char key[256], err[256] = "";
		int e;

		fake_s3_restore(g, s);
		key_of(g, gone[i], key, sizeof(key));
		assert_int_equal(fake_s3_delete(g, BS3T_BUCKET, key), 0);
		keys_of(g, &before);
		o.client = fake_s3_client(g);
		e = bs3_open(&o, &v, err, sizeof(err));
		assert_int_equal(e, -EBADMSG);
		assert_null(v);
		assert_non_null(strstr(err, "missing"));
		keys_of(g, &after);
		assert_int_equal(after.n, before.n);
		assert_memory_equal(after.k, before.k, sizeof(after.k));
		/* the read-only views say so too */
		assert_int_equal(bs3_inspect(&o, &geo, &st, err, sizeof(err)),
				 -EBADMSG);
		assert_int_equal(bs3_check(&o, stderr, err, sizeof(err)),
				 -EBADMSG);
	}
	fake_store_free(s);
	fake_s3_free(g);
}

/* (g) A corrupt newest checkpoint: the older one plus roll-forward. */
static void test_corrupt_newest_ckpt(void **state)
{
	struct ctx *c = *state;
	uint64_t s1, s2, objs[5];
	struct fake_s3 *g = two_ckpts_then_crash(c, &s1, &s2, objs);
	struct fake_store *s = fake_s3_snapshot(g);
	char key[256];

	bs3_key_ckpt(key, sizeof(key), BS3T_VOL, s2, 1);
	for (int i = 0; i < 3; i++) {
		struct bs3_vol *v;
		struct bs3_stats st;
		char line[128];

		fake_s3_restore(g, s);
		if (i == 0) /* the last extent's object index */
			assert_int_equal(bs3t_corrupt(g, key, -20), 0);
		else if (i == 1) /* the header's seq */
			assert_int_equal(bs3t_corrupt(g, key, 32), 0);
		else /* torn */
			assert_int_equal(bs3t_truncate(g, key, 100), 0);
		bs3t_log_clear(&c->log);
		v = attach(c, g);
		assert_true(bs3t_log_has(&c->log, "unusable"));
		snprintf(line, sizeof(line),
			 "recovery: checkpoint seq %llu, rolling forward",
			 (unsigned long long)s1);
		assert_true(bs3t_log_has(&c->log, line));
		bs3_get_stats(v, &st);
		assert_int_equal(st.ckpt_seq, s1);
		assert_int_equal(bs3t_verify(v, &c->m), 0);
		assert_int_equal(bs3_close(v), 0);
		v = attach(c, g);
		assert_int_equal(bs3t_verify(v, &c->m), 0);
		assert_int_equal(bs3_close(v), 0);
	}
	fake_store_free(s);
	fake_s3_free(g);
}

/* (h) Attach says what it does: checkpoint, objects applied, run's end. */
static void test_progress_lines(void **state)
{
	struct ctx *c = *state;
	struct bs3_vol *v = attach(c, c->f);
	uint64_t lbas[] = {48, 64}, ck, a;
	struct bs3_stats st;
	struct fake_s3 *g;
	char line[128];

	put_obj(c, v, 0, 1);
	assert_int_equal(bs3_flush_sync(v), 0);
	assert_int_equal(bs3_checkpoint_now(v), 0);
	bs3_get_stats(v, &st);
	ck = st.ckpt_seq;
	a = put_obj(c, v, 16, 2);
	put_obj(c, v, 32, 3);
	assert_int_equal(bs3_flush_sync(v), 0);
	g = crash_with_hole(c, v, a + 2, lbas, 2, 4); /* a+3 beyond */
	assert_int_equal(bs3_close(v), 0);

	bs3t_log_clear(&c->log);
	v = attach(c, g);
	snprintf(line, sizeof(line),
		 "recovery: checkpoint seq %llu, rolling forward",
		 (unsigned long long)ck);
	assert_true(bs3t_log_has(&c->log, line));
	assert_true(bs3t_log_has(&c->log, "recovery: applied 2 objects"));
	snprintf(line, sizeof(line), "recovery: run ends at seq %llu (gap)",
		 (unsigned long long)(a + 1));
	assert_true(bs3t_log_has(&c->log, line));
	assert_true(bs3t_log_has(&c->log, "recovery: removing "));
	assert_false(has_key(g, a + 3, 1));
	assert_int_equal(bs3t_verify(v, &c->m), 0);
	assert_int_equal(bs3_close(v), 0);
	fake_s3_free(g);

	/* and with no checkpoint at all */
	bs3t_log_clear(&c->log);
	g = bs3t_volume(VOLSZ, OBJ);
	v = attach(c, g);
	assert_int_equal(bs3_close(v), 0);
	assert_true(bs3t_log_has(&c->log, "recovery: no checkpoint, rolling "
					  "forward from seq 1"));
	assert_true(bs3t_log_has(&c->log, "recovery: applied 0 objects"));
	assert_true(bs3t_log_has(
		&c->log, "recovery: run ends at seq 0 (end of the log)"));
	fake_s3_free(g);
}

/*
 * (i) Attach reads the checkpoint and the objects after it, not the
 * volume's history: 40 objects, a checkpoint, 2 more, a crash.
 */
static void test_attach_reads_only_after_ckpt(void **state)
{
	struct ctx *c = *state;
	struct bs3_vol *v = attach(c, c->f);
	struct fake_s3 *g;
	uint64_t gets;

	for (uint32_t i = 0; i < 40; i++)
		put_obj(c, v, (i % 20) * OBJ_BLKS, 1 + i);
	assert_int_equal(bs3_flush_sync(v), 0);
	assert_int_equal(bs3_checkpoint_now(v), 0);
	put_obj(c, v, 0, 100);
	put_obj(c, v, 500, 101);
	assert_int_equal(bs3_flush_sync(v), 0);
	g = bs3t_crash(c->f);
	assert_int_equal(bs3_close(v), 0);

	gets = fake_s3_count(g, S3_GET);
	v = attach(c, g);
	/* not one of the 40 objects before the checkpoint */
	assert_true(fake_s3_count(g, S3_GET) - gets <= ATTACH_GETS(1, 2));
	assert_int_equal(bs3t_verify(v, &c->m), 0);
	assert_int_equal(bs3_close(v), 0);
	fake_s3_free(g);
}

/*
 * (i) The bound holds across attaches: a long roll-forward is checkpointed
 * by the writer that did it, at its detach even with nothing written, so
 * the next attach does not read it all again.
 */
static void test_long_rollforward_checkpointed(void **state)
{
	struct ctx *c = *state;
	struct bs3_vol *v = attach(c, c->f);
	struct fake_s3 *g;
	uint64_t gets;

	for (uint32_t i = 0; i < 30; i++)
		put_obj(c, v, (i % 20) * OBJ_BLKS, 1 + i);
	assert_int_equal(bs3_flush_sync(v), 0);
	g = bs3t_crash(c->f); /* no checkpoint at all */
	assert_int_equal(bs3_close(v), 0);

	gets = fake_s3_count(g, S3_GET);
	v = attach(c, g);
	assert_true(fake_s3_count(g, S3_GET) - gets >= ATTACH_GETS(0, 31));
	assert_int_equal(bs3_close(v), 0); /* nothing written */

	gets = fake_s3_count(g, S3_GET);
	v = attach(c, g);
	assert_true(fake_s3_count(g, S3_GET) - gets <= ATTACH_GETS(2, 1));
	assert_int_equal(bs3t_verify(v, &c->m), 0);
	assert_int_equal(bs3_close(v), 0);
	fake_s3_free(g);
}

/*
 * (i) ... and without a detach: after a long roll-forward the writer
 * checkpoints on its own (ckpt_objects counts the objects since the last
 * checkpoint, not since the attach), so crash after crash does not make
 * the roll-forward grow.
 */
static void test_rollforward_bounded_across_crashes(void **state)
{
	struct ctx *c = *state;
	struct fake_s3 *g = bs3t_crash(c->f), *h;
	struct bs3_vol *v;

	c->o.ckpt_objects = 8;
	for (uint32_t round = 0; round < 6; round++) {
		uint64_t gets = fake_s3_count(g, S3_GET), last;
		struct bs3_stats st;

		v = attach(c, g);
		/* less than one checkpoint interval to roll forward */
		assert_true(fake_s3_count(g, S3_GET) - gets <=
			    ATTACH_GETS(2, 8 - 1));
		assert_int_equal(bs3t_verify(v, &c->m), 0);
		for (uint32_t i = 0; i < 5; i++)
			put_obj(c, v, i * OBJ_BLKS, 1 + round * 5 + i);
		assert_int_equal(bs3_flush_sync(v), 0);
		/* the checkpoint that is due comes (a hang guard) */
		last = bs3t_next_seq(v) - 1;
		bs3_get_stats(v, &st);
		for (int t = 0; t < 10000 && last - st.ckpt_seq >= 8; t++) {
			bs3t_sleep_ms(1);
			bs3_get_stats(v, &st);
		}
		assert_true(last - st.ckpt_seq < 8);
		h = bs3t_crash(g);
		assert_int_equal(bs3_close(v), 0);
		fake_s3_free(g);
		g = h;
	}
	v = attach(c, g);
	assert_int_equal(bs3t_verify(v, &c->m), 0);
	assert_int_equal(bs3_close(v), 0);
	fake_s3_free(g);
}

int main(void)
{
#define T(t) cmocka_unit_test_setup_teardown(t, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_reopen_after_close_and_crash),
		T(test_gap_ends_the_run),
		T(test_torn_object_ends_the_run),
		T(test_torn_put_ends_the_run),
		T(test_bad_data_crc_ends_the_run),
		T(test_bad_header_crc_ends_the_run),
		T(test_stale_epoch_not_replayed),
		T(test_ckpt_naming_deleted_object),
		T(test_corrupt_newest_ckpt),
		T(test_progress_lines),
		T(test_attach_reads_only_after_ckpt),
		T(test_long_rollforward_checkpointed),
		T(test_rollforward_bounded_across_crashes),
	};
#undef T

	return cmocka_run_group_tests(tests, NULL, NULL);
}
