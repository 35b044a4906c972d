// SPDX-License-Identifier: LGPL-2.1-or-later
/* Helpers of BS3's host tests against a real S3 server (s3_host.h). */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "s3_host.h"

int bs3h_failures;

bool bs3h_check(bool ok, const char *name, const char *fmt, ...)
{
	va_list ap;

	if (ok) {
		printf("ok - %s\n", name);
	} else {
		bs3h_failures++;
		printf("not ok - %s: ", name);
		va_start(ap, fmt);
		vprintf(fmt, ap);
		va_end(ap);
		printf("\n");
	}
	fflush(stdout);
	return ok;
}

void bs3h_config(struct s3_config *cfg)
{
	char err[256];

	if (!getenv("AWS_ENDPOINT_URL")) {
		fprintf(stderr,
			"set the environment from `scripts/s3-server.sh "
			"env` (tests/bs3/run.sh does)\n");
		exit(2);
	}
	if (s3_config_load(cfg, NULL, err, sizeof(err))) {
		fprintf(stderr, "s3 config: %s\n", err);
		exit(2);
	}
	cfg->path_style = true;
	cfg->verbose = getenv("BS3_S3_VERBOSE") != NULL;
}

struct s3_client *bs3h_client(const struct s3_config *cfg)
{
	struct s3_client *c;
	char err[256];

	if (s3_client_new(cfg, &c, err, sizeof(err))) {
		fprintf(stderr, "s3 client: %s\n", err);
		exit(2);
	}
	return c;
}

unsigned int bs3h_seed(const char *bucket)
{
	unsigned int seed = (unsigned int)time(NULL) ^ (unsigned int)getpid();

	if (getenv("BS3_SEED"))
		seed = (unsigned int)atoi(getenv("BS3_SEED"));
	printf("# bucket %s, seed %u (BS3_SEED to repeat)\n", bucket, seed);
	return seed;
}

void bs3h_bucket(const struct s3_config *cfg, const char *prefix, char *name,
		 size_t len)
{
	struct s3_client *c = bs3h_client(cfg);
	char err[400];

	snprintf(name, len, "%s-%d-%ld", prefix, (int)getpid(),
		 (long)time(NULL));
	if (s3_create_bucket(c, name, err, sizeof(err))) {
		fprintf(stderr, "create bucket %s: %s\n", name, err);
		exit(2);
	}
	s3_client_free(c);
}

static volatile pid_t stopped;

void bs3h_proxy_cont(void)
{
	pid_t p = stopped;

	if (p > 0)
		kill(p, SIGCONT);
	stopped = 0;
}

/* A fatal signal while the proxy is stopped: continue it, then die of it. */
static void on_fatal(int sig)
{
	bs3h_proxy_cont();
	signal(sig, SIG_DFL);
	raise(sig);
}

int bs3h_proxy_stop(void)
{
	static const int sigs[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGABRT};
	static bool armed;
	const char *p = getenv("BS3_S3_PROXY_PID");
	pid_t pid;

	if (!p || !*p)
		return -ENOENT;
	pid = (pid_t)atoi(p);
	if (pid <= 0)
		return -EINVAL;
	if (!armed) {
		armed = true;
		atexit(bs3h_proxy_cont);
		for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
			signal(sigs[i], on_fatal);
	}
	stopped = pid;
	if (kill(pid, SIGSTOP)) {
		int e = errno;

		stopped = 0;
		return -e;
	}
	return 0;
}
