// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Where libbuse's messages go: stderr unless the driver routes them
 * (buse_set_log()), e.g. into its own log or a daemon's status pipe.
 */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>

#include "internal.h"

struct log_sink {
	buse_log_fn fn;
	void *arg;
};

static struct log_sink sinks[2];
/* Index of the sink in use: swapped whole, so fn and arg always match. */
static _Atomic int cur_sink;
static pthread_mutex_t set_lock = PTHREAD_MUTEX_INITIALIZER;

BUSE_EXPORT void buse_set_log(buse_log_fn fn, void *arg)
{
	int next;

	pthread_mutex_lock(&set_lock);
	next = !atomic_load(&cur_sink);
	sinks[next].fn = fn;
	sinks[next].arg = arg;
	atomic_store(&cur_sink, next);
	pthread_mutex_unlock(&set_lock);
}

void buse_log_msg(const char *fmt, ...)
{
	const struct log_sink *s = &sinks[atomic_load(&cur_sink)];
	char line[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	/* One line, without its newline: the sink decides how to end it. */
	if (n > 0 && (size_t)n < sizeof(line) && line[n - 1] == '\n')
		line[n - 1] = 0;
	if (s->fn)
		s->fn(s->arg, line);
	else
		fprintf(stderr, "libbuse: %s\n", line);
}
