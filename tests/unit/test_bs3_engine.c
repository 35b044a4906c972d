// SPDX-License-Identifier: LGPL-2.1-or-later
/* BS3 engine against the in-memory fake S3: writes, reads, flush, reopen. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "bs3.h"
#include "bs3/fake_s3.h"

#define VOLSZ (4u << 20)
#define BS 4096u
#define OBJ (64u << 10)

static void quiet(void *arg, const char *line)
{
	(void)arg;
	(void)line;
}

static struct bs3_opts opts(struct fake_s3 *f)
{
	struct bs3_opts o = { .bucket = "test-bucket",
			      .volume = "vol",
			      .client = fake_s3_client(f),
			      .no_gc = true,
			      .progress = quiet };
	return o;
}

static void nop(void *arg, int st)
{
	(void)arg;
	(void)st;
}

/* Random writes/discards/flushes against a byte model, then reopen. */
static void test_model_and_reopen(void **state)
{
	struct fake_s3 *f = fake_s3_new();
	struct bs3_opts o = opts(f);
	struct bs3_vol *v;
	char err[256];
	uint8_t *model = calloc(1, VOLSZ), *got = malloc(VOLSZ);
	/* buffers must live until release: keep them all */
	uint8_t **bufs = calloc(400, sizeof(*bufs));

	(void)state;
	fake_s3_add_bucket(f, "test-bucket");
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
			assert_int_equal(bs3_write(v, off, n * BS, bufs[i], nop,
						   NULL), 0);
			memcpy(model + off, bufs[i], n * BS);
		} else if (op == 8) {
			assert_int_equal(bs3_discard(v, off, n * BS, nop, NULL),
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_model_and_reopen),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
