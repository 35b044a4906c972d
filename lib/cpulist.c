// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * params.cpus: the CPUs queue threads run on when the driver chooses them,
 * written the way the kernel prints them (cpuset.cpus, /sys/.../cpulist).
 */
#include <errno.h>
#include <sched.h>
#include <stdlib.h>

#include "internal.h"

/* One decimal CPU number below CPU_SETSIZE; *s moves past it. */
static int parse_cpu(const char **s, unsigned *cpu)
{
	unsigned long v;
	char *end;

	if (**s < '0' || **s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoul(*s, &end, 10);
	if (errno || v >= CPU_SETSIZE)
		return -EINVAL;
	*cpu = (unsigned)v;
	*s = end;
	return 0;
}

int buse_cpulist_parse(const char *s, cpu_set_t *set)
{
	unsigned a, b, cpu;

	CPU_ZERO(set);
	if (!s || !*s)
		return -EINVAL;
	for (;;) {
		if (parse_cpu(&s, &a))
			return -EINVAL;
		b = a;
		if (*s == '-') {
			s++;
			if (parse_cpu(&s, &b) || b < a)
				return -EINVAL;
		}
		for (cpu = a; cpu <= b; cpu++)
			CPU_SET(cpu, set);
		if (!*s)
			return 0;
		if (*s++ != ',')
			return -EINVAL;
	}
}

int buse_cpulist_nth(const cpu_set_t *set, unsigned n)
{
	int count = CPU_COUNT(set), cpu;

	if (!count)
		return -1;
	n %= (unsigned)count;
	for (cpu = 0; cpu < CPU_SETSIZE; cpu++)
		if (CPU_ISSET(cpu, set) && !n--)
			return cpu;
	return -1;
}
