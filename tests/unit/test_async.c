// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Asynchronous completion: from other threads, batched or not, from the
 * queue's own thread, before the callback returned, concurrently from many
 * threads, twice, and after the device is gone.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <buse/fake.h>
#include "internal.h"

#define FIFO_SIZE 1024

enum {
	M_HANDOFF,   /* hand the request to a worker, return BUSE_ASYNC */
	M_BATCH_END, /* complete in the batch_end hook, on the queue thread */
	M_INLINE,    /* buse_complete inside the callback, return BUSE_ASYNC */
	M_EARLY,     /* a worker completes it before the callback returns */
};

struct item {
	struct buse_req *req;
	uint64_t sector;
};

static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int mode;
	struct item fifo[FIFO_SIZE];
	unsigned head, tail;
	unsigned completed_by_workers;
	bool stop;
	/* M_BATCH_END: per queue, completed by the queue thread */
	struct item deferred[2][64];
	unsigned nr_deferred[2];
	/* M_EARLY: the callback waits for this */
	unsigned early_done;
	bool own_thread_ok;
} ad = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.cond = PTHREAD_COND_INITIALIZER,
};

static int status_of(uint64_t sector)
{
	return -(int)(sector % 50);
}

static void push(struct buse_req *req, uint64_t sector)
{
	pthread_mutex_lock(&ad.lock);
	ad.fifo[ad.tail++ % FIFO_SIZE] = (struct item){req, sector};
	pthread_cond_broadcast(&ad.cond);
	pthread_mutex_unlock(&ad.lock);
}

static bool wait_queued(unsigned n)
{
	struct timespec dl;
	bool ok = true;

	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += 10;
	pthread_mutex_lock(&ad.lock);
	while (ad.tail - ad.head < n && ok)
		ok = !pthread_cond_timedwait(&ad.cond, &ad.lock, &dl);
	pthread_mutex_unlock(&ad.lock);
	return ok;
}

static struct item pop(void)
{
	struct item it;

	pthread_mutex_lock(&ad.lock);
	assert_true(ad.tail != ad.head);
	it = ad.fifo[ad.head++ % FIFO_SIZE];
	pthread_mutex_unlock(&ad.lock);
	return it;
}

static int a_read(void *priv, struct buse_req *req, void *buf, uint32_t len,
		  uint64_t off)
{
	unsigned qid = buse_req_queue(req), want;

	switch (ad.mode) {
	case M_BATCH_END:
		ad.deferred[qid][ad.nr_deferred[qid]++] =
			(struct item){req, off >> 9};
		return BUSE_ASYNC;
	case M_INLINE:
		buse_complete(req, status_of(off >> 9));
		return BUSE_ASYNC;
	case M_EARLY:
		pthread_mutex_lock(&ad.lock);
		want = ad.early_done + 1;
		pthread_mutex_unlock(&ad.lock);
		push(req, off >> 9);
		pthread_mutex_lock(&ad.lock);
		while (ad.early_done < want)
			pthread_cond_wait(&ad.cond, &ad.lock);
		pthread_mutex_unlock(&ad.lock);
		return BUSE_ASYNC;
	default:
		push(req, off >> 9);
		return BUSE_ASYNC;
	}
}

static void a_batch_end(void *priv, unsigned qid)
{
	unsigned i;

	if (ad.mode != M_BATCH_END)
		return;
	for (i = 0; i < ad.nr_deferred[qid]; i++)
		buse_complete(ad.deferred[qid][i].req,
			      status_of(ad.deferred[qid][i].sector));
	ad.nr_deferred[qid] = 0;
}

static const struct buse_ops a_ops = {
	.read = a_read,
	.batch_end = a_batch_end,
};

/* Workers: complete what the callbacks hand off, in batches or alone. */
static void *worker(void *arg)
{
	unsigned id = (unsigned)(uintptr_t)arg, round = 0;

	for (;;) {
		struct item it[8];
		unsigned n = 0, i;
		bool batch;

		pthread_mutex_lock(&ad.lock);
		while (ad.tail == ad.head && !ad.stop)
			pthread_cond_wait(&ad.cond, &ad.lock);
		if (ad.tail == ad.head) {
			pthread_mutex_unlock(&ad.lock);
			return NULL;
		}
		while (n < 8 && ad.tail != ad.head)
			it[n++] = ad.fifo[ad.head++ % FIFO_SIZE];
		pthread_mutex_unlock(&ad.lock);

		batch = (id + round++) % 2;
		if (batch)
			buse_batch_begin();
		for (i = 0; i < n; i++)
			buse_complete(it[i].req, status_of(it[i].sector));
		if (batch)
			buse_batch_end();

		pthread_mutex_lock(&ad.lock);
		ad.completed_by_workers += n;
		ad.early_done += n;
		pthread_cond_broadcast(&ad.cond);
		pthread_mutex_unlock(&ad.lock);
	}
}

static pthread_t workers[4];
static unsigned nr_workers;

static void start_workers(unsigned n)
{
	ad.stop = false;
	for (nr_workers = 0; nr_workers < n; nr_workers++)
		assert_int_equal(pthread_create(&workers[nr_workers], NULL,
						worker,
						(void *)(uintptr_t)nr_workers),
				 0);
}

static void stop_workers(void)
{
	unsigned i;

	pthread_mutex_lock(&ad.lock);
	ad.stop = true;
	pthread_cond_broadcast(&ad.cond);
	pthread_mutex_unlock(&ad.lock);
	for (i = 0; i < nr_workers; i++)
		pthread_join(workers[i], NULL);
	nr_workers = 0;
}

static int setup(void **state)
{
	memset(ad.fifo, 0, sizeof(ad.fifo));
	ad.head = ad.tail = 0;
	ad.completed_by_workers = ad.early_done = 0;
	ad.nr_deferred[0] = ad.nr_deferred[1] = 0;
	ad.mode = M_HANDOFF;
	ad.stop = false;
	buse_drain_timeout_ms = 5000;
	return 0;
}

static void start(struct fake_runner *r, unsigned nr_queues, unsigned depth)
{
	struct fake_cfg cfg;

	fake_cfg_init(&cfg);
	cfg.nr_queues = nr_queues;
	cfg.depth = depth;
	fake_install(&cfg);
	memset(r, 0, sizeof(*r));
	buse_params_init(&r->params);
	r->params.size = 1 << 20;
	r->params.handle_signals = false;
	r->ops = a_ops;
	fake_run_start(r);
	assert_true(fake_wait_state(BUSE_STATE_LIVE));
}

static void stop(struct fake_runner *r)
{
	assert_int_equal(fake_run_stop(r), 0);
}

static unsigned submit_read(unsigned qid, uint64_t sector)
{
	struct fake_io rd = {
		.op = BUSE_OP_READ, .sector = sector, .len = 512, .tag = -1};

	return fake_submit(qid, &rd);
}

/* From another thread, unbatched: at once, one SYNC each. */
static void test_async_other_thread(void **state)
{
	struct fake_stats st;
	struct fake_runner r;
	unsigned i, t;

	start(&r, 1, 8);
	for (i = 0; i < 10; i++) {
		t = submit_read(0, i + 1);
		assert_true(wait_queued(1));
		/* The queue thread sleeps: only buse_complete can commit. */
		assert_true(fake_wait_sleeping(0));
		assert_false(fake_done(t));
		buse_complete(pop().req, status_of(i + 1));
		assert_true(fake_done(t));
		assert_int_equal(fake_wait(t), status_of(i + 1));
		fake_get_stats(&st);
		assert_int_equal(st.sync0[0], i + 1);
	}
	stop(&r);
}

static void test_async_batched(void **state)
{
	unsigned t[16], i;
	struct fake_stats st;
	struct fake_runner r;

	start(&r, 2, 8);
	for (i = 0; i < 16; i++)
		t[i] = submit_read(i % 2, 100 + i);
	assert_true(wait_queued(16));
	assert_true(fake_wait_sleeping(0));
	assert_true(fake_wait_sleeping(1));

	buse_batch_begin();
	for (i = 0; i < 8; i++) {
		struct item it = pop();

		buse_complete(it.req, status_of(it.sector));
	}
	buse_batch_begin(); /* nested: only the outermost end commits */
	for (i = 0; i < 8; i++) {
		struct item it = pop();

		buse_complete(it.req, status_of(it.sector));
	}
	buse_batch_end();
	fake_get_stats(&st);
	assert_int_equal(st.sync0[0] + st.sync0[1], 0);
	assert_int_equal(st.completed_total, 0);
	for (i = 0; i < 16; i++)
		assert_false(fake_done(t[i]));

	buse_batch_end();
	fake_get_stats(&st);
	assert_int_equal(st.sync0[0], 1); /* once per touched queue */
	assert_int_equal(st.sync0[1], 1);
	assert_int_equal(st.completed_total, 16);
	for (i = 0; i < 16; i++)
		assert_int_equal(fake_wait(t[i]), status_of(100 + i));

	/* An unbalanced end is harmless. */
	buse_batch_end();

	/* The same without a batch: one SYNC per completion. */
	for (i = 0; i < 8; i++)
		t[i] = submit_read(0, 200 + i);
	assert_true(wait_queued(8));
	assert_true(fake_wait_sleeping(0));
	for (i = 0; i < 8; i++) {
		struct item it = pop();

		buse_complete(it.req, status_of(it.sector));
	}
	fake_get_stats(&st);
	assert_int_equal(st.sync0[0], 1 + 8);
	for (i = 0; i < 8; i++)
		assert_int_equal(fake_wait(t[i]), status_of(200 + i));
	stop(&r);
}

/* On the queue's own thread no extra SYNC: the loop's next one commits. */
static void own_thread(int mode)
{
	unsigned t[64], i;
	struct fake_stats st;
	struct fake_runner r;

	ad.mode = mode;
	start(&r, 2, 16);
	for (i = 0; i < 64; i++)
		t[i] = submit_read(i % 2, i);
	for (i = 0; i < 64; i++)
		assert_int_equal(fake_wait(t[i]), status_of(i));
	fake_get_stats(&st);
	assert_int_equal(st.sync0[0] + st.sync0[1], 0);
	assert_int_equal(st.completed_total, 64);
	stop(&r);
}

static void test_async_own_thread(void **state)
{
	own_thread(M_BATCH_END);
	own_thread(M_INLINE);
}

/* buse_complete() from a worker before the callback returned BUSE_ASYNC. */
static void test_async_early(void **state)
{
	struct fake_stats st;
	struct fake_runner r;
	unsigned t[50], i;

	ad.mode = M_EARLY;
	start_workers(1);
	start(&r, 1, 4);
	for (i = 0; i < 50; i++)
		t[i] = submit_read(0, 7 * i);
	for (i = 0; i < 50; i++)
		assert_int_equal(fake_wait(t[i]), status_of(7 * i));
	fake_get_stats(&st);
	assert_int_equal(st.completed_total, 50);
	stop(&r);
	stop_workers();
}

/* Many threads completing at once: nothing lost, nothing twice. */
static void many_threads(unsigned nr_queues, unsigned depth)
{
	enum { N = 20000 };
	static unsigned t[N];
	struct fake_stats st;
	struct fake_runner r;
	unsigned i;

	setup(NULL);
	start_workers(4);
	start(&r, nr_queues, depth);
	for (i = 0; i < N; i++)
		t[i] = submit_read(i % nr_queues, i % 1000);
	assert_true(fake_wait_all());
	for (i = 0; i < N; i++)
		assert_int_equal(fake_wait(t[i]), status_of(i % 1000));
	fake_get_stats(&st);
	assert_int_equal(st.completed_total, N);
	assert_int_equal(st.completed[0], N / nr_queues);
	stop_workers(); /* joins them: their counter is final */
	assert_int_equal(ad.completed_by_workers, N);
	stop(&r);
}

static void test_async_many_threads(void **state)
{
	many_threads(2, 16);
	many_threads(1, 64); /* all four workers on one cq */
}

static void test_double_complete_ignored(void **state)
{
	struct fake_stats st;
	struct fake_runner r;
	struct item it;
	unsigned t;

	start(&r, 1, 4);
	t = submit_read(0, 3);
	assert_true(wait_queued(1));
	it = pop();
	buse_complete(it.req, -EIO);
	buse_complete(it.req, 0); /* ignored */
	buse_complete(NULL, 0);
	assert_int_equal(fake_wait(t), -EIO);
	fake_get_stats(&st);
	assert_int_equal(st.completed_total, 1);
	assert_int_equal(st.sync0[0], 1);
	stop(&r); /* fake_uninstall: no bad completion */
}

/* buse_run() keeps the queue until the driver completed what it holds. */
static void test_teardown_waits_for_async(void **state)
{
	const struct timespec ms200 = {0, 200000000};
	struct fake_runner r;
	struct item it;

	start(&r, 1, 4);
	submit_read(0, 3);
	assert_true(wait_queued(1));
	it = pop();
	assert_int_equal(fake_delete(fake_dev_id()), 0);
	nanosleep(&ms200, NULL);
	assert_false(__atomic_load_n(&r.done, __ATOMIC_ACQUIRE));
	buse_complete(it.req, 0); /* ASan: the queue is still there */
	assert_int_equal(fake_run_join(&r), 0);
	fake_uninstall();
}

/* ... but not forever; a completion after that is dropped safely. */
static void test_teardown_gives_up(void **state)
{
	struct fake_runner r;
	struct item it;

	buse_drain_timeout_ms = 100;
	start(&r, 1, 4);
	submit_read(0, 3);
	assert_true(wait_queued(1));
	it = pop();
	assert_int_equal(fake_delete(fake_dev_id()), 0);
	assert_int_equal(fake_run_join(&r), 0);
	buse_complete(it.req, 0);
	buse_complete(it.req, 0);
	fake_uninstall();
	buse_drain_timeout_ms = 5000;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_async_other_thread, setup),
		cmocka_unit_test_setup(test_async_batched, setup),
		cmocka_unit_test_setup(test_async_own_thread, setup),
		cmocka_unit_test_setup(test_async_early, setup),
		cmocka_unit_test_setup(test_async_many_threads, setup),
		cmocka_unit_test_setup(test_double_complete_ignored, setup),
		cmocka_unit_test_setup(test_teardown_waits_for_async, setup),
		cmocka_unit_test_setup(test_teardown_gives_up, setup),
	};

	alarm(120); /* a hang fails instead of blocking `make unit` */
	return cmocka_run_group_tests(tests, NULL, NULL);
}
