// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The tool's BS3 side without a server: the stats file a BS3 daemon keeps
 * for `buse info` (written whole, shown only for the live daemon of the
 * device) and the exit statuses of `buse bs3` for bad usage.
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

/* The BS3 unit tests link the engine only: take the tool's files whole. */
#include "../../tool/backing.c"
#include "../../tool/bs3.c"
#include "../../tool/json.c"
#include "../../tool/size.c"

static char dir[] = "/tmp/test_bs3_tool.XXXXXX";

static char *capture(void (*fn)(FILE *, uint32_t, int), uint32_t id, int pid)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len);

	assert_non_null(m);
	fn(m, id, pid);
	fclose(m);
	return buf;
}

static void test_stats_file(void **state)
{
	struct bs3_geometry g = {.size = 1 << 30, .block_size = 4096,
				 .object_size = 4 << 20};
	struct bs3_stats st = {.dirty_bytes = 12345, .uploads = 7,
			       .cache_hits = 3, .cache_misses = 1, .epoch = 9,
			       .fenced = true};
	char path[256], *out;

	assert_int_equal(bs3_stats_write(5, "s3://b/v", &g, &st), 0);
	snprintf(path, sizeof(path), "%s/bs3-5.json", dir);
	assert_int_equal(access(path, R_OK), 0);
	snprintf(path, sizeof(path), "%s/bs3-5.json.tmp", dir);
	assert_int_not_equal(access(path, F_OK), 0); /* renamed, not left */

	out = capture(bs3_info_json, 5, getpid());
	assert_non_null(strstr(out, ", \"bs3\": {"));
	assert_non_null(strstr(out, "\"dirty_bytes\": 12345,"));
	assert_non_null(strstr(out, "\"cache_hit_rate\": 0.7500"));
	assert_non_null(strstr(out, "\"fenced\": true"));
	assert_non_null(strstr(out, "\"volume\": \"s3://b/v\""));
	assert_int_equal(out[strlen(out) - 1], '}');
	free(out);

	out = capture(bs3_info_text, 5, getpid());
	assert_non_null(strstr(out, "bs3:\n"));
	assert_non_null(strstr(out, "  dirty bytes:     12345\n"));
	assert_non_null(strstr(out, "  epoch:           9\n"));
	free(out);

	/* Another process serves the device: the file is stale. */
	out = capture(bs3_info_json, 5, getpid() + 1);
	assert_string_equal(out, "");
	free(out);
	out = capture(bs3_info_text, 6, getpid());
	assert_string_equal(out, "");
	free(out);

	bs3_stats_remove(5);
	out = capture(bs3_info_text, 5, getpid());
	assert_string_equal(out, "");
	free(out);
}

static int run(int argc, const char **args)
{
	char *argv[16];
	int i;

	for (i = 0; i < argc; i++)
		argv[i] = (char *)args[i];
	argv[argc] = NULL;
	return cmd_bs3(argc, argv);
}

static void test_usage(void **state)
{
	const char *a0[] = {"bs3"};
	const char *a1[] = {"bs3", "frob", "s3://b/v"};
	const char *a2[] = {"bs3", "info"};
	const char *a3[] = {"bs3", "info", "not-a-url"};
	const char *a4[] = {"bs3", "create", "s3://bucket/vol"};
	const char *a5[] = {"bs3", "create", "s3://bucket/vol", "--size", "10M",
			    "--block-size", "3000"};
	const char *a6[] = {"bs3", "info", "s3://bucket/vol", "--yes"};
	const char *a7[] = {"bs3", "delete", "s3://bucket/vol"};
	const char *a8[] = {"bs3", "info", "s3://bucket/vol", "extra"};
	const char *a9[] = {"bs3", "--help"};

	/* Nothing below may reach a server: no endpoint is there. */
	setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9", 1);
	setenv("AWS_ACCESS_KEY_ID", "k", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "s", 1);
	assert_int_equal(run(1, a0), 2);
	assert_int_equal(run(3, a1), 2);
	assert_int_equal(run(2, a2), 2);
	assert_int_equal(run(3, a3), 2);
	assert_int_equal(run(3, a4), 2); /* no --size */
	assert_int_equal(run(7, a5), 2);
	assert_int_equal(run(4, a6), 2); /* --yes is delete's */
	if (!isatty(STDIN_FILENO))
		assert_int_equal(run(3, a7), 2); /* no terminal, no --yes */
	assert_int_equal(run(4, a8), 2);
	assert_int_equal(run(2, a9), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stats_file),
		cmocka_unit_test(test_usage),
	};
	int ret;

	if (!mkdtemp(dir))
		return 1;
	setenv("BUSE_RUN_DIR", dir, 1);
	ret = cmocka_run_group_tests(tests, NULL, NULL);
	rmdir(dir);
	return ret;
}
