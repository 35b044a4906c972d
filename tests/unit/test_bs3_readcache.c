// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * BS3's local read cache as the engine uses it (bs3_opts.cache_dir): a
 * second read of stored data is served from the cache, without a GET and
 * at once; the data is right; GC's rewrites do not serve stale chunks.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "bs3.h"
#include "bs3/fake_s3.h"

#define VOLSZ (4u << 20)
#define BS    4096u
#define OBJ   (64u << 10)

static void quiet(void *arg, const char *line)
{
	(void)arg;
	(void)line;
}

static void nop(void *arg, int st)
{
	(void)arg;
	(void)st;
}

struct ctx {
	struct fake_s3 *f;
	struct bs3_opts o;
	char dir[64];
};

static int setup(void **state)
{
	struct ctx *c = calloc(1, sizeof(*c));
	char err[256];

	c->f = fake_s3_new();
	fake_s3_add_bucket(c->f, "b");
	strcpy(c->dir, "/tmp/bs3-readcache-XXXXXX");
	if (!mkdtemp(c->dir))
		return -1;
	c->o = (struct bs3_opts){.bucket = "b",
				 .volume = "vol",
				 .client = fake_s3_client(c->f),
				 .no_gc = true,
				 .progress = quiet};
	if (bs3_create(&c->o, VOLSZ, BS, OBJ, err, sizeof(err)))
		return -1;
	*state = c;
	return 0;
}

static int teardown(void **state)
{
	struct ctx *c = *state;
	char path[128];

	snprintf(path, sizeof(path), "%s/bs3-cache", c->dir);
	unlink(path);
	rmdir(c->dir);
	fake_s3_free(c->f);
	free(c);
	return 0;
}

/* Fill blocks [0, n) with a pattern of gen, stored (flushed) and closed. */
static void fill(struct ctx *c, uint32_t n, int gen)
{
	struct bs3_vol *v;
	char err[256];
	uint8_t *buf = malloc((size_t)n * BS);

	for (uint32_t i = 0; i < n; i++)
		memset(buf + (size_t)i * BS, (int)(i * 7 + gen), BS);
	assert_int_equal(bs3_open(&c->o, &v, err, sizeof(err)), 0);
	assert_int_equal(bs3_write(v, 0, n * BS, buf, nop, NULL), 0);
	assert_int_equal(bs3_flush_sync(v), 0);
	assert_int_equal(bs3_close(v), 0);
	free(buf);
}

static void check_block(const uint8_t *got, uint32_t i, int gen)
{
	uint8_t want[BS];

	memset(want, (int)(i * 7 + gen), BS);
	assert_memory_equal(got, want, BS);
}

static void check(const uint8_t *got, uint32_t n, int gen)
{
	for (uint32_t i = 0; i < n; i++)
		check_block(got + (size_t)i * BS, i, gen);
}

static void test_second_read_hits(void **state)
{
	struct ctx *c = *state;
	struct bs3_opts o = c->o;
	struct bs3_vol *v;
	struct bs3_stats st;
	char err[256];
	uint32_t n = 64; /* 256 KiB: four objects */
	uint8_t *got = malloc((size_t)n * BS);
	uint64_t gets;

	fill(c, n, 1);
	o.cache_dir = c->dir;
	o.cache_size = 8u << 20;
	assert_int_equal(bs3_open(&o, &v, err, sizeof(err)), 0);

	gets = fake_s3_count(c->f, S3_GET);
	assert_int_equal(bs3_read_sync(v, 0, n * BS, got), 0);
	check(got, n, 1);
	assert_true(fake_s3_count(c->f, S3_GET) > gets); /* from the bucket */

	gets = fake_s3_count(c->f, S3_GET);
	memset(got, 0, (size_t)n * BS);
	/* served at once (0, not BS3_PENDING), no GET */
	assert_int_equal(bs3_read(v, 0, n * BS, got, nop, NULL), 0);
	check(got, n, 1);
	assert_int_equal(fake_s3_count(c->f, S3_GET), gets);
	bs3_get_stats(v, &st);
	assert_true(st.cache_hits >= 4);
	assert_true(st.cache_misses >= 4);
	assert_int_equal(bs3_close(v), 0);
	free(got);
}

/* Without a cache every read of stored data is a GET (the control). */
static void test_no_cache_gets(void **state)
{
	struct ctx *c = *state;
	struct bs3_vol *v;
	struct bs3_stats st;
	char err[256];
	uint8_t *got = malloc(16 * BS);
	uint64_t gets;

	fill(c, 16, 3);
	assert_int_equal(bs3_open(&c->o, &v, err, sizeof(err)), 0);
	assert_int_equal(bs3_read_sync(v, 0, 16 * BS, got), 0);
	gets = fake_s3_count(c->f, S3_GET);
	assert_int_equal(bs3_read_sync(v, 0, 16 * BS, got), 0);
	check(got, 16, 3);
	assert_true(fake_s3_count(c->f, S3_GET) > gets);
	bs3_get_stats(v, &st);
	assert_int_equal(st.cache_hits, 0);
	assert_int_equal(bs3_close(v), 0);
	free(got);
}

/*
 * Overwrite cached data, let GC rewrite and delete the old objects: reads
 * return the new data, never a cached chunk of the old object.
 */
static void test_overwrite_and_gc(void **state)
{
	struct ctx *c = *state;
	struct bs3_opts o = c->o;
	struct bs3_vol *v;
	char err[256];
	uint32_t n = 32;
	uint8_t *got = malloc((size_t)n * BS), *buf = malloc((size_t)n * BS);

	fill(c, n, 5);
	o.cache_dir = c->dir;
	o.cache_size = 8u << 20;
	assert_int_equal(bs3_open(&o, &v, err, sizeof(err)), 0);
	assert_int_equal(bs3_read_sync(v, 0, n * BS, got), 0); /* cache it */
	check(got, n, 5);
	/* overwrite every other block: the old objects become half garbage */
	for (uint32_t i = 0; i < n; i += 2) {
		memset(buf + (size_t)i * BS, (int)(i * 7 + 9), BS);
		assert_int_equal(bs3_write(v, (uint64_t)i * BS, BS,
					   buf + (size_t)i * BS, nop, NULL),
				 0);
	}
	assert_int_equal(bs3_flush_sync(v), 0);
	assert_true(bs3_gc_now(v) >= 0);
	assert_int_equal(bs3_flush_sync(v), 0);
	for (int pass = 0; pass < 2; pass++) { /* miss, then hit */
		memset(got, 0, (size_t)n * BS);
		assert_int_equal(bs3_read_sync(v, 0, n * BS, got), 0);
		for (uint32_t i = 0; i < n; i++) {
			uint8_t want[BS];

			memset(want, (int)(i * 7 + (i % 2 ? 5 : 9)), BS);
			assert_memory_equal(got + (size_t)i * BS, want, BS);
		}
	}
	assert_int_equal(bs3_close(v), 0);
	free(got);
	free(buf);
}

/*
 * Small reads inside a chunk: the miss reads the whole chunk, so the next
 * small read nearby is a hit (without that, 4 KiB random reads would
 * never fill the cache).
 */
static void test_small_reads_fill(void **state)
{
	struct ctx *c = *state;
	struct bs3_opts o = c->o;
	struct bs3_vol *v;
	char err[256];
	uint8_t got[BS];
	uint64_t gets;

	fill(c, 64, 2);
	o.cache_dir = c->dir;
	o.cache_size = 8u << 20;
	assert_int_equal(bs3_open(&o, &v, err, sizeof(err)), 0);
	gets = fake_s3_count(c->f, S3_GET);
	assert_int_equal(bs3_read_sync(v, 5 * BS, BS, got), 0);
	check_block(got, 5, 2);
	assert_int_equal(fake_s3_count(c->f, S3_GET), gets + 1);
	for (uint32_t b = 4; b < 8; b++) { /* the same 64 KiB chunk */
		assert_int_equal(
			bs3_read(v, (uint64_t)b * BS, BS, got, nop, NULL), 0);
		check_block(got, b, 2);
	}
	assert_int_equal(fake_s3_count(c->f, S3_GET), gets + 1);
	assert_int_equal(bs3_close(v), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_second_read_hits, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_no_cache_gets, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_overwrite_and_gc, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_small_reads_fill, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
