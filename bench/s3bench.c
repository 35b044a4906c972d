// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * bench/s3bench: PUT and GET throughput of BS3's S3 client.
 *
 *   build/s3bench [-s SIZE_MIB] [-n OBJECTS] [-j INFLIGHT]... [-r COUNT]
 *                 BUCKET
 *
 * Endpoint and credentials from the environment (`scripts/s3-server.sh
 * env`).  Creates BUCKET if missing; for each -j (default 1, 8, 32) PUTs
 * then GETs N objects of SIZE MiB with that many in flight, prints MB/s,
 * and deletes them.  With -r, then COUNT GETs of 4 KiB at random offsets of
 * N objects, 32 in flight ("ranged 32 COUNT GETs/s").  Not run by the
 * tests.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "s3.h"

struct run {
	pthread_mutex_t m;
	pthread_cond_t cv;
	struct s3_client *c;
	struct s3_req *reqs;
	char (*keys)[64];
	char *bufs;
	struct iovec *iov;
	size_t size;
	unsigned n, next, done, failed;
	unsigned nobj; /* ranged GETs: objects they read from; else 0 */
	enum s3_method method;
	const char *bucket;
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void issue(struct run *r, unsigned i);

/* done(): on the client's thread; keep the window full. */
static void on_done(struct s3_req *q)
{
	struct run *r = q->priv;
	char buf[300];
	unsigned i = 0;
	bool more;

	if (q->err)
		fprintf(stderr, "s3bench: %s\n",
			s3_strerror(q, buf, sizeof(buf)));
	pthread_mutex_lock(&r->m);
	r->failed += q->err != 0;
	r->done++;
	more = r->next < r->n;
	if (more)
		i = r->next++;
	if (r->done == r->n)
		pthread_cond_signal(&r->cv);
	pthread_mutex_unlock(&r->m);
	if (more)
		issue(r, i);
}

static void issue(struct run *r, unsigned i)
{
	struct s3_req *q = &r->reqs[i];
	unsigned slot = i % 64; /* buffers are per window slot */

	s3_req_reset(q);
	*q = (struct s3_req){.method = r->method,
			     .bucket = r->bucket,
			     .key = r->keys[r->nobj ? i % r->nobj : i],
			     .done = on_done,
			     .priv = r};
	if (r->nobj) {
		/* a 4 KiB block spread over the object by a hash of i */
		q->range_off = (uint64_t)(i * 2654435761u % (r->size >> 12))
			       << 12;
		q->range_len = 4096;
		q->rbuf = r->bufs + slot * r->size;
		q->rbuf_len = 4096;
	} else if (r->method == S3_PUT) {
		q->iov = &r->iov[slot];
		q->iovcnt = 1;
	} else {
		q->rbuf = r->bufs + slot * r->size;
		q->rbuf_len = r->size;
	}
	s3_submit(r->c, q);
}

static double pass(struct run *r, enum s3_method m, unsigned inflight)
{
	unsigned i, first = inflight < r->n ? inflight : r->n;
	double t0 = now();

	r->method = m;
	r->next = first; /* done() callbacks issue the rest */
	r->done = r->failed = 0;
	for (i = 0; i < first; i++)
		issue(r, i);
	pthread_mutex_lock(&r->m);
	while (r->done < r->n)
		pthread_cond_wait(&r->cv, &r->m);
	pthread_mutex_unlock(&r->m);
	return now() - t0;
}

/* COUNT 4 KiB ranged GETs over r->n fresh objects, 32 in flight. */
static void ranged(struct run *r, unsigned count)
{
	const char **keys = calloc(r->n, sizeof(*keys));
	unsigned i, n = r->n;
	char err[400];
	double t;

	for (i = 0; i < n; i++) {
		snprintf(r->keys[i], 64, "s3bench/ranged/%05u", i);
		keys[i] = r->keys[i];
	}
	pass(r, S3_PUT, 32);
	r->nobj = n;
	r->n = count;
	t = pass(r, S3_GET, 32);
	printf("ranged 32 %u %.0f%s\n", count, count / t,
	       r->failed ? "  (failures)" : "");
	r->n = n;
	r->nobj = 0;
	if (s3_delete_keys(r->c, r->bucket, keys, n, err, sizeof(err)))
		fprintf(stderr, "s3bench: %s\n", err);
	free(keys);
}

int main(int argc, char **argv)
{
	unsigned js[8] = {0}, nj = 0, n = 64, size_mib = 4, nr = 0, i, k;
	struct s3_config cfg;
	struct run r = {.m = PTHREAD_MUTEX_INITIALIZER,
			.cv = PTHREAD_COND_INITIALIZER};
	char err[400];
	int o;

	while ((o = getopt(argc, argv, "s:n:j:r:")) != -1) {
		switch (o) {
		case 's':
			size_mib = (unsigned)atoi(optarg);
			break;
		case 'n':
			n = (unsigned)atoi(optarg);
			break;
		case 'j':
			if (nj < 8)
				js[nj++] = (unsigned)atoi(optarg);
			break;
		case 'r':
			nr = (unsigned)atoi(optarg);
			break;
		default:
			fprintf(stderr,
				"usage: %s [-s MiB] [-n objects] [-j "
				"inflight]... [-r count] BUCKET\n",
				argv[0]);
			return 2;
		}
	}
	if (optind != argc - 1 || !n || !size_mib) {
		fprintf(stderr,
			"usage: %s [-s MiB] [-n objects] [-j inflight]... "
			"[-r count] BUCKET\n",
			argv[0]);
		return 2;
	}
	if (!nj) {
		js[0] = 1;
		js[1] = 8;
		js[2] = 32;
		nj = 3;
	}
	for (k = 0; k < nj; k++)
		if (!js[k] || js[k] > 64) {
			fprintf(stderr, "s3bench: -j is 1..64\n");
			return 2;
		}
	r.bucket = argv[optind];
	r.n = n;
	r.size = (size_t)size_mib << 20;
	if (s3_config_load(&cfg, NULL, err, sizeof(err))) {
		fprintf(stderr, "s3bench: %s\n", err);
		return 1;
	}
	cfg.connections = 64;
	if (s3_client_new(&cfg, &r.c, err, sizeof(err))) {
		fprintf(stderr, "s3bench: %s\n", err);
		return 1;
	}
	s3_config_free(&cfg);
	if (s3_head_bucket(r.c, r.bucket, err, sizeof(err)) == -ENXIO &&
	    s3_create_bucket(r.c, r.bucket, err, sizeof(err))) {
		fprintf(stderr, "s3bench: %s\n", err);
		return 1;
	}
	r.reqs = calloc(n > nr ? n : nr, sizeof(*r.reqs));
	r.keys = calloc(n, 64);
	r.iov = calloc(64, sizeof(*r.iov));
	r.bufs = malloc(64 * r.size);
	if (!r.reqs || !r.keys || !r.iov || !r.bufs) {
		fprintf(stderr, "s3bench: out of memory\n");
		return 1;
	}
	for (i = 0; i < 64 * r.size; i++)
		r.bufs[i] = (char)(i * 2654435761u >> 13);
	for (i = 0; i < 64; i++) {
		r.iov[i].iov_base = r.bufs + i * r.size;
		r.iov[i].iov_len = r.size;
	}
	printf("%-9s %8s %8s %10s %10s\n", "inflight", "objects", "MiB",
	       "PUT MB/s", "GET MB/s");
	for (k = 0; k < nj; k++) {
		double tp, tg, mb = (double)n * r.size / 1e6;
		const char **keys = calloc(n, sizeof(*keys));
		struct s3_stats st;

		for (i = 0; i < n; i++) {
			snprintf(r.keys[i], 64, "s3bench/%u/%05u", js[k], i);
			keys[i] = r.keys[i];
		}
		tp = pass(&r, S3_PUT, js[k]);
		tg = pass(&r, S3_GET, js[k]);
		s3_stats(r.c, &st);
		printf("%-9u %8u %8u %10.1f %10.1f%s\n", js[k], n,
		       (unsigned)(n * size_mib), mb / tp, mb / tg,
		       r.failed ? "  (failures)" : "");
		fflush(stdout);
		if (s3_delete_keys(r.c, r.bucket, keys, n, err, sizeof(err)))
			fprintf(stderr, "s3bench: %s\n", err);
		free(keys);
	}
	if (nr)
		ranged(&r, nr);
	for (i = 0; i < (n > nr ? n : nr); i++)
		s3_req_reset(&r.reqs[i]);
	s3_client_free(r.c);
	free(r.reqs);
	free(r.keys);
	free(r.iov);
	free(r.bufs);
	return 0;
}
