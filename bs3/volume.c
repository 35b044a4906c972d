// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * BS3 volumes: create, open, close, inspect, check, destroy, stats; the
 * engine's two threads (callbacks; background timers, fence checks,
 * checkpoints, GC) and the object table.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <search.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "engine.h"

uint64_t bs3_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void bs3_progress(struct bs3_vol *v, const char *fmt, ...)
{
	char line[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (v->o.progress)
		v->o.progress(v->o.progress_arg, line);
	else
		fprintf(stderr, "bs3: %s\n", line);
}

int bs3_cblist_add(struct bs3_cblist *l, bs3_cb cb, void *arg, int status)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 8;
		struct bs3_cbent *nv = realloc(l->v, cap * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		l->v = nv;
		l->cap = cap;
	}
	l->v[l->n++] = (struct bs3_cbent){ cb, arg, status };
	return 0;
}

void bs3_cb_queue(struct bs3_vol *v, bs3_cb cb, void *arg, int status)
{
	if (!cb)
		return;
	/* Out of memory here would lose a completion: there is no way on. */
	if (bs3_cblist_add(&v->cbq, cb, arg, status))
		abort();
	pthread_cond_signal(&v->cbcond);
}

/* ---- the object table ---- */

static int slot_cmp(const void *a, const void *b)
{
	const struct bs3_objslot *x = a, *y = b;

	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

struct bs3_objslot *bs3_slot_new(struct bs3_vol *v)
{
	struct bs3_objslot *s = calloc(1, sizeof(*s));
	uint32_t id;

	if (!s)
		return NULL;
	if (v->nfree) {
		id = v->free_ids[--v->nfree];
	} else {
		struct bs3_objslot **ns;

		if (v->nslots >= BS3_MAP_NONE - 1) {
			free(s);
			return NULL;
		}
		ns = realloc(v->slots, (v->nslots + 1) * sizeof(*ns));
		if (!ns) {
			free(s);
			return NULL;
		}
		v->slots = ns;
		id = (uint32_t)v->nslots++;
		/* keep free_ids able to hold every id, so freeing never fails */
		uint32_t *nf = realloc(v->free_ids, v->nslots * sizeof(*nf));

		if (!nf) {
			v->nslots--;
			free(s);
			return NULL;
		}
		v->free_ids = nf;
	}
	s->vol = v;
	s->id = id;
	v->slots[id] = s;
	return s;
}

int bs3_slot_index(struct bs3_vol *v, struct bs3_objslot *s)
{
	void *r = tsearch(s, &v->seq_root, slot_cmp);

	if (!r)
		return -ENOMEM;
	if (*(struct bs3_objslot **)r != s)
		return -EEXIST;
	return 0;
}

void bs3_slot_unindex(struct bs3_vol *v, struct bs3_objslot *s)
{
	void *r = tfind(s, &v->seq_root, slot_cmp);

	if (r && *(struct bs3_objslot **)r == s)
		tdelete(s, &v->seq_root, slot_cmp);
}

struct bs3_objslot *bs3_slot_by_seq(struct bs3_vol *v, uint64_t seq)
{
	struct bs3_objslot key = { .seq = seq };
	void *r = tfind(&key, &v->seq_root, slot_cmp);

	return r ? *(struct bs3_objslot **)r : NULL;
}

void bs3_slot_drop_data(struct bs3_objslot *s)
{
	free(s->iov);
	free(s->iov_blk);
	free(s->ext);
	free(s->hdr);
	free(s->own);
	free(s->cbs.v);
	s->iov = NULL;
	s->iov_blk = NULL;
	s->ext = NULL;
	s->hdr = NULL;
	s->own = NULL;
	s->cbs = (struct bs3_cblist){ 0 };
	s->niov = s->iov_cap = s->next = s->ext_cap = 0;
	s3_req_reset(&s->req);
}

void bs3_slot_set_stored(struct bs3_vol *v, struct bs3_objslot *s)
{
	if (s->state != BS3_OBJ_STORED)
		v->stored_blocks += s->nblocks;
	s->state = BS3_OBJ_STORED;
}

void bs3_slot_free(struct bs3_vol *v, struct bs3_objslot *s)
{
	if (s->state == BS3_OBJ_STORED)
		v->stored_blocks -= s->nblocks;
	if (!s->orphan)
		bs3_slot_unindex(v, s);
	if (v->cache && s->state == BS3_OBJ_STORED)
		bs3_cache_drop(v->cache, s->seq);
	bs3_slot_drop_data(s);
	v->slots[s->id] = NULL;
	v->free_ids[v->nfree++] = s->id;
	free(s);
}

/* ---- synchronous helpers ---- */

int bs3_get_whole(struct bs3_vol *v, const char *key, void **buf,
		  size_t *len)
{
	struct s3_req r = { .method = S3_GET, .bucket = v->bucket, .key = key };
	int e = s3_run(v->cl, &r);

	if (e) {
		s3_req_reset(&r);
		return e;
	}
	*buf = r.body.data;
	*len = r.body.len;
	if (!*buf)
		*buf = malloc(1);
	r.body = (struct s3_buf){ 0 };
	s3_req_reset(&r);
	return *buf ? 0 : -ENOMEM;
}

int bs3_put_buf(struct bs3_vol *v, const char *key, const void *buf,
		size_t len, uint32_t retry_ms, bool if_none_match, char *etag)
{
	struct iovec iov = { (void *)buf, len };
	struct s3_req r = { .method = S3_PUT,
			    .bucket = v->bucket,
			    .key = key,
			    .iov = &iov,
			    .iovcnt = 1,
			    .content_type = "application/octet-stream",
			    .if_none_match = if_none_match,
			    .retry_ms = retry_ms };
	int e = s3_run(v->cl, &r);

	if (!e && etag)
		snprintf(etag, 80, "%s", r.etag);
	s3_req_reset(&r);
	return e;
}

/* ---- URLs ---- */

static bool bucket_name_ok(const char *b, size_t n)
{
	if (n < 3 || n > 63)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = b[i];

		if (!(islower((unsigned char)c) || isdigit((unsigned char)c) ||
		      c == '-' || c == '.'))
			return false;
	}
	return isalnum((unsigned char)b[0]) && isalnum((unsigned char)b[n - 1]);
}

int bs3_parse_url(const char *url, char **bucket, char **volume, char *err,
		  size_t errlen)
{
	const char *p, *slash;

	*bucket = *volume = NULL;
	if (strncmp(url, "s3://", 5)) {
		snprintf(err, errlen, "%s: not an s3://BUCKET/VOLUME URL", url);
		return -1;
	}
	p = url + 5;
	slash = strchr(p, '/');
	if (!slash || !bucket_name_ok(p, (size_t)(slash - p))) {
		snprintf(err, errlen,
			 "%s: need s3://BUCKET/VOLUME with a valid bucket name "
			 "(3-63 of a-z 0-9 . -)",
			 url);
		return -1;
	}
	if (!slash[1] || slash[strlen(slash) - 1] == '/' ||
	    strstr(slash + 1, "//")) {
		snprintf(err, errlen,
			 "%s: the volume name must not be empty or end in '/'",
			 url);
		return -1;
	}
	*bucket = strndup(p, (size_t)(slash - p));
	*volume = strdup(slash + 1);
	if (!*bucket || !*volume) {
		free(*bucket);
		free(*volume);
		*bucket = *volume = NULL;
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	return 0;
}

/* ---- opening ---- */

static void vol_free(struct bs3_vol *v)
{
	if (!v)
		return;
	if (v->cache) /* first: freeing the slots need not drop their chunks */
		bs3_cache_close(v->cache);
	v->cache = NULL;
	for (size_t i = 0; i < v->nslots; i++)
		if (v->slots[i])
			bs3_slot_free(v, v->slots[i]);
	tdestroy(v->seq_root, NULL);
	free(v->slots);
	free(v->free_ids);
	free(v->fifo);
	free(v->flushes);
	free(v->cbq.v);
	bs3_kept_free(&v->kept[0]);
	bs3_kept_free(&v->kept[1]);
	if (v->map)
		bs3_map_free(v->map);
	if (v->own_client)
		s3_client_free(v->cl);
	pthread_mutex_destroy(&v->lock);
	pthread_cond_destroy(&v->cond);
	pthread_cond_destroy(&v->bgcond);
	pthread_cond_destroy(&v->cbcond);
	free(v->bucket);
	free(v->vol);
	free(v);
}

static int vol_new(const struct bs3_opts *o, struct bs3_vol **out, char *err,
		   size_t errlen)
{
	struct bs3_vol *v;
	int e;

	*out = NULL;
	if (!o->bucket || !o->volume || !*o->volume ||
	    (!o->client && !o->s3)) {
		snprintf(err, errlen, "bs3: bucket, volume and S3 config needed");
		return -EINVAL;
	}
	v = calloc(1, sizeof(*v));
	if (!v) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	pthread_mutex_init(&v->lock, NULL);
	pthread_cond_init(&v->cond, NULL);
	pthread_cond_init(&v->bgcond, NULL);
	pthread_cond_init(&v->cbcond, NULL);
	v->o = *o;
	v->bucket = strdup(o->bucket);
	v->vol = strdup(o->volume);
	if (!v->bucket || !v->vol) {
		vol_free(v);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	v->o.bucket = v->bucket;
	v->o.volume = v->vol;
	v->o.s3 = NULL;
	v->o.cache_dir = NULL; /* the caller's string: used by bs3_open only */
	if (!v->o.dirty_limit)
		v->o.dirty_limit = 256ull << 20;
	if (!v->o.uploads)
		v->o.uploads = 8;
	if (!v->o.seal_ms)
		v->o.seal_ms = 1000;
	if (!v->o.ckpt_objects)
		v->o.ckpt_objects = 64;
	if (!v->o.ckpt_seconds)
		v->o.ckpt_seconds = 300;
	if (!v->o.gc_live_pct || v->o.gc_live_pct > 100)
		v->o.gc_live_pct = 50;
	v->read_only = o->read_only;
	if (o->client) {
		v->cl = o->client;
	} else {
		e = s3_client_new(o->s3, &v->cl, err, errlen);
		if (e) {
			vol_free(v);
			return e < 0 ? e : -EIO;
		}
		v->own_client = true;
	}
	*out = v;
	return 0;
}

/*
 * Is the bucket there and ours?  On failure one line: "s3://BUCKET: why"
 * (s3_head_bucket()'s reason starts with the bucket's name), and where to
 * look when the server refused the credentials.
 */
static int check_bucket(struct bs3_vol *v, char *err, size_t errlen)
{
	char why[400];
	int e = s3_head_bucket(v->cl, v->bucket, why, sizeof(why));

	if (e)
		snprintf(err, errlen, "s3://%s%s", why,
			 e == -EACCES ? " (check the credentials: "
					"AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY "
					"or the shared credentials file)"
				      : "");
	return e;
}

/* Check the bucket, then read and decode the superblock. */
static int read_super(struct bs3_vol *v, char *err, size_t errlen)
{
	char key[512];
	void *buf = NULL;
	size_t len = 0;
	int e;

	e = check_bucket(v, err, errlen);
	if (e)
		return e;
	bs3_key_super(key, sizeof(key), v->vol);
	e = bs3_get_whole(v, key, &buf, &len);
	if (e == -ENOENT) {
		snprintf(err, errlen, "no BS3 volume at s3://%s/%s (no superblock)",
			 v->bucket, v->vol);
		return -ENOENT;
	}
	if (e) {
		snprintf(err, errlen, "s3://%s/%s: reading the superblock: %s",
			 v->bucket, v->vol, strerror(-e));
		return e;
	}
	e = bs3_super_decode(buf, len, &v->sb);
	free(buf);
	if (e == -EPROTONOSUPPORT) {
		snprintf(err, errlen,
			 "s3://%s/%s: the volume has a newer format than this "
			 "build reads (version > %d)",
			 v->bucket, v->vol, BS3_FORMAT_VERSION);
		return e;
	}
	if (e) {
		snprintf(err, errlen, "s3://%s/%s: corrupt superblock",
			 v->bucket, v->vol);
		return -EBADMSG;
	}
	v->bs = v->sb.block_size;
	v->nr_blocks = v->sb.size / v->bs;
	v->geo.size = v->sb.size;
	v->geo.block_size = v->sb.block_size;
	v->geo.object_size = v->sb.object_size;
	v->geo.version = v->sb.version;
	memcpy(v->geo.uuid, v->sb.uuid, BS3_UUID_LEN);
	v->map = bs3_map_new(v->nr_blocks);
	if (!v->map) {
		snprintf(err, errlen, "out of memory for the map");
		return -ENOMEM;
	}
	return 0;
}

static void *cb_thread(void *arg)
{
	struct bs3_vol *v = arg;

	pthread_mutex_lock(&v->lock);
	for (;;) {
		if (!v->cbq.n) {
			if (v->stop)
				break;
			pthread_cond_wait(&v->cbcond, &v->lock);
			continue;
		}
		struct bs3_cblist l = v->cbq;

		v->cbq = (struct bs3_cblist){ 0 };
		v->cb_busy = true;
		pthread_mutex_unlock(&v->lock);
		if (v->o.cb_begin)
			v->o.cb_begin(v->o.cb_arg);
		for (size_t i = 0; i < l.n; i++)
			l.v[i].cb(l.v[i].arg, l.v[i].status);
		if (v->o.cb_end)
			v->o.cb_end(v->o.cb_arg);
		free(l.v);
		pthread_mutex_lock(&v->lock);
		v->cb_busy = false;
		pthread_cond_broadcast(&v->cond);
	}
	pthread_mutex_unlock(&v->lock);
	return NULL;
}

static bool flush_needs_fence(struct bs3_vol *v)
{
	for (size_t i = 0; i < v->nflush; i++)
		if (v->flushes[i].target <= v->stored_upto)
			return true;
	return false;
}

static bool ckpt_due(struct bs3_vol *v, uint64_t now)
{
	if (v->read_only || v->failed || v->closing)
		return false;
	if (v->objs_since_ckpt >= v->o.ckpt_objects)
		return true;
	return v->objs_since_ckpt &&
	       now - v->last_ckpt_ms >= (uint64_t)v->o.ckpt_seconds * 1000;
}

/*
 * The background thread: seals an open object after seal_ms, runs the
 * fence checks that complete flushes, checkpoints and GC: the engine's
 * synchronous S3 calls while attached run here (bs3_close()'s final
 * checkpoint, on the caller's thread, aside).
 */
static void *bg_thread(void *arg)
{
	struct bs3_vol *v = arg;
	uint64_t gc_next = 0;

	pthread_mutex_lock(&v->lock);
	while (!v->stop) {
		uint64_t now = bs3_now_ms(), wait = 200;

		if (v->open && v->open->nblocks + v->open->next &&
		    now >= v->open_since_ms + v->o.seal_ms) {
			bs3_seal_open(v);
			pthread_mutex_unlock(&v->lock);
			bs3_kick_uploads(v);
			pthread_mutex_lock(&v->lock);
			continue;
		}
		if (!v->failed && flush_needs_fence(v)) {
			uint64_t covers = v->stored_upto;
			int e;

			pthread_mutex_unlock(&v->lock);
			e = bs3_fence_check(v);
			pthread_mutex_lock(&v->lock);
			if (e == -ESTALE) {
				bs3_fail(v, -ESTALE);
			} else if (e) {
				/* could not check (outage): try again soon */
				v->st_retries++;
				pthread_mutex_unlock(&v->lock);
				struct timespec ts = { 0, 200000000 };

				nanosleep(&ts, NULL);
				pthread_mutex_lock(&v->lock);
			} else {
				bs3_flush_complete(v, covers, 0);
			}
			continue;
		}
		if (ckpt_due(v, now)) {
			pthread_mutex_unlock(&v->lock);
			bs3_checkpoint(v);
			pthread_mutex_lock(&v->lock);
			continue;
		}
		/*
		 * Garbage that only a checkpoint keeps: write one (or, with
		 * nothing new since the newest, retire the older), at most
		 * once a second, so that the bucket stays bounded.
		 */
		if (!v->o.no_gc && !v->read_only && !v->failed &&
		    !v->closing && now >= v->last_ckpt_ms + 1000 &&
		    bs3_gc_ckpt_wanted(v)) {
			bool idle = v->kept[0].seq == v->next_seq - 1 &&
				    !(v->open && v->open->nblocks + v->open->next);

			v->last_ckpt_ms = now;
			pthread_mutex_unlock(&v->lock);
			if (idle)
				bs3_checkpoint_retire(v);
			else
				bs3_checkpoint(v);
			bs3_gc_delete(v);
			pthread_mutex_lock(&v->lock);
			continue;
		}
		if (!v->o.no_gc && !v->read_only && !v->failed &&
		    (now >= gc_next || bs3_gc_behind(v)) && bs3_gc_wanted(v)) {
			uint64_t deleted = v->st_gc_deleted;
			bool over = bs3_gc_over(v);

			pthread_mutex_unlock(&v->lock);
			int n = bs3_gc_pass(v, false);

			pthread_mutex_lock(&v->lock);
			/*
			 * Nothing to do: look again later, not in a loop, and
			 * let writers waiting for GC go (it cannot help them).
			 */
			v->gc_stalled = over && n <= 0 &&
					deleted == v->st_gc_deleted &&
					!bs3_gc_ckpt_wanted(v);
			if (v->gc_stalled)
				pthread_cond_broadcast(&v->cond);
			if (n <= 0)
				gc_next = bs3_now_ms() + 1000;
			continue;
		}
		if (v->open && v->open->nblocks + v->open->next) {
			uint64_t due = v->open_since_ms + v->o.seal_ms;

			wait = due > now ? due - now : 0;
			if (wait > 200)
				wait = 200;
		}
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += (long)(wait % 1000) * 1000000;
		ts.tv_sec += (time_t)(wait / 1000) + ts.tv_nsec / 1000000000;
		ts.tv_nsec %= 1000000000;
		pthread_cond_timedwait(&v->bgcond, &v->lock, &ts);
	}
	pthread_mutex_unlock(&v->lock);
	return NULL;
}

static int start_threads(struct bs3_vol *v)
{
	if (pthread_create(&v->cb_thread, NULL, cb_thread, v))
		return -EAGAIN;
	if (pthread_create(&v->bg_thread, NULL, bg_thread, v)) {
		pthread_mutex_lock(&v->lock);
		v->stop = true;
		pthread_cond_broadcast(&v->cbcond);
		pthread_mutex_unlock(&v->lock);
		pthread_join(v->cb_thread, NULL);
		return -EAGAIN;
	}
	v->threads = true;
	return 0;
}

static void stop_threads(struct bs3_vol *v)
{
	if (!v->threads)
		return;
	pthread_mutex_lock(&v->lock);
	v->stop = true;
	pthread_cond_broadcast(&v->bgcond);
	pthread_cond_broadcast(&v->cbcond);
	pthread_mutex_unlock(&v->lock);
	pthread_join(v->bg_thread, NULL);
	pthread_join(v->cb_thread, NULL);
	v->threads = false;
}

int bs3_open(const struct bs3_opts *o, struct bs3_vol **out, char *err,
	     size_t errlen)
{
	struct bs3_vol *v;
	int e;

	*out = NULL;
	e = vol_new(o, &v, err, errlen);
	if (e)
		return e;
	e = read_super(v, err, errlen);
	if (!e && o->cache_dir)
		e = bs3_cache_open(o->cache_dir,
				   o->cache_size ? o->cache_size : 1ull << 30,
				   BS3_READ_CHUNK, &v->cache, err, errlen);
	if (!e && !v->read_only)
		e = bs3_fence_claim(v, err, errlen);
	if (!e)
		e = bs3_recover(v, !v->read_only, err, errlen);
	if (!e) {
		v->last_ckpt_ms = bs3_now_ms();
		e = start_threads(v);
		if (e)
			snprintf(err, errlen, "cannot start the engine's threads");
	}
	if (e) {
		vol_free(v);
		return e;
	}
	*out = v;
	return 0;
}

/* Reads from the bucket pin their objects until they complete (lock held). */
static bool reads_in_flight(struct bs3_vol *v)
{
	for (size_t i = 0; i < v->nslots; i++)
		if (v->slots[i] && v->slots[i]->pins)
			return true;
	return false;
}

int bs3_close(struct bs3_vol *v)
{
	int e;

	if (!v)
		return 0;
	pthread_mutex_lock(&v->lock);
	v->closing = true;
	bs3_seal_open(v);
	pthread_mutex_unlock(&v->lock);
	bs3_kick_uploads(v);
	pthread_mutex_lock(&v->lock);
	bs3_wait_stored(v, v->next_seq - 1);
	/* let the flushes waiting for a fence check finish first */
	while (!v->failed && v->nflush)
		pthread_cond_wait(&v->cond, &v->lock);
	e = v->failed;
	bool ckpt = !e && !v->read_only && v->objs_since_ckpt;

	pthread_mutex_unlock(&v->lock);
	if (ckpt) {
		int c = bs3_checkpoint(v);

		if (c == -ESTALE)
			e = c;
	}
	pthread_mutex_lock(&v->lock);
	while (v->inflight || v->gc_busy || reads_in_flight(v))
		pthread_cond_wait(&v->cond, &v->lock);
	pthread_mutex_unlock(&v->lock);
	stop_threads(v);
	vol_free(v);
	return e;
}

const struct bs3_geometry *bs3_geometry(const struct bs3_vol *v)
{
	return &v->geo;
}

void bs3_get_stats(struct bs3_vol *v, struct bs3_stats *st)
{
	struct s3_stats cs = { 0 };

	memset(st, 0, sizeof(*st));
	pthread_mutex_lock(&v->lock);
	for (size_t i = 0; i < v->nslots; i++) {
		struct bs3_objslot *s = v->slots[i];

		if (!s || s->state != BS3_OBJ_STORED)
			continue;
		st->objects++;
		st->bytes_stored += (uint64_t)s->nblocks * v->bs;
	}
	st->map_extents = bs3_map_extents(v->map);
	st->map_bytes = bs3_map_memory(v->map);
	st->live_bytes = bs3_map_mapped(v->map) * v->bs;
	st->garbage_ratio =
		st->bytes_stored && st->live_bytes < st->bytes_stored
			? 1.0 - (double)st->live_bytes / (double)st->bytes_stored
			: 0.0;
	st->ckpt_seq = v->kept[0].valid ? v->kept[0].seq : 0;
	st->ckpt_time = v->ckpt_time;
	st->checkpoints = v->kept[0].valid + v->kept[1].valid;
	st->epoch = v->epoch;
	st->next_seq = v->next_seq;
	st->dirty_bytes = v->dirty;
	st->uploads_in_flight = v->inflight;
	st->uploads = v->st_uploads;
	st->upload_bytes = v->st_upload_bytes;
	st->retries = v->st_retries;
	st->reads_memory = v->st_reads_memory;
	st->gc_rewritten = v->st_gc_rewritten;
	st->gc_deleted = v->st_gc_deleted;
	st->fenced = v->failed == -ESTALE;
	pthread_mutex_unlock(&v->lock);
	if (v->cache) {
		struct bs3_cache_stats cst;

		bs3_cache_get_stats(v->cache, &cst);
		st->cache_hits = cst.hits;
		st->cache_misses = cst.misses;
	}
	if (v->cl->ops->stats) {
		s3_stats(v->cl, &cs);
		st->retries += cs.retries;
	}
}

/* ---- offline operations ---- */

/* Check the bucket, then list every key of the volume. */
static int list_volume(struct bs3_vol *v, struct s3_object **objs, size_t *n,
		       char *err, size_t errlen)
{
	char prefix[512], why[256];
	int e = check_bucket(v, err, errlen);

	if (e)
		return e;
	snprintf(prefix, sizeof(prefix), "%s/", v->vol);
	e = s3_list(v->cl, v->bucket, prefix, objs, n, why, sizeof(why));
	if (e)
		snprintf(err, errlen, "s3://%s/%s: %s", v->bucket, v->vol, why);
	return e;
}

int bs3_create(const struct bs3_opts *o, uint64_t size, uint32_t block_size,
	       uint32_t object_size, char *err, size_t errlen)
{
	struct bs3_vol *v;
	struct bs3_super sb = { 0 };
	struct s3_object *objs = NULL;
	char key[512];
	uint8_t buf[sizeof(struct bs3_disk_super)];
	size_t n = 0;
	int e;

	e = vol_new(o, &v, err, errlen);
	if (e)
		return e;
	sb.version = BS3_FORMAT_VERSION;
	sb.size = size;
	sb.block_size = block_size;
	sb.object_size = object_size;
	sb.created = (uint64_t)time(NULL);
	if (getrandom(sb.uuid, sizeof(sb.uuid), 0) != sizeof(sb.uuid)) {
		snprintf(err, errlen, "no random numbers for the volume id");
		e = -EIO;
		goto out;
	}
	e = bs3_super_validate(&sb, err, errlen);
	if (e)
		goto out;
	e = list_volume(v, &objs, &n, err, errlen);
	if (e)
		goto out;
	s3_objects_free(objs, n);
	if (n) {
		snprintf(err, errlen,
			 "s3://%s/%s already exists (%zu objects under it)",
			 v->bucket, v->vol, n);
		e = -EEXIST;
		goto out;
	}
	bs3_super_encode(&sb, buf);
	bs3_key_super(key, sizeof(key), v->vol);
	e = bs3_put_buf(v, key, buf, sizeof(buf), 0, true, NULL);
	if (e == -ENOTSUP) /* no conditional PUT (Swift): the listing decided */
		e = bs3_put_buf(v, key, buf, sizeof(buf), 0, false, NULL);
	if (e == -EEXIST)
		snprintf(err, errlen, "s3://%s/%s already exists", v->bucket,
			 v->vol);
	else if (e)
		snprintf(err, errlen, "s3://%s/%s: writing the superblock: %s",
			 v->bucket, v->vol, strerror(-e));
out:
	vol_free(v);
	return e;
}

static void no_progress(void *arg, const char *line)
{
	(void)arg;
	(void)line;
}

/* Attach read-only without threads: the state as recovery would see it. */
static int open_offline(const struct bs3_opts *o, struct bs3_vol **out,
			bool quiet, char *err, size_t errlen)
{
	struct bs3_opts ro = *o;
	struct bs3_vol *v;
	int e;

	ro.read_only = true;
	e = vol_new(&ro, &v, err, errlen);
	if (e)
		return e;
	if (quiet && !o->progress)
		v->o.progress = no_progress;
	e = read_super(v, err, errlen);
	if (!e)
		e = bs3_recover(v, false, err, errlen);
	if (e) {
		vol_free(v);
		return e;
	}
	*out = v;
	return 0;
}

/* Objects, bytes and checkpoints as listed, and the newest epoch. */
static int inspect_listing(struct bs3_vol *v, struct bs3_stats *st, char *err,
			   size_t errlen)
{
	struct s3_object *objs = NULL;
	size_t n = 0;
	int e = list_volume(v, &objs, &n, err, errlen);

	if (e)
		return e;
	st->objects = st->bytes_stored = st->checkpoints = st->epoch = 0;
	for (size_t i = 0; i < n; i++) {
		uint64_t seq, ep;

		switch (bs3_key_parse(objs[i].key, v->vol, &seq, &ep)) {
		case BS3_KEY_DATA:
			st->objects++;
			st->bytes_stored += objs[i].size;
			break;
		case BS3_KEY_CKPT:
			st->checkpoints++;
			break;
		case BS3_KEY_EPOCH:
			if (ep > st->epoch)
				st->epoch = ep;
			break;
		default:
			break;
		}
	}
	s3_objects_free(objs, n);
	st->garbage_ratio =
		st->bytes_stored && st->live_bytes < st->bytes_stored
			? 1.0 - (double)st->live_bytes / (double)st->bytes_stored
			: 0.0;
	return 0;
}

int bs3_inspect(const struct bs3_opts *o, struct bs3_geometry *g,
		struct bs3_stats *st, char *err, size_t errlen)
{
	struct bs3_vol *v;
	int e = open_offline(o, &v, true, err, errlen);

	if (e)
		return e;
	*g = v->geo;
	bs3_get_stats(v, st);
	/*
	 * What the bucket holds, not only what the map needs: objects with
	 * no live data (garbage not yet collected, leftovers beyond a gap)
	 * count too, and the writer epoch is the newest claimed one.
	 */
	e = inspect_listing(v, st, err, errlen);
	vol_free(v);
	return e;
}

struct check_ctx {
	struct bs3_vol *v;
	FILE *f;
	unsigned bad;
};

static int check_piece(void *arg, const struct bs3_map_piece *p)
{
	struct check_ctx *c = arg;
	struct bs3_objslot *s =
		p->obj < c->v->nslots ? c->v->slots[p->obj] : NULL;

	if (!s) {
		fprintf(c->f, "map: blocks %" PRIu64 "+%u refer to no object\n",
			p->lba, p->nblocks);
		c->bad++;
	} else if ((uint64_t)p->off + p->nblocks > s->nblocks) {
		fprintf(c->f,
			"map: blocks %" PRIu64 "+%u lie outside object %" PRIu64
			"'s data\n",
			p->lba, p->nblocks, s->seq);
		c->bad++;
	}
	return 0;
}

int bs3_check(const struct bs3_opts *o, FILE *report, char *err,
	      size_t errlen)
{
	struct bs3_vol *v;
	struct s3_object *objs = NULL;
	struct check_ctx c = { .f = report };
	char prefix[512], why[256];
	size_t n = 0, ndata = 0;
	int e = open_offline(o, &v, true, err, errlen);

	if (e)
		return e;
	c.v = v;
	snprintf(prefix, sizeof(prefix), "%s/d/", v->vol);
	e = s3_list(v->cl, v->bucket, prefix, &objs, &n, why, sizeof(why));
	if (e) {
		snprintf(err, errlen, "s3://%s/%s: %s", v->bucket, v->vol, why);
		vol_free(v);
		return e;
	}
	for (size_t i = 0; i < n; i++) {
		uint64_t seq, epoch;
		void *buf;
		size_t len;
		struct bs3_obj_info info;
		struct bs3_extent *ext = NULL;
		size_t need;

		if (bs3_key_parse(objs[i].key, v->vol, &seq, &epoch) !=
		    BS3_KEY_DATA) {
			fprintf(report, "%s: not a BS3 key\n", objs[i].key);
			c.bad++;
			continue;
		}
		ndata++;
		e = bs3_get_whole(v, objs[i].key, &buf, &len);
		if (e) {
			fprintf(report, "%s: cannot read: %s\n", objs[i].key,
				strerror(-e));
			c.bad++;
			continue;
		}
		e = bs3_obj_decode(buf, len, v->sb.uuid, v->bs, v->nr_blocks,
				   &info, &ext, &need);
		if (!e && (info.seq != seq || info.epoch != epoch))
			e = -EBADMSG;
		if (!e)
			e = bs3_obj_check_data(&info, buf, len);
		if (e) {
			fprintf(report, "%s: bad object (%s)\n", objs[i].key,
				strerror(-e));
			c.bad++;
		}
		free(ext);
		free(buf);
	}
	s3_objects_free(objs, n);
	bs3_map_walk(v->map, check_piece, &c);
	fprintf(report,
		"%zu data objects, %" PRIu64 " map extents, %u problem(s)\n",
		ndata, bs3_map_extents(v->map), c.bad);
	vol_free(v);
	return c.bad ? -EBADMSG : 0;
}

int bs3_destroy(const struct bs3_opts *o, char *err, size_t errlen)
{
	struct bs3_vol *v;
	struct s3_object *objs = NULL;
	char why[256];
	size_t n = 0;
	int e;

	e = vol_new(o, &v, err, errlen);
	if (e)
		return e;
	e = list_volume(v, &objs, &n, err, errlen);
	if (e)
		goto out;
	if (!n) {
		snprintf(err, errlen, "no BS3 volume at s3://%s/%s", v->bucket,
			 v->vol);
		e = -ENOENT;
		goto out;
	}
	const char **keys = malloc(n * sizeof(*keys));

	if (!keys) {
		e = -ENOMEM;
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	/* the superblock last: an interrupted destroy is still a volume */
	size_t k = 0;
	char superkey[512];

	bs3_key_super(superkey, sizeof(superkey), v->vol);
	for (size_t i = 0; i < n; i++)
		if (strcmp(objs[i].key, superkey))
			keys[k++] = objs[i].key;
	e = k ? s3_delete_keys(v->cl, v->bucket, keys, k, why, sizeof(why)) : 0;
	if (!e && k < n) {
		const char *sk = superkey;

		e = s3_delete_keys(v->cl, v->bucket, &sk, 1, why, sizeof(why));
	}
	if (e)
		snprintf(err, errlen, "s3://%s/%s: %s", v->bucket, v->vol, why);
	free(keys);
out:
	s3_objects_free(objs, n);
	vol_free(v);
	return e;
}
