// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * memdisk against the fake kernel: what is written reads back, a discard
 * reads as zeros, a flush reaches the driver, and requests on two queues at
 * once are served by the pool.  No module, no root.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <buse/fake.h>

#include "memdisk.h"

static struct memdisk md;
static struct fake_runner r;

static int setup(void **state)
{
	struct fake_cfg cfg;

	(void)state;
	assert_int_equal(memdisk_init(&md, 1 << 20), 0);
	fake_cfg_init(&cfg); /* two queues, eight requests each */
	fake_install(&cfg);
	memset(&r, 0, sizeof(r));
	buse_params_init(&r.params);
	r.params.size = md.size;
	r.params.workers = 4;
	r.params.handle_signals = false; /* the test runner's signals */
	r.ops = memdisk_ops;
	r.priv = &md;
	fake_run_start(&r);
	assert_true(fake_wait_state(BUSE_STATE_LIVE));
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	assert_int_equal(fake_run_stop(&r), 0); /* deletes, joins, checks */
	memdisk_free(&md);
	return 0;
}

static int io(unsigned qid, uint8_t op, uint64_t sector, uint32_t len,
	      const void *wdata, void *rbuf)
{
	struct fake_io x = {.op = op, .sector = sector, .len = len,
			    .wdata = wdata, .tag = -1};
	unsigned t = fake_submit(qid, &x);
	int ret = fake_wait(t);

	if (rbuf && !ret)
		memcpy(rbuf, fake_ticket_buf(t), len);
	return ret;
}

static void test_write_read(void **state)
{
	char w[4096], rd[4096];

	(void)state;
	memset(w, 'x', sizeof(w));
	assert_int_equal(io(0, BUSE_OP_WRITE, 8, sizeof(w), w, NULL), 0);
	/* the other queue sees it: one disk behind both */
	assert_int_equal(io(1, BUSE_OP_READ, 8, sizeof(rd), NULL, rd), 0);
	assert_memory_equal(rd, w, sizeof(w));
	assert_memory_equal(md.data + 8 * 512, w, sizeof(w));
}

static void test_discard_flush(void **state)
{
	char w[1024], rd[1024], zero[1024] = {0};

	(void)state;
	memset(w, 'y', sizeof(w));
	assert_int_equal(io(0, BUSE_OP_WRITE, 0, sizeof(w), w, NULL), 0);
	assert_int_equal(io(0, BUSE_OP_DISCARD, 0, sizeof(w), NULL, NULL), 0);
	assert_int_equal(io(0, BUSE_OP_READ, 0, sizeof(rd), NULL, rd), 0);
	assert_memory_equal(rd, zero, sizeof(rd));
	assert_int_equal(io(1, BUSE_OP_FLUSH, 0, 0, NULL, NULL), 0);
	assert_int_equal(md.flushes, 1);
}

static void test_many_in_flight(void **state)
{
	char w[16][512];
	unsigned t[16], i;

	(void)state;
	for (i = 0; i < 16; i++) {
		struct fake_io x = {.op = BUSE_OP_WRITE, .sector = 100 + i,
				    .len = 512, .wdata = w[i], .tag = -1};

		memset(w[i], 'a' + i, 512);
		t[i] = fake_submit(i % 2, &x);
	}
	for (i = 0; i < 16; i++)
		assert_int_equal(fake_wait(t[i]), 0);
	for (i = 0; i < 16; i++)
		assert_memory_equal(md.data + (100 + i) * 512, w[i], 512);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_write_read, setup, teardown),
		cmocka_unit_test_setup_teardown(test_discard_flush, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_many_in_flight, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
