// SPDX-License-Identifier: LGPL-2.1-or-later
/* An in-memory S3 with fault injection for the BS3 unit tests (fake_s3.h). */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fake_s3.h"

struct fobj {
	char *bucket, *key;
	void *data;
	size_t len;
	char etag[40];
};

struct fake_store {
	struct fobj *o;
	size_t n, cap;
	char **buckets;
	size_t nb;
};

struct fake_s3 {
	struct s3_client c; /* first: the client pointer is the fake's */
	pthread_mutex_t m;
	pthread_cond_t cv, idle;
	pthread_t worker;
	bool stop, busy;
	struct s3_req *qhead, *qtail, *held;
	struct fake_store st;
	uint64_t etag_seq;
	/* knobs */
	unsigned fail_n, hard_n;
	int hard_err;
	unsigned hold_mask;
	char hold_sub[128];
	unsigned tear_n, lose_n;
	char tear_sub[128], lose_sub[128];
	size_t tear_keep;
	bool nocond;
	uint64_t count[8];
	uint64_t requests, retries;
};

static int fobj_cmp2(const char *b1, const char *k1, const char *b2,
		     const char *k2)
{
	int c = strcmp(b1, b2);

	return c ? c : strcmp(k1, k2);
}

/* Index of the first entry >= (bucket, key). */
static size_t st_lower(struct fake_store *s, const char *bucket,
		       const char *key)
{
	size_t lo = 0, hi = s->n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (fobj_cmp2(s->o[mid].bucket, s->o[mid].key, bucket, key) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static struct fobj *st_find(struct fake_store *s, const char *bucket,
			    const char *key)
{
	size_t i = st_lower(s, bucket, key);

	if (i < s->n && !fobj_cmp2(s->o[i].bucket, s->o[i].key, bucket, key))
		return &s->o[i];
	return NULL;
}

static bool st_has_bucket(struct fake_store *s, const char *b)
{
	for (size_t i = 0; i < s->nb; i++)
		if (!strcmp(s->buckets[i], b))
			return true;
	return false;
}

static void st_add_bucket(struct fake_store *s, const char *bucket);

static void st_put(struct fake_s3 *f, const char *bucket, const char *key,
		   void *data, size_t len)
{
	struct fake_store *s = &f->st;
	struct fobj *o = st_find(s, bucket, key);

	if (!o) {
		size_t i = st_lower(s, bucket, key);

		if (s->n == s->cap) {
			s->cap = s->cap ? s->cap * 2 : 64;
			s->o = realloc(s->o, s->cap * sizeof(*s->o));
			if (!s->o)
				abort();
		}
		memmove(s->o + i + 1, s->o + i, (s->n - i) * sizeof(*s->o));
		s->n++;
		o = &s->o[i];
		o->bucket = strdup(bucket);
		o->key = strdup(key);
		o->data = NULL;
	}
	free(o->data);
	o->data = data;
	o->len = len;
	snprintf(o->etag, sizeof(o->etag), "fake%016llx",
		 (unsigned long long)++f->etag_seq);
}

static bool st_del(struct fake_store *s, const char *bucket, const char *key)
{
	struct fobj *o = st_find(s, bucket, key);

	if (!o)
		return false;
	free(o->bucket);
	free(o->key);
	free(o->data);
	size_t i = (size_t)(o - s->o);

	memmove(s->o + i, s->o + i + 1, (s->n - i - 1) * sizeof(*s->o));
	s->n--;
	return true;
}

static void st_clear(struct fake_store *s)
{
	for (size_t i = 0; i < s->n; i++) {
		free(s->o[i].bucket);
		free(s->o[i].key);
		free(s->o[i].data);
	}
	for (size_t i = 0; i < s->nb; i++)
		free(s->buckets[i]);
	free(s->o);
	free(s->buckets);
	*s = (struct fake_store){ 0 };
}

static void st_copy(struct fake_store *d, const struct fake_store *s)
{
	d->n = d->cap = s->n;
	d->o = calloc(s->n + 1, sizeof(*d->o));
	d->nb = s->nb;
	d->buckets = calloc(s->nb + 1, sizeof(char *));
	if (!d->o || !d->buckets)
		abort();
	for (size_t i = 0; i < s->n; i++) {
		d->o[i] = s->o[i];
		d->o[i].bucket = strdup(s->o[i].bucket);
		d->o[i].key = strdup(s->o[i].key);
		d->o[i].data = malloc(s->o[i].len + 1);
		memcpy(d->o[i].data, s->o[i].data, s->o[i].len);
	}
	for (size_t i = 0; i < s->nb; i++)
		d->buckets[i] = strdup(s->buckets[i]);
}

/* ---- responses ---- */

static void set_err(struct s3_req *r, int err, int status, const char *code,
		    const char *msg)
{
	r->err = err;
	r->http_status = status;
	snprintf(r->code, sizeof(r->code), "%s", code);
	snprintf(r->message, sizeof(r->message), "%s", msg);
}

static void body_add(struct s3_buf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		b->cap = (b->len + n + 1) * 2;
		b->data = realloc(b->data, b->cap);
		if (!b->data)
			abort();
	}
	memcpy(b->data + b->len, s, n);
	b->len += n;
	b->data[b->len] = 0;
}

static void body_str(struct s3_buf *b, const char *s)
{
	body_add(b, s, strlen(s));
}

static void body_esc(struct s3_buf *b, const char *s)
{
	for (; *s; s++) {
		if (*s == '&')
			body_str(b, "&amp;");
		else if (*s == '<')
			body_str(b, "&lt;");
		else if (*s == '>')
			body_str(b, "&gt;");
		else
			body_add(b, s, 1);
	}
}

static const char *param(const struct s3_req *r, const char *name)
{
	for (unsigned i = 0; i < r->nr_params; i++)
		if (!strcmp(r->params[i].name, name))
			return r->params[i].value ? r->params[i].value : "";
	return NULL;
}

static void do_list(struct fake_s3 *f, struct s3_req *r)
{
	const char *prefix = param(r, "prefix"), *tok;
	const char *after = param(r, "start-after");
	const char *mk = param(r, "max-keys");
	size_t max = mk ? strtoul(mk, NULL, 10) : 1000, n = 0;
	struct fake_store *s = &f->st;
	char line[256];
	size_t i;

	if (!prefix)
		prefix = "";
	tok = param(r, "continuation-token");
	if (tok && *tok)
		after = tok;
	if (!max || max > 1000)
		max = 1000;
	i = st_lower(s, r->bucket, after ? after : prefix);
	body_str(&r->body, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
			   "<ListBucketResult><Name>");
	body_esc(&r->body, r->bucket);
	body_str(&r->body, "</Name><Prefix>");
	body_esc(&r->body, prefix);
	body_str(&r->body, "</Prefix>");
	const char *last = NULL;
	bool more = false;

	for (; i < s->n && !strcmp(s->o[i].bucket, r->bucket); i++) {
		if (after && strcmp(s->o[i].key, after) <= 0)
			continue;
		if (strncmp(s->o[i].key, prefix, strlen(prefix)))
			break;
		if (n == max) {
			more = true;
			break;
		}
		body_str(&r->body, "<Contents><Key>");
		body_esc(&r->body, s->o[i].key);
		snprintf(line, sizeof(line),
			 "</Key><Size>%zu</Size><ETag>&quot;%s&quot;</ETag>"
			 "</Contents>",
			 s->o[i].len, s->o[i].etag);
		body_str(&r->body, line);
		last = s->o[i].key;
		n++;
	}
	snprintf(line, sizeof(line), "<KeyCount>%zu</KeyCount><IsTruncated>%s"
				     "</IsTruncated>",
		 n, more ? "true" : "false");
	body_str(&r->body, line);
	if (more) {
		body_str(&r->body, "<NextContinuationToken>");
		body_esc(&r->body, last);
		body_str(&r->body, "</NextContinuationToken>");
	}
	body_str(&r->body, "</ListBucketResult>");
	r->http_status = 200;
}

static char *gather(const struct s3_req *r, size_t *len)
{
	size_t n = 0;
	char *p;

	for (unsigned i = 0; i < r->iovcnt; i++)
		n += r->iov[i].iov_len;
	p = malloc(n + 1);
	if (!p)
		abort();
	n = 0;
	for (unsigned i = 0; i < r->iovcnt; i++) {
		memcpy(p + n, r->iov[i].iov_base, r->iov[i].iov_len);
		n += r->iov[i].iov_len;
	}
	p[n] = 0;
	*len = n;
	return p;
}

static void do_delete_many(struct fake_s3 *f, struct s3_req *r)
{
	size_t len;
	char *doc = gather(r, &len), *p = doc;

	body_str(&r->body, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
			   "<DeleteResult>");
	while ((p = strstr(p, "<Key>"))) {
		char *e = strstr(p, "</Key>"), *k;

		if (!e)
			break;
		p += 5;
		k = strndup(p, (size_t)(e - p));
		/* our keys need no unescaping but &amp; */
		for (char *a; (a = strstr(k, "&amp;"));)
			memmove(a + 1, a + 5, strlen(a + 5) + 1);
		st_del(&f->st, r->bucket, k);
		body_str(&r->body, "<Deleted><Key>");
		body_esc(&r->body, k);
		body_str(&r->body, "</Key></Deleted>");
		free(k);
		p = e;
	}
	body_str(&r->body, "</DeleteResult>");
	free(doc);
	r->http_status = 200;
}

static bool key_has(const struct s3_req *r, const char *sub)
{
	return !*sub || (r->key && strstr(r->key, sub));
}

/* Run one request against the store (f->m held). */
static void execute(struct fake_s3 *f, struct s3_req *r)
{
	bool bucket_req = !r->key || !*r->key;
	struct fobj *o;

	if (r->method == S3_PUT && bucket_req) {
		if (!st_has_bucket(&f->st, r->bucket))
			st_add_bucket(&f->st, r->bucket);
		r->http_status = 200;
		return;
	}
	if (!st_has_bucket(&f->st, r->bucket)) {
		set_err(r, -ENXIO, 404, "NoSuchBucket",
			"The specified bucket does not exist");
		return;
	}
	if (bucket_req) {
		if (r->method == S3_GET)
			do_list(f, r);
		else if (r->method == S3_POST && param(r, "delete"))
			do_delete_many(f, r);
		else if (r->method == S3_HEAD)
			r->http_status = 200;
		else
			set_err(r, -EINVAL, 400, "InvalidRequest", "fake");
		return;
	}
	o = st_find(&f->st, r->bucket, r->key);
	switch (r->method) {
	case S3_PUT: {
		size_t len;
		char *data;

		if (r->if_none_match && f->nocond) {
			set_err(r, -ENOTSUP, 501, "NotImplemented",
				"A header you provided implies functionality "
				"that is not implemented");
			return;
		}
		if (r->if_none_match && o) {
			set_err(r, -EEXIST, 412, "PreconditionFailed",
				"At least one of the preconditions you "
				"specified did not hold");
			return;
		}
		data = gather(r, &len);
		r->http_status = 200;
		if (f->lose_n && key_has(r, f->lose_sub)) {
			f->lose_n--;
			free(data);
			snprintf(r->etag, sizeof(r->etag), "lost");
			return;
		}
		if (f->tear_n && key_has(r, f->tear_sub)) {
			f->tear_n--;
			if (len > f->tear_keep)
				len = f->tear_keep;
		}
		st_put(f, r->bucket, r->key, data, len);
		o = st_find(&f->st, r->bucket, r->key);
		snprintf(r->etag, sizeof(r->etag), "%s", o->etag);
		return;
	}
	case S3_GET:
	case S3_HEAD: {
		size_t off = 0, len;

		if (!o) {
			set_err(r, -ENOENT, 404, "NoSuchKey",
				"The specified key does not exist.");
			return;
		}
		r->object_size = o->len;
		snprintf(r->etag, sizeof(r->etag), "%s", o->etag);
		r->http_status = 200;
		if (r->method == S3_HEAD)
			return;
		len = o->len;
		if (r->range_len) {
			if (r->range_off >= o->len) {
				set_err(r, -ERANGE, 416, "InvalidRange",
					"The requested range is not "
					"satisfiable");
				return;
			}
			off = (size_t)r->range_off;
			len = o->len - off;
			if (len > r->range_len)
				len = (size_t)r->range_len;
			r->http_status = 206;
		}
		if (r->rbuf) {
			if (len > r->rbuf_len) {
				set_err(r, -EOVERFLOW, 200, "", "too long");
				return;
			}
			memcpy(r->rbuf, (char *)o->data + off, len);
			r->got = len;
		} else {
			body_add(&r->body, (char *)o->data + off, len);
			r->got = len;
		}
		return;
	}
	case S3_DELETE:
		st_del(&f->st, r->bucket, r->key);
		r->http_status = 204;
		return;
	default:
		set_err(r, -EINVAL, 400, "InvalidRequest", "fake");
	}
}

static bool held_now(struct fake_s3 *f, struct s3_req *r)
{
	return (f->hold_mask & (1u << r->method)) && key_has(r, f->hold_sub);
}

static void *worker(void *arg)
{
	struct fake_s3 *f = arg;

	pthread_mutex_lock(&f->m);
	for (;;) {
		struct s3_req *r = f->qhead;

		if (!r) {
			f->busy = false;
			pthread_cond_broadcast(&f->idle);
			if (f->stop && !f->held)
				break;
			if (f->stop) { /* free lifts every hold */
				f->hold_mask = 0;
				f->qhead = f->held;
				for (f->qtail = f->held; f->qtail->next_;)
					f->qtail = f->qtail->next_;
				f->held = NULL;
				continue;
			}
			pthread_cond_wait(&f->cv, &f->m);
			continue;
		}
		f->qhead = r->next_;
		if (!f->qhead)
			f->qtail = NULL;
		r->next_ = NULL;
		if (held_now(f, r)) {
			r->next_ = f->held;
			f->held = r;
			continue;
		}
		f->busy = true;
		if (f->fail_n) {
			/* a 503: the real client retries, so does the fake */
			f->fail_n--;
			r->retries++;
			f->retries++;
			if (f->qtail)
				f->qtail->next_ = r;
			else
				f->qhead = r;
			f->qtail = r;
			continue;
		}
		if (f->hard_n) {
			f->hard_n--;
			set_err(r, f->hard_err, 500, "InternalError",
				"injected failure");
		} else {
			execute(f, r);
		}
		pthread_mutex_unlock(&f->m);
		r->done(r);
		pthread_mutex_lock(&f->m);
	}
	pthread_mutex_unlock(&f->m);
	return NULL;
}

static void fake_submit(struct s3_client *c, struct s3_req *r)
{
	struct fake_s3 *f = (struct fake_s3 *)c;

	r->err = 0;
	r->http_status = 0;
	r->code[0] = r->message[0] = r->etag[0] = 0;
	r->got = 0;
	r->object_size = 0;
	r->retries = 0;
	r->next_ = NULL;
	pthread_mutex_lock(&f->m);
	f->count[r->method]++;
	f->requests++;
	if (f->qtail)
		f->qtail->next_ = r;
	else
		f->qhead = r;
	f->qtail = r;
	pthread_cond_signal(&f->cv);
	pthread_mutex_unlock(&f->m);
}

static void fake_stats(struct s3_client *c, struct s3_stats *st)
{
	struct fake_s3 *f = (struct fake_s3 *)c;

	pthread_mutex_lock(&f->m);
	memset(st, 0, sizeof(*st));
	st->requests = f->requests;
	st->retries = 0; /* the engine counts req->retries itself */
	pthread_mutex_unlock(&f->m);
}

static void fake_destroy(struct s3_client *c)
{
	/* owned by the test: fake_s3_free() */
	(void)c;
}

static const struct s3_client_ops fake_ops = {
	.submit = fake_submit,
	.stats = fake_stats,
	.destroy = fake_destroy,
};

struct fake_s3 *fake_s3_new(void)
{
	struct fake_s3 *f = calloc(1, sizeof(*f));

	if (!f)
		abort();
	f->c.ops = &fake_ops;
	pthread_mutex_init(&f->m, NULL);
	pthread_cond_init(&f->cv, NULL);
	pthread_cond_init(&f->idle, NULL);
	if (pthread_create(&f->worker, NULL, worker, f))
		abort();
	return f;
}

struct s3_client *fake_s3_client(struct fake_s3 *f)
{
	return &f->c;
}

void fake_s3_free(struct fake_s3 *f)
{
	pthread_mutex_lock(&f->m);
	f->stop = true;
	pthread_cond_signal(&f->cv);
	pthread_mutex_unlock(&f->m);
	pthread_join(f->worker, NULL);
	st_clear(&f->st);
	pthread_mutex_destroy(&f->m);
	pthread_cond_destroy(&f->cv);
	pthread_cond_destroy(&f->idle);
	free(f);
}

static void st_add_bucket(struct fake_store *s, const char *bucket)
{
	s->buckets = realloc(s->buckets, (s->nb + 1) * sizeof(char *));
	if (!s->buckets)
		abort();
	s->buckets[s->nb++] = strdup(bucket);
}

void fake_s3_add_bucket(struct fake_s3 *f, const char *bucket)
{
	pthread_mutex_lock(&f->m);
	st_add_bucket(&f->st, bucket);
	pthread_mutex_unlock(&f->m);
}

#define KNOB(body)                         \
	do {                               \
		pthread_mutex_lock(&f->m); \
		body;                      \
		pthread_cond_signal(&f->cv); \
		pthread_mutex_unlock(&f->m); \
	} while (0)

void fake_s3_fail_next(struct fake_s3 *f, unsigned n)
{
	KNOB(f->fail_n = n);
}

void fake_s3_fail_hard(struct fake_s3 *f, unsigned n, int err)
{
	KNOB(f->hard_n = n; f->hard_err = err);
}

void fake_s3_hold(struct fake_s3 *f, unsigned mask, const char *key_sub)
{
	pthread_mutex_lock(&f->m);
	f->hold_mask = mask;
	snprintf(f->hold_sub, sizeof(f->hold_sub), "%s", key_sub ? key_sub : "");
	if (!mask && f->held) {
		/* back to the queue, in submission order */
		struct s3_req *rev = NULL;

		while (f->held) {
			struct s3_req *r = f->held;

			f->held = r->next_;
			r->next_ = rev;
			rev = r;
		}
		for (struct s3_req *r = rev; r;) {
			struct s3_req *nx = r->next_;

			r->next_ = NULL;
			if (f->qtail)
				f->qtail->next_ = r;
			else
				f->qhead = r;
			f->qtail = r;
			r = nx;
		}
	}
	pthread_cond_signal(&f->cv);
	pthread_mutex_unlock(&f->m);
}

unsigned fake_s3_held(struct fake_s3 *f)
{
	unsigned n = 0;

	pthread_mutex_lock(&f->m);
	for (struct s3_req *r = f->held; r; r = r->next_)
		n++;
	pthread_mutex_unlock(&f->m);
	return n;
}

void fake_s3_tear_puts(struct fake_s3 *f, unsigned n, const char *key_sub,
		       size_t keep)
{
	KNOB(f->tear_n = n; f->tear_keep = keep;
	     snprintf(f->tear_sub, sizeof(f->tear_sub), "%s",
		      key_sub ? key_sub : ""));
}

void fake_s3_lose_puts(struct fake_s3 *f, unsigned n, const char *key_sub)
{
	KNOB(f->lose_n = n; snprintf(f->lose_sub, sizeof(f->lose_sub), "%s",
				     key_sub ? key_sub : ""));
}

void fake_s3_conditional(struct fake_s3 *f, bool supported)
{
	KNOB(f->nocond = !supported);
}

void fake_s3_drain(struct fake_s3 *f)
{
	pthread_mutex_lock(&f->m);
	while (f->qhead || f->busy)
		pthread_cond_wait(&f->idle, &f->m);
	pthread_mutex_unlock(&f->m);
}

uint64_t fake_s3_count(struct fake_s3 *f, enum s3_method m)
{
	uint64_t n;

	pthread_mutex_lock(&f->m);
	n = f->count[m];
	pthread_mutex_unlock(&f->m);
	return n;
}

int fake_s3_put(struct fake_s3 *f, const char *bucket, const char *key,
		const void *data, size_t len)
{
	void *copy = malloc(len + 1);

	if (!copy)
		return -ENOMEM;
	memcpy(copy, data, len);
	pthread_mutex_lock(&f->m);
	st_put(f, bucket, key, copy, len);
	pthread_mutex_unlock(&f->m);
	return 0;
}

void *fake_s3_get(struct fake_s3 *f, const char *bucket, const char *key,
		  size_t *len)
{
	void *copy = NULL;

	pthread_mutex_lock(&f->m);
	struct fobj *o = st_find(&f->st, bucket, key);

	if (o) {
		copy = malloc(o->len + 1);
		memcpy(copy, o->data, o->len);
		*len = o->len;
	}
	pthread_mutex_unlock(&f->m);
	return copy;
}

int fake_s3_delete(struct fake_s3 *f, const char *bucket, const char *key)
{
	bool ok;

	pthread_mutex_lock(&f->m);
	ok = st_del(&f->st, bucket, key);
	pthread_mutex_unlock(&f->m);
	return ok ? 0 : -ENOENT;
}

size_t fake_s3_keys(struct fake_s3 *f, const char *bucket, const char *prefix,
		    uint64_t *bytes, void (*fn)(void *arg, const char *key),
		    void *arg)
{
	size_t n = 0;

	if (bytes)
		*bytes = 0;
	pthread_mutex_lock(&f->m);
	for (size_t i = st_lower(&f->st, bucket, prefix); i < f->st.n; i++) {
		struct fobj *o = &f->st.o[i];

		if (strcmp(o->bucket, bucket) ||
		    strncmp(o->key, prefix, strlen(prefix)))
			break;
		n++;
		if (bytes)
			*bytes += o->len;
		if (fn)
			fn(arg, o->key);
	}
	pthread_mutex_unlock(&f->m);
	return n;
}

struct fake_store *fake_s3_snapshot(struct fake_s3 *f)
{
	struct fake_store *s = calloc(1, sizeof(*s));

	if (!s)
		abort();
	pthread_mutex_lock(&f->m);
	st_copy(s, &f->st);
	pthread_mutex_unlock(&f->m);
	return s;
}

void fake_s3_restore(struct fake_s3 *f, const struct fake_store *s)
{
	pthread_mutex_lock(&f->m);
	st_clear(&f->st);
	st_copy(&f->st, s);
	pthread_mutex_unlock(&f->m);
}

void fake_store_free(struct fake_store *s)
{
	if (!s)
		return;
	st_clear(s);
	free(s);
}
