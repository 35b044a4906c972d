// SPDX-License-Identifier: GPL-2.0-or-later
/* JSON string escaping of the buse tool (tool/json.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* The Makefile links unit tests with lib/ only: take the helper whole. */
#include "../../tool/json.c"

/* json_string() of len bytes of s, as a string the caller frees. */
static char *escape(const char *s, size_t len)
{
	char *out = NULL;
	size_t size = 0;
	FILE *f = open_memstream(&out, &size);

	assert_non_null(f);
	json_string(f, s, len);
	assert_int_equal(fclose(f), 0);
	return out;
}

static void check(const char *s, size_t len, const char *want)
{
	char *got = escape(s, len);

	assert_string_equal(got, want);
	free(got);
}

static void test_plain(void **state)
{
	check("", SIZE_MAX, "\"\"");
	check("ram", SIZE_MAX, "\"ram\"");
	check("/dev/buse0", SIZE_MAX, "\"/dev/buse0\"");
}

static void test_escapes(void **state)
{
	check("a\"b", SIZE_MAX, "\"a\\\"b\"");
	check("a\\b", SIZE_MAX, "\"a\\\\b\"");
	check("a\nb\tc", SIZE_MAX, "\"a\\nb\\tc\"");
	check("\x01\x1f\x7f", SIZE_MAX, "\"\\u0001\\u001f\\u007f\"");
}

static void test_utf8(void **state)
{
	/* Valid sequences pass through. */
	check("caf\xc3\xa9", SIZE_MAX, "\"caf\xc3\xa9\"");
	check("\xe2\x82\xac", SIZE_MAX, "\"\xe2\x82\xac\"");
	check("\xf0\x9f\x92\xbe", SIZE_MAX, "\"\xf0\x9f\x92\xbe\"");
	/* Anything else becomes U+FFFD, one per bad byte. */
	check("\xff", SIZE_MAX, "\"\\ufffd\"");
	check("\xc3", SIZE_MAX, "\"\\ufffd\"");
	check("\xc0\xaf", SIZE_MAX, "\"\\ufffd\\ufffd\""); /* overlong */
	check("\xe0\x80\xaf", SIZE_MAX,
	      "\"\\ufffd\\ufffd\\ufffd\""); /* overlong */
	check("\xed\xa0\x80", SIZE_MAX,
	      "\"\\ufffd\\ufffd\\ufffd\""); /* surrogate */
	check("\xf4\x90\x80\x80", SIZE_MAX,
	      "\"\\ufffd\\ufffd\\ufffd\\ufffd\""); /* > U+10FFFF */
	check("a\xc3(", SIZE_MAX, "\"a\\ufffd(\"");
}

static void test_len(void **state)
{
	/* A full, unterminated name field stops at len. */
	char name[4] = {'a', 'b', 'c', 'd'};

	check(name, sizeof(name), "\"abcd\"");
	check("abcdef", 3, "\"abc\"");
	/* A sequence cut by len is not valid. */
	check("\xc3\xa9", 1, "\"\\ufffd\"");
	check("ab\0cd", 5, "\"ab\"");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plain),
		cmocka_unit_test(test_escapes),
		cmocka_unit_test(test_utf8),
		cmocka_unit_test(test_len),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
