// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * buse_params.workers: blocking callbacks run concurrently on the pool,
 * even for one queue; their return values complete the requests (status,
 * BUSE_ASYNC); completions of a worker's batch go out in few SYNCs; and the
 * requests still queued when the device goes away are run, not lost.
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

static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned inside, most, calls;
	unsigned gate; /* callbacks wait until this many are inside */
	bool async_next;
	struct buse_req *held;
} pl = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.cond = PTHREAD_COND_INITIALIZER,
};

/* A blocking read: waits (up to 5 s) until `gate` callbacks are inside. */
static int blocking_read(void *priv, struct buse_req *req, void *buf,
			 uint32_t len, uint64_t off)
{
	struct timespec dl;
	int ret = -(int)(off / 512 % 40);

	(void)priv;
	memset(buf, (int)(off / 512), len);
	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += 5;
	pthread_mutex_lock(&pl.lock);
	pl.calls++;
	if (++pl.inside > pl.most)
		pl.most = pl.inside;
	pthread_cond_broadcast(&pl.cond);
	while (pl.inside < pl.gate &&
	       !pthread_cond_timedwait(&pl.cond, &pl.lock, &dl))
		;
	if (pl.async_next && !pl.held) {
		pl.held = req;
		ret = BUSE_ASYNC;
	}
	pthread_mutex_unlock(&pl.lock);
	/* Stay inside a little so that the others see us. */
	usleep(20000);
	pthread_mutex_lock(&pl.lock);
	pl.inside--;
	pthread_mutex_unlock(&pl.lock);
	return ret;
}

static const struct buse_ops p_ops = {.read = blocking_read};

static int setup(void **state)
{
	(void)state;
	pl.inside = pl.most = pl.calls = 0;
	pl.gate = 0;
	pl.async_next = false;
	pl.held = NULL;
	return 0;
}

static void start(struct fake_runner *r, unsigned nr_queues, unsigned workers)
{
	struct fake_cfg cfg;

	fake_cfg_init(&cfg);
	cfg.nr_queues = nr_queues;
	cfg.depth = 16;
	fake_install(&cfg);
	memset(r, 0, sizeof(*r));
	buse_params_init(&r->params);
	r->params.size = 1 << 20;
	r->params.handle_signals = false;
	r->params.workers = workers;
	r->ops = p_ops;
	fake_run_start(r);
	assert_true(fake_wait_state(BUSE_STATE_LIVE));
}

static unsigned submit_read(unsigned qid, uint64_t sector)
{
	struct fake_io rd = {
		.op = BUSE_OP_READ, .sector = sector, .len = 512, .tag = -1};

	return fake_submit(qid, &rd);
}

/* Four blocking reads on one queue run at once on four workers. */
static void test_concurrent_on_one_queue(void **state)
{
	struct fake_runner r;
	unsigned t[4], i;

	(void)state;
	pl.gate = 4;
	start(&r, 1, 4);
	for (i = 0; i < 4; i++)
		t[i] = submit_read(0, i + 1);
	for (i = 0; i < 4; i++) {
		/* the callback's return value is the status */
		assert_int_equal(fake_wait(t[i]), -(int)((i + 1) % 40));
		assert_int_equal((unsigned char)fake_ticket_buf(t[i])[0],
				 i + 1);
	}
	assert_int_equal(pl.most, 4);
	assert_int_equal(fake_run_stop(&r), 0);
}

/* Without workers the same callbacks run one at a time per queue. */
static void test_serial_without_workers(void **state)
{
	struct fake_runner r;
	unsigned t[3], i;

	(void)state;
	pl.gate = 0;
	start(&r, 1, 0);
	for (i = 0; i < 3; i++)
		t[i] = submit_read(0, i + 1);
	for (i = 0; i < 3; i++)
		assert_int_equal(fake_wait(t[i]), -(int)((i + 1) % 40));
	assert_int_equal(pl.most, 1);
	assert_int_equal(fake_run_stop(&r), 0);
}

/* BUSE_ASYNC from a pooled callback: the driver completes it later. */
static void test_async_from_worker(void **state)
{
	struct fake_runner r;
	unsigned t;

	(void)state;
	pl.async_next = true;
	start(&r, 2, 2);
	t = submit_read(1, 7);
	for (int i = 0; i < 500 && !__atomic_load_n(&pl.held, __ATOMIC_ACQUIRE);
	     i++)
		usleep(10000);
	pthread_mutex_lock(&pl.lock);
	assert_non_null(pl.held);
	pthread_mutex_unlock(&pl.lock);
	usleep(50000);
	assert_false(fake_done(t));
	buse_complete(pl.held, -EIO);
	assert_int_equal(fake_wait(t), -EIO);
	assert_int_equal(fake_run_stop(&r), 0);
}

/* Many requests over two queues, few workers: all complete, batched. */
static void test_many_batched(void **state)
{
	struct fake_stats st;
	struct fake_runner r;
	unsigned t[32], i;

	(void)state;
	start(&r, 2, 3);
	for (i = 0; i < 32; i++)
		t[i] = submit_read(i % 2, i + 1);
	for (i = 0; i < 32; i++)
		assert_int_equal(fake_wait(t[i]), -(int)((i + 1) % 40));
	fake_get_stats(&st);
	assert_int_equal(st.completed_total, 32);
	assert_int_equal(st.bad_cqe, 0);
	assert_true(pl.most <= 3);
	assert_int_equal(fake_run_stop(&r), 0);
}

/* Requests still queued for the pool when the device is deleted run. */
static void test_drained_at_delete(void **state)
{
	struct fake_runner r;
	unsigned i;

	(void)state;
	start(&r, 1, 1);
	for (i = 0; i < 8; i++)
		submit_read(0, i + 1);
	while (!__atomic_load_n(&pl.calls, __ATOMIC_ACQUIRE))
		usleep(1000);
	assert_int_equal(fake_run_stop(&r), 0);
	assert_int_equal(pl.calls, 8);
}

static void test_too_many_workers(void **state)
{
	struct buse_params p;

	(void)state;
	buse_params_init(&p);
	p.size = 1 << 20;
	p.workers = BUSE_MAX_WORKERS + 1;
	assert_int_equal(buse_run(&p, &p_ops, NULL), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_concurrent_on_one_queue, setup),
		cmocka_unit_test_setup(test_serial_without_workers, setup),
		cmocka_unit_test_setup(test_async_from_worker, setup),
		cmocka_unit_test_setup(test_many_batched, setup),
		cmocka_unit_test_setup(test_drained_at_delete, setup),
		cmocka_unit_test_setup(test_too_many_workers, setup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
