// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The extent map against a flat block-by-block model, its edge cases at
 * region boundaries, and its memory bound.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "format.h"
#include "map.h"

static uint64_t rng = 0x2545F4914F6CDD1Dull;

static uint64_t rnd(uint64_t n)
{
	/* xorshift64*: reproducible, so a failure repeats */
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return (rng * 0x2545F4914F6CDD1Dull >> 11) % n;
}

/* The model: one (obj, off) per block. */
struct model {
	uint64_t n;
	uint32_t *obj, *off;
};

static bool cont(const struct model *md, uint64_t b)
{
	/* block b continues block b - 1 (same object, next offset) */
	if (md->obj[b] != md->obj[b - 1])
		return false;
	return md->obj[b] == BS3_MAP_NONE || md->off[b] == md->off[b - 1] + 1;
}

static int walk_check(void *arg, const struct bs3_map_piece *p)
{
	uint64_t *at = arg;

	/* Pieces come in order, never a hole, never empty. */
	assert_true(p->lba >= *at);
	assert_true(p->nblocks > 0);
	assert_int_not_equal(p->obj, BS3_MAP_NONE);
	*at = p->lba + p->nblocks;
	return 0;
}

struct walk_model {
	const struct model *md;
	uint64_t at, pieces;
};

static int walk_cmp(void *arg, const struct bs3_map_piece *p)
{
	struct walk_model *w = arg;

	walk_check(&w->at, p);
	for (uint32_t i = 0; i < p->nblocks; i++) {
		assert_int_equal(w->md->obj[p->lba + i], p->obj);
		assert_int_equal(w->md->off[p->lba + i], p->off + i);
	}
	/* maximal: does not continue the block before it */
	if (p->lba)
		assert_false(cont(w->md, p->lba) &&
			     w->md->obj[p->lba] != BS3_MAP_NONE);
	w->pieces++;
	return 0;
}

static void compare(const struct bs3_map *m, const struct model *md,
		    uint32_t nobj)
{
	struct bs3_map_piece *p = calloc(md->n, sizeof(*p));
	size_t np = bs3_map_lookup(m, 0, md->n, p, md->n);
	uint64_t b = 0, runs = 0, mapped_runs = 0, exts = 0, mapped = 0;
	struct walk_model w = {md, 0, 0};

	assert_non_null(p);
	for (size_t i = 0; i < np; i++) {
		assert_int_equal(p[i].lba, b);
		for (uint32_t k = 0; k < p[i].nblocks; k++, b++) {
			assert_int_equal(p[i].obj, md->obj[b]);
			if (p[i].obj != BS3_MAP_NONE)
				assert_int_equal(p[i].off + k, md->off[b]);
		}
	}
	assert_int_equal(b, md->n);
	/* Expected counts from the model. */
	for (b = 0; b < md->n; b++) {
		bool starts = !b || !cont(md, b);
		bool mapped_b = md->obj[b] != BS3_MAP_NONE;

		runs += starts;
		mapped_runs += starts && mapped_b;
		exts += mapped_b && (starts || b % BS3_MAP_REGION == 0);
		mapped += mapped_b;
	}
	assert_int_equal(np, runs);
	assert_int_equal(bs3_map_extents(m), exts);
	assert_int_equal(bs3_map_mapped(m), mapped);
	for (uint32_t o = 0; o < nobj; o++) {
		uint64_t live = 0;

		for (b = 0; b < md->n; b++)
			live += md->obj[b] == o;
		assert_int_equal(bs3_map_live(m, o), live);
	}
	assert_int_equal(bs3_map_walk(m, walk_cmp, &w), 0);
	assert_int_equal(w.pieces, mapped_runs);
	free(p);
}

static void test_model(void **state)
{
	const uint64_t n = 3000; /* 11 whole regions and a partial one */
	const uint32_t nobj = 6;
	struct bs3_map *m = bs3_map_new(n);
	struct model md = {n, calloc(n, 4), calloc(n, 4)};
	int64_t moved_total = 0;

	(void)state;
	assert_non_null(m);
	for (uint64_t b = 0; b < n; b++)
		md.obj[b] = BS3_MAP_NONE;
	for (int it = 0; it < 6000; it++) {
		unsigned int op = (unsigned int)rnd(10);
		uint64_t lba = rnd(n);
		uint32_t len = 1 + (uint32_t)rnd(rnd(4) ? 40 : 700);

		if (len > n - lba)
			len = (uint32_t)(n - lba);
		if (op < 5) {
			/* offsets often continue lba, so extents merge */
			uint32_t obj = (uint32_t)rnd(nobj);
			uint32_t off = rnd(2) ? (uint32_t)(lba + obj * 7)
					      : (uint32_t)rnd(60000);

			assert_int_equal(bs3_map_set(m, lba, len, obj, off), 0);
			for (uint32_t i = 0; i < len; i++) {
				md.obj[lba + i] = obj;
				md.off[lba + i] = off + i;
			}
		} else if (op < 7) {
			assert_int_equal(bs3_map_clear(m, lba, len), 0);
			for (uint32_t i = 0; i < len; i++)
				md.obj[lba + i] = BS3_MAP_NONE;
		} else {
			/* A source taken from what is mapped at lba (if any). */
			uint32_t src = md.obj[lba] != BS3_MAP_NONE
					       ? md.obj[lba]
					       : (uint32_t)rnd(nobj);
			uint32_t soff = md.obj[lba] != BS3_MAP_NONE
						? md.off[lba]
						: (uint32_t)rnd(1000);
			uint32_t obj = (uint32_t)rnd(nobj);
			uint32_t off = (uint32_t)rnd(60000);
			int64_t want = 0, got;

			if (soff + len > BS3_MAX_OBJ_BLOCKS)
				len = BS3_MAX_OBJ_BLOCKS - soff;
			got = bs3_map_move(m, lba, len, src, soff, obj, off);
			for (uint32_t i = 0; i < len; i++) {
				if (md.obj[lba + i] == src &&
				    md.off[lba + i] == soff + i) {
					md.obj[lba + i] = obj;
					md.off[lba + i] = off + i;
					want++;
				}
			}
			assert_int_equal(got, want);
			moved_total += got;
		}
		if (it % 7 == 0 || it > 5900)
			compare(m, &md, nobj);
		/* A random window, and a lookup with too small an array. */
		if (it % 13 == 0) {
			struct bs3_map_piece p[4];
			uint64_t wl = rnd(n), wn = 1 + rnd(n - wl);
			size_t all = bs3_map_lookup(m, wl, wn, NULL, 0);
			size_t got = bs3_map_lookup(m, wl, wn, p, 4);
			uint64_t b = wl;

			assert_int_equal(got, all);
			for (size_t i = 0; i < (all < 4 ? all : 4); i++) {
				assert_int_equal(p[i].lba, b);
				assert_int_equal(p[i].obj, md.obj[b]);
				b += p[i].nblocks;
			}
		}
	}
	/* The run really exercised moves that hit. */
	assert_true(moved_total > 1000);
	assert_int_equal(bs3_map_clear(m, 0, n), 0);
	assert_int_equal(bs3_map_extents(m), 0);
	assert_int_equal(bs3_map_mapped(m), 0);
	for (uint32_t o = 0; o < nobj; o++)
		assert_int_equal(bs3_map_live(m, o), 0);
	/* Cleared regions give their arrays back. */
	assert_true(bs3_map_memory(m) < 1024 + 16 * ((n + 255) / 256) + 8 * 64);
	bs3_map_free(m);
	free(md.obj);
	free(md.off);
}

static size_t pieces(const struct bs3_map *m, uint64_t lba, uint64_t n,
		     struct bs3_map_piece *p)
{
	return bs3_map_lookup(m, lba, n, p, 16);
}

static void test_region_boundaries(void **state)
{
	struct bs3_map *m = bs3_map_new(1024);
	struct bs3_map_piece p[16];

	(void)state;
	/* Across a boundary: one piece, two region entries. */
	assert_int_equal(bs3_map_set(m, 250, 12, 1, 0), 0);
	assert_int_equal(pieces(m, 250, 12, p), 1);
	assert_int_equal(p[0].nblocks, 12);
	assert_int_equal(bs3_map_extents(m), 2);
	/* A hole punched over the boundary. */
	assert_int_equal(bs3_map_clear(m, 255, 2), 0);
	assert_int_equal(pieces(m, 250, 12, p), 3);
	assert_true(p[0].lba == 250 && p[0].nblocks == 5 && p[0].off == 0);
	assert_true(p[1].lba == 255 && p[1].nblocks == 2 &&
		    p[1].obj == BS3_MAP_NONE);
	assert_true(p[2].lba == 257 && p[2].nblocks == 5 && p[2].off == 7);
	assert_int_equal(bs3_map_live(m, 1), 10);
	/* Filled again with the same mapping: merged back. */
	assert_int_equal(bs3_map_set(m, 255, 2, 1, 5), 0);
	assert_int_equal(pieces(m, 0, 1024, p), 3);
	assert_true(p[1].lba == 250 && p[1].nblocks == 12 && p[1].obj == 1);
	assert_int_equal(bs3_map_extents(m), 2);

	/* Full regions. */
	assert_int_equal(bs3_map_set(m, 256, 256, 2, 100), 0);
	assert_int_equal(pieces(m, 256, 256, p), 1);
	assert_true(p[0].obj == 2 && p[0].off == 100 && p[0].nblocks == 256);
	assert_int_equal(bs3_map_live(m, 1), 6);
	assert_int_equal(bs3_map_set(m, 0, 1024, 3, 0), 0);
	assert_int_equal(pieces(m, 0, 1024, p), 1);
	assert_int_equal(bs3_map_extents(m), 4);
	assert_int_equal(bs3_map_live(m, 1), 0);
	assert_int_equal(bs3_map_live(m, 2), 0);
	assert_int_equal(bs3_map_live(m, 3), 1024);
	/* Split a full region in the middle. */
	assert_int_equal(bs3_map_set(m, 300, 1, 4, 9), 0);
	assert_int_equal(pieces(m, 0, 1024, p), 3);
	assert_true(p[0].nblocks == 300 && p[1].obj == 4 && p[1].off == 9 &&
		    p[2].lba == 301 && p[2].off == 301);
	assert_int_equal(bs3_map_extents(m), 6);
	assert_int_equal(bs3_map_mapped(m), 1024);
	bs3_map_free(m);
}

static void test_merges(void **state)
{
	struct bs3_map *m = bs3_map_new(100);
	struct bs3_map_piece p[16];

	(void)state;
	assert_int_equal(bs3_map_set(m, 10, 5, 1, 20), 0);
	assert_int_equal(bs3_map_set(m, 15, 5, 1, 25), 0); /* after */
	assert_int_equal(bs3_map_extents(m), 1);
	assert_int_equal(bs3_map_set(m, 5, 5, 1, 15), 0); /* before */
	assert_int_equal(bs3_map_extents(m), 1);
	assert_int_equal(bs3_map_set(m, 20, 5, 1, 31), 0); /* not continuing */
	assert_int_equal(bs3_map_extents(m), 2);
	assert_int_equal(bs3_map_set(m, 20, 5, 2, 30), 0); /* other object */
	assert_int_equal(bs3_map_extents(m), 2);
	assert_int_equal(bs3_map_set(m, 8, 4, 1, 18), 0); /* same, inside */
	assert_int_equal(bs3_map_extents(m), 2);
	/* A gap filled to continue both sides. */
	assert_int_equal(bs3_map_set(m, 30, 5, 1, 40), 0);
	assert_int_equal(bs3_map_extents(m), 3);
	assert_int_equal(bs3_map_set(m, 20, 10, 1, 30), 0);
	assert_int_equal(bs3_map_extents(m), 1);
	assert_int_equal(pieces(m, 0, 100, p), 3);
	assert_true(p[1].lba == 5 && p[1].nblocks == 30 && p[1].off == 15);
	assert_int_equal(bs3_map_live(m, 1), 30);
	assert_int_equal(bs3_map_live(m, 2), 0);
	/* Highest offset an object has. */
	assert_int_equal(bs3_map_set(m, 99, 1, 5, 65535), 0);
	assert_int_equal(pieces(m, 99, 1, p), 1);
	assert_int_equal(p[0].off, 65535);
	assert_int_equal(bs3_map_set(m, 90, 10, 5, 65526), 0);
	assert_int_equal(pieces(m, 90, 10, p), 1);
	assert_true(p[0].off == 65526 && p[0].nblocks == 10);
	bs3_map_free(m);
}

static void test_invalid(void **state)
{
	struct bs3_map *m = bs3_map_new(1000);
	struct bs3_map_piece p[4];

	(void)state;
	assert_int_equal(bs3_map_set(m, 999, 2, 1, 0), -EINVAL);
	assert_int_equal(bs3_map_set(m, 1000, 1, 1, 0), -EINVAL);
	assert_int_equal(bs3_map_set(m, UINT64_MAX, 2, 1, 0), -EINVAL);
	assert_int_equal(bs3_map_set(m, 0, 1, BS3_MAP_NONE, 0), -EINVAL);
	assert_int_equal(bs3_map_set(m, 0, 2, 1, 65535), -EINVAL);
	assert_int_equal(bs3_map_set(m, 0, 1, 1, 65536), -EINVAL);
	assert_int_equal(bs3_map_clear(m, 1, 1000), -EINVAL);
	assert_int_equal(bs3_map_clear(m, 2, UINT64_MAX), -EINVAL);
	assert_int_equal(bs3_map_move(m, 999, 2, 1, 0, 2, 0), -EINVAL);
	assert_int_equal(bs3_map_move(m, 0, 2, 1, 65535, 2, 0), -EINVAL);
	assert_int_equal(bs3_map_move(m, 0, 2, 1, 0, 2, 65535), -EINVAL);
	assert_int_equal(bs3_map_move(m, 0, 1, BS3_MAP_NONE, 0, 2, 0), -EINVAL);
	assert_int_equal(bs3_map_lookup(m, 999, 2, p, 4), 0);
	/* Nothing changed. */
	assert_int_equal(bs3_map_mapped(m), 0);
	assert_int_equal(bs3_map_lookup(m, 0, 1000, p, 4), 1);
	assert_int_equal(p[0].obj, BS3_MAP_NONE);
	assert_int_equal(p[0].nblocks, 1000);
	assert_int_equal(bs3_map_blocks(m), 1000);
	assert_int_equal(bs3_map_live(m, 12345), 0);
	bs3_map_free(m);
}

static void test_move(void **state)
{
	struct bs3_map *m = bs3_map_new(600);
	struct bs3_map_piece p[16];

	(void)state;
	assert_int_equal(bs3_map_set(m, 200, 300, 1, 0), 0);
	assert_int_equal(bs3_map_set(m, 250, 10, 2, 0), 0); /* overwritten */
	assert_int_equal(bs3_map_clear(m, 400, 10), 0);	    /* discarded */
	/* Wrong source offset: nothing moves. */
	assert_int_equal(bs3_map_move(m, 200, 300, 1, 1, 3, 0), 0);
	/* Wrong source object: nothing moves. */
	assert_int_equal(bs3_map_move(m, 200, 300, 4, 0, 3, 0), 0);
	assert_int_equal(bs3_map_move(m, 200, 300, 1, 0, 3, 1000), 280);
	assert_int_equal(bs3_map_live(m, 1), 0);
	assert_int_equal(bs3_map_live(m, 2), 10);
	assert_int_equal(bs3_map_live(m, 3), 280);
	assert_int_equal(pieces(m, 200, 300, p), 5);
	assert_true(p[0].lba == 200 && p[0].obj == 3 && p[0].off == 1000 &&
		    p[0].nblocks == 50);
	assert_true(p[1].obj == 2 && p[1].nblocks == 10);
	assert_true(p[2].lba == 260 && p[2].obj == 3 && p[2].off == 1060 &&
		    p[2].nblocks == 140);
	assert_true(p[3].obj == BS3_MAP_NONE && p[3].nblocks == 10);
	assert_true(p[4].lba == 410 && p[4].off == 1210);
	/* A second move of the same range finds nothing left to move. */
	assert_int_equal(bs3_map_move(m, 200, 300, 1, 0, 3, 1000), 0);
	/* A partial move, in the middle of an extent. */
	assert_int_equal(bs3_map_move(m, 300, 20, 3, 1100, 5, 0), 20);
	assert_int_equal(pieces(m, 260, 140, p), 3);
	assert_true(p[1].lba == 300 && p[1].obj == 5 && p[1].nblocks == 20);
	assert_true(p[2].lba == 320 && p[2].obj == 3 && p[2].off == 1120);
	assert_int_equal(bs3_map_extents(m), 7);
	bs3_map_free(m);
}

struct stop {
	int n;
};

static int stop_after_two(void *arg, const struct bs3_map_piece *p)
{
	struct stop *s = arg;

	(void)p;
	return ++s->n == 2 ? 42 : 0;
}

static void test_walk_stop(void **state)
{
	struct bs3_map *m = bs3_map_new(10000);
	struct stop s = {0};
	uint64_t at = 0;

	(void)state;
	for (int i = 0; i < 10; i++)
		assert_int_equal(bs3_map_set(m, i * 700, 10, (uint32_t)i, 0),
				 0);
	assert_int_equal(bs3_map_walk(m, stop_after_two, &s), 42);
	assert_int_equal(s.n, 2);
	assert_int_equal(bs3_map_walk(m, walk_check, &at), 0);
	bs3_map_free(m);
}

/*
 * Memory bound, on 2^22 blocks (16 GiB at 4 KiB); per block and per region
 * it is the same for any size, so 1 TiB of 4 KiB blocks (2^28 blocks,
 * 2^20 regions) needs 256 times this:
 *   sequential: 16 B region table + one 8 B entry per region = 24 B per
 *               256 blocks, i.e. 24 MiB for 1 TiB;
 *   random 4 KiB, every block its own extent: at most 256 entries of 8 B
 *               per region plus the table: 8.06 B per block, ~2 GiB for
 *               1 TiB (the prototype: 32 B per block, 8 GiB).
 */
#define BIG (1ull << 22)

static void test_memory_sequential(void **state)
{
	struct bs3_map *m = bs3_map_new(BIG);
	uint64_t regions = BIG / BS3_MAP_REGION;

	(void)state;
	/* 32 KiB writes, 64 MiB objects (16384 blocks) filled in order. */
	for (uint64_t b = 0; b < BIG; b += 8)
		assert_int_equal(bs3_map_set(m, b, 8, (uint32_t)(b / 16384),
					     (uint32_t)(b % 16384)),
				 0);
	assert_int_equal(bs3_map_extents(m), regions);
	assert_int_equal(bs3_map_mapped(m), BIG);
	assert_int_equal(bs3_map_live(m, 7), 16384);
	printf("map: sequential %zu bytes for %llu blocks (%.1f B/region)\n",
	       bs3_map_memory(m), (unsigned long long)BIG,
	       (double)bs3_map_memory(m) / (double)regions);
	assert_true(bs3_map_memory(m) < 64 * regions);
	bs3_map_free(m);
}

static void test_memory_random(void **state)
{
	struct bs3_map *m = bs3_map_new(BIG);
	uint32_t *perm = malloc(BIG * sizeof(*perm));

	(void)state;
	assert_non_null(perm);
	for (uint64_t i = 0; i < BIG; i++)
		perm[i] = (uint32_t)i;
	for (uint64_t i = BIG - 1; i > 0; i--) {
		uint64_t j = rnd(i + 1);
		uint32_t t = perm[i];

		perm[i] = perm[j];
		perm[j] = t;
	}
	/* Neighbours always in different objects: nothing merges. */
	for (uint64_t i = 0; i < BIG; i++) {
		uint32_t b = perm[i];

		assert_int_equal(
			bs3_map_set(m, b, 1, b % 61, (uint32_t)rnd(65536)), 0);
		if (i == BIG / 3)
			assert_true(bs3_map_memory(m) <= 10 * BIG);
	}
	assert_int_equal(bs3_map_extents(m), BIG);
	printf("map: random %zu bytes for %llu blocks (%.2f B/block)\n",
	       bs3_map_memory(m), (unsigned long long)BIG,
	       (double)bs3_map_memory(m) / (double)BIG);
	assert_true(bs3_map_memory(m) <= 10 * BIG);
	free(perm);
	bs3_map_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_model),
		cmocka_unit_test(test_region_boundaries),
		cmocka_unit_test(test_merges),
		cmocka_unit_test(test_invalid),
		cmocka_unit_test(test_move),
		cmocka_unit_test(test_walk_stop),
		cmocka_unit_test(test_memory_sequential),
		cmocka_unit_test(test_memory_random),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
