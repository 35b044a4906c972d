// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The BS3 engine against a real S3 server on loopback, checked against a
 * model: random writes (4 KiB..1 MiB), reads (of data still in memory and
 * of stored data, compared block by block with the model as it was when
 * the read was issued), discards and flushes, many in flight at once, on a
 * 64 MiB volume of 256 KiB objects.  In the middle a GC pass and a
 * checkpoint; then close, reopen (with a read cache, background GC on),
 * more random operations, close, reopen, and the whole volume compared
 * with the model each time; bs3_check() must find it clean.  And an
 * outage: the server's proxy stopped (SIGSTOP) for 10 s while uploads, more
 * writes than the dirty limit holds and a flush are outstanding: nothing
 * may fail, the writes must wait, the flush must not return before the
 * server is back and then must, and every byte must be there after a
 * reopen.  Its own bucket.  Endpoint and credentials from the environment
 * (run.sh); the outage needs BS3_S3_PROXY_PID.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../unit/bs3/bs3_test.h"
#include "../unit/bs3/s3_host.h"
#include "bs3.h"

#define VOL_SIZE (64ull << 20)
#define NBLK	 (VOL_SIZE / BS3T_BS)
#define OBJ_SIZE (256u << 10)
#define OBJ_BLKS (OBJ_SIZE / BS3T_BS)
#define MAX_BLKS 256u /* 1 MiB */
#define QDEPTH	 8    /* reads, discards and flushes in flight */
#define OPS	 300  /* random operations per phase */
/* hang guard for waits on the engine: generous */
#define GUARD_MS 180000u

static char bucket[64];
static struct s3_config cfg, cfg_short;
static char cache_dir[] = "/tmp/bs3-model-cache-XXXXXX";

/* What is in flight, and what went wrong, filled by the callbacks. */
static struct {
	pthread_mutex_t m;
	pthread_cond_t c;
	unsigned ops;	     /* reads, discards, flushes not yet done */
	unsigned writes;     /* writes not yet released */
	uint32_t *reading;   /* per block: reads in flight over it */
	unsigned bad_status; /* a callback with status != 0 */
	unsigned bad_reads;  /* a read that differed from the model */
	char first[256];
} run = {.m = PTHREAD_MUTEX_INITIALIZER, .c = PTHREAD_COND_INITIALIZER};

static struct bs3t_model model;
static uint32_t gen;
static unsigned seed;

/* Totals of all phases, for the checks that the paths were taken. */
static unsigned reads_async, reads_now;

static void note(unsigned *counter, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Count a failure (run.m held) and keep the first one's words. */
static void note(unsigned *counter, const char *fmt, ...)
{
	va_list ap;

	if (!run.bad_status && !run.bad_reads) {
		va_start(ap, fmt);
		vsnprintf(run.first, sizeof(run.first), fmt, ap);
		va_end(ap);
	}
	(*counter)++;
}

static unsigned rnd(unsigned n)
{
	return (unsigned)(rand_r(&seed) % n);
}

/* Wait until pred() (run.m held) or the guard; false on the guard. */
static bool wait_for(bool (*pred)(void *), void *arg)
{
	struct timespec ts;
	bool ok;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += GUARD_MS / 1000;
	while (!(ok = pred(arg)))
		if (pthread_cond_timedwait(&run.c, &run.m, &ts))
			break;
	return ok || pred(arg);
}

static bool below_qdepth(void *arg)
{
	(void)arg;
	return run.ops < QDEPTH;
}

static bool all_done(void *arg)
{
	(void)arg;
	return !run.ops && !run.writes;
}

struct range {
	uint64_t lba;
	uint32_t n;
};

static bool unread(void *arg)
{
	const struct range *r = arg;

	for (uint32_t i = 0; i < r->n; i++)
		if (run.reading[r->lba + i])
			return false;
	return true;
}

static void op_done(void *arg, int status)
{
	const char *what = arg;

	pthread_mutex_lock(&run.m);
	if (status)
		note(&run.bad_status, "%s: status %d", what, status);
	run.ops--;
	pthread_cond_broadcast(&run.c);
	pthread_mutex_unlock(&run.m);
}

struct wr {
	uint64_t lba;
	uint32_t n, gen;
	uint8_t data[];
};

static void write_released(void *arg, int status)
{
	struct wr *w = arg;

	pthread_mutex_lock(&run.m);
	if (status)
		note(&run.bad_status,
		     "write of %u blocks at %" PRIu64
		     " (gen %u) released with %d",
		     w->n, w->lba, w->gen, status);
	run.writes--;
	pthread_cond_broadcast(&run.c);
	pthread_mutex_unlock(&run.m);
	free(w);
}

struct rd {
	uint64_t lba;
	uint32_t n;
	uint32_t *want; /* the model's generations when it was issued */
	uint8_t *buf;
};

/* Compare a finished read with the model's snapshot (run.m held). */
static void read_check(struct rd *r, int status)
{
	if (status) {
		note(&run.bad_status,
		     "read of %u blocks at %" PRIu64 ": status %d", r->n,
		     r->lba, status);
		return;
	}
	for (uint32_t i = 0; i < r->n; i++) {
		int64_t g = bs3t_block_gen(r->buf + (size_t)i * BS3T_BS,
					   r->lba + i);

		if (g != r->want[i]) {
			note(&run.bad_reads,
			     "read: block %" PRIu64 " is generation %" PRId64
			     ", want %u (-1: not "
			     "ours)",
			     r->lba + i, g, r->want[i]);
			return;
		}
	}
}

static void read_finish(struct rd *r, int status)
{
	pthread_mutex_lock(&run.m);
	read_check(r, status);
	for (uint32_t i = 0; i < r->n; i++)
		run.reading[r->lba + i]--;
	pthread_mutex_unlock(&run.m);
	free(r->want);
	free(r->buf);
	free(r);
}

static void read_done(void *arg, int status)
{
	read_finish(arg, status);
	pthread_mutex_lock(&run.m);
	run.ops--;
	pthread_cond_broadcast(&run.c);
	pthread_mutex_unlock(&run.m);
}

/* A range of 1..MAX_BLKS blocks, mostly small, inside the volume. */
static struct range pick(void)
{
	unsigned p = rnd(100);
	struct range r;

	if (p < 50)
		r.n = 1 + rnd(4);
	else if (p < 85)
		r.n = 5 + rnd(60);
	else
		r.n = 65 + rnd(MAX_BLKS - 64);
	r.lba = rnd((unsigned)(NBLK - r.n + 1));
	return r;
}

/* A 1 MiB range. */
static struct range pick_big(void)
{
	return (struct range){rnd((unsigned)(NBLK - MAX_BLKS + 1)), MAX_BLKS};
}

/*
 * Writes and discards wait for reads in flight over their blocks: what
 * such a read returns is not defined, on a disk as here.
 */
static bool wait_unread(struct range *r)
{
	bool ok;

	pthread_mutex_lock(&run.m);
	ok = wait_for(unread, r);
	pthread_mutex_unlock(&run.m);
	return ok;
}

static int do_write(struct bs3_vol *v, struct range r)
{
	struct wr *w = malloc(sizeof(*w) + (size_t)r.n * BS3T_BS);
	int e;

	if (!w)
		return -ENOMEM;
	if (!wait_unread(&r)) {
		free(w);
		return -ETIMEDOUT;
	}
	w->lba = r.lba;
	w->n = r.n;
	w->gen = ++gen;
	bs3t_fill(w->data, r.lba, r.n, w->gen);
	pthread_mutex_lock(&run.m);
	run.writes++;
	pthread_mutex_unlock(&run.m);
	e = bs3_write(v, r.lba * BS3T_BS, r.n * BS3T_BS, w->data,
		      write_released, w);
	if (e) {
		pthread_mutex_lock(&run.m);
		run.writes--;
		pthread_mutex_unlock(&run.m);
		free(w);
		return e;
	}
	for (uint32_t i = 0; i < r.n; i++)
		model.gen[r.lba + i] = w->gen;
	return 0;
}

static int do_read(struct bs3_vol *v, struct range r)
{
	struct rd *rd = calloc(1, sizeof(*rd));
	int e;

	if (!rd)
		return -ENOMEM;
	rd->lba = r.lba;
	rd->n = r.n;
	rd->want = malloc(r.n * sizeof(*rd->want));
	rd->buf = malloc((size_t)r.n * BS3T_BS);
	if (!rd->want || !rd->buf) {
		free(rd->want);
		free(rd->buf);
		free(rd);
		return -ENOMEM;
	}
	memcpy(rd->want, model.gen + r.lba, r.n * sizeof(*rd->want));
	memset(rd->buf, 0xee, (size_t)r.n * BS3T_BS);
	pthread_mutex_lock(&run.m);
	for (uint32_t i = 0; i < r.n; i++)
		run.reading[r.lba + i]++;
	run.ops++;
	pthread_mutex_unlock(&run.m);
	e = bs3_read(v, r.lba * BS3T_BS, r.n * BS3T_BS, rd->buf, read_done, rd);
	if (e == BS3_PENDING) {
		reads_async++;
		return 0;
	}
	reads_now++;
	pthread_mutex_lock(&run.m);
	run.ops--;
	pthread_mutex_unlock(&run.m);
	read_finish(rd, e);
	return 0;
}

static int do_discard(struct bs3_vol *v, struct range r)
{
	int e;

	if (!wait_unread(&r))
		return -ETIMEDOUT;
	pthread_mutex_lock(&run.m);
	run.ops++;
	pthread_mutex_unlock(&run.m);
	e = bs3_discard(v, r.lba * BS3T_BS, (uint64_t)r.n * BS3T_BS, op_done,
			"discard");
	if (e != BS3_PENDING) {
		pthread_mutex_lock(&run.m);
		run.ops--;
		pthread_mutex_unlock(&run.m);
		return e < 0 ? e : -EPROTO;
	}
	memset(model.gen + r.lba, 0, r.n * sizeof(*model.gen));
	return 0;
}

static int do_flush(struct bs3_vol *v)
{
	int e;

	pthread_mutex_lock(&run.m);
	run.ops++;
	pthread_mutex_unlock(&run.m);
	e = bs3_flush(v, op_done, "flush");
	if (e != BS3_PENDING) {
		pthread_mutex_lock(&run.m);
		run.ops--;
		pthread_mutex_unlock(&run.m);
		return e < 0 ? e : -EPROTO;
	}
	return 0;
}

/* Wait for every callback; false (and a message) on the guard. */
static bool drain(void)
{
	bool ok;

	pthread_mutex_lock(&run.m);
	ok = wait_for(all_done, NULL);
	if (!ok)
		fprintf(stderr,
			"# still in flight after %u s: %u ops, %u "
			"writes\n",
			GUARD_MS / 1000, run.ops, run.writes);
	pthread_mutex_unlock(&run.m);
	return ok;
}

/*
 * n random operations, QDEPTH reads/discards/flushes in flight at most,
 * writes until released (bounded by the dirty limit).  Half the reads go
 * to the blocks of the last write, most likely not stored yet.  Returns 0
 * when every call was accepted, every callback ran with 0 and every read
 * matched the model.
 */
static int random_ops(struct bs3_vol *v, unsigned n, const char *name)
{
	struct range last = {0, 1};
	int e = 0;

	pthread_mutex_lock(&run.m);
	run.bad_status = run.bad_reads = 0;
	run.first[0] = 0;
	pthread_mutex_unlock(&run.m);
	for (unsigned i = 0; i < n && !e; i++) {
		unsigned p = rnd(100);
		struct range r = pick();

		pthread_mutex_lock(&run.m);
		if (!wait_for(below_qdepth, NULL))
			e = -ETIMEDOUT;
		pthread_mutex_unlock(&run.m);
		if (e)
			break;
		if (p < 45) {
			e = do_write(v, r);
			last = r;
		} else if (p < 60) {
			e = do_read(v, last);
		} else if (p < 80) {
			e = do_read(v, r);
		} else if (p < 88) {
			e = do_discard(v, r);
		} else {
			e = do_flush(v);
		}
	}
	if (!drain() && !e)
		e = -ETIMEDOUT;
	pthread_mutex_lock(&run.m);
	bs3h_check(!e && !run.bad_status && !run.bad_reads, name,
		   "call failed: %d; %u bad callbacks, %u bad reads; first: %s",
		   e, run.bad_status, run.bad_reads, run.first);
	e = e ? e : (run.bad_status || run.bad_reads) ? -EIO : 0;
	pthread_mutex_unlock(&run.m);
	return e;
}

static void verify(struct bs3_vol *v, const char *name)
{
	int e = bs3t_verify(v, &model);

	bs3h_check(!e, name, "%s", e < 0 ? strerror(-e) : "see stderr");
}

static struct bs3_opts opts(bool gc, const char *cache)
{
	struct bs3_opts o = {.bucket = bucket,
			     .volume = "model",
			     .s3 = &cfg,
			     .cache_dir = cache,
			     .cache_size = 128u << 20,
			     .dirty_limit = 16u << 20,
			     .ckpt_objects = 16,
			     .no_gc = !gc,
			     .progress = bs3t_quiet};
	return o;
}

static struct bs3_vol *attach(const struct bs3_opts *o, const char *name)
{
	struct bs3_vol *v = NULL;
	char err[512] = "";
	int e = bs3_open(o, &v, err, sizeof(err));

	bs3h_check(!e, name, "bs3_open: %d: %s", e, err);
	return e ? NULL : v;
}

/* Sequential 1 MiB writes over blocks [lba, lba+n). */
static int write_seq(struct bs3_vol *v, uint64_t lba, uint64_t n)
{
	int e = 0;

	for (uint64_t b = lba; b < lba + n && !e; b += MAX_BLKS)
		e = do_write(v, (struct range){b, MAX_BLKS});
	return e;
}

static void phase_one(struct bs3_vol *v)
{
	struct bs3_stats st;
	int e, g;

	/* 16 MiB of whole objects, the garbage of the GC pass later */
	e = write_seq(v, 0, 4096);
	bs3h_check(!e && !bs3_flush_sync(v), "16 MiB written sequentially",
		   "%d", e);
	random_ops(v, OPS, "random operations, reads match the model");
	e = bs3_flush_sync(v);
	bs3h_check(!e, "flush after the random operations", "%d", e);
	verify(v, "volume equals the model (open)");

	/* overwrite 3 of every 4 blocks: those objects are 25% live or less */
	for (uint64_t b = 0; b < 4096 && !e; b += 4)
		e = do_write(v, (struct range){b, 3});
	if (!e)
		e = bs3_flush_sync(v);
	bs3_get_stats(v, &st);
	g = bs3_gc_now(v);
	bs3h_check(!e && g > 0, "GC pass rewrites the emptied objects",
		   "write/flush %d, gc %d (garbage %.2f)", e, g,
		   st.garbage_ratio);
	e = bs3_checkpoint_now(v);
	bs3h_check(!e, "checkpoint now", "%d", e);
	random_ops(v, OPS / 3, "random operations after GC");
	e = bs3_flush_sync(v);
	bs3h_check(!e, "flush after GC", "%d", e);
	verify(v, "volume equals the model after GC and a checkpoint");
	bs3_get_stats(v, &st);
	printf("# phase 1: %" PRIu64 " objects stored, %" PRIu64
	       " GC-rewritten, %" PRIu64 " reads from memory\n",
	       st.uploads, st.gc_rewritten, st.reads_memory);
	bs3h_check(st.reads_memory > 0,
		   "some reads were of data not yet stored", "none");
}

static void phase_two(struct bs3_vol *v)
{
	struct bs3_stats st;
	int e;

	verify(v, "reopened with a cache: volume equals the model");
	random_ops(v, OPS, "random operations with background GC and cache");
	e = bs3_flush_sync(v);
	bs3h_check(!e, "flush", "%d", e);
	verify(v, "volume equals the model (second open)");
	verify(v, "read again (from the cache): equals the model");
	bs3_get_stats(v, &st);
	printf("# phase 2: %" PRIu64 " objects stored, %" PRIu64
	       " GC-rewritten, %" PRIu64 " deleted, cache %" PRIu64
	       " hits %" PRIu64 " misses\n",
	       st.uploads, st.gc_rewritten, st.gc_deleted, st.cache_hits,
	       st.cache_misses);
	bs3h_check(st.cache_hits > 0, "the read cache served reads",
		   "%" PRIu64 " hits", st.cache_hits);
}

/* What the outage's waker saw just before it continued the proxy. */
static struct {
	bool issued;  /* every write of the outage applied */
	bool flushed; /* the flush returned */
	int flush_status;
	bool at_cont_issued, at_cont_flushed;
} out;

static void outage_flushed(void *arg, int status)
{
	(void)arg;
	pthread_mutex_lock(&run.m);
	out.flushed = true;
	out.flush_status = status;
	pthread_cond_broadcast(&run.c);
	pthread_mutex_unlock(&run.m);
}

static bool outage_flush_done(void *arg)
{
	(void)arg;
	return out.flushed;
}

static void *waker(void *arg)
{
	(void)arg;
	sleep(10);
	pthread_mutex_lock(&run.m);
	out.at_cont_issued = out.issued;
	out.at_cont_flushed = out.flushed;
	pthread_mutex_unlock(&run.m);
	bs3h_proxy_cont();
	return NULL;
}

/*
 * The proxy stopped for 10 s with uploads in flight; then a flush, and
 * 1.5 times the dirty limit in more writes: the writes must wait for the
 * server, the flush must not return before it is back.
 */
static void phase_outage(struct bs3_vol *v, uint64_t dirty_limit)
{
	unsigned n = (unsigned)(dirty_limit * 3 / 2 / (MAX_BLKS * BS3T_BS));
	struct bs3_stats st;
	pthread_t t;
	int e = 0;
	bool ok;

	pthread_mutex_lock(&run.m);
	run.bad_status = 0;
	run.first[0] = 0;
	pthread_mutex_unlock(&run.m);
	for (unsigned i = 0; i < 4 && !e; i++)
		e = do_write(v, pick_big());
	e = e ? e : bs3h_proxy_stop();
	if (e == -ENOENT) {
		printf("ok - outage # SKIP: BS3_S3_PROXY_PID not set\n");
		return;
	}
	if (!bs3h_check(!e, "stop the proxy with uploads in flight", "%s",
			strerror(-e)))
		return;
	pthread_create(&t, NULL, waker, NULL);
	e = bs3_flush(v, outage_flushed, NULL);
	e = e == BS3_PENDING ? 0 : e ? e : -EPROTO;
	for (unsigned i = 0; i < n && !e; i++)
		e = do_write(v, pick_big());
	pthread_mutex_lock(&run.m);
	out.issued = true;
	ok = wait_for(outage_flush_done, NULL);
	pthread_mutex_unlock(&run.m);
	pthread_join(t, NULL);
	bs3h_check(!e, "writes and a flush during the outage accepted", "%s",
		   strerror(-e));
	bs3h_check(!out.at_cont_issued,
		   "writes beyond the dirty limit wait for the server",
		   "all %u MiB were applied with the server stopped", n + 4);
	bs3h_check(!out.at_cont_flushed,
		   "the flush does not return while the server is stopped",
		   "it returned %d", out.flush_status);
	bs3h_check(ok && !out.flush_status,
		   "the flush returns 0 once the server is back",
		   "%s, status %d", ok ? "returned" : "not returned",
		   out.flush_status);
	e = drain() ? 0 : -ETIMEDOUT;
	pthread_mutex_lock(&run.m);
	bs3h_check(!e && !run.bad_status, "no write failed across the outage",
		   "%d, %u bad callbacks: %s", e, run.bad_status, run.first);
	pthread_mutex_unlock(&run.m);
	e = bs3_flush_sync(v);
	bs3_get_stats(v, &st);
	bs3h_check(!e && st.retries > 0, "flush after the outage; it was seen",
		   "flush %d, %" PRIu64 " retries", e, st.retries);
	printf("# outage: %" PRIu64 " retries\n", st.retries);
	verify(v, "volume equals the model after the outage");
}

int main(void)
{
	struct bs3_opts o;
	struct bs3_vol *v;
	char err[512] = "";
	int e;

	bs3h_config(&cfg);
	bs3h_bucket(&cfg, "bs3-model", bucket, sizeof(bucket));
	seed = bs3h_seed(bucket);
	run.reading = calloc(NBLK, sizeof(*run.reading));
	if (!run.reading || bs3t_model_init(&model, NBLK) ||
	    !mkdtemp(cache_dir))
		return 2;

	o = opts(false, NULL);
	e = bs3_create(&o, VOL_SIZE, BS3T_BS, OBJ_SIZE, err, sizeof(err));
	if (!bs3h_check(!e, "create a 64 MiB volume of 256 KiB objects",
			"%d: %s", e, err))
		return 1;
	v = attach(&o, "attach");
	if (!v)
		return 1;
	phase_one(v);
	e = bs3_close(v);
	bs3h_check(!e, "close", "%d", e);

	o = opts(true, cache_dir);
	v = attach(&o, "reopen with a read cache and background GC");
	if (!v)
		return 1;
	phase_two(v);
	e = bs3_close(v);
	bs3h_check(!e, "close again", "%d", e);

	/* attempts time out during the outage: retried, never failed */
	cfg_short = cfg;
	cfg_short.timeout_ms = 3000;
	o = opts(true, NULL);
	o.s3 = &cfg_short;
	v = attach(&o, "reopen for the outage");
	if (!v)
		return 1;
	phase_outage(v, o.dirty_limit);
	e = bs3_close(v);
	bs3h_check(!e, "close after the outage", "%d", e);

	o = opts(false, NULL);
	v = attach(&o, "reopen");
	if (!v)
		return 1;
	verify(v, "reopened: volume equals the model");
	e = bs3_close(v);
	bs3h_check(!e, "close after reading", "%d", e);

	{
		char *rep = NULL;
		size_t len = 0;
		FILE *f = open_memstream(&rep, &len);

		e = bs3_check(&o, f, err, sizeof(err));
		fclose(f);
		bs3h_check(!e, "bs3_check: clean", "%d: %s\n%s", e, err, rep);
		free(rep);
	}
	{
		char cmd[sizeof(cache_dir) + 16];

		snprintf(cmd, sizeof(cmd), "rm -rf %s", cache_dir);
		if (system(cmd))
			fprintf(stderr, "# could not remove %s\n", cache_dir);
	}
	bs3t_model_free(&model);
	free(run.reading);
	s3_config_free(&cfg);
	printf("# %u reads in flight, %u served at once; %d failed\n",
	       reads_async, reads_now, bs3h_failures);
	return bs3h_failures ? 1 : 0;
}
