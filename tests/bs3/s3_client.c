// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The S3 client against a real server on loopback (scripts/s3-server.sh;
 * endpoint and credentials from the environment it prints).  Makes its own
 * bucket.  One "ok - name" / "not ok - name: why" line per check; exit 1 on
 * any failure.  The outage check needs BS3_S3_PROXY_PID (set by run.sh).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "s3.h"
#include "../unit/bs3/s3_host.h"

static char bucket[64];

static void fill(void *p, size_t n, uint64_t seed)
{
	uint64_t x = seed * 0x9E3779B97F4A7C15ULL + 1;
	unsigned char *b = p;
	size_t i;

	for (i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		b[i] = (unsigned char)x;
	}
}

static void md5_hex(const void *p, size_t n, char out[33])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len = 0, i;

	EVP_Digest(p, n, md, &len, EVP_md5(), NULL);
	for (i = 0; i < len; i++)
		sprintf(out + 2 * i, "%02x", md[i]);
}

static struct s3_client *client_with(const char *endpoint, const char *region,
				     const char *secret, unsigned conns,
				     unsigned timeout_ms)
{
	struct s3_config cfg;
	struct s3_client *c;
	char err[256];

	if (s3_config_load(&cfg, endpoint, err, sizeof(err))) {
		fprintf(stderr, "s3_client: %s\n", err);
		exit(2);
	}
	if (region) {
		free(cfg.region);
		cfg.region = strdup(region);
	}
	if (secret) {
		free(cfg.secret_key);
		cfg.secret_key = strdup(secret);
	}
	cfg.path_style = true;
	if (conns)
		cfg.connections = conns;
	if (timeout_ms)
		cfg.timeout_ms = timeout_ms;
	cfg.verbose = getenv("BS3_S3_VERBOSE") != NULL;
	if (s3_client_new(&cfg, &c, err, sizeof(err))) {
		fprintf(stderr, "s3_client: %s\n", err);
		exit(2);
	}
	s3_config_free(&cfg);
	return c;
}

/* Many requests at once, counted down by their done() callbacks. */
struct batch {
	pthread_mutex_t m;
	pthread_cond_t cv;
	unsigned left, failed;
	int first_err;
	char first_msg[300];
};

static void batch_done(struct s3_req *r)
{
	struct batch *b = r->priv;
	char buf[300];

	pthread_mutex_lock(&b->m);
	if (r->err && !b->failed++) {
		b->first_err = r->err;
		snprintf(b->first_msg, sizeof(b->first_msg), "%s",
			 s3_strerror(r, buf, sizeof(buf)));
	}
	if (!--b->left)
		pthread_cond_signal(&b->cv);
	pthread_mutex_unlock(&b->m);
}

static void batch_wait(struct batch *b)
{
	pthread_mutex_lock(&b->m);
	while (b->left)
		pthread_cond_wait(&b->cv, &b->m);
	pthread_mutex_unlock(&b->m);
}

static void (*put_done)(struct s3_req *) = batch_done;

/* PUT n objects PREFIX%05u of size bytes each, all submitted at once. */
static unsigned put_many(struct s3_client *c, const char *prefix, unsigned n,
			 size_t size, uint32_t retry_ms, struct batch *b)
{
	struct s3_req *r = calloc(n, sizeof(*r));
	struct iovec *v = calloc(n, sizeof(*v));
	char(*keys)[64] = calloc(n, 64);
	char *data = malloc(size * n + 1);
	unsigned i;

	pthread_mutex_init(&b->m, NULL);
	pthread_cond_init(&b->cv, NULL);
	b->left = n;
	b->failed = 0;
	for (i = 0; i < n; i++) {
		snprintf(keys[i], 64, "%s%05u", prefix, i);
		fill(data + size * i, size, i + 7);
		v[i].iov_base = data + size * i;
		v[i].iov_len = size;
		r[i] = (struct s3_req){.method = S3_PUT,
				       .bucket = bucket,
				       .key = keys[i],
				       .iov = &v[i],
				       .iovcnt = 1,
				       .retry_ms = retry_ms,
				       .done = put_done,
				       .priv = b};
	}
	for (i = 0; i < n; i++)
		s3_submit(c, &r[i]);
	batch_wait(b);
	for (i = 0; i < n; i++)
		s3_req_reset(&r[i]);
	free(r);
	free(v);
	free(keys);
	free(data);
	return b->failed;
}

/* GET PREFIX%05u back and compare; returns how many differ. */
static unsigned verify_many(struct s3_client *c, const char *prefix, unsigned n,
			    size_t size)
{
	char *want = malloc(size), *got = malloc(size + 1), key[64];
	unsigned i, bad = 0;

	for (i = 0; i < n; i++) {
		struct s3_req r = {.method = S3_GET,
				   .bucket = bucket,
				   .key = key,
				   .rbuf = got,
				   .rbuf_len = size + 1};

		snprintf(key, sizeof(key), "%s%05u", prefix, i);
		fill(want, size, i + 7);
		if (s3_run(c, &r) || r.got != size || memcmp(want, got, size))
			bad++;
		s3_req_reset(&r);
	}
	free(want);
	free(got);
	return bad;
}

/* A local HTTP server that is not S3: answers every request with HTML. */
static void *html_server(void *arg)
{
	int ls = *(int *)arg;

	for (;;) {
		static const char page[] = "<html><body>hello</body></html>";
		char buf[8192], resp[512];
		int s = accept(ls, NULL, NULL);
		ssize_t n;

		if (s < 0)
			return NULL;
		n = recv(s, buf, sizeof(buf), 0); /* headers; body ignored */
		(void)n;
		snprintf(resp, sizeof(resp),
			 "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n"
			 "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
			 sizeof(page) - 1, page);
		if (send(s, resp, strlen(resp), MSG_NOSIGNAL) < 0)
			perror("send");
		close(s);
	}
}

static int listen_local(int *port)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t len = sizeof(a);
	int s = socket(AF_INET, SOCK_STREAM, 0);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof(a)) ||
	    getsockname(s, (struct sockaddr *)&a, &len)) {
		perror("socket");
		exit(2);
	}
	*port = ntohs(a.sin_port);
	return s;
}

static void test_basic(struct s3_client *c)
{
	enum { N = 1000003 };
	char *data = malloc(N), *back = malloc(N + 10), md5[33], err[400];
	struct iovec v[3] = {
		{.iov_base = data, .iov_len = 4096},
		{.iov_base = data + 4096, .iov_len = 1},
		{.iov_base = data + 4097, .iov_len = N - 4097},
	};
	struct s3_req r = {.method = S3_PUT,
			   .bucket = bucket,
			   .key = "obj/a b&c",
			   .iov = v,
			   .iovcnt = 3};
	char put_etag[80];
	int e;

	fill(data, N, 1);
	md5_hex(data, N, md5);
	e = s3_run(c, &r);
	bs3h_check(!e && !strcmp(r.etag, md5), "put from three iovecs",
		   "err %d etag %s want %s: %s", e, r.etag, md5,
		   s3_strerror(&r, err, sizeof(err)));
	snprintf(put_etag, sizeof(put_etag), "%s", r.etag);
	s3_req_reset(&r);

	r = (struct s3_req){.method = S3_GET,
			    .bucket = bucket,
			    .key = "obj/a b&c",
			    .rbuf = back,
			    .rbuf_len = N + 10};
	e = s3_run(c, &r);
	bs3h_check(!e && r.got == N && !memcmp(back, data, N) &&
			   r.object_size == N && !strcmp(r.etag, put_etag),
		   "get into a buffer, byte-equal", "err %d got %zu size %llu",
		   e, r.got, (unsigned long long)r.object_size);
	s3_req_reset(&r);

	r = (struct s3_req){
		.method = S3_GET, .bucket = bucket, .key = "obj/a b&c"};
	e = s3_run(c, &r);
	bs3h_check(!e && r.body.len == N && !memcmp(r.body.data, data, N),
		   "get into a growable body", "err %d len %zu", e, r.body.len);
	s3_req_reset(&r);

	memset(back, 0, N);
	r = (struct s3_req){.method = S3_GET,
			    .bucket = bucket,
			    .key = "obj/a b&c",
			    .rbuf = back,
			    .rbuf_len = 5000,
			    .range_off = 777777,
			    .range_len = 5000};
	e = s3_run(c, &r);
	bs3h_check(!e && r.got == 5000 && !memcmp(back, data + 777777, 5000) &&
			   r.object_size == N && r.http_status == 206,
		   "ranged get", "err %d got %zu size %llu status %d", e, r.got,
		   (unsigned long long)r.object_size, r.http_status);
	s3_req_reset(&r);

	r = (struct s3_req){.method = S3_GET,
			    .bucket = bucket,
			    .key = "obj/a b&c",
			    .rbuf = back,
			    .rbuf_len = 1000};
	e = s3_run(c, &r);
	bs3h_check(e == -EOVERFLOW,
		   "get into a short buffer fails with EOVERFLOW", "err %d", e);
	s3_req_reset(&r);

	r = (struct s3_req){
		.method = S3_HEAD, .bucket = bucket, .key = "obj/a b&c"};
	e = s3_run(c, &r);
	bs3h_check(!e && r.object_size == N && !strcmp(r.etag, md5),
		   "head: size and etag", "err %d size %llu etag %s", e,
		   (unsigned long long)r.object_size, r.etag);
	s3_req_reset(&r);

	r = (struct s3_req){
		.method = S3_GET, .bucket = bucket, .key = "obj/missing"};
	e = s3_run(c, &r);
	bs3h_check(e == -ENOENT && !strcmp(r.code, "NoSuchKey") &&
			   r.http_status == 404,
		   "missing key is ENOENT (NoSuchKey)", "err %d code %s", e,
		   r.code);
	s3_req_reset(&r);

	r = (struct s3_req){
		.method = S3_HEAD, .bucket = bucket, .key = "obj/missing"};
	e = s3_run(c, &r);
	bs3h_check(e == -ENOENT, "head of a missing key is ENOENT", "err %d",
		   e);
	s3_req_reset(&r);

	/* Conditional create: servers without it (Swift: 501) say ENOTSUP. */
	r = (struct s3_req){.method = S3_PUT,
			    .bucket = bucket,
			    .key = "obj/cond",
			    .iov = v,
			    .iovcnt = 1,
			    .if_none_match = true};
	e = s3_run(c, &r);
	bs3h_check(e == 0 || e == -ENOTSUP,
		   "if-none-match put: stored or ENOTSUP", "err %d %s", e,
		   s3_strerror(&r, err, sizeof(err)));
	s3_req_reset(&r);

	r = (struct s3_req){
		.method = S3_DELETE, .bucket = bucket, .key = "obj/cond"};
	e = s3_run(c, &r);
	bs3h_check(!e, "delete one key", "err %d", e);
	s3_req_reset(&r);

	free(data);
	free(back);
}

/* done() of the window test: the most requests ever in flight. */
static uint32_t max_in_flight;
static struct s3_client *window_client;

static void window_done(struct s3_req *r)
{
	struct s3_stats st;

	s3_stats(window_client, &st);
	if (st.in_flight > max_in_flight)
		max_in_flight = st.in_flight;
	batch_done(r);
}

static void test_many(void)
{
	struct s3_client *c = client_with(NULL, NULL, NULL, 64, 0);
	struct s3_stats st;
	struct batch b;
	unsigned bad;

	bad = put_many(c, "inflight/", 64, 256 * 1024, 0, &b);
	bs3h_check(!bad, "64 puts in flight at once", "%u failed: %s", bad,
		   b.first_msg);
	bad = verify_many(c, "inflight/", 64, 256 * 1024);
	bs3h_check(!bad, "64 objects read back equal", "%u differ", bad);
	s3_client_free(c);

	/* 8 connections: 64 queued PUTs, never more than 8 at once, on 8
	 * keep-alive connections (a few more if the server closes some). */
	c = window_client = client_with(NULL, NULL, NULL, 8, 0);
	put_done = window_done;
	bad = put_many(c, "window/", 64, 64 * 1024, 0, &b);
	put_done = batch_done;
	s3_stats(c, &st);
	bs3h_check(!bad && max_in_flight <= 8 && max_in_flight >= 1 &&
			   st.requests == 64 && st.connects <= 12,
		   "64 puts on 8 connections: at most 8 in flight, kept alive",
		   "%u failed, max in flight %u, %llu requests, %llu connects",
		   bad, max_in_flight, (unsigned long long)st.requests,
		   (unsigned long long)st.connects);
	printf("# window: max in flight %u, %llu connections for %llu "
	       "requests\n",
	       max_in_flight, (unsigned long long)st.connects,
	       (unsigned long long)st.requests);
	s3_client_free(c);
}

static void test_list_delete(struct s3_client *c)
{
	struct s3_object *o = NULL;
	const char **keys;
	size_t n = 0, i;
	struct batch b;
	char err[400];
	bool sorted = true;
	unsigned bad;
	int e;

	bad = put_many(c, "many/", 1100, 16, 0, &b);
	bs3h_check(!bad, "1100 small puts", "%u failed: %s", bad, b.first_msg);
	e = s3_list(c, bucket, "many/", &o, &n, err, sizeof(err));
	for (i = 1; i < n; i++)
		sorted &= strcmp(o[i - 1].key, o[i].key) < 0;
	bs3h_check(!e && n == 1100 && sorted && o[0].size == 16 &&
			   !strcmp(o[0].key, "many/00000") &&
			   !strcmp(o[1099].key, "many/01099"),
		   "list of 1100 keys (pagination)", "err %d n %zu: %s", e, n,
		   err);

	keys = calloc(n + 1, sizeof(*keys));
	for (i = 0; i < n; i++)
		keys[i] = o[i].key;
	e = s3_delete_keys(c, bucket, keys, n, err, sizeof(err));
	bs3h_check(!e, "multi-delete of 1100 keys", "err %d: %s", e, err);
	free(keys);
	s3_objects_free(o, n);

	e = s3_list(c, bucket, "many/", &o, &n, err, sizeof(err));
	bs3h_check(!e && n == 0, "deleted keys are gone from the list",
		   "err %d n %zu", e, n);
	s3_objects_free(o, n);

	e = s3_list(c, bucket, "obj/", &o, &n, err, sizeof(err));
	bs3h_check(!e && n == 1 && !strcmp(o[0].key, "obj/a b&c") &&
			   o[0].size == 1000003,
		   "list of a prefix, key with XML entities", "err %d n %zu %s",
		   e, n, n ? o[0].key : "");
	s3_objects_free(o, n);
	{
		const char *k[] = {"obj/a b&c", "obj/never-existed"};

		e = s3_delete_keys(c, bucket, k, 2, err, sizeof(err));
		bs3h_check(!e, "multi-delete of an escaped and a missing key",
			   "err %d: %s", e, err);
	}
}

static void test_errors(const char *endpoint, int port)
{
	struct s3_client *c;
	struct s3_req r;
	char err[400], url[64];
	int e, ls, hport;
	pthread_t t;

	c = client_with(NULL, NULL, NULL, 0, 0);
	e = s3_head_bucket(c, "bs3-no-such-bucket-here", err, sizeof(err));
	bs3h_check(e == -ENXIO && strstr(err, "NoSuchBucket"),
		   "missing bucket is ENXIO with a clear message", "err %d: %s",
		   e, err);
	r = (struct s3_req){.method = S3_GET,
			    .bucket = "bs3-no-such-bucket-here",
			    .key = "k"};
	e = s3_run(c, &r);
	bs3h_check(e == -ENXIO, "get from a missing bucket is ENXIO",
		   "err %d %s", e, r.code);
	s3_req_reset(&r);
	s3_client_free(c);

	c = client_with(NULL, NULL, "wrong-secret", 0, 0);
	e = s3_head_bucket(c, bucket, err, sizeof(err));
	bs3h_check(e == -EACCES && strstr(err, "SignatureDoesNotMatch"),
		   "wrong secret is EACCES", "err %d: %s", e, err);
	r = (struct s3_req){.method = S3_GET, .bucket = bucket, .key = "k"};
	e = s3_run(c, &r);
	bs3h_check(e == -EACCES, "get with a wrong secret is EACCES", "err %d",
		   e);
	s3_req_reset(&r);
	s3_client_free(c);

	c = client_with(NULL, "eu-west-1", NULL, 0, 0);
	e = s3_head_bucket(c, bucket, err, sizeof(err));
	bs3h_check(e == -EINVAL && strstr(err, "region"),
		   "wrong region is EINVAL", "err %d: %s", e, err);
	s3_client_free(c);

	/* The object server's port: HTTP, but not S3. */
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", port + 1);
	c = client_with(url, NULL, NULL, 0, 0);
	e = s3_head_bucket(c, bucket, err, sizeof(err));
	bs3h_check(e == -EPROTO, "swift object port is not S3: EPROTO",
		   "err %d: %s", e, err);
	s3_client_free(c);

	ls = listen_local(&hport);
	listen(ls, 16);
	pthread_create(&t, NULL, html_server, &ls);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", hport);
	c = client_with(url, NULL, NULL, 0, 0);
	e = s3_head_bucket(c, bucket, err, sizeof(err));
	bs3h_check(e == -EPROTO && strstr(err, "not S3"),
		   "an HTML server is not S3: EPROTO", "err %d: %s", e, err);
	r = (struct s3_req){.method = S3_GET, .bucket = bucket, .key = "k"};
	e = s3_run(c, &r);
	bs3h_check(e == -EPROTO, "get from an HTML server is EPROTO", "err %d",
		   e);
	s3_req_reset(&r);
	s3_client_free(c);
	shutdown(ls, SHUT_RDWR);
	close(ls);
	pthread_join(t, NULL);

	/* A port nobody listens on (bound, never listening). */
	ls = listen_local(&hport);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", hport);
	c = client_with(url, NULL, NULL, 0, 1000);
	r = (struct s3_req){.method = S3_GET,
			    .bucket = bucket,
			    .key = "k",
			    .retry_ms = 1500};
	e = s3_run(c, &r);
	bs3h_check(e == -EIO && r.retries > 0 && strstr(r.message, "connect"),
		   "connection refused: error after a short retry budget",
		   "err %d retries %u: %s", e, r.retries, r.message);
	s3_req_reset(&r);
	s3_client_free(c);
	close(ls);
	(void)endpoint;
}

static void *waker(void *arg)
{
	(void)arg;
	sleep(8);
	bs3h_proxy_cont();
	return NULL;
}

static void test_outage(void)
{
	struct s3_client *c;
	struct s3_stats st;
	struct batch b;
	unsigned bad;
	pthread_t t;
	int e;

	/* Short attempts, so the outage shows as retries. */
	c = client_with(NULL, NULL, NULL, 8, 2000);
	e = bs3h_proxy_stop();
	if (e == -ENOENT) {
		printf("ok - outage # SKIP: BS3_S3_PROXY_PID not set\n");
		s3_client_free(c);
		return;
	}
	if (e) {
		bs3h_check(false, "outage", "cannot stop the proxy: %s",
			   strerror(-e));
		s3_client_free(c);
		return;
	}
	/* SIGCONT after 8 s from another thread while the puts wait. */
	pthread_create(&t, NULL, waker, NULL);
	bad = put_many(c, "outage/", 24, 300 * 1000, UINT32_MAX, &b);
	pthread_join(t, NULL);
	s3_stats(c, &st);
	bs3h_check(
		!bad && st.retries > 0,
		"proxy stopped 8 s under 24 puts (retry forever): all stored",
		"%u failed (%s), %llu retries", bad, b.first_msg,
		(unsigned long long)st.retries);
	printf("# outage: %llu requests, %llu retries\n",
	       (unsigned long long)st.requests, (unsigned long long)st.retries);
	bad = verify_many(c, "outage/", 24, 300 * 1000);
	bs3h_check(!bad, "objects written across the outage read back equal",
		   "%u differ", bad);
	s3_client_free(c);
}

int main(void)
{
	const char *ep = getenv("AWS_ENDPOINT_URL");
	struct s3_client *c;
	char err[400];
	int e, port;

	if (!ep || !strrchr(ep, ':')) {
		fprintf(stderr, "s3_client: set the environment from "
				"`scripts/s3-server.sh env`\n");
		return 2;
	}
	port = atoi(strrchr(ep, ':') + 1);
	snprintf(bucket, sizeof(bucket), "bs3-client-%d-%ld", (int)getpid(),
		 (long)time(NULL));
	c = client_with(NULL, NULL, NULL, 16, 0);
	e = s3_create_bucket(c, bucket, err, sizeof(err));
	bs3h_check(!e, "create bucket", "err %d: %s", e, err);
	if (e)
		return 1;
	e = s3_head_bucket(c, bucket, err, sizeof(err));
	bs3h_check(!e, "head bucket", "err %d: %s", e, err);

	test_basic(c);
	test_many();
	test_list_delete(c);
	test_errors(ep, port);
	test_outage();
	s3_client_free(c);
	printf("# %d failed\n", bs3h_failures);
	return bs3h_failures ? 1 : 0;
}
