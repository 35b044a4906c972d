// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * BS3 write path: the open object, sealing, uploads, release in seq order,
 * flushes and the dirty limit.  docs/bs3.md, "Write path".
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine.h"

static uint32_t obj_blocks(struct bs3_vol *v)
{
	return v->sb.object_size / v->bs;
}

static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
	if (need <= *cap)
		return 0;
	size_t nc = *cap ? *cap * 2 : 16;

	while (nc < need)
		nc *= 2;
	void *n = realloc(*p, nc * elem);

	if (!n)
		return -ENOMEM;
	*p = n;
	*cap = nc;
	return 0;
}

/* Room for one more iovec (in both parallel arrays) and one more extent. */
static int slot_reserve(struct bs3_objslot *s)
{
	size_t cap = s->iov_cap;

	if (grow((void **)&s->iov, &cap, s->niov + 1, sizeof(*s->iov)))
		return -ENOMEM;
	if (cap != s->iov_cap) {
		uint32_t *nb = realloc(s->iov_blk, cap * sizeof(*nb));

		if (!nb)
			return -ENOMEM;
		s->iov_blk = nb;
		s->iov_cap = cap;
	}
	return grow((void **)&s->ext, &s->ext_cap, s->next + 1, sizeof(*s->ext));
}

static struct bs3_objslot *open_object(struct bs3_vol *v)
{
	struct bs3_objslot *s = bs3_slot_new(v);

	if (!s)
		return NULL;
	s->state = BS3_OBJ_OPEN;
	s->epoch = v->epoch;
	if (slot_reserve(s)) {
		bs3_slot_free(v, s);
		return NULL;
	}
	s->niov = 1; /* iov[0]: the header, filled at sealing */
	s->iov_blk[0] = 0;
	v->open = s;
	return s;
}

static bool slot_empty(const struct bs3_objslot *s)
{
	return !s->nblocks && !s->next;
}

void bs3_queue_object(struct bs3_vol *v, struct bs3_objslot *s)
{
	struct bs3_obj_info info = { 0 };
	uint32_t crc = 0;

	s->seq = v->next_seq++;
	s->epoch = v->epoch;
	s->data_offset = bs3_obj_data_offset((uint32_t)s->next);
	for (size_t i = 1; i < s->niov; i++)
		crc = bs3_crc32c(crc, s->iov[i].iov_base, s->iov[i].iov_len);
	info.flags = s->flags;
	memcpy(info.uuid, v->sb.uuid, BS3_UUID_LEN);
	info.seq = s->seq;
	info.epoch = s->epoch;
	info.nr_extents = (uint32_t)s->next;
	info.data_offset = s->data_offset;
	info.data_len = s->nblocks * v->bs;
	info.data_crc = crc;
	info.time = (uint64_t)time(NULL);
	s->hdr = calloc(1, s->data_offset);
	if (!s->hdr) /* a few KiB; without them nothing can be stored */
		abort();
	bs3_obj_encode(&info, s->ext, s->hdr);
	s->iov[0].iov_base = s->hdr;
	s->iov[0].iov_len = s->data_offset;
	bs3_key_data(s->key, sizeof(s->key), v->vol, s->seq, s->epoch);
	if (bs3_slot_index(v, s))
		abort();
	s->state = BS3_OBJ_SEALED;
	if (grow((void **)&v->fifo, &v->fifo_cap, v->fifo_n + 1,
		 sizeof(*v->fifo)))
		abort();
	v->fifo[v->fifo_n++] = s;
	v->objs_since_ckpt++;
}

void bs3_seal_open(struct bs3_vol *v)
{
	struct bs3_objslot *s = v->open;

	if (!s || slot_empty(s))
		return;
	v->open = NULL;
	bs3_queue_object(v, s);
}

/* Release every object at the head of the fifo that is stored (lock held). */
static void release_ready(struct bs3_vol *v)
{
	size_t k = 0;

	while (k < v->fifo_n && v->fifo[k]->state == BS3_OBJ_STORED) {
		struct bs3_objslot *s = v->fifo[k++];

		for (size_t i = 0; i < s->cbs.n; i++)
			bs3_cb_queue(v, s->cbs.v[i].cb, s->cbs.v[i].arg, 0);
		v->stored_upto = s->seq;
		v->dirty -= s->dirty;
		s->dirty = 0;
		s->released = true;
		bs3_slot_drop_data(s);
	}
	if (!k)
		return;
	memmove(v->fifo, v->fifo + k, (v->fifo_n - k) * sizeof(*v->fifo));
	v->fifo_n -= k;
	pthread_cond_broadcast(&v->cond);
	pthread_cond_signal(&v->bgcond);
}

static void fifo_remove(struct bs3_vol *v, struct bs3_objslot *s)
{
	for (size_t i = 0; i < v->fifo_n; i++)
		if (v->fifo[i] == s) {
			memmove(v->fifo + i, v->fifo + i + 1,
				(v->fifo_n - i - 1) * sizeof(*v->fifo));
			v->fifo_n--;
			return;
		}
}

/* The writes of s will never be stored (in order): tell their owners. */
static void abandon(struct bs3_vol *v, struct bs3_objslot *s, int err)
{
	for (size_t i = 0; i < s->cbs.n; i++)
		bs3_cb_queue(v, s->cbs.v[i].cb, s->cbs.v[i].arg, err);
	v->dirty -= s->dirty;
	s->dirty = 0;
	bs3_slot_drop_data(s);
}

void bs3_fail(struct bs3_vol *v, int err)
{
	if (v->failed)
		return;
	v->failed = err;
	if (v->open) {
		abandon(v, v->open, err);
		v->open = NULL;
	}
	/* buffers of uploads in flight stay ours until their PUT finishes */
	for (size_t i = 0; i < v->fifo_n;) {
		struct bs3_objslot *s = v->fifo[i];

		if (s->state == BS3_OBJ_UPLOADING) {
			i++;
			continue;
		}
		abandon(v, s, err);
		fifo_remove(v, s);
	}
	for (size_t i = 0; i < v->nflush; i++)
		bs3_cb_queue(v, v->flushes[i].cb, v->flushes[i].arg, err);
	v->nflush = 0;
	pthread_cond_broadcast(&v->cond);
	pthread_cond_signal(&v->bgcond);
}

static void upload_done(struct s3_req *req);

/* Start what may upload now: into go[64], counted in flight (lock held). */
static unsigned int take_uploads(struct bs3_vol *v, struct s3_req **go)
{
	unsigned int n = 0;

	for (size_t i = 0; i < v->fifo_n && !v->failed && n < 64 &&
			   v->inflight < v->o.uploads;
	     i++) {
		struct bs3_objslot *s = v->fifo[i];

		if (s->state != BS3_OBJ_SEALED)
			continue;
		s->state = BS3_OBJ_UPLOADING;
		s3_req_reset(&s->req);
		s->req = (struct s3_req){
			.method = S3_PUT,
			.bucket = v->bucket,
			.key = s->key,
			.iov = s->iov,
			.iovcnt = (unsigned)s->niov,
			.content_type = "application/octet-stream",
			.retry_ms = UINT32_MAX, /* an outage waits, never fails */
			.done = upload_done,
			.priv = s,
		};
		v->inflight++;
		go[n++] = &s->req;
	}
	return n;
}

static void upload_done(struct s3_req *req)
{
	struct bs3_objslot *s = req->priv;
	struct bs3_vol *v = s->vol;
	struct s3_client *cl;
	struct s3_req *go[64];
	unsigned int n;

	pthread_mutex_lock(&v->lock);
	v->inflight--;
	v->st_retries += req->retries;
	if (req->err && !v->failed) {
		char why[256];

		bs3_progress(v, "upload of %s failed for good: %s", s->key,
			     s3_strerror(req, why, sizeof(why)));
		bs3_fail(v, -EIO);
	}
	if (v->failed) {
		abandon(v, s, v->failed);
		fifo_remove(v, s);
		if (!req->err)
			bs3_slot_set_stored(v, s);
	} else {
		bs3_slot_set_stored(v, s);
		v->st_uploads++;
		for (size_t i = 0; i < s->niov; i++)
			v->st_upload_bytes += s->iov[i].iov_len;
		release_ready(v);
	}
	/*
	 * The next uploads are taken here, under the lock: once it is dropped
	 * with nothing more in flight, bs3_close() may free v at once.
	 */
	n = take_uploads(v, go);
	cl = v->cl;
	pthread_cond_broadcast(&v->cond);
	pthread_mutex_unlock(&v->lock);
	for (unsigned int i = 0; i < n; i++)
		s3_submit(cl, go[i]);
}

void bs3_kick_uploads(struct bs3_vol *v)
{
	struct s3_req *go[64];
	unsigned int n;

	pthread_mutex_lock(&v->lock);
	n = take_uploads(v, go);
	pthread_mutex_unlock(&v->lock);
	for (unsigned int i = 0; i < n; i++)
		s3_submit(v->cl, go[i]);
}

int bs3_wait_stored(struct bs3_vol *v, uint64_t seq)
{
	while (!v->failed && v->stored_upto < seq)
		pthread_cond_wait(&v->cond, &v->lock);
	return v->failed;
}

void bs3_flush_complete(struct bs3_vol *v, uint64_t covers, int status)
{
	size_t k = 0;

	for (size_t i = 0; i < v->nflush; i++) {
		struct bs3_flushent *f = &v->flushes[i];

		if (f->target <= covers)
			bs3_cb_queue(v, f->cb, f->arg, status);
		else
			v->flushes[k++] = *f;
	}
	v->nflush = k;
	pthread_cond_broadcast(&v->cond);
}

static bool on_cb_thread(struct bs3_vol *v)
{
	return v->threads && pthread_equal(pthread_self(), v->cb_thread);
}

static int check_range(struct bs3_vol *v, uint64_t off, uint64_t len)
{
	if (!len || off % v->bs || len % v->bs || off > v->geo.size ||
	    len > v->geo.size - off)
		return -EINVAL;
	return 0;
}

int bs3_write(struct bs3_vol *v, uint64_t off, uint32_t len, const void *buf,
	      bs3_cb release, void *arg)
{
	struct bs3_objslot *last = NULL;
	const char *p = buf;
	uint64_t lba;
	uint32_t n;
	int e = check_range(v, off, len);

	if (e)
		return e;
	if (v->read_only)
		return -EROFS;
	pthread_mutex_lock(&v->lock);
	/*
	 * The dirty limit: wait for stores.  Never on the callback thread,
	 * which is the one that would release the waiter.
	 */
	while (!v->failed && v->dirty >= v->o.dirty_limit && !on_cb_thread(v)) {
		bs3_seal_open(v);
		pthread_mutex_unlock(&v->lock);
		bs3_kick_uploads(v);
		pthread_mutex_lock(&v->lock);
		if (v->dirty >= v->o.dirty_limit && !v->failed)
			pthread_cond_wait(&v->cond, &v->lock);
	}
	/* and for GC, when the bucket outgrows its bound (docs/bs3.md) */
	while (!v->failed && bs3_gc_behind(v) && !on_cb_thread(v)) {
		pthread_cond_signal(&v->bgcond);
		pthread_cond_wait(&v->cond, &v->lock);
	}
	if (v->failed) {
		e = v->failed;
		goto out;
	}
	lba = off / v->bs;
	n = len / v->bs;
	while (n) {
		struct bs3_objslot *s = v->open;

		if (!s && !(s = open_object(v))) {
			e = -ENOMEM;
			goto out;
		}
		if (s->nblocks == obj_blocks(v) ||
		    s->next >= BS3_MAX_OBJ_EXTENTS) {
			bs3_seal_open(v);
			continue;
		}
		if (slot_reserve(s)) {
			e = -ENOMEM;
			goto out;
		}
		uint32_t k = obj_blocks(v) - s->nblocks;

		if (k > n)
			k = n;
		e = bs3_map_set(v->map, lba, k, s->id, s->nblocks);
		if (e)
			goto out;
		if (slot_empty(s))
			v->open_since_ms = bs3_now_ms();
		struct bs3_extent *x = s->next ? &s->ext[s->next - 1] : NULL;

		if (x && x->kind == BS3_EXT_DATA && x->lba + x->nblocks == lba &&
		    x->data_off + x->nblocks == s->nblocks)
			x->nblocks += k;
		else
			s->ext[s->next++] = (struct bs3_extent){
				.lba = lba,
				.nblocks = k,
				.kind = BS3_EXT_DATA,
				.data_off = s->nblocks,
			};
		s->iov[s->niov].iov_base = (void *)p;
		s->iov[s->niov].iov_len = (size_t)k * v->bs;
		s->iov_blk[s->niov++] = s->nblocks;
		s->nblocks += k;
		s->dirty += (uint64_t)k * v->bs;
		v->dirty += (uint64_t)k * v->bs;
		lba += k;
		n -= k;
		p += (size_t)k * v->bs;
		last = s;
		if (s->nblocks == obj_blocks(v))
			bs3_seal_open(v);
	}
	if (release && bs3_cblist_add(&last->cbs, release, arg, 0))
		abort(); /* the write is applied: it must be released */
out:
	pthread_mutex_unlock(&v->lock);
	bs3_kick_uploads(v);
	return e;
}

int bs3_discard(struct bs3_vol *v, uint64_t off, uint64_t len, bs3_cb done,
		void *arg)
{
	uint64_t lba, n;
	int e = check_range(v, off, len);

	if (e)
		return e;
	if (v->read_only)
		return -EROFS;
	pthread_mutex_lock(&v->lock);
	if (v->failed) {
		e = v->failed;
		goto out;
	}
	lba = off / v->bs;
	n = len / v->bs;
	e = bs3_map_clear(v->map, lba, n);
	if (e)
		goto out;
	while (n) {
		struct bs3_objslot *s = v->open;
		uint64_t k = n > (1u << 30) ? (1u << 30) : n;

		if (!s && !(s = open_object(v)))
			abort(); /* applied to the map: must be logged */
		if (s->next >= BS3_MAX_OBJ_EXTENTS) {
			bs3_seal_open(v);
			continue;
		}
		if (slot_reserve(s))
			abort();
		if (slot_empty(s))
			v->open_since_ms = bs3_now_ms();
		s->ext[s->next++] = (struct bs3_extent){
			.lba = lba,
			.nblocks = (uint32_t)k,
			.kind = BS3_EXT_ZERO,
		};
		lba += k;
		n -= k;
	}
	if (done && bs3_cblist_add(&v->open->cbs, done, arg, 0))
		abort();
	bs3_seal_open(v);
	e = BS3_PENDING;
out:
	pthread_mutex_unlock(&v->lock);
	bs3_kick_uploads(v);
	return e;
}

int bs3_flush(struct bs3_vol *v, bs3_cb done, void *arg)
{
	pthread_mutex_lock(&v->lock);
	if (v->failed || v->read_only) {
		bs3_cb_queue(v, done, arg, v->failed);
		pthread_mutex_unlock(&v->lock);
		return BS3_PENDING;
	}
	bs3_seal_open(v);
	if (grow((void **)&v->flushes, &v->flush_cap, v->nflush + 1,
		 sizeof(*v->flushes))) {
		pthread_mutex_unlock(&v->lock);
		return -ENOMEM;
	}
	v->flushes[v->nflush++] = (struct bs3_flushent){
		.target = v->next_seq - 1, .cb = done, .arg = arg
	};
	pthread_cond_signal(&v->bgcond);
	pthread_mutex_unlock(&v->lock);
	bs3_kick_uploads(v);
	return BS3_PENDING;
}

struct sync_wait {
	pthread_mutex_t m;
	pthread_cond_t c;
	bool done;
	int status;
};

static void sync_done(void *arg, int status)
{
	struct sync_wait *w = arg;

	pthread_mutex_lock(&w->m);
	w->done = true;
	w->status = status;
	pthread_cond_signal(&w->c);
	pthread_mutex_unlock(&w->m);
}

static int sync_finish(struct sync_wait *w, int r)
{
	if (r == BS3_PENDING) {
		pthread_mutex_lock(&w->m);
		while (!w->done)
			pthread_cond_wait(&w->c, &w->m);
		pthread_mutex_unlock(&w->m);
		r = w->status;
	}
	pthread_mutex_destroy(&w->m);
	pthread_cond_destroy(&w->c);
	return r;
}

int bs3_flush_sync(struct bs3_vol *v)
{
	struct sync_wait w = { PTHREAD_MUTEX_INITIALIZER,
			       PTHREAD_COND_INITIALIZER, false, 0 };

	return sync_finish(&w, bs3_flush(v, sync_done, &w));
}

int bs3_read_sync(struct bs3_vol *v, uint64_t off, uint32_t len, void *buf)
{
	struct sync_wait w = { PTHREAD_MUTEX_INITIALIZER,
			       PTHREAD_COND_INITIALIZER, false, 0 };

	return sync_finish(&w, bs3_read(v, off, len, buf, sync_done, &w));
}
