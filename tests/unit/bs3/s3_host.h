/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Helpers of BS3's host tests against a real S3 server (the programs of
 * tests/bs3/, run by tests/bs3/run.sh): TAP-like check lines, the server's
 * configuration from the environment, a bucket of the test's own, and
 * stopping the server's proxy for outages so that it is always continued
 * again.  Here, not in tests/bs3/, because every .c there is a test program.
 */
#ifndef BS3_S3_HOST_H
#define BS3_S3_HOST_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "s3.h"

/* Failed checks so far. */
extern int bs3h_failures;

/* "ok - name" or "not ok - name: why"; counts failures.  Returns ok. */
bool bs3h_check(bool ok, const char *name, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/*
 * The server's configuration from the environment (scripts/s3-server.sh
 * env), path-style; exits 2 with a message if it is not set.
 */
void bs3h_config(struct s3_config *cfg);

/* A client on cfg; exits 2 if there is none. */
struct s3_client *bs3h_client(const struct s3_config *cfg);

/* Create a bucket "PREFIX-PID-TIME" into name; exits 2 on failure. */
/* A random seed, or $BS3_SEED; printed with the bucket, to repeat a run. */
unsigned int bs3h_seed(const char *bucket);
void bs3h_bucket(const struct s3_config *cfg, const char *prefix, char *name,
		 size_t len);

/*
 * SIGSTOP the server's proxy (BS3_S3_PROXY_PID): 0, -ENOENT when the
 * variable is not set (the test skips), -errno.  Until bs3h_proxy_cont(),
 * exit and fatal signals continue it first.
 */
int bs3h_proxy_stop(void);
/* SIGCONT it (async-signal-safe; any thread). */
void bs3h_proxy_cont(void);

#endif /* BS3_S3_HOST_H */
