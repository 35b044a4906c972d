// SPDX-License-Identifier: LGPL-2.1-or-later
/* The queue threads' adaptive scheduling class (lib/sched_policy.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <buse/buse.h>

#include "sched_policy.h"

/* Feed @passes passes of @n requests; how many times the class changed. */
static unsigned feed(struct buse_sched *s, uint32_t passes, uint32_t n)
{
	unsigned changes = 0;

	while (passes--)
		changes += buse_sched_pass(s, n);
	return changes;
}

static void fixed_policies_never_change(void **state)
{
	struct buse_sched s;

	(void)state;
	buse_sched_init(&s, BUSE_SCHED_LATENCY);
	assert_false(s.batch);
	assert_int_equal(feed(&s, 100000, 1), 0);
	assert_int_equal(feed(&s, 100000, 32), 0);
	assert_false(s.batch);

	buse_sched_init(&s, BUSE_SCHED_THROUGHPUT);
	assert_true(s.batch);
	assert_int_equal(feed(&s, 100000, 1), 0);
	assert_true(s.batch);
}

static void batches_keep_batch_mode(void **state)
{
	struct buse_sched s;

	(void)state;
	buse_sched_init(&s, BUSE_SCHED_ADAPTIVE);
	assert_true(s.batch); /* starts batching */
	assert_int_equal(feed(&s, 10 * BUSE_SCHED_WINDOW, 30), 0);
	assert_true(s.batch);
	/* Exactly the threshold still pays. */
	assert_int_equal(feed(&s, BUSE_SCHED_WINDOW, BUSE_SCHED_MIN_BATCH), 0);
	assert_true(s.batch);
}

static void lone_requests_fall_back_to_latency(void **state)
{
	struct buse_sched s;

	(void)state;
	buse_sched_init(&s, BUSE_SCHED_ADAPTIVE);
	/* One window of lone requests: back to SCHED_OTHER at its end. */
	assert_int_equal(feed(&s, BUSE_SCHED_WINDOW - 1, 1), 0);
	assert_true(s.batch);
	assert_true(buse_sched_pass(&s, 1));
	assert_false(s.batch);
}

static void failed_tries_back_off(void **state)
{
	struct buse_sched s;
	uint32_t gap = BUSE_SCHED_PROBE_MIN, i;

	(void)state;
	buse_sched_init(&s, BUSE_SCHED_ADAPTIVE);
	feed(&s, BUSE_SCHED_WINDOW, 1);
	assert_false(s.batch);
	for (i = 0; i < 12; i++) {
		/* Tries again after exactly `gap` passes... */
		assert_int_equal(feed(&s, gap - 1, 1), 0);
		assert_false(s.batch);
		assert_true(buse_sched_pass(&s, 1));
		assert_true(s.batch);
		/* ...fails within one window, and waits twice as long. */
		assert_int_equal(feed(&s, BUSE_SCHED_WINDOW, 1), 1);
		assert_false(s.batch);
		if (gap < BUSE_SCHED_PROBE_MAX)
			gap *= 2;
	}
	assert_int_equal(s.probe_every, BUSE_SCHED_PROBE_MAX);
}

static void load_returns_after_latency_phase(void **state)
{
	struct buse_sched s;

	(void)state;
	buse_sched_init(&s, BUSE_SCHED_ADAPTIVE);
	feed(&s, BUSE_SCHED_WINDOW, 1);
	assert_false(s.batch);
	assert_true(s.probe_every > BUSE_SCHED_PROBE_MIN);
	/* In SCHED_OTHER batches stay small; the next try finds load. */
	assert_int_equal(feed(&s, BUSE_SCHED_PROBE_MIN, 1), 1);
	assert_true(s.batch);
	assert_int_equal(feed(&s, 4 * BUSE_SCHED_WINDOW, 20), 0);
	assert_true(s.batch);
	/* A success resets the back-off. */
	assert_int_equal(s.probe_every, BUSE_SCHED_PROBE_MIN);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(fixed_policies_never_change),
		cmocka_unit_test(batches_keep_batch_mode),
		cmocka_unit_test(lone_requests_fall_back_to_latency),
		cmocka_unit_test(failed_tries_back_off),
		cmocka_unit_test(load_returns_after_latency_phase),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
