// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * BS3 checkpoints and recovery: the newest valid checkpoint, then a
 * roll-forward over the unbroken run of objects after it.  docs/bs3.md,
 * "Recovery" and "Checkpoints".
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine.h"

void bs3_kept_free(struct bs3_kept *k)
{
	free(k->objs);
	*k = (struct bs3_kept){ 0 };
}

static int seqep_cmp(const void *a, const void *b)
{
	const struct bs3_seqep *x = a, *y = b;

	if (x->seq != y->seq)
		return x->seq < y->seq ? -1 : 1;
	return x->epoch < y->epoch ? -1 : x->epoch > y->epoch;
}

static int kept_from(struct bs3_kept *k, const struct bs3_ckpt *c)
{
	*k = (struct bs3_kept){ 0 };
	k->objs = calloc(c->nr_objects + 1, sizeof(*k->objs));
	if (!k->objs)
		return -ENOMEM;
	for (size_t i = 0; i < c->nr_objects; i++)
		k->objs[i] = (struct bs3_seqep){ c->objs[i].seq,
						 c->objs[i].epoch };
	qsort(k->objs, c->nr_objects, sizeof(*k->objs), seqep_cmp);
	k->nobj = c->nr_objects;
	k->seq = c->seq;
	k->epoch = c->epoch;
	k->valid = true;
	return 0;
}

bool bs3_kept_has(const struct bs3_kept *k, uint64_t seq, uint64_t epoch)
{
	struct bs3_seqep key = { seq, epoch };

	return k->valid && bsearch(&key, k->objs, k->nobj, sizeof(key),
				   seqep_cmp);
}

/* ---- the listing ---- */

struct lobj {
	uint64_t seq, epoch;
	const char *key;
	bool keep; /* in the run, or needed by a kept checkpoint */
};

static int lobj_cmp(const void *a, const void *b)
{
	const struct lobj *x = a, *y = b;

	if (x->seq != y->seq)
		return x->seq < y->seq ? -1 : 1;
	return x->epoch < y->epoch ? -1 : x->epoch > y->epoch;
}

static struct lobj *lobj_find(struct lobj *d, size_t n, uint64_t seq,
			      uint64_t epoch)
{
	struct lobj k = { .seq = seq, .epoch = epoch };

	return bsearch(&k, d, n, sizeof(*d), lobj_cmp);
}

/* Index of the first entry with this seq, n if none. */
static size_t lobj_first(struct lobj *d, size_t n, uint64_t seq)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (d[mid].seq < seq)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static int list_kind(struct bs3_vol *v, const char *sub, enum bs3_key_type t,
		     struct s3_object **objs, size_t *nobjs, struct lobj **out,
		     size_t *nout, char *err, size_t errlen)
{
	char prefix[512], why[256];
	struct lobj *d;
	size_t k = 0;
	int e;

	snprintf(prefix, sizeof(prefix), "%s/%s/", v->vol, sub);
	e = s3_list(v->cl, v->bucket, prefix, objs, nobjs, why, sizeof(why));
	if (e) {
		snprintf(err, errlen, "s3://%s/%s: listing: %s", v->bucket,
			 v->vol, why);
		return e;
	}
	d = calloc(*nobjs + 1, sizeof(*d));
	if (!d) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	for (size_t i = 0; i < *nobjs; i++) {
		uint64_t seq, epoch;

		if (bs3_key_parse((*objs)[i].key, v->vol, &seq, &epoch) != t)
			continue;
		d[k++] = (struct lobj){ seq, epoch, (*objs)[i].key, false };
	}
	qsort(d, k, sizeof(*d), lobj_cmp);
	*out = d;
	*nout = k;
	return 0;
}

static struct bs3_objslot *add_stored(struct bs3_vol *v, uint64_t seq,
				      uint64_t epoch, uint32_t data_offset,
				      uint32_t data_len, uint32_t flags,
				      bool orphan)
{
	struct bs3_objslot *s = bs3_slot_new(v);

	if (!s)
		return NULL;
	s->released = true;
	s->seq = seq;
	s->epoch = epoch;
	s->data_offset = data_offset;
	s->nblocks = data_len / v->bs;
	bs3_slot_set_stored(v, s);
	s->flags = flags;
	s->orphan = orphan;
	bs3_key_data(s->key, sizeof(s->key), v->vol, seq, epoch);
	if (!orphan && bs3_slot_index(v, s)) {
		s->orphan = true;
		bs3_slot_free(v, s);
		return NULL;
	}
	return s;
}

/* A checkpoint that decodes and whose objects all exist. */
static int load_ckpt(struct bs3_vol *v, const char *key, struct lobj *d,
		     size_t nd, struct bs3_ckpt *c)
{
	void *buf;
	size_t len;
	int e = bs3_get_whole(v, key, &buf, &len);

	if (e)
		return e;
	e = bs3_ckpt_decode(buf, len, v->sb.uuid, v->nr_blocks, c);
	free(buf);
	if (e)
		return e;
	for (size_t i = 0; i < c->nr_objects; i++)
		if (!lobj_find(d, nd, c->objs[i].seq, c->objs[i].epoch)) {
			bs3_ckpt_free(c);
			return -ENOENT;
		}
	return 0;
}

/* Apply one object's extent records to the map. */
static int apply_object(struct bs3_vol *v, struct bs3_objslot *s,
			const struct bs3_extent *x, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		int64_t r = 0;

		switch (x[i].kind) {
		case BS3_EXT_DATA:
			r = bs3_map_set(v->map, x[i].lba, x[i].nblocks, s->id,
					x[i].data_off);
			break;
		case BS3_EXT_ZERO:
			r = bs3_map_clear(v->map, x[i].lba, x[i].nblocks);
			break;
		case BS3_EXT_MOVE: {
			struct bs3_objslot *src = bs3_slot_by_seq(v, x[i].src_seq);

			/* a deleted source has no live blocks left to move */
			if (src)
				r = bs3_map_move(v->map, x[i].lba, x[i].nblocks,
						 src->id, x[i].src_off, s->id,
						 x[i].data_off);
			break;
		}
		default:
			r = -EBADMSG;
		}
		if (r < 0)
			return (int)r;
	}
	return 0;
}

/* Write the epoch's first object: empty, flagged, at the run's end + 1. */
static int write_epoch_start(struct bs3_vol *v, char *err, size_t errlen)
{
	struct bs3_objslot *s = bs3_slot_new(v);
	int e;

	if (!s) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	s->state = BS3_OBJ_OPEN;
	s->flags = BS3_OBJ_EPOCH_START;
	s->iov = calloc(1, sizeof(*s->iov));
	s->iov_blk = calloc(1, sizeof(*s->iov_blk));
	if (!s->iov || !s->iov_blk) {
		bs3_slot_free(v, s);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	s->niov = s->iov_cap = 1;
	bs3_queue_object(v, s);
	v->fifo_n = 0; /* stored synchronously below, not by the uploader */
	s->req = (struct s3_req){ .method = S3_PUT,
				  .bucket = v->bucket,
				  .key = s->key,
				  .iov = s->iov,
				  .iovcnt = 1,
				  .content_type = "application/octet-stream",
				  .retry_ms = UINT32_MAX };
	e = s3_run(v->cl, &s->req);
	if (e) {
		snprintf(err, errlen, "s3://%s/%s: writing %s: %s", v->bucket,
			 v->vol, s->key, strerror(-e));
		return e;
	}
	bs3_slot_set_stored(v, s);
	s->released = true;
	bs3_slot_drop_data(s);
	v->stored_upto = s->seq;
	return 0;
}

int bs3_recover(struct bs3_vol *v, bool write, char *err, size_t errlen)
{
	struct s3_object *dobjs = NULL, *cobjs = NULL;
	size_t ndobjs = 0, ncobjs = 0, nd = 0, nc = 0, applied = 0;
	struct lobj *d = NULL, *c = NULL;
	struct bs3_ckpt ck = { 0 }, ck2 = { 0 };
	bool have = false, have2 = false, lost = false;
	const char *reason = "end";
	uint32_t *idmap = NULL;
	uint64_t s, cur_epoch = 0, lost_seq = 0;
	int e, lost_err = 0;

	e = list_kind(v, "c", BS3_KEY_CKPT, &cobjs, &ncobjs, &c, &nc, err,
		      errlen);
	if (!e)
		e = list_kind(v, "d", BS3_KEY_DATA, &dobjs, &ndobjs, &d, &nd,
			      err, errlen);
	if (e)
		goto out;

	/* newest first: by seq, then epoch */
	for (size_t i = nc; i-- > 0;) {
		struct bs3_ckpt *t = have ? &ck2 : &ck;

		e = load_ckpt(v, c[i].key, d, nd, t);
		if (e == -ENOMEM)
			goto nomem;
		if (e) {
			bs3_progress(v, "recovery: checkpoint %s unusable (%s)",
				     c[i].key, strerror(-e));
			if (!have && !lost) { /* newer than the one we use */
				lost = true;
				lost_seq = c[i].seq;
				lost_err = e;
			}
			continue;
		}
		c[i].keep = true;
		if (have) {
			have2 = true;
			break;
		}
		have = true;
	}
	e = 0;
	if (have)
		bs3_progress(v, "recovery: checkpoint seq %" PRIu64
				", rolling forward", ck.seq);
	else
		bs3_progress(v, "recovery: no checkpoint, rolling forward from "
				"seq 1");
	if (have) {
		idmap = calloc(ck.nr_objects + 1, sizeof(*idmap));
		if (!idmap)
			goto nomem;
		for (size_t i = 0; i < ck.nr_objects; i++) {
			struct bs3_ckpt_obj *o = &ck.objs[i];
			struct bs3_objslot *sl =
				add_stored(v, o->seq, o->epoch, o->data_offset,
					   o->data_len, o->flags, false);

			if (!sl)
				goto nomem;
			idmap[i] = sl->id;
			lobj_find(d, nd, o->seq, o->epoch)->keep = true;
		}
		for (size_t i = 0; i < ck.nr_extents; i++) {
			struct bs3_ckpt_ext *x = &ck.exts[i];

			if (bs3_map_set(v->map, x->lba, x->nblocks,
					idmap[x->obj], x->off))
				goto nomem;
		}
		if (kept_from(&v->kept[0], &ck))
			goto nomem;
		if (have2 && kept_from(&v->kept[1], &ck2))
			goto nomem;
		v->ckpt_time = ck.time;
		cur_epoch = ck.epoch;
	}

	/* roll forward over the unbroken run */
	for (s = (have ? ck.seq : 0) + 1;; s++) {
		size_t f = lobj_first(d, nd, s), best = nd;
		struct bs3_obj_info info;
		struct bs3_extent *ext = NULL;
		struct bs3_objslot *sl;
		void *buf;
		size_t len, need;

		for (size_t i = f; i < nd && d[i].seq == s; i++)
			best = i; /* sorted by epoch: the last is the highest */
		if (best == nd) {
			/* d is sorted by seq: anything after s lies beyond */
			reason = nd && d[nd - 1].seq > s ? "gap"
							  : "end of the log";
			break;
		}
		if (d[best].epoch < cur_epoch) {
			reason = "stale epoch";
			break;
		}
		e = bs3_get_whole(v, d[best].key, &buf, &len);
		if (e == -ENOENT) {
			reason = "gap";
			e = 0;
			break;
		}
		if (e) {
			snprintf(err, errlen, "s3://%s/%s: reading %s: %s",
				 v->bucket, v->vol, d[best].key, strerror(-e));
			goto out;
		}
		e = bs3_obj_decode(buf, len, v->sb.uuid, v->bs, v->nr_blocks,
				   &info, &ext, &need);
		if (!e && (info.seq != s || info.epoch != d[best].epoch))
			e = -EBADMSG;
		if (!e)
			e = bs3_obj_check_data(&info, buf, len);
		free(buf);
		if (e) {
			free(ext);
			reason = "corrupt";
			e = 0;
			break;
		}
		sl = add_stored(v, s, info.epoch, info.data_offset,
				info.data_len, info.flags, false);
		if (!sl || apply_object(v, sl, ext, info.nr_extents)) {
			free(ext);
			goto nomem;
		}
		free(ext);
		d[best].keep = true;
		cur_epoch = info.epoch;
		applied++;
	}
	bs3_progress(v, "recovery: applied %zu objects", applied);
	bs3_progress(v, "recovery: run ends at seq %" PRIu64 " (%s)", s - 1,
		     reason);
	/*
	 * A checkpoint is written only once every object up to its seq is
	 * stored: if the run falls short of one we could not use, objects a
	 * flush made durable are missing.  Attaching would silently lose them
	 * (and remove what lies beyond), so refuse and change nothing.
	 */
	if (lost && s - 1 < lost_seq) {
		snprintf(err, errlen,
			 "s3://%s/%s is damaged: checkpoint seq %" PRIu64
			 " is unusable (%s) and the log breaks at seq %" PRIu64
			 ": objects are missing; nothing was changed",
			 v->bucket, v->vol, lost_seq, strerror(-lost_err), s);
		e = -EBADMSG;
		goto out;
	}
	v->next_seq = s;
	v->stored_upto = s - 1;

	/*
	 * Objects older than the checkpoint that only the second kept
	 * checkpoint needs: keep them (GC deletes them later).
	 */
	for (size_t i = 0; i < nd; i++) {
		if (d[i].keep || !have || d[i].seq > ck.seq ||
		    !bs3_kept_has(&v->kept[1], d[i].seq, d[i].epoch))
			continue;
		if (!add_stored(v, d[i].seq, d[i].epoch, 0, 0, 0, true))
			goto nomem;
		d[i].keep = true;
	}

	if (write) {
		const char **keys = calloc(nd + nc + 1, sizeof(*keys));
		size_t k = 0;
		char why[256];

		if (!keys)
			goto nomem;
		e = write_epoch_start(v, err, errlen);
		if (e) {
			free(keys);
			goto out;
		}
		/*
		 * What lies after the checkpoint is what the next attach rolls
		 * forward: it counts towards the next checkpoint, or attach
		 * after attach (crash after crash) would make it grow.
		 */
		v->objs_since_ckpt = v->next_seq - 1 - (have ? ck.seq : 0);
		for (size_t i = 0; i < nd; i++)
			if (!d[i].keep)
				keys[k++] = d[i].key;
		for (size_t i = 0; i < nc; i++)
			if (!c[i].keep)
				keys[k++] = c[i].key;
		if (k) {
			bs3_progress(v, "recovery: removing %zu objects outside "
					"the run",
				     k);
			/* a failure only leaves garbage the next attach removes */
			if (s3_delete_keys(v->cl, v->bucket, keys, k, why,
					   sizeof(why)))
				bs3_progress(v, "recovery: removing: %s", why);
		}
		free(keys);
	}
	goto out;
nomem:
	snprintf(err, errlen, "out of memory during recovery");
	e = -ENOMEM;
out:
	free(idmap);
	bs3_ckpt_free(&ck);
	bs3_ckpt_free(&ck2);
	free(d);
	free(c);
	s3_objects_free(dobjs, ndobjs);
	s3_objects_free(cobjs, ncobjs);
	return e;
}

/* ---- writing checkpoints ---- */

struct snap {
	struct bs3_vol *v;
	struct bs3_ckpt_ext *x;
	size_t n, cap;
	int64_t *idx; /* slot id -> table index, -1 */
	struct bs3_ckpt_obj *objs;
	size_t nobj;
};

static int snap_piece(void *arg, const struct bs3_map_piece *p)
{
	struct snap *sn = arg;
	struct bs3_objslot *s = sn->v->slots[p->obj];

	if (sn->n == sn->cap) {
		size_t cap = sn->cap ? sn->cap * 2 : 1024;
		void *nx = realloc(sn->x, cap * sizeof(*sn->x));

		if (!nx)
			return -ENOMEM;
		sn->x = nx;
		sn->cap = cap;
	}
	if (sn->idx[p->obj] < 0) {
		sn->idx[p->obj] = (int64_t)sn->nobj;
		sn->objs[sn->nobj++] = (struct bs3_ckpt_obj){
			.seq = s->seq,
			.epoch = s->epoch,
			.data_offset = s->data_offset,
			.data_len = s->nblocks * sn->v->bs,
			.live_blocks = (uint32_t)bs3_map_live(sn->v->map, p->obj),
			.flags = s->flags,
		};
	}
	sn->x[sn->n++] = (struct bs3_ckpt_ext){
		.lba = p->lba,
		.nblocks = p->nblocks,
		.obj = (uint32_t)sn->idx[p->obj],
		.off = p->off,
	};
	return 0;
}

int bs3_checkpoint(struct bs3_vol *v)
{
	struct snap sn = { .v = v };
	struct bs3_ckpt ck = { 0 };
	struct bs3_kept nk, old;
	char key[512], oldkey[512] = "";
	uint64_t seq;
	void *buf = NULL;
	int e = 0;

	pthread_mutex_lock(&v->lock);
	while (v->ckpt_busy)
		pthread_cond_wait(&v->cond, &v->lock);
	if (v->failed || v->read_only) {
		e = v->failed;
		pthread_mutex_unlock(&v->lock);
		return e;
	}
	v->ckpt_busy = true;
	/*
	 * Snapshot right after sealing: the map then holds exactly the
	 * objects <= seq (some maybe still uploading); it is published only
	 * once they are all stored and a fence check after that passed.
	 */
	bs3_seal_open(v);
	seq = v->next_seq - 1;
	if (v->kept[0].valid && v->kept[0].seq == seq) {
		v->objs_since_ckpt = 0;
		goto unlock;
	}
	sn.idx = malloc(v->nslots * sizeof(*sn.idx) + 1);
	sn.objs = malloc(v->nslots * sizeof(*sn.objs) + 1);
	if (!sn.idx || !sn.objs) {
		e = -ENOMEM;
		goto unlock;
	}
	for (size_t i = 0; i < v->nslots; i++)
		sn.idx[i] = -1;
	e = bs3_map_walk(v->map, snap_piece, &sn);
	if (e)
		goto unlock;
	v->objs_since_ckpt = 0;
	v->last_ckpt_ms = bs3_now_ms();
	pthread_mutex_unlock(&v->lock);

	memcpy(ck.uuid, v->sb.uuid, BS3_UUID_LEN);
	ck.seq = seq;
	ck.epoch = v->epoch;
	ck.time = (uint64_t)time(NULL);
	ck.nr_objects = sn.nobj;
	ck.nr_extents = sn.n;
	ck.objs = sn.objs;
	ck.exts = sn.x;
	buf = malloc(bs3_ckpt_size(ck.nr_objects, ck.nr_extents));
	if (!buf || kept_from(&nk, &ck)) {
		e = -ENOMEM;
		pthread_mutex_lock(&v->lock);
		goto unlock;
	}
	bs3_ckpt_encode(&ck, buf);

	bs3_kick_uploads(v);
	pthread_mutex_lock(&v->lock);
	e = bs3_wait_stored(v, seq);
	pthread_mutex_unlock(&v->lock);
	for (int tries = 0; !e; tries++) {
		e = bs3_fence_check(v);
		if (e == 0 || e == -ESTALE || tries == 10)
			break;
		struct timespec ts = { 0, 500000000 };

		nanosleep(&ts, NULL);
		e = 0;
	}
	if (!e) {
		bs3_key_ckpt(key, sizeof(key), v->vol, seq, v->epoch);
		e = bs3_put_buf(v, key, buf,
				bs3_ckpt_size(ck.nr_objects, ck.nr_extents),
				UINT32_MAX, false, NULL);
	}
	pthread_mutex_lock(&v->lock);
	if (e == -ESTALE)
		bs3_fail(v, -ESTALE);
	if (e) {
		bs3_kept_free(&nk);
		goto unlock;
	}
	old = v->kept[1];
	v->kept[1] = v->kept[0];
	v->kept[0] = nk;
	v->ckpt_time = ck.time;
	if (old.valid)
		bs3_key_ckpt(oldkey, sizeof(oldkey), v->vol, old.seq,
			     old.epoch);
	bs3_kept_free(&old);
	v->ckpt_busy = false;
	pthread_cond_broadcast(&v->cond);
	pthread_mutex_unlock(&v->lock);
	if (oldkey[0]) {
		const char *k = oldkey;
		char why[256];

		/* keep the newest two: a leftover only costs space */
		s3_delete_keys(v->cl, v->bucket, &k, 1, why, sizeof(why));
	}
	free(buf);
	free(sn.x);
	free(sn.idx);
	free(sn.objs);
	return 0;
unlock:
	v->ckpt_busy = false;
	pthread_cond_broadcast(&v->cond);
	pthread_mutex_unlock(&v->lock);
	free(buf);
	free(sn.x);
	free(sn.idx);
	free(sn.objs);
	return e;
}

int bs3_checkpoint_retire(struct bs3_vol *v)
{
	struct bs3_ckpt ck = { 0 };
	char key[512], oldkey[512], why[256];
	void *buf = NULL;
	size_t len = 0;
	int e;

	pthread_mutex_lock(&v->lock);
	while (v->ckpt_busy)
		pthread_cond_wait(&v->cond, &v->lock);
	if (!v->kept[0].valid || !v->kept[1].valid || v->failed) {
		pthread_mutex_unlock(&v->lock);
		return 0;
	}
	v->ckpt_busy = true;
	bs3_key_ckpt(key, sizeof(key), v->vol, v->kept[0].seq,
		     v->kept[0].epoch);
	bs3_key_ckpt(oldkey, sizeof(oldkey), v->vol, v->kept[1].seq,
		     v->kept[1].epoch);
	pthread_mutex_unlock(&v->lock);

	/* the older one is only a fallback for a bad newest one: check it */
	e = bs3_get_whole(v, key, &buf, &len);
	if (!e)
		e = bs3_ckpt_decode(buf, len, v->sb.uuid, v->nr_blocks, &ck);
	free(buf);
	if (!e)
		bs3_ckpt_free(&ck);

	pthread_mutex_lock(&v->lock);
	if (!e)
		bs3_kept_free(&v->kept[1]);
	v->ckpt_busy = false;
	pthread_cond_broadcast(&v->cond);
	pthread_mutex_unlock(&v->lock);
	if (!e) {
		const char *k = oldkey;

		s3_delete_keys(v->cl, v->bucket, &k, 1, why, sizeof(why));
	}
	return e;
}

int bs3_checkpoint_now(struct bs3_vol *v)
{
	return bs3_checkpoint(v);
}
