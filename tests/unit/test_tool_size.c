// SPDX-License-Identifier: GPL-2.0-or-later
/* Size and number parsing of the buse tool (tool/size.c). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

/* The Makefile links unit tests with lib/ only: take the helper whole. */
#include "../../tool/size.c"

static void test_parse_size_ok(void **state)
{
	static const struct {
		const char *s;
		uint64_t v;
	} ok[] = {
		{"1", 1},
		{"512", 512},
		{"4096", 4096},
		{"1K", 1024},
		{"64k", 64 << 10},
		{"1M", 1 << 20},
		{"64MiB", 64 << 20},
		{"2G", 2ULL << 30},
		{"1t", 1ULL << 40},
		{"3P", 3ULL << 50},
		{"16383P", 16383ULL << 50},
		{"18446744073709551615", UINT64_MAX},
	};
	uint64_t v;
	size_t i;

	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		v = 0;
		assert_int_equal(parse_size(ok[i].s, &v), 0);
		assert_true(v == ok[i].v);
	}
}

static void test_parse_size_bad(void **state)
{
	static const char *const bad[] = {
		"",    "0",	"0K",	"K",	 "-1",	"+1",
		" 1",  "1 ",	"1.5G", "0x10",	 "1Q",	"1KB",
		"1Ki", "1KiBB", "1E",	"12abc", "1M1", "1-",
	};
	uint64_t v = 42;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(parse_size(bad[i], &v), -EINVAL);
		assert_true(v == 42);
	}
	assert_int_equal(parse_size("16384P", &v), -ERANGE);
	assert_int_equal(parse_size("18446744073709551616", &v), -ERANGE);
	assert_int_equal(parse_size("99999999999999999999999", &v), -ERANGE);
	assert_true(v == 42);
}

static void test_parse_u32(void **state)
{
	uint32_t v = 7;

	assert_int_equal(parse_u32("1", 1, 256, &v), 0);
	assert_int_equal(v, 1);
	assert_int_equal(parse_u32("256", 1, 256, &v), 0);
	assert_int_equal(v, 256);
	assert_int_equal(parse_u32("0", 1, 256, &v), -ERANGE);
	assert_int_equal(parse_u32("257", 1, 256, &v), -ERANGE);
	assert_int_equal(parse_u32("4294967296", 0, UINT32_MAX, &v), -ERANGE);
	assert_int_equal(parse_u32("4294967295", 0, UINT32_MAX, &v), 0);
	assert_true(v == UINT32_MAX);
	assert_int_equal(parse_u32("", 0, 10, &v), -EINVAL);
	assert_int_equal(parse_u32("1K", 0, 10000, &v), -EINVAL);
	assert_int_equal(parse_u32("-1", 0, 10, &v), -EINVAL);
}

/* What --name takes: the kernel's serial alphabet, never a device id. */
static void test_valid_dev_name(void **state)
{
	(void)state;
	assert_true(valid_dev_name("data"));
	assert_true(valid_dev_name("db-01.vol_2"));
	assert_true(valid_dev_name("0a"));
	assert_true(valid_dev_name("1234567890123456789012345678901"));
	assert_false(valid_dev_name(""));
	assert_false(valid_dev_name("12345678901234567890123456789012"));
	assert_false(valid_dev_name(".x"));
	assert_false(valid_dev_name("-x"));
	assert_false(valid_dev_name("7"));
	assert_false(valid_dev_name("buse7"));
	assert_false(valid_dev_name("a/b"));
	assert_false(valid_dev_name("a b"));
	assert_false(valid_dev_name("caf\xc3\xa9"));
}

static void test_parse_dev_id(void **state)
{
	uint32_t id = 99;

	assert_int_equal(parse_dev_id("0", &id), 0);
	assert_int_equal(id, 0);
	assert_int_equal(parse_dev_id("buse12", &id), 0);
	assert_int_equal(id, 12);
	assert_int_equal(parse_dev_id("/dev/buse7", &id), 0);
	assert_int_equal(id, 7);
	assert_int_equal(parse_dev_id("4294967294", &id), 0);
	assert_int_equal(parse_dev_id("4294967295", &id), -EINVAL);
	assert_int_equal(parse_dev_id("", &id), -EINVAL);
	assert_int_equal(parse_dev_id("buse", &id), -EINVAL);
	assert_int_equal(parse_dev_id("/dev/sda", &id), -EINVAL);
	assert_int_equal(parse_dev_id("/dev/buse1p1", &id), -EINVAL);
	assert_int_equal(parse_dev_id("dev/buse1", &id), -EINVAL);
	assert_int_equal(parse_dev_id("-1", &id), -EINVAL);
}

static void test_format_size(void **state)
{
	static const struct {
		uint64_t v;
		const char *s;
	} cases[] = {
		{0, "0B"},
		{512, "512B"},
		{1023, "1023B"},
		{1024, "1K"},
		{1536, "1.5K"},
		{64 << 20, "64M"},
		{(1ULL << 30) + (1ULL << 29), "1.5G"},
		{250ULL << 30, "250G"},
		{1ULL << 40, "1T"},
		{1ULL << 60, "1E"},
		{UINT64_MAX, "16.0E"},
	};
	char buf[32];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_string_equal(format_size(cases[i].v, buf, sizeof(buf)),
				    cases[i].s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_size_ok),
		cmocka_unit_test(test_parse_size_bad),
		cmocka_unit_test(test_parse_u32),
		cmocka_unit_test(test_parse_dev_id),
		cmocka_unit_test(test_valid_dev_name),
		cmocka_unit_test(test_format_size),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
