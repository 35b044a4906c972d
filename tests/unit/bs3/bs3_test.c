// SPDX-License-Identifier: LGPL-2.1-or-later
/* Helpers shared by the BS3 engine's unit tests (bs3_test.h). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bs3_test.h"
#include "object.h"

void bs3t_quiet(void *arg, const char *line)
{
	(void)arg;
	(void)line;
}

void bs3t_nop(void *arg, int status)
{
	(void)arg;
	(void)status;
}

void bs3t_sleep_ms(unsigned int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

struct bs3_opts bs3t_opts(struct fake_s3 *f)
{
	struct bs3_opts o = {.bucket = BS3T_BUCKET,
			     .volume = BS3T_VOL,
			     .client = fake_s3_client(f),
			     .no_gc = true,
			     .progress = bs3t_quiet};
	return o;
}

struct fake_s3 *bs3t_volume(uint64_t size, uint32_t object_size)
{
	struct fake_s3 *f = fake_s3_new();
	struct bs3_opts o = bs3t_opts(f);
	char err[256];

	fake_s3_add_bucket(f, BS3T_BUCKET);
	if (bs3_create(&o, size, BS3T_BS, object_size, err, sizeof(err))) {
		fprintf(stderr, "bs3_create: %s\n", err);
		fake_s3_free(f);
		return NULL;
	}
	return f;
}

struct fake_s3 *bs3t_crash(struct fake_s3 *f)
{
	struct fake_store *s = fake_s3_snapshot(f);
	struct fake_s3 *g = fake_s3_new();

	fake_s3_restore(g, s);
	fake_store_free(s);
	return g;
}

int bs3t_model_init(struct bs3t_model *m, uint64_t nblocks)
{
	m->nblocks = nblocks;
	m->gen = calloc(nblocks, sizeof(*m->gen));
	return m->gen ? 0 : -ENOMEM;
}

void bs3t_model_free(struct bs3t_model *m)
{
	free(m->gen);
	m->gen = NULL;
}

/*
 * The body of block (lba, gen) after its two header words: a stream seeded
 * by both, so that data moved within a block, or from another block or
 * generation, does not match.
 */
static uint64_t body_seed(uint64_t lba, uint32_t gen)
{
	uint64_t x = lba * 0x9e3779b97f4a7c15ull ^ ((uint64_t)gen << 17 | 1);

	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	return (x ^ (x >> 27)) | 1; /* xorshift needs a non-zero state */
}

static uint64_t body_next(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

void bs3t_fill(void *buf, uint64_t lba, uint32_t nblocks, uint32_t gen)
{
	uint64_t *w = buf;

	for (uint32_t b = 0; b < nblocks; b++) {
		uint64_t x = body_seed(lba + b, gen);

		*w++ = lba + b;
		/* never all-zero, so no generation reads as a hole */
		*w++ = (uint64_t)gen << 32 | 0x5a5a5a5au;
		for (size_t i = 2; i < BS3T_BS / 8; i++)
			*w++ = body_next(&x);
	}
}

int64_t bs3t_block_gen(const void *blk, uint64_t lba)
{
	const uint64_t *w = blk;
	bool zero = true;
	uint64_t x;

	for (size_t i = 0; i < BS3T_BS / 8 && zero; i++)
		zero = !w[i];
	if (zero)
		return 0;
	if (w[0] != lba || (w[1] & 0xffffffffu) != 0x5a5a5a5au)
		return -1;
	x = body_seed(lba, (uint32_t)(w[1] >> 32));
	for (size_t i = 2; i < BS3T_BS / 8; i++)
		if (w[i] != body_next(&x))
			return -1;
	return (int64_t)(w[1] >> 32);
}

static void free_buf(void *arg, int status)
{
	(void)status;
	free(arg);
}

int bs3t_write(struct bs3_vol *v, struct bs3t_model *m, uint64_t lba,
	       uint32_t n, uint32_t gen)
{
	void *buf = malloc((size_t)n * BS3T_BS);
	int e;

	if (!buf)
		return -ENOMEM;
	bs3t_fill(buf, lba, n, gen);
	e = bs3_write(v, lba * BS3T_BS, n * BS3T_BS, buf, free_buf, buf);
	if (e) {
		free(buf);
		return e;
	}
	if (m)
		for (uint32_t i = 0; i < n; i++)
			m->gen[lba + i] = gen;
	return 0;
}

int bs3t_discard(struct bs3_vol *v, struct bs3t_model *m, uint64_t lba,
		 uint64_t n)
{
	int e = bs3_discard(v, lba * BS3T_BS, n * BS3T_BS, bs3t_nop, NULL);

	if (e != BS3_PENDING)
		return e;
	if (m)
		for (uint64_t i = 0; i < n; i++)
			m->gen[lba + i] = 0;
	return 0;
}

int bs3t_verify(struct bs3_vol *v, const struct bs3t_model *m)
{
	uint8_t *buf = malloc(m->nblocks * BS3T_BS);
	int e;

	if (!buf)
		return -ENOMEM;
	memset(buf, 0xee, m->nblocks * BS3T_BS);
	e = bs3_read_sync(v, 0, (uint32_t)(m->nblocks * BS3T_BS), buf);
	for (uint64_t b = 0; !e && b < m->nblocks; b++) {
		int64_t g = bs3t_block_gen(buf + b * BS3T_BS, b);

		if (g == m->gen[b])
			continue;
		fprintf(stderr,
			"block %" PRIu64 ": want generation %u, got %" PRId64
			" (-1: not a block of ours at this lba)\n",
			b, m->gen[b], g);
		e = 1;
	}
	free(buf);
	return e;
}

uint64_t bs3t_next_seq(struct bs3_vol *v)
{
	struct bs3_stats st;

	bs3_get_stats(v, &st);
	return st.next_seq;
}

void bs3t_seq_sub(char *buf, size_t len, uint64_t seq)
{
	char *dash;

	bs3_key_data(buf, len, BS3T_VOL, seq, 0);
	dash = strrchr(buf, '-');
	if (dash)
		dash[1] = 0;
}

struct key_find {
	uint64_t seq, epoch;
	char *key;
	size_t len;
	bool found;
};

static void key_find_fn(void *arg, const char *key)
{
	struct key_find *k = arg;
	uint64_t seq, epoch;

	if (bs3_key_parse(key, BS3T_VOL, &seq, &epoch) != BS3_KEY_DATA ||
	    seq != k->seq || (k->found && epoch < k->epoch))
		return;
	k->found = true;
	k->epoch = epoch;
	snprintf(k->key, k->len, "%s", key);
}

bool bs3t_data_key(struct fake_s3 *f, uint64_t seq, char *key, size_t len)
{
	struct key_find k = {.seq = seq, .key = key, .len = len};

	fake_s3_keys(f, BS3T_BUCKET, BS3T_VOL "/d/", NULL, key_find_fn, &k);
	return k.found;
}

size_t bs3t_count(struct fake_s3 *f, const char *sub, uint64_t *bytes)
{
	char prefix[64];

	snprintf(prefix, sizeof(prefix), "%s/%s", BS3T_VOL, sub);
	return fake_s3_keys(f, BS3T_BUCKET, prefix, bytes, NULL, NULL);
}

int bs3t_corrupt(struct fake_s3 *f, const char *key, long off)
{
	size_t len;
	uint8_t *p = fake_s3_get(f, BS3T_BUCKET, key, &len);
	int e;

	if (!p)
		return -ENOENT;
	if (off < 0)
		off += (long)len;
	if (off < 0 || (size_t)off >= len) {
		free(p);
		return -ERANGE;
	}
	p[off] ^= 0xff;
	e = fake_s3_put(f, BS3T_BUCKET, key, p, len);
	free(p);
	return e;
}

int bs3t_truncate(struct fake_s3 *f, const char *key, size_t keep)
{
	size_t len;
	void *p = fake_s3_get(f, BS3T_BUCKET, key, &len);
	int e;

	if (!p)
		return -ENOENT;
	e = fake_s3_put(f, BS3T_BUCKET, key, p, keep < len ? keep : len);
	free(p);
	return e;
}

void bs3t_rec_init(struct bs3t_rec *r)
{
	memset(r, 0, sizeof(*r));
	pthread_mutex_init(&r->m, NULL);
	pthread_cond_init(&r->c, NULL);
}

void bs3t_rec_destroy(struct bs3t_rec *r)
{
	pthread_mutex_destroy(&r->m);
	pthread_cond_destroy(&r->c);
}

void bs3t_rec_cb(void *arg, int status)
{
	struct bs3t_ev *ev = arg;
	struct bs3t_rec *r = ev->rec;

	pthread_mutex_lock(&r->m);
	if (r->n < BS3T_MAX_EVENTS) {
		r->id[r->n] = ev->id;
		r->status[r->n] = status;
	}
	r->n++;
	pthread_cond_broadcast(&r->c);
	pthread_mutex_unlock(&r->m);
}

unsigned int bs3t_rec_count(struct bs3t_rec *r)
{
	unsigned int n;

	pthread_mutex_lock(&r->m);
	n = r->n;
	pthread_mutex_unlock(&r->m);
	return n;
}

bool bs3t_rec_wait(struct bs3t_rec *r, unsigned int n, unsigned int ms)
{
	struct timespec ts;
	bool ok;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&r->m);
	while (r->n < n && !pthread_cond_timedwait(&r->c, &r->m, &ts))
		;
	ok = r->n >= n;
	pthread_mutex_unlock(&r->m);
	return ok;
}

void bs3t_log_init(struct bs3t_log *l)
{
	memset(l, 0, sizeof(*l));
	pthread_mutex_init(&l->m, NULL);
}

void bs3t_log_destroy(struct bs3t_log *l)
{
	pthread_mutex_destroy(&l->m);
}

void bs3t_log_clear(struct bs3t_log *l)
{
	pthread_mutex_lock(&l->m);
	l->len = 0;
	l->text[0] = 0;
	pthread_mutex_unlock(&l->m);
}

void bs3t_log_line(void *arg, const char *line)
{
	struct bs3t_log *l = arg;
	size_t n = strlen(line);

	pthread_mutex_lock(&l->m);
	if (getenv("BS3T_VERBOSE"))
		fprintf(stderr, "bs3: %s\n", line);
	if (l->len + n + 2 <= sizeof(l->text)) {
		memcpy(l->text + l->len, line, n);
		l->len += n;
		l->text[l->len++] = '\n';
		l->text[l->len] = 0;
	}
	pthread_mutex_unlock(&l->m);
}

bool bs3t_log_has(struct bs3t_log *l, const char *sub)
{
	bool has;

	pthread_mutex_lock(&l->m);
	has = l->len && strstr(l->text, sub);
	pthread_mutex_unlock(&l->m);
	return has;
}
