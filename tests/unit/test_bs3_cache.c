// SPDX-License-Identifier: LGPL-2.1-or-later
/* The local read cache: hits, misses, partial chunks, eviction, threads. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "cache.h"

#define CH 4096u /* small chunks: many of them in a small file */

static char dir[64];

/* Byte at data offset off of object seq: any mix-up shows. */
static uint8_t pat(uint64_t seq, uint64_t off)
{
	return (uint8_t)(seq * 131 + off * 7 + (off >> 12) * 13);
}

static void fill(uint8_t *b, uint64_t seq, uint64_t off, size_t len)
{
	for (size_t i = 0; i < len; i++)
		b[i] = pat(seq, off + i);
}

static bool same(const uint8_t *b, uint64_t seq, uint64_t off, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (b[i] != pat(seq, off + i))
			return false;
	return true;
}

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/bs3cache.XXXXXX");
	assert_non_null(mkdtemp(dir));
	return 0;
}

static int teardown(void **state)
{
	char p[128];

	(void)state;
	snprintf(p, sizeof(p), "%s/%s", dir, BS3_CACHE_FILE);
	unlink(p);
	rmdir(dir);
	return 0;
}

static struct bs3_cache *open_cache(uint64_t size)
{
	struct bs3_cache *c = NULL;
	char err[256] = "";

	assert_int_equal(bs3_cache_open(dir, size, CH, &c, err, sizeof(err)),
			 0);
	assert_non_null(c);
	return c;
}

static off_t file_size(void)
{
	char p[128];
	struct stat st;

	snprintf(p, sizeof(p), "%s/%s", dir, BS3_CACHE_FILE);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	return st.st_size;
}

static void test_hit_miss(void **state)
{
	struct bs3_cache *c = open_cache(64 * CH);
	struct bs3_cache_stats st;
	uint8_t in[3 * CH], out[3 * CH];

	(void)state;
	assert_int_equal(bs3_cache_get(c, 1, 0, 100, out), -ENOENT);
	fill(in, 1, 0, sizeof(in));
	assert_int_equal(bs3_cache_put(c, 1, 0, in, sizeof(in)), 0);
	memset(out, 0, sizeof(out));
	assert_int_equal(bs3_cache_get(c, 1, 0, sizeof(out), out), 0);
	assert_true(same(out, 1, 0, sizeof(out)));
	/* A range inside, across a chunk boundary. */
	assert_int_equal(bs3_cache_get(c, 1, CH - 10, 20, out), 0);
	assert_true(same(out, 1, CH - 10, 20));
	/* Other object, or past what was put. */
	assert_int_equal(bs3_cache_get(c, 2, 0, 10, out), -ENOENT);
	assert_int_equal(bs3_cache_get(c, 1, 3 * CH - 1, 2, out), -ENOENT);
	bs3_cache_get_stats(c, &st);
	assert_int_equal(st.hits, 2);
	assert_int_equal(st.misses, 3);
	assert_int_equal(st.hit_bytes, sizeof(out) + 20);
	assert_int_equal(st.bytes, 3 * CH);
	assert_int_equal(st.chunks, 3);
	assert_int_equal(st.capacity, 64 * CH);
	bs3_cache_close(c);

	/* Opened fresh: nothing survives a detach. */
	c = open_cache(64 * CH);
	assert_int_equal(file_size(), 0);
	assert_int_equal(bs3_cache_get(c, 1, 0, 10, out), -ENOENT);
	bs3_cache_close(c);
}

static void test_partial(void **state)
{
	struct bs3_cache *c = open_cache(64 * CH);
	uint8_t in[2 * CH], out[2 * CH];
	struct bs3_cache_stats st;

	(void)state;
	/* An object's data ending 100 bytes into its second chunk. */
	fill(in, 5, 0, CH + 100);
	assert_int_equal(bs3_cache_put(c, 5, 0, in, CH + 100), 0);
	assert_int_equal(bs3_cache_get(c, 5, 0, CH + 100, out), 0);
	assert_true(same(out, 5, 0, CH + 100));
	assert_int_equal(bs3_cache_get(c, 5, CH, 100, out), 0);
	assert_int_equal(bs3_cache_get(c, 5, CH, 101, out), -ENOENT);
	/* A longer prefix of that chunk replaces the short one. */
	fill(in, 5, CH, CH);
	assert_int_equal(bs3_cache_put(c, 5, CH, in, CH), 0);
	assert_int_equal(bs3_cache_get(c, 5, CH, CH, out), 0);
	assert_true(same(out, 5, CH, CH));
	bs3_cache_get_stats(c, &st);
	assert_int_equal(st.chunks, 2);
	assert_int_equal(st.bytes, 2 * CH);
	/* A put that starts inside a chunk stores only the chunks after. */
	fill(in, 6, 10, 2 * CH - 10);
	assert_int_equal(bs3_cache_put(c, 6, 10, in, 2 * CH - 10), 0);
	assert_int_equal(bs3_cache_get(c, 6, 10, 10, out), -ENOENT);
	assert_int_equal(bs3_cache_get(c, 6, CH, CH, out), 0);
	assert_true(same(out, 6, CH, CH));
	bs3_cache_close(c);
}

static void test_eviction(void **state)
{
	struct bs3_cache *c = open_cache(4 * CH + 100); /* 4 chunks */
	struct bs3_cache_stats st;
	uint8_t in[CH], out[CH];
	int hits = 0;

	(void)state;
	for (uint64_t s = 1; s <= 4; s++) {
		fill(in, s, 0, CH);
		assert_int_equal(bs3_cache_put(c, s, 0, in, CH), 0);
	}
	/* Object 1 is read, so CLOCK gives it a second chance. */
	assert_int_equal(bs3_cache_get(c, 1, 0, CH, out), 0);
	fill(in, 5, 0, CH);
	assert_int_equal(bs3_cache_put(c, 5, 0, in, CH), 0);
	assert_int_equal(bs3_cache_get(c, 1, 0, CH, out), 0);
	assert_true(same(out, 1, 0, CH));
	assert_int_equal(bs3_cache_get(c, 2, 0, CH, out), -ENOENT);
	assert_int_equal(bs3_cache_get(c, 5, 0, CH, out), 0);
	assert_true(same(out, 5, 0, CH));
	bs3_cache_get_stats(c, &st);
	assert_int_equal(st.evictions, 1);
	assert_int_equal(st.chunks, 4);
	assert_int_equal(st.capacity, 4 * CH);

	/* Many more objects: never more than the limit, on disk too. */
	for (uint64_t s = 10; s < 200; s++) {
		fill(in, s, 0, CH);
		assert_int_equal(bs3_cache_put(c, s, 0, in, CH), 0);
		assert_true(file_size() <= 4 * CH);
	}
	for (uint64_t s = 1; s < 200; s++)
		if (!bs3_cache_get(c, s, 0, CH, out)) {
			assert_true(same(out, s, 0, CH));
			hits++;
		}
	assert_int_equal(hits, 4);
	bs3_cache_get_stats(c, &st);
	assert_int_equal(st.chunks, 4);
	assert_true(st.bytes <= 4 * CH);
	bs3_cache_close(c);
}

static void test_drop(void **state)
{
	struct bs3_cache *c = open_cache(64 * CH);
	uint8_t in[4 * CH], out[4 * CH];
	struct bs3_cache_stats st;

	(void)state;
	fill(in, 7, 0, sizeof(in));
	assert_int_equal(bs3_cache_put(c, 7, 0, in, sizeof(in)), 0);
	fill(in, 8, 0, sizeof(in));
	assert_int_equal(bs3_cache_put(c, 8, 0, in, sizeof(in)), 0);
	bs3_cache_drop(c, 7);
	assert_int_equal(bs3_cache_get(c, 7, 0, 1, out), -ENOENT);
	assert_int_equal(bs3_cache_get(c, 7, 3 * CH, 1, out), -ENOENT);
	assert_int_equal(bs3_cache_get(c, 8, 0, sizeof(out), out), 0);
	assert_true(same(out, 8, 0, sizeof(out)));
	bs3_cache_get_stats(c, &st);
	assert_int_equal(st.chunks, 4);
	/* The freed chunks are used again before anything is evicted. */
	fill(in, 9, 0, sizeof(in));
	assert_int_equal(bs3_cache_put(c, 9, 0, in, sizeof(in)), 0);
	bs3_cache_get_stats(c, &st);
	assert_int_equal(st.evictions, 0);
	assert_int_equal(st.chunks, 8);
	bs3_cache_close(c);
}

static void test_open_errors(void **state)
{
	struct bs3_cache *c = NULL, *d = NULL;
	char err[256];

	(void)state;
	assert_int_equal(bs3_cache_open(dir, CH - 1, CH, &c, err, sizeof(err)),
			 -EINVAL);
	assert_int_equal(
		bs3_cache_open(dir, 1 << 20, 5000, &c, err, sizeof(err)),
		-EINVAL);
	assert_non_null(strstr(err, "power of two"));
	assert_int_equal(bs3_cache_open("/proc/nonexistent/x", 1 << 20, CH, &c,
					err, sizeof(err)),
			 -ENOENT);
	assert_non_null(strstr(err, "/proc/nonexistent/x"));
	/* One device per directory. */
	c = open_cache(1 << 20);
	assert_int_equal(bs3_cache_open(dir, 1 << 20, CH, &d, err, sizeof(err)),
			 -EBUSY);
	assert_non_null(strstr(err, "in use"));
	bs3_cache_close(c);
	/* Default chunk size. */
	assert_int_equal(bs3_cache_open(dir, 1 << 20, 0, &c, err, sizeof(err)),
			 0);
	bs3_cache_close(c);
}

/* A reader stopped with its chunk pinned, while others need room. */
struct pinned {
	struct bs3_cache *c;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int stage; /* 1: reader pinned, 2: go on */
	int ret;
	uint8_t out[CH];
};

static void hold(void *arg)
{
	struct pinned *p = arg;

	pthread_mutex_lock(&p->lock);
	p->stage = 1;
	pthread_cond_broadcast(&p->cond);
	while (p->stage != 2)
		pthread_cond_wait(&p->cond, &p->lock);
	pthread_mutex_unlock(&p->lock);
}

static void *pinned_reader(void *arg)
{
	struct pinned *p = arg;

	p->ret = bs3_cache_get(p->c, 1, 0, CH, p->out);
	return NULL;
}

static void test_pinned(void **state)
{
	struct pinned p = {.lock = PTHREAD_MUTEX_INITIALIZER,
			   .cond = PTHREAD_COND_INITIALIZER};
	struct bs3_cache_stats st;
	uint8_t in[CH];
	pthread_t t;

	(void)state;
	p.c = open_cache(2 * CH);
	fill(in, 1, 0, CH);
	assert_int_equal(bs3_cache_put(p.c, 1, 0, in, CH), 0);
	bs3_cache_set_read_hook(p.c, hold, &p);
	assert_int_equal(pthread_create(&t, NULL, pinned_reader, &p), 0);
	pthread_mutex_lock(&p.lock);
	while (p.stage != 1)
		pthread_cond_wait(&p.cond, &p.lock);
	pthread_mutex_unlock(&p.lock);

	/* Object 1's chunk is pinned: the other chunk takes every put. */
	for (uint64_t s = 2; s < 10; s++) {
		fill(in, s, 0, CH);
		assert_int_equal(bs3_cache_put(p.c, s, 0, in, CH), 0);
	}
	/* Dropped while pinned: gone from the index, freed when unpinned. */
	bs3_cache_drop(p.c, 1);
	bs3_cache_get_stats(p.c, &st);
	assert_int_equal(st.evictions, 7);
	assert_int_equal(st.chunks, 1);
	bs3_cache_set_read_hook(p.c, NULL, NULL);
	pthread_mutex_lock(&p.lock);
	p.stage = 2;
	pthread_cond_broadcast(&p.cond);
	pthread_mutex_unlock(&p.lock);
	pthread_join(t, NULL);
	assert_int_equal(p.ret, 0);
	assert_true(same(p.out, 1, 0, CH));
	assert_int_equal(bs3_cache_get(p.c, 1, 0, CH, in), -ENOENT);
	/* Unpinned and freed: a put finds it without evicting. */
	fill(in, 21, 0, CH);
	assert_int_equal(bs3_cache_put(p.c, 21, 0, in, CH), 0);
	bs3_cache_get_stats(p.c, &st);
	assert_int_equal(st.evictions, 7);
	assert_int_equal(st.chunks, 2);
	bs3_cache_close(p.c);
}

static void test_all_pinned(void **state)
{
	struct pinned p = {.lock = PTHREAD_MUTEX_INITIALIZER,
			   .cond = PTHREAD_COND_INITIALIZER};
	struct bs3_cache_stats st;
	uint8_t in[CH];
	pthread_t t;

	(void)state;
	p.c = open_cache(CH);
	fill(in, 1, 0, CH);
	assert_int_equal(bs3_cache_put(p.c, 1, 0, in, CH), 0);
	bs3_cache_set_read_hook(p.c, hold, &p);
	assert_int_equal(pthread_create(&t, NULL, pinned_reader, &p), 0);
	pthread_mutex_lock(&p.lock);
	while (p.stage != 1)
		pthread_cond_wait(&p.cond, &p.lock);
	pthread_mutex_unlock(&p.lock);
	fill(in, 2, 0, CH);
	assert_int_equal(bs3_cache_put(p.c, 2, 0, in, CH), -EBUSY);
	pthread_mutex_lock(&p.lock);
	p.stage = 2;
	pthread_cond_broadcast(&p.cond);
	pthread_mutex_unlock(&p.lock);
	pthread_join(t, NULL);
	assert_int_equal(p.ret, 0);
	assert_true(same(p.out, 1, 0, CH));
	bs3_cache_get_stats(p.c, &st);
	assert_int_equal(st.put_errors, 1);
	bs3_cache_close(p.c);
}

/* Threads reading, filling and dropping a cache far smaller than the data. */
struct worker {
	struct bs3_cache *c;
	unsigned int id;
	uint64_t bad, hits;
};

#define OBJS	 32
#define OBJ_DATA (16 * CH)

static void *worker(void *arg)
{
	struct worker *w = arg;
	uint8_t *buf = malloc(OBJ_DATA);
	uint64_t r = 0x9E3779B97F4A7C15ull * (w->id + 1);

	assert_non_null(buf);
	for (int i = 0; i < 4000; i++) {
		uint64_t seq, off, len;

		r ^= r << 13;
		r ^= r >> 7;
		r ^= r << 17;
		seq = 1 + r % OBJS;
		off = (r >> 8) % OBJ_DATA;
		len = 1 + (r >> 24) % (3 * CH);
		if (len > OBJ_DATA - off)
			len = OBJ_DATA - off;
		if ((r >> 40) % 50 == 0) {
			bs3_cache_drop(w->c, seq);
			continue;
		}
		if (!bs3_cache_get(w->c, seq, off, len, buf)) {
			w->hits++;
			if (!same(buf, seq, off, len))
				w->bad++;
			continue;
		}
		/* A miss: "download" the chunks around it and offer them. */
		off -= off % CH;
		len = len + 2 * CH > OBJ_DATA - off ? OBJ_DATA - off
						    : len + 2 * CH;
		fill(buf, seq, off, len);
		bs3_cache_put(w->c, seq, off, buf, len);
	}
	free(buf);
	return NULL;
}

static void test_threads(void **state)
{
	struct bs3_cache *c = open_cache(24 * CH);
	pthread_t t[8];
	struct worker w[8];
	struct bs3_cache_stats st;
	uint64_t hits = 0;

	(void)state;
	for (unsigned int i = 0; i < 8; i++) {
		w[i] = (struct worker){.c = c, .id = i};
		assert_int_equal(pthread_create(&t[i], NULL, worker, &w[i]), 0);
	}
	for (unsigned int i = 0; i < 8; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(w[i].bad, 0);
		hits += w[i].hits;
	}
	bs3_cache_get_stats(c, &st);
	/* Both paths were exercised, and eviction really happened. */
	assert_true(hits > 100);
	assert_int_equal(st.hits, hits);
	assert_true(st.misses > 100);
	assert_true(st.evictions > 100);
	assert_true(st.chunks <= 24);
	assert_true(file_size() <= 24 * CH);
	bs3_cache_close(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_hit_miss, setup, teardown),
		cmocka_unit_test_setup_teardown(test_partial, setup, teardown),
		cmocka_unit_test_setup_teardown(test_eviction, setup, teardown),
		cmocka_unit_test_setup_teardown(test_drop, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_errors, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_pinned, setup, teardown),
		cmocka_unit_test_setup_teardown(test_all_pinned, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_threads, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
