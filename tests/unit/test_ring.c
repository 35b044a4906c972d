// SPDX-License-Identifier: LGPL-2.1-or-later
/* The ring protocol on its own: layout checks, indices, bounds, status. */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "ring.h"

struct layout {
	struct buse_queue_attach a;
	char *region;
};

/* A region laid out like buse.ko lays it out, indices at @start. */
static void layout_make(struct layout *l, uint32_t depth, uint32_t sq_entries,
			uint32_t cq_entries, uint32_t start)
{
	struct buse_ring_hdr *hdr;

	memset(&l->a, 0, sizeof(l->a));
	l->a.depth = depth;
	l->a.sq_entries = sq_entries;
	l->a.cq_entries = cq_entries;
	l->a.sq_off = sizeof(struct buse_ring_hdr);
	l->a.cq_off = l->a.sq_off + sq_entries * sizeof(struct buse_sqe);
	l->a.data_off =
		(l->a.cq_off + cq_entries * sizeof(struct buse_cqe) + 4095) &
		~4095ULL;
	l->a.slot_size = 4096;
	l->a.data_size = (uint64_t)depth * 4096;
	l->a.region_size = l->a.data_off + l->a.data_size;
	l->region = aligned_alloc(4096, l->a.region_size);
	assert_non_null(l->region);
	memset(l->region, 0, l->a.region_size);
	hdr = (void *)l->region;
	hdr->sq_tail = hdr->sq_head = hdr->cq_tail = hdr->cq_head = start;
}

static struct buse_ring_hdr *hdr_of(struct layout *l)
{
	return (void *)l->region;
}

static void test_init_good_layout(void **state)
{
	struct buse_ring r;
	struct layout l;

	layout_make(&l, 8, 8, 8, 7);
	assert_int_equal(buse_ring_init(&r, l.region, &l.a), 0);
	assert_ptr_equal(r.hdr, l.region);
	assert_ptr_equal(r.sqes, l.region + l.a.sq_off);
	assert_ptr_equal(r.cqes, l.region + l.a.cq_off);
	assert_int_equal(r.sq_head, 7);
	assert_int_equal(r.cq_tail, 7);
	assert_int_equal(r.depth, 8);
	free(l.region);
}

/*
 * A large write-back log has more records than BUSE_MAX_DEPTH tags: they
 * are accepted up to BUSE_MAX_LOG_RECS, the most buse.ko hands out.
 */
static void test_init_log_recs_limit(void **state)
{
	struct buse_ring r;
	struct layout l;

	layout_make(&l, 8, 8, 1U << 19, 0);
	l.a.log_recs = BUSE_MAX_DEPTH * 8;
	assert_int_equal(buse_ring_init(&r, l.region, &l.a), 0);
	assert_int_equal(r.depth, 8 + BUSE_MAX_DEPTH * 8);
	l.a.log_recs = BUSE_MAX_LOG_RECS;
	assert_int_equal(buse_ring_init(&r, l.region, &l.a), 0);
	l.a.log_recs = BUSE_MAX_LOG_RECS + 1;
	assert_int_equal(buse_ring_init(&r, l.region, &l.a), -EPROTO);
	free(l.region);
}

static void test_init_rejects_bad_layouts(void **state)
{
	struct buse_ring r;
	struct layout l;
	struct buse_queue_attach a;

	layout_make(&l, 8, 8, 8, 0);
#define REJECT(field, value)                                                   \
	do {                                                                   \
		a = l.a;                                                       \
		a.field = value;                                               \
		assert_int_equal(buse_ring_init(&r, l.region, &a), -EPROTO);   \
	} while (0)
	REJECT(sq_entries, 6); /* not a power of two */
	REJECT(cq_entries, 0);
	REJECT(cq_entries, 4); /* fewer than depth: could overflow */
	REJECT(depth, 0);
	REJECT(depth, BUSE_MAX_DEPTH + 1);
	REJECT(region_size, 0);
	REJECT(sq_off, 0);   /* on top of the header */
	REJECT(sq_off, 130); /* misaligned */
	REJECT(cq_off, l.a.region_size - 8);
	REJECT(cq_off, UINT32_MAX - 7);
	REJECT(data_off, l.a.region_size - 4095); /* data past the end */
	REJECT(data_size, UINT64_MAX - 100);	  /* overflows */
	REJECT(data_off, UINT64_MAX - 4095);
	REJECT(region_size, l.a.data_off + l.a.data_size - 1);
#undef REJECT
	assert_int_equal(buse_ring_init(&r, NULL, &l.a), -EPROTO);
	free(l.region);
}

/* Kernel side: publish @n sqes whose fields encode their sequence number. */
static void kernel_push(struct layout *l, uint32_t *tail, uint32_t *seq,
			unsigned n)
{
	struct buse_sqe *sq = (void *)(l->region + l->a.sq_off);

	while (n--) {
		struct buse_sqe *e = &sq[*tail & (l->a.sq_entries - 1)];

		memset(e, 0, sizeof(*e));
		e->op = *seq % 5;
		e->tag = *seq % l->a.depth;
		e->sector = (uint64_t)*seq * 8;
		e->cookie = *seq ^ 0xabcdef;
		e->len = 512 + (*seq % 4) * 512;
		(*tail)++;
		(*seq)++;
	}
	__atomic_store_n(&hdr_of(l)->sq_tail, *tail, __ATOMIC_RELEASE);
}

static void sq_wrap(uint32_t start)
{
	uint32_t tail = start, seq = 0, got = 0;
	struct buse_ring r;
	struct layout l;
	unsigned round;

	layout_make(&l, 4, 4, 4, start);
	assert_int_equal(buse_ring_init(&r, l.region, &l.a), 0);
	/* Far more requests than entries, in batches of every size. */
	for (round = 0; round < 2000; round++) {
		unsigned n = 1 + round % 4, i;
		int ready;

		kernel_push(&l, &tail, &seq, n);
		ready = buse_ring_sq_count(&r, buse_ring_sq_tail(&r));
		assert_int_equal(ready, n);
		for (i = 0; i < n; i++) {
			struct buse_sqe e;

			buse_ring_sq_pop(&r, &e);
			assert_int_equal(e.sector, (uint64_t)got * 8);
			assert_int_equal(e.cookie, got ^ 0xabcdef);
			assert_int_equal(e.op, got % 5);
			assert_int_equal(e.len, 512 + (got % 4) * 512);
			got++;
		}
		/* Nothing is given back before the commit. */
		assert_int_equal(hdr_of(&l)->sq_head, tail - n);
		buse_ring_sq_commit(&r);
		assert_int_equal(hdr_of(&l)->sq_head, tail);
		assert_int_equal(buse_ring_sq_count(&r, buse_ring_sq_tail(&r)),
				 0);
	}
	assert_int_equal(got, seq);
	free(l.region);
}

static void test_sq_wraparound(void **state)
{
	sq_wrap(0);
	sq_wrap(UINT32_MAX - 5); /* the 32-bit indices wrap too */
}

static void test_sq_count_rejects_impossible_tail(void **state)
{
	struct buse_ring r;
	struct layout l;

	layout_make(&l, 4, 4, 4, 100);
	assert_int_equal(buse_ring_init(&r, l.region, &l.a), 0);
	assert_int_equal(buse_ring_sq_count(&r, 104), 4);
	assert_int_equal(buse_ring_sq_count(&r, 105), -EPROTO);
	assert_int_equal(buse_ring_sq_count(&r, 99), -EPROTO); /* behind */
	free(l.region);
}

static void cq_wrap(uint32_t start)
{
	struct buse_cqe *cq;
	uint32_t kernel_head = start, seq = 0, checked = 0;
	struct buse_ring r;
	struct layout l;
	unsigned round;

	layout_make(&l, 4, 4, 4, start);
	cq = (void *)(l.region + l.a.cq_off);
	assert_int_equal(buse_ring_init(&r, l.region, &l.a), 0);
	for (round = 0; round < 2000; round++) {
		/* Fill whatever room there is, in random-ish chunks. */
		unsigned n = 1 + (round * 7) % 4, i;

		if (n > buse_ring_cq_space(&r))
			n = buse_ring_cq_space(&r);
		for (i = 0; i < n; i++, seq++)
			buse_ring_cq_put(&r, seq % 4, seq * 3,
					 -(int)(seq % 100));
		/* Not visible before publish. */
		assert_int_equal(hdr_of(&l)->cq_tail, start + seq - n);
		buse_ring_cq_publish(&r);
		assert_int_equal(hdr_of(&l)->cq_tail, start + seq);
		/* Kernel consumes some, maybe none. */
		n = (round % 3 == 0) ? 0 : hdr_of(&l)->cq_tail - kernel_head;
		for (i = 0; i < n; i++, checked++, kernel_head++) {
			struct buse_cqe *c = &cq[kernel_head & 3];

			assert_int_equal(c->tag, checked % 4);
			assert_int_equal(c->cookie, checked * 3);
			assert_int_equal(c->status, -(int)(checked % 100));
			assert_int_equal(c->flags, 0);
		}
		__atomic_store_n(&hdr_of(&l)->cq_head, kernel_head,
				 __ATOMIC_RELEASE);
		assert_int_equal(buse_ring_cq_space(&r),
				 4 - (r.cq_tail - kernel_head));
	}
	assert_true(seq > 1000);
	free(l.region);
}

static void test_cq_wraparound(void **state)
{
	cq_wrap(0);
	cq_wrap(UINT32_MAX - 2);
}

static void test_cq_full_and_bogus_head(void **state)
{
	struct buse_ring r;
	struct layout l;
	int i;

	layout_make(&l, 4, 4, 4, 0);
	assert_int_equal(buse_ring_init(&r, l.region, &l.a), 0);
	assert_int_equal(buse_ring_cq_space(&r), 4);
	for (i = 0; i < 4; i++)
		buse_ring_cq_put(&r, i, i, 0);
	assert_int_equal(buse_ring_cq_space(&r), 0);
	hdr_of(&l)->cq_head = 1;
	assert_int_equal(buse_ring_cq_space(&r), 1);
	/* A head beyond our tail is nonsense: never write over anything. */
	hdr_of(&l)->cq_head = 9;
	assert_int_equal(buse_ring_cq_space(&r), 0);
	free(l.region);
}

static void test_data_bounds(void **state)
{
	struct buse_sqe sqe;
	struct buse_ring r;
	struct layout l;
	uint64_t d, end;

	layout_make(&l, 4, 4, 4, 0);
	assert_int_equal(buse_ring_init(&r, l.region, &l.a), 0);
	d = l.a.data_off;
	end = d + l.a.data_size;
	memset(&sqe, 0, sizeof(sqe));

	sqe.data_off = d;
	sqe.len = 4096;
	assert_ptr_equal(buse_ring_data(&r, &sqe), l.region + d);
	sqe.data_off = d + 3 * 4096 + 512;
	sqe.len = 3584; /* ends exactly at the end */
	assert_ptr_equal(buse_ring_data(&r, &sqe), l.region + sqe.data_off);
	sqe.len = 3585;
	assert_null(buse_ring_data(&r, &sqe));
	sqe.data_off = d - 512; /* inside the rings */
	sqe.len = 512;
	assert_null(buse_ring_data(&r, &sqe));
	sqe.data_off = 0;
	assert_null(buse_ring_data(&r, &sqe));
	sqe.data_off = end;
	sqe.len = 1;
	assert_null(buse_ring_data(&r, &sqe));
	sqe.data_off = UINT64_MAX - 100; /* off + len wraps */
	sqe.len = 4096;
	assert_null(buse_ring_data(&r, &sqe));
	sqe.data_off = end + 4096;
	sqe.len = 0;
	assert_null(buse_ring_data(&r, &sqe));
	free(l.region);
}

static void test_status_clamp(void **state)
{
	assert_int_equal(buse_status_clamp(0), 0);
	assert_int_equal(buse_status_clamp(-EIO), -EIO);
	assert_int_equal(buse_status_clamp(-ENOSPC), -ENOSPC);
	assert_int_equal(buse_status_clamp(-4095), -4095);
	assert_int_equal(buse_status_clamp(-4096), -EIO);
	assert_int_equal(buse_status_clamp(INT_MIN), -EIO);
	assert_int_equal(buse_status_clamp(1), -EIO);
	assert_int_equal(buse_status_clamp(EIO), -EIO);
	assert_int_equal(buse_status_clamp(INT_MAX), -EIO);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_init_good_layout),
		cmocka_unit_test(test_init_log_recs_limit),
		cmocka_unit_test(test_init_rejects_bad_layouts),
		cmocka_unit_test(test_sq_wraparound),
		cmocka_unit_test(test_sq_count_rejects_impossible_tail),
		cmocka_unit_test(test_cq_wraparound),
		cmocka_unit_test(test_cq_full_and_bogus_head),
		cmocka_unit_test(test_data_bounds),
		cmocka_unit_test(test_status_clamp),
	};

	alarm(120); /* a hang fails instead of blocking `make unit` */
	return cmocka_run_group_tests(tests, NULL, NULL);
}
