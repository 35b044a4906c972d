// SPDX-License-Identifier: GPL-2.0-or-later
/* Parsing and printing of sizes and numbers for the buse tool. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <linux/buse.h>

#include "size.h"

/* Digits only: strtoull alone would take signs, spaces and hex. */
static int parse_digits(const char **s, uint64_t *val)
{
	const char *p = *s;
	uint64_t v = 0;

	if (!isdigit((unsigned char)*p))
		return -EINVAL;
	for (; isdigit((unsigned char)*p); p++) {
		unsigned d = *p - '0';

		if (v > (UINT64_MAX - d) / 10)
			return -ERANGE;
		v = v * 10 + d;
	}
	*s = p;
	*val = v;
	return 0;
}

int parse_size(const char *s, uint64_t *bytes)
{
	static const char units[] = "KMGTP";
	const char *u;
	uint64_t v;
	unsigned shift = 0;
	int ret;

	ret = parse_digits(&s, &v);
	if (ret)
		return ret;
	if (*s) {
		u = strchr(units, toupper((unsigned char)*s));
		if (!u)
			return -EINVAL;
		shift = 10 * (unsigned)(u - units + 1);
		s++;
		if (!strcmp(s, "iB"))
			s += 2;
		if (*s)
			return -EINVAL;
	}
	if (!v)
		return -EINVAL;
	if (v > UINT64_MAX >> shift)
		return -ERANGE;
	*bytes = v << shift;
	return 0;
}

int parse_u32(const char *s, uint32_t min, uint32_t max, uint32_t *val)
{
	uint64_t v;
	int ret;

	ret = parse_digits(&s, &v);
	if (ret)
		return ret;
	if (*s)
		return -EINVAL;
	if (v < min || v > max)
		return -ERANGE;
	*val = (uint32_t)v;
	return 0;
}

int parse_dev_id(const char *s, uint32_t *id)
{
	if (!strncmp(s, "/dev/", 5))
		s += 5;
	if (!strncmp(s, BUSE_DISK_NAME, strlen(BUSE_DISK_NAME)))
		s += strlen(BUSE_DISK_NAME);
	/* BUSE_DEV_ID_ANY is not a device. */
	return parse_u32(s, 0, BUSE_DEV_ID_ANY - 1, id) ? -EINVAL : 0;
}

bool valid_dev_name(const char *s)
{
	uint32_t id;
	size_t i, n = strlen(s);

	if (!n || n >= BUSE_SERIAL_LEN || s[0] == '.' || s[0] == '-' ||
	    !parse_dev_id(s, &id))
		return false;
	for (i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && !strchr("._-", s[i]))
			return false;
	return true;
}

char *format_size(uint64_t bytes, char *buf, size_t len)
{
	static const char units[] = "BKMGTPE";
	unsigned i = 0;

	while (i < sizeof(units) - 2 && bytes >= 1024ULL << (10 * i))
		i++;
	if (!i || !(bytes & ((1ULL << (10 * i)) - 1)))
		snprintf(buf, len, "%llu%c",
			 (unsigned long long)(bytes >> (10 * i)), units[i]);
	else
		snprintf(buf, len, "%.1f%c", (double)bytes / (1ULL << (10 * i)),
			 units[i]);
	return buf;
}
