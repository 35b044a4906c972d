// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Write-back retained writes against the fake kernel: BUSE_RETAIN and
 * buse_release() from another thread, buse_complete_applied(), batched
 * releases, the recovery flags, a BUSE_SQE_AFTER write that waits without
 * blocking its queue, and BUSE_RETAIN on a write-through device.
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

#define DEPTH	8
#define LOGRECS 8

static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int ret;		  /* what the write callback returns */
	struct buse_req *req[16]; /* by seq (write-through: by sector) */
	unsigned flags[16];
	uint64_t seq[16];
	unsigned writes, reads;
	bool release_early;  /* the write callback has it released first */
	bool release_1_in_2; /* seq 2's callback has seq 1 released */
	bool read_gate;	     /* reads wait until it is false */
	unsigned workers;    /* params.workers */
} rd = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.cond = PTHREAD_COND_INITIALIZER,
};

static int r_read(void *priv, struct buse_req *req, void *buf, uint32_t len,
		  uint64_t off)
{
	pthread_mutex_lock(&rd.lock);
	rd.reads++;
	pthread_cond_broadcast(&rd.cond);
	while (rd.read_gate)
		pthread_cond_wait(&rd.cond, &rd.lock);
	pthread_mutex_unlock(&rd.lock);
	memset(buf, 0, len);
	return 0;
}

static void *release_thread(void *arg)
{
	buse_release(arg);
	return NULL;
}

static int r_write(void *priv, struct buse_req *req, const void *buf,
		   uint32_t len, uint64_t off, unsigned flags)
{
	uint64_t i = buse_req_seq(req) ? buse_req_seq(req) : off >> 9;

	pthread_mutex_lock(&rd.lock);
	if (i < 16) {
		rd.req[i] = req;
		rd.flags[i] = buse_req_flags(req);
		rd.seq[i] = buse_req_seq(req);
	}
	rd.writes++;
	pthread_cond_broadcast(&rd.cond);
	pthread_mutex_unlock(&rd.lock);
	if (rd.release_early || (rd.release_1_in_2 && i == 2)) {
		/* Made durable by another thread before we return. */
		pthread_t th;

		assert_int_equal(
			pthread_create(&th, NULL, release_thread,
				       rd.release_early ? req : rd.req[1]),
			0);
		pthread_join(th, NULL);
	}
	return rd.ret;
}

static struct buse_req *wait_req(unsigned i)
{
	struct timespec dl;
	struct buse_req *r;

	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += 10;
	pthread_mutex_lock(&rd.lock);
	while (!rd.req[i])
		if (pthread_cond_timedwait(&rd.cond, &rd.lock, &dl))
			break;
	r = rd.req[i];
	pthread_mutex_unlock(&rd.lock);
	return r;
}

static struct fake_runner runner;

static void start(bool write_back, int ret)
{
	struct fake_cfg c;

	memset(&rd.req, 0, sizeof(rd.req));
	memset(&rd.flags, 0, sizeof(rd.flags));
	rd.writes = rd.reads = 0;
	rd.ret = ret;
	fake_cfg_init(&c);
	c.nr_queues = 1;
	c.depth = DEPTH;
	c.log_recs = LOGRECS;
	fake_install(&c);
	buse_params_init(&runner.params);
	runner.params.size = 1 << 20;
	runner.params.write_back = write_back;
	runner.params.handle_signals = false;
	runner.params.pin_threads = false;
	runner.params.workers = rd.workers;
	memset(&runner.ops, 0, sizeof(runner.ops));
	runner.ops.read = r_read;
	runner.ops.write = r_write;
	fake_run_start(&runner);
	assert_true(fake_wait_state(BUSE_STATE_LIVE));
}

/* A logged write of seq @seq (tag of log record @seq - 1). */
static unsigned logged(uint64_t seq, uint16_t extra)
{
	static char data[4096];
	struct fake_io io = {
		.op = BUSE_OP_WRITE,
		.flags = BUSE_SQE_LOGGED | extra,
		.sector = seq * 8,
		.len = 4096,
		.wdata = data,
		.tag = DEPTH + (int)((seq - 1) % LOGRECS),
		.seq = seq,
	};

	return fake_submit(0, &io);
}

/* BUSE_RETAIN: applied at once, released later from another thread. */
static void test_retain_release(void **state)
{
	struct buse_req *req;
	pthread_t th;
	unsigned t;

	start(true, BUSE_RETAIN);
	t = logged(1, 0);
	assert_true(fake_wait_applied(t));
	req = wait_req(1);
	assert_non_null(req);
	assert_int_equal(buse_req_seq(req), 1);
	assert_int_equal(buse_req_flags(req), 0);
	usleep(20000);
	assert_false(fake_done(t)); /* retained: the record stays */
	assert_int_equal(pthread_create(&th, NULL, release_thread, req), 0);
	pthread_join(th, NULL);
	assert_int_equal(fake_wait(t), 0);
	assert_int_equal(fake_run_stop(&runner), 0);
}

/* buse_complete_applied() after BUSE_ASYNC, then buse_release(). */
static void test_complete_applied(void **state)
{
	struct buse_req *req;
	unsigned t;

	start(true, BUSE_ASYNC);
	t = logged(1, 0);
	req = wait_req(1);
	assert_non_null(req);
	usleep(20000);
	assert_false(fake_applied(t));
	buse_complete_applied(req);
	assert_true(fake_wait_applied(t));
	assert_false(fake_done(t));
	buse_release(req);
	assert_int_equal(fake_wait(t), 0);
	assert_int_equal(fake_run_stop(&runner), 0);
}

/*
 * buse_release() from another thread before the write callback returned
 * BUSE_RETAIN (a fast upload): applied and released at once, neither
 * dropped nor retained for ever; on the queue thread and on a pool worker.
 */
static void test_release_before_retain(void **state)
{
	unsigned workers, t;

	for (workers = 0; workers <= 1; workers++) {
		rd.release_early = true;
		rd.workers = workers;
		start(true, BUSE_RETAIN);
		t = logged(1, 0);
		assert_int_equal(fake_wait(t), 0);
		t = logged(2, 0);
		assert_int_equal(fake_wait(t), 0);
		rd.release_early = false;
		/* The record is free: a plain retained write still works. */
		t = logged(3, 0);
		assert_true(fake_wait_applied(t));
		assert_false(fake_done(t));
		buse_release(wait_req(3));
		assert_int_equal(fake_wait(t), 0);
		assert_int_equal(fake_run_stop(&runner), 0);
		rd.workers = 0;
	}
}

/*
 * A release from another thread never reaches the kernel before the RETAIN
 * it follows.  Writes 1 and 2 come in one batch (both queued while a read
 * holds the queue thread); 2's callback has 1 released, after 1 returned
 * BUSE_RETAIN but before the queue thread's batch of completions went out.
 * The kernel would take the release as apply-and-release and the RETAIN
 * after it as invalid (bad_cqe, which fake_run_stop() checks).
 */
static void test_release_does_not_overtake_retain(void **state)
{
	struct fake_io rio = {
		.op = BUSE_OP_READ, .sector = 512, .len = 4096, .tag = -1};
	unsigned tr, t1, t2;

	start(true, BUSE_RETAIN);
	rd.release_1_in_2 = true;
	rd.read_gate = true;
	tr = fake_submit(0, &rio);
	pthread_mutex_lock(&rd.lock);
	while (!rd.reads)
		pthread_cond_wait(&rd.cond, &rd.lock);
	pthread_mutex_unlock(&rd.lock);
	t1 = logged(1, 0);
	t2 = logged(2, 0);
	pthread_mutex_lock(&rd.lock);
	rd.read_gate = false;
	pthread_cond_broadcast(&rd.cond);
	pthread_mutex_unlock(&rd.lock);
	assert_int_equal(fake_wait(tr), 0);
	assert_int_equal(fake_wait(t1), 0); /* released */
	assert_true(fake_wait_applied(t2));
	assert_false(fake_done(t2)); /* still retained */
	buse_release(wait_req(2));
	assert_int_equal(fake_wait(t2), 0);
	rd.release_1_in_2 = false;
	assert_int_equal(fake_run_stop(&runner), 0);
}

/* Releases inside a batch reach the kernel at the outermost batch_end. */
static void test_release_batched(void **state)
{
	struct fake_stats before, after;
	unsigned t[3], i;

	start(true, BUSE_RETAIN);
	for (i = 0; i < 3; i++)
		t[i] = logged(i + 1, 0);
	for (i = 0; i < 3; i++) {
		assert_true(fake_wait_applied(t[i]));
		assert_non_null(wait_req(i + 1));
	}
	fake_get_stats(&before);
	buse_batch_begin();
	for (i = 0; i < 3; i++)
		buse_release(rd.req[i + 1]);
	usleep(20000);
	for (i = 0; i < 3; i++)
		assert_false(fake_done(t[i]));
	buse_batch_end();
	for (i = 0; i < 3; i++)
		assert_int_equal(fake_wait(t[i]), 0);
	fake_get_stats(&after);
	/* One SYNC for the three (the queue thread may add its own). */
	assert_true(after.sync0[0] - before.sync0[0] >= 1);
	assert_int_equal(fake_run_stop(&runner), 0);
}

/* Writes handed again after a recovery carry the flags. */
static void test_recovered_flags(void **state)
{
	unsigned t1, t2;

	start(true, 0);
	t1 = logged(1, BUSE_SQE_AFTER | BUSE_SQE_REPLAYED |
			       BUSE_SQE_APPLIED_BEFORE);
	t2 = logged(2, BUSE_SQE_AFTER | BUSE_SQE_REPLAYED);
	assert_int_equal(fake_wait(t1), 0);
	assert_int_equal(fake_wait(t2), 0);
	assert_int_equal(rd.flags[1],
			 BUSE_REQ_REPLAYED | BUSE_REQ_APPLIED_BEFORE);
	assert_int_equal(rd.flags[2], BUSE_REQ_REPLAYED);
	assert_int_equal(fake_run_stop(&runner), 0);
}

/*
 * An AFTER write waits for the one before it without blocking its queue: a
 * read behind it is served meanwhile, and it goes once the first is applied
 * (retained is enough).
 */
static void test_after_parks_only_the_write(void **state)
{
	struct fake_io rio = {
		.op = BUSE_OP_READ, .sector = 512, .len = 4096, .tag = -1};
	struct buse_req *first;
	unsigned t1, t2, tr;

	start(true, BUSE_ASYNC);
	t1 = logged(1, 0);
	first = wait_req(1);
	assert_non_null(first);
	t2 = logged(2, BUSE_SQE_AFTER);
	tr = fake_submit(0, &rio);
	assert_int_equal(fake_wait(tr), 0); /* the queue still serves */
	assert_null(rd.req[2]);		    /* the AFTER write waits */
	assert_false(fake_applied(t2));
	rd.ret = 0;
	buse_complete_applied(first);
	assert_int_equal(fake_wait(t2), 0);
	assert_non_null(rd.req[2]);
	buse_release(first);
	assert_int_equal(fake_wait(t1), 0);
	assert_int_equal(fake_run_stop(&runner), 0);
}

/* Write-through: BUSE_RETAIN means 0, buse_release() does nothing. */
static void test_write_through(void **state)
{
	static char data[4096];
	struct fake_io io = {.op = BUSE_OP_WRITE,
			     .sector = 8,
			     .len = 4096,
			     .wdata = data,
			     .tag = -1};
	struct fake_stats st;
	unsigned t;

	start(false, BUSE_RETAIN);
	t = fake_submit(0, &io);
	assert_int_equal(fake_wait(t), 0);
	assert_int_equal(buse_req_seq(rd.req[1]), 0);
	buse_release(rd.req[1]);
	fake_get_stats(&st);
	assert_int_equal(st.completed_total, 1);
	assert_int_equal(fake_run_stop(&runner), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_retain_release),
		cmocka_unit_test(test_complete_applied),
		cmocka_unit_test(test_release_before_retain),
		cmocka_unit_test(test_release_does_not_overtake_retain),
		cmocka_unit_test(test_release_batched),
		cmocka_unit_test(test_recovered_flags),
		cmocka_unit_test(test_after_parks_only_the_write),
		cmocka_unit_test(test_write_through),
	};

	buse_drain_timeout_ms = 200;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
