// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * BS3 engine against the in-memory fake S3: writes, reads, flush, reopen;
 * the write path's ordering (releases in seq order, flushes after every
 * earlier object is stored), the dirty limit, and a PUT that fails for
 * good.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "bs3.h"
#include "bs3/bs3_test.h"

#define VOLSZ	 (4u << 20)
#define BS	 4096u
#define OBJ	 (64u << 10)
#define OBJ_BLKS (OBJ / BS)

/* Random writes/discards/flushes against a byte model, then reopen. */
static void test_model_and_reopen(void **state)
{
	struct fake_s3 *f = fake_s3_new();
	struct bs3_opts o = bs3t_opts(f);
	struct bs3_vol *v;
	char err[256];
	uint8_t *model = calloc(1, VOLSZ), *got = malloc(VOLSZ);
	/* buffers must live until release: keep them all */
	uint8_t **bufs = calloc(400, sizeof(*bufs));

	(void)state;
	fake_s3_add_bucket(f, BS3T_BUCKET);
	assert_int_equal(bs3_create(&o, VOLSZ, BS, OBJ, err, sizeof(err)), 0);
	assert_int_equal(bs3_open(&o, &v, err, sizeof(err)), 0);
	srand(1);
	for (int i = 0; i < 400; i++) {
		uint32_t n = 1 + rand() % 24;
		uint64_t off = (uint64_t)(rand() % (VOLSZ / BS - n)) * BS;
		int op = rand() % 10;

		if (op < 8) {
			bufs[i] = malloc(n * BS);
			memset(bufs[i], rand(), n * BS);
			assert_int_equal(bs3_write(v, off, n * BS, bufs[i],
						   bs3t_nop, NULL),
					 0);
			memcpy(model + off, bufs[i], n * BS);
		} else if (op == 8) {
			assert_int_equal(
				bs3_discard(v, off, n * BS, bs3t_nop, NULL),
				BS3_PENDING);
			memset(model + off, 0, n * BS);
		} else {
			assert_int_equal(bs3_flush_sync(v), 0);
		}
		if (i % 50 == 0) {
			assert_int_equal(bs3_read_sync(v, 0, VOLSZ, got), 0);
			assert_memory_equal(got, model, VOLSZ);
		}
	}
	assert_int_equal(bs3_flush_sync(v), 0);
	assert_int_equal(bs3_read_sync(v, 0, VOLSZ, got), 0);
	assert_memory_equal(got, model, VOLSZ);
	assert_int_equal(bs3_close(v), 0);
	for (int i = 0; i < 400; i++)
		free(bufs[i]);
	assert_int_equal(bs3_open(&o, &v, err, sizeof(err)), 0);
	memset(got, 0xaa, VOLSZ);
	assert_int_equal(bs3_read_sync(v, 0, VOLSZ, got), 0);
	assert_memory_equal(got, model, VOLSZ);
	assert_int_equal(bs3_close(v), 0);
	free(bufs);
	free(model);
	free(got);
	fake_s3_free(f);
}

static struct bs3_vol *attach(struct fake_s3 *f, const struct bs3_opts *oo)
{
	struct bs3_opts o = oo ? *oo : bs3t_opts(f);
	struct bs3_vol *v = NULL;
	char err[256];

	if (bs3_open(&o, &v, err, sizeof(err)))
		fail_msg("bs3_open: %s", err);
	return v;
}

static bool has_seq(struct fake_s3 *f, uint64_t seq)
{
	char key[256];

	return bs3t_data_key(f, seq, key, sizeof(key));
}

/* Wait until n requests are held (a hang guard), then for the others. */
static void held_and_drained(struct fake_s3 *f, unsigned int n)
{
	for (int t = 0; t < 10000 && fake_s3_held(f) < n; t++)
		bs3t_sleep_ms(1);
	assert_int_equal(fake_s3_held(f), n);
	fake_s3_drain(f);
}

/* Whole-object writes i = 0..n-1 at blocks 16 i, released into rec. */
static void write_objs(struct bs3_vol *v, unsigned int n, uint8_t **bufs,
		       struct bs3t_ev *ev, struct bs3t_rec *rec)
{
	for (unsigned int i = 0; i < n; i++) {
		bufs[i] = malloc(OBJ);
		bs3t_fill(bufs[i], i * OBJ_BLKS, OBJ_BLKS, 1);
		ev[i] = (struct bs3t_ev){rec, (int)i};
		assert_int_equal(bs3_write(v, (uint64_t)i * OBJ, OBJ, bufs[i],
					   bs3t_rec_cb, &ev[i]),
				 0);
	}
}

/*
 * Writes are released in seq order, the order recovery replays them:
 * the PUT of the first of three objects is held while the other two are
 * stored, and nothing is released until it is.
 */
static void test_release_in_seq_order(void **state)
{
	struct fake_s3 *f = bs3t_volume(VOLSZ, OBJ);
	struct bs3_vol *v = attach(f, NULL);
	struct bs3t_rec rec;
	struct bs3t_ev ev[3];
	uint8_t *bufs[3];
	uint64_t s0 = bs3t_next_seq(v);
	char sub[128];

	(void)state;
	bs3t_rec_init(&rec);
	bs3t_seq_sub(sub, sizeof(sub), s0);
	fake_s3_hold(f, 1u << S3_PUT, sub);
	write_objs(v, 3, bufs, ev, &rec);
	held_and_drained(f, 1);
	assert_false(has_seq(f, s0));
	assert_true(has_seq(f, s0 + 1) && has_seq(f, s0 + 2));
	bs3t_sleep_ms(100); /* room for a wrong release to show */
	assert_int_equal(bs3t_rec_count(&rec), 0);

	fake_s3_hold(f, 0, NULL);
	assert_true(bs3t_rec_wait(&rec, 3, 10000));
	for (int i = 0; i < 3; i++) {
		assert_int_equal(rec.id[i], i);
		assert_int_equal(rec.status[i], 0);
	}
	assert_int_equal(bs3_close(v), 0);
	for (int i = 0; i < 3; i++)
		free(bufs[i]);
	bs3t_rec_destroy(&rec);
	fake_s3_free(f);
}

struct flush_probe {
	struct fake_s3 *f;
	uint64_t first, last;
	bool stored; /* every object first..last in the bucket at done() */
	struct bs3t_rec rec;
	struct bs3t_ev ev;
};

static void flush_done(void *arg, int status)
{
	struct flush_probe *p = arg;

	p->stored = true;
	for (uint64_t s = p->first; s <= p->last; s++)
		p->stored = p->stored && has_seq(p->f, s);
	bs3t_rec_cb(&p->ev, status);
}

/*
 * A flush completes only when every object with earlier writes is
 * stored: not while the PUT of the first one is held, though the last one
 * is stored, and at once after.
 */
static void test_flush_waits_for_earlier_puts(void **state)
{
	struct fake_s3 *f = bs3t_volume(VOLSZ, OBJ);
	struct bs3_vol *v = attach(f, NULL);
	struct flush_probe p = {.f = f};
	struct bs3t_model m;
	char sub[128];

	(void)state;
	assert_int_equal(bs3t_model_init(&m, VOLSZ / BS), 0);
	bs3t_rec_init(&p.rec);
	p.ev = (struct bs3t_ev){&p.rec, 0};
	p.first = bs3t_next_seq(v);
	p.last = p.first + 1;
	bs3t_seq_sub(sub, sizeof(sub), p.first);
	fake_s3_hold(f, 1u << S3_PUT, sub);
	assert_int_equal(bs3t_write(v, &m, 0, OBJ_BLKS, 1), 0);
	assert_int_equal(bs3t_write(v, &m, OBJ_BLKS, 2, 1), 0); /* open */
	assert_int_equal(bs3_flush(v, flush_done, &p), BS3_PENDING);
	held_and_drained(f, 1);
	assert_true(has_seq(f, p.last)); /* sealed by the flush, stored */
	bs3t_sleep_ms(200); /* room for a wrong completion to show */
	assert_int_equal(bs3t_rec_count(&p.rec), 0);

	fake_s3_hold(f, 0, NULL);
	assert_true(bs3t_rec_wait(&p.rec, 1, 10000));
	assert_int_equal(p.rec.status[0], 0);
	assert_true(p.stored);
	assert_int_equal(bs3t_verify(v, &m), 0);
	assert_int_equal(bs3_close(v), 0);
	bs3t_rec_destroy(&p.rec);
	bs3t_model_free(&m);
	fake_s3_free(f);
}

struct writer_arg {
	struct bs3_vol *v;
	struct bs3t_model *m;
	struct bs3t_rec rec; /* one event when bs3t_write returned */
	struct bs3t_ev ev;
};

static void *writer(void *arg)
{
	struct writer_arg *w = arg;

	bs3t_rec_cb(&w->ev, bs3t_write(w->v, w->m, 2 * OBJ_BLKS, OBJ_BLKS, 3));
	return NULL;
}

/*
 * The dirty limit: with uploads held and two objects unstored, a third
 * write waits (it has not returned a while later) and returns once the
 * uploads go on; nothing is lost.
 */
static void test_dirty_limit_blocks_writer(void **state)
{
	struct fake_s3 *f = bs3t_volume(VOLSZ, OBJ);
	struct bs3_opts o = bs3t_opts(f);
	struct writer_arg w = {0};
	struct bs3_stats st;
	struct bs3t_model m;
	struct bs3_vol *v;
	pthread_t t;

	(void)state;
	o.dirty_limit = 2 * OBJ;
	v = attach(f, &o);
	assert_int_equal(bs3t_model_init(&m, VOLSZ / BS), 0);
	fake_s3_hold(f, 1u << S3_PUT, BS3T_VOL "/d/");
	assert_int_equal(bs3t_write(v, &m, 0, OBJ_BLKS, 1), 0);
	assert_int_equal(bs3t_write(v, &m, OBJ_BLKS, OBJ_BLKS, 2), 0);
	w.v = v;
	w.m = &m;
	bs3t_rec_init(&w.rec);
	w.ev = (struct bs3t_ev){&w.rec, 0};
	assert_int_equal(pthread_create(&t, NULL, writer, &w), 0);
	bs3t_sleep_ms(300);
	assert_int_equal(bs3t_rec_count(&w.rec), 0); /* still waiting */
	bs3_get_stats(v, &st);
	assert_int_equal(st.dirty_bytes, 2 * OBJ);
	assert_true(fake_s3_held(f) >= 1);

	fake_s3_hold(f, 0, NULL);
	assert_true(bs3t_rec_wait(&w.rec, 1, 10000));
	pthread_join(t, NULL);
	assert_int_equal(w.rec.status[0], 0);
	assert_int_equal(bs3_flush_sync(v), 0);
	assert_int_equal(bs3t_verify(v, &m), 0);
	assert_int_equal(bs3_close(v), 0);
	v = attach(f, &o);
	assert_int_equal(bs3t_verify(v, &m), 0);
	assert_int_equal(bs3_close(v), 0);
	bs3t_rec_destroy(&w.rec);
	bs3t_model_free(&m);
	fake_s3_free(f);
}

/*
 * A PUT that fails for good: the writes in it and in the later object
 * that was stored meanwhile are released with an error, never 0; the
 * flush fails with -EIO, and so do later writes, flushes and the close.
 * Reattached, the volume has what was flushed before.
 */
static void test_hard_put_failure(void **state)
{
	struct fake_s3 *f = bs3t_volume(VOLSZ, OBJ);
	struct bs3_vol *v = attach(f, NULL);
	struct bs3t_model m;
	struct bs3t_rec rec;
	struct bs3t_ev ev[2];
	uint8_t *bufs[2], late[BS];
	uint64_t s0;
	char sub[128];

	(void)state;
	assert_int_equal(bs3t_model_init(&m, VOLSZ / BS), 0);
	bs3t_rec_init(&rec);
	assert_int_equal(bs3t_write(v, &m, 100, 4, 1), 0);
	assert_int_equal(bs3_flush_sync(v), 0);

	s0 = bs3t_next_seq(v);
	bs3t_seq_sub(sub, sizeof(sub), s0);
	fake_s3_hold(f, 1u << S3_PUT, sub);
	write_objs(v, 2, bufs, ev, &rec);
	held_and_drained(f, 1);
	assert_true(has_seq(f, s0 + 1));
	fake_s3_fail_hard(f, 1, -EIO);
	fake_s3_hold(f, 0, NULL);
	assert_true(bs3t_rec_wait(&rec, 2, 10000));
	assert_true(rec.status[0] < 0);
	assert_true(rec.status[1] < 0);

	assert_int_equal(bs3_flush_sync(v), -EIO);
	bs3t_fill(late, 200, 1, 2);
	assert_int_equal(bs3_write(v, 200 * BS, BS, late, bs3t_nop, NULL),
			 -EIO);
	assert_int_equal(bs3_flush_sync(v), -EIO);
	assert_int_equal(bs3_close(v), -EIO);

	v = attach(f, NULL);
	assert_int_equal(bs3t_verify(v, &m), 0);
	assert_int_equal(bs3_close(v), 0);
	for (int i = 0; i < 2; i++)
		free(bufs[i]);
	bs3t_rec_destroy(&rec);
	bs3t_model_free(&m);
	fake_s3_free(f);
}

struct closer_arg {
	struct bs3_vol *v;
	struct bs3t_ev ev;
};

static void *closer(void *arg)
{
	struct closer_arg *c = arg;

	bs3t_rec_cb(&c->ev, bs3_close(c->v));
	return NULL;
}

/*
 * bs3_close() returns only when every pending callback has run: a read
 * whose GET is held keeps it waiting, and the read completes first.
 */
static void test_close_waits_for_reads(void **state)
{
	struct fake_s3 *f = bs3t_volume(VOLSZ, OBJ);
	struct bs3_vol *v = attach(f, NULL);
	uint8_t *buf = malloc(OBJ), *want = malloc(OBJ);
	struct bs3t_rec rec;
	struct bs3t_ev ev;
	struct closer_arg c;
	char sub[128];
	pthread_t t;
	uint64_t a = bs3t_next_seq(v);

	(void)state;
	bs3t_rec_init(&rec);
	assert_int_equal(bs3t_write(v, NULL, 0, OBJ_BLKS, 1), 0);
	assert_int_equal(bs3_flush_sync(v), 0);
	bs3t_seq_sub(sub, sizeof(sub), a);
	fake_s3_hold(f, 1u << S3_GET, sub);
	ev = (struct bs3t_ev){&rec, 1};
	assert_int_equal(bs3_read(v, 0, OBJ, buf, bs3t_rec_cb, &ev),
			 BS3_PENDING);
	held_and_drained(f, 1);
	c = (struct closer_arg){v, {&rec, 2}};
	assert_int_equal(pthread_create(&t, NULL, closer, &c), 0);
	bs3t_sleep_ms(200); /* room for a wrong return to show */
	assert_int_equal(bs3t_rec_count(&rec), 0);

	fake_s3_hold(f, 0, NULL);
	assert_true(bs3t_rec_wait(&rec, 2, 10000));
	pthread_join(t, NULL);
	assert_int_equal(rec.id[0], 1); /* the read, then the close */
	assert_int_equal(rec.status[0], 0);
	assert_int_equal(rec.id[1], 2);
	assert_int_equal(rec.status[1], 0);
	bs3t_fill(want, 0, OBJ_BLKS, 1);
	assert_memory_equal(buf, want, OBJ);
	bs3t_rec_destroy(&rec);
	free(buf);
	free(want);
	fake_s3_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_model_and_reopen),
		cmocka_unit_test(test_release_in_seq_order),
		cmocka_unit_test(test_flush_waits_for_earlier_puts),
		cmocka_unit_test(test_dirty_limit_blocks_writer),
		cmocka_unit_test(test_hard_put_failure),
		cmocka_unit_test(test_close_waits_for_reads),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
