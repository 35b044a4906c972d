// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * BS3 garbage collection: rewrite the live blocks of the emptiest objects
 * into a new object (MOVE records), delete objects nothing needs.
 * docs/bs3.md, "Garbage collection".
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"

/* A stored object GC may look at (lock held). */
static bool gc_eligible(const struct bs3_objslot *s)
{
	return s && s->state == BS3_OBJ_STORED && s->released && !s->orphan;
}

static void usage(struct bs3_vol *v, uint64_t *stored, uint64_t *live)
{
	*stored = 0;
	for (size_t i = 0; i < v->nslots; i++)
		if (gc_eligible(v->slots[i]))
			*stored += v->slots[i]->nblocks;
	*live = bs3_map_mapped(v->map);
}

/* May object s be deleted from the bucket now? (lock held) */
static bool deletable(struct bs3_vol *v, const struct bs3_objslot *s)
{
	uint64_t min;

	if (!s || s->state != BS3_OBJ_STORED || !s->released || s->pins ||
	    bs3_map_live(v->map, s->id))
		return false;
	if (!v->kept[0].valid)
		return false;
	min = v->kept[0].seq;
	if (v->kept[1].valid && v->kept[1].seq < min)
		min = v->kept[1].seq;
	return s->seq <= min && !bs3_kept_has(&v->kept[0], s->seq, s->epoch) &&
	       !bs3_kept_has(&v->kept[1], s->seq, s->epoch);
}

bool bs3_gc_wanted(struct bs3_vol *v)
{
	uint64_t stored, live;

	for (size_t i = 0; i < v->nslots; i++)
		if (deletable(v, v->slots[i]))
			return true;
	usage(v, &stored, &live);
	return stored && (double)live < (double)stored * v->o.gc_live_pct / 100.0;
}

/* A checkpoint's size: 32 bytes per object, 24 per extent. */
static uint64_t ckpt_cost(struct bs3_vol *v)
{
	return 32 * (uint64_t)v->nslots + 24 * bs3_map_extents(v->map);
}

bool bs3_gc_ckpt_wanted(struct bs3_vol *v)
{
	uint64_t blocked = 0, cost;

	/* (with no checkpoint yet, every dead object waits for the first) */
	for (size_t i = 0; i < v->nslots; i++) {
		const struct bs3_objslot *s = v->slots[i];

		if (s && s->state == BS3_OBJ_STORED && s->released &&
		    !s->orphan && !s->pins && !bs3_map_live(v->map, s->id) &&
		    !deletable(v, s))
			blocked += (uint64_t)s->nblocks * v->bs;
	}
	cost = ckpt_cost(v);
	if (cost < 2ull * v->sb.object_size)
		cost = 2ull * v->sb.object_size;
	return blocked >= cost;
}

uint64_t bs3_gc_bound(struct bs3_vol *v)
{
	uint64_t live = bs3_map_mapped(v->map) * v->bs;

	return live * 100 / v->o.gc_live_pct + 8ull * v->sb.object_size +
	       2 * ckpt_cost(v);
}

bool bs3_gc_over(struct bs3_vol *v)
{
	return !v->o.no_gc && !v->read_only &&
	       v->stored_blocks * v->bs > bs3_gc_bound(v);
}

bool bs3_gc_behind(struct bs3_vol *v)
{
	return !v->gc_stalled && bs3_gc_over(v);
}

int bs3_gc_delete(struct bs3_vol *v)
{
	char **keys = NULL, why[256];
	size_t n = 0;
	uint64_t blocks = 0;
	int e = 0;

	pthread_mutex_lock(&v->lock);
	keys = calloc(v->nslots + 1, sizeof(*keys));
	if (!keys) {
		pthread_mutex_unlock(&v->lock);
		return -ENOMEM;
	}
	for (size_t i = 0; i < v->nslots; i++) {
		struct bs3_objslot *s = v->slots[i];

		if (!deletable(v, s) || !(keys[n] = strdup(s->key)))
			continue;
		n++;
		blocks += s->nblocks;
		/* out of the table first: nothing can pin it any more */
		bs3_slot_free(v, s);
	}
	v->st_gc_deleted += n;
	/* still in the bucket until the delete is answered */
	v->stored_blocks += blocks;
	pthread_mutex_unlock(&v->lock);
	if (n)
		e = s3_delete_keys(v->cl, v->bucket, (const char *const *)keys,
				   n, why, sizeof(why));
	pthread_mutex_lock(&v->lock);
	v->stored_blocks -= blocks;
	if (n)
		pthread_cond_broadcast(&v->cond); /* writers waiting for GC */
	pthread_mutex_unlock(&v->lock);
	/* a failed delete leaves garbage that recovery removes */
	for (size_t i = 0; i < n; i++)
		free(keys[i]);
	free(keys);
	return e ? e : (int)n;
}

struct gc_src {
	struct bs3_objslot *s;
	void *data;
};

struct gc_ext {
	uint64_t lba;
	uint32_t n, src, off; /* src: index into the sources */
};

struct gc_walk {
	struct bs3_vol *v;
	struct gc_src *src;
	size_t nsrc;
	struct gc_ext *x;
	size_t n, cap;
};

static int gc_piece(void *arg, const struct bs3_map_piece *p)
{
	struct gc_walk *w = arg;

	for (size_t i = 0; i < w->nsrc; i++) {
		if (w->src[i].s->id != p->obj)
			continue;
		if (w->n == w->cap) {
			size_t cap = w->cap ? w->cap * 2 : 64;
			void *nx = realloc(w->x, cap * sizeof(*w->x));

			if (!nx)
				return -ENOMEM;
			w->x = nx;
			w->cap = cap;
		}
		w->x[w->n++] = (struct gc_ext){ p->lba, p->nblocks,
						(uint32_t)i, p->off };
		break;
	}
	return 0;
}

static int live_cmp(const void *a, const void *b)
{
	const struct gc_src *x = a, *y = b;
	uint64_t lx = bs3_map_live(x->s->vol->map, x->s->id);
	uint64_t ly = bs3_map_live(y->s->vol->map, y->s->id);

	return lx < ly ? -1 : lx > ly;
}

/* GET the data of a pinned source object. */
static int fetch(struct bs3_vol *v, struct gc_src *g)
{
	size_t len = (size_t)g->s->nblocks * v->bs;
	struct s3_req r = { .method = S3_GET,
			    .bucket = v->bucket,
			    .key = g->s->key,
			    .range_off = g->s->data_offset,
			    .range_len = len };
	int e;

	g->data = malloc(len ? len : 1);
	if (!g->data)
		return -ENOMEM;
	r.rbuf = g->data;
	r.rbuf_len = len;
	e = s3_run(v->cl, &r);
	if (!e && r.got != len)
		e = -EIO;
	s3_req_reset(&r);
	return e;
}

int bs3_gc_pass(struct bs3_vol *v, bool force)
{
	uint32_t oblocks = v->sb.object_size / v->bs;
	struct gc_walk w = { .v = v };
	struct bs3_objslot *ns = NULL;
	uint64_t stored, live, total = 0;
	size_t nall = 0;
	int e = 0, rewritten = 0;

	pthread_mutex_lock(&v->lock);
	while (v->gc_busy)
		pthread_cond_wait(&v->cond, &v->lock);
	if (v->failed || v->read_only) {
		pthread_mutex_unlock(&v->lock);
		return v->read_only ? -EROFS : v->failed;
	}
	v->gc_busy = true;
	usage(v, &stored, &live);
	bool rewrite = force || (stored && (double)live < (double)stored *
						v->o.gc_live_pct / 100.0);

	w.src = calloc(v->nslots + 1, sizeof(*w.src));
	if (!w.src) {
		e = -ENOMEM;
		goto unlock;
	}
	/* candidates: some live data, live share below the threshold */
	for (size_t i = 0; rewrite && i < v->nslots; i++) {
		struct bs3_objslot *s = v->slots[i];
		uint64_t l;

		if (!gc_eligible(s) || !s->nblocks)
			continue;
		l = bs3_map_live(v->map, s->id);
		if (l && l * 100 < (uint64_t)s->nblocks * v->o.gc_live_pct)
			w.src[nall++].s = s;
	}
	/* the emptiest first, as many as fit in one object */
	qsort(w.src, nall, sizeof(*w.src), live_cmp);
	for (w.nsrc = 0; w.nsrc < nall; w.nsrc++) {
		uint64_t l = bs3_map_live(v->map, w.src[w.nsrc].s->id);

		if (total + l > oblocks)
			break;
		total += l;
	}
	if (w.nsrc < 1 || (w.nsrc < 2 && !force && nall < 2)) {
		/* rewriting one object into one object gains little */
		if (!(w.nsrc == 1 && total * 2 <= w.src[0].s->nblocks))
			w.nsrc = 0;
	}
	if (!w.nsrc)
		goto unlock;
	e = bs3_map_walk(v->map, gc_piece, &w);
	if (e || w.n > BS3_MAX_OBJ_EXTENTS) {
		e = e ? e : 0;
		goto unlock;
	}
	for (size_t i = 0; i < w.nsrc; i++)
		w.src[i].s->pins++;
	pthread_mutex_unlock(&v->lock);

	for (size_t i = 0; i < w.nsrc && !e; i++)
		e = fetch(v, &w.src[i]);

	pthread_mutex_lock(&v->lock);
	for (size_t i = 0; i < w.nsrc; i++)
		w.src[i].s->pins--;
	pthread_cond_broadcast(&v->cond);
	if (e || v->failed)
		goto unlock;
	ns = bs3_slot_new(v);
	if (!ns) {
		e = -ENOMEM;
		goto unlock;
	}
	ns->state = BS3_OBJ_OPEN;
	ns->flags = BS3_OBJ_GC;
	ns->own = malloc((size_t)total * v->bs + 1);
	ns->iov = calloc(2, sizeof(*ns->iov));
	ns->iov_blk = calloc(2, sizeof(*ns->iov_blk));
	ns->ext = calloc(w.n + 1, sizeof(*ns->ext));
	if (!ns->own || !ns->iov || !ns->ext || !ns->iov_blk) {
		bs3_slot_free(v, ns);
		e = -ENOMEM;
		goto unlock;
	}
	/*
	 * The live extents as of the walk; MOVE is conditional, so blocks
	 * overwritten since then keep their newer mapping, in memory now and
	 * in recovery's replay alike.
	 */
	for (size_t i = 0; i < w.n; i++) {
		struct gc_ext *x = &w.x[i];
		struct bs3_objslot *src = w.src[x->src].s;

		memcpy((char *)ns->own + (size_t)ns->nblocks * v->bs,
		       (char *)w.src[x->src].data + (size_t)x->off * v->bs,
		       (size_t)x->n * v->bs);
		ns->ext[ns->next++] = (struct bs3_extent){
			.lba = x->lba,
			.nblocks = x->n,
			.kind = BS3_EXT_MOVE,
			.data_off = ns->nblocks,
			.src_off = x->off,
			.src_seq = src->seq,
		};
		if (bs3_map_move(v->map, x->lba, x->n, src->id, x->off, ns->id,
				 ns->nblocks) < 0)
			abort(); /* moves never allocate more than they free */
		ns->nblocks += x->n;
	}
	ns->iov[1].iov_base = ns->own;
	ns->iov[1].iov_len = (size_t)ns->nblocks * v->bs;
	ns->niov = ns->iov_cap = 2;
	ns->iov_blk[1] = 0;
	bs3_queue_object(v, ns);
	v->st_gc_rewritten += w.nsrc;
	rewritten = (int)w.nsrc;
unlock:
	v->gc_busy = false;
	pthread_cond_broadcast(&v->cond);
	pthread_mutex_unlock(&v->lock);
	for (size_t i = 0; i < w.nsrc; i++)
		free(w.src[i].data);
	free(w.src);
	free(w.x);
	if (ns && rewritten)
		bs3_kick_uploads(v);
	int d = bs3_gc_delete(v);

	if (e)
		return e;
	return rewritten ? rewritten : (d > 0 ? 0 : 0);
}

int bs3_gc_now(struct bs3_vol *v)
{
	return bs3_gc_pass(v, true);
}
