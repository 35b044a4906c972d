// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * BS3 reads: the map says where each piece is; holes read as zeros, data
 * not yet released is copied from the writers' buffers, stored data is a
 * ranged GET straight into the caller's buffer.  docs/bs3.md, "Reads".
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"

struct rd_piece {
	struct s3_req req;
	struct bs3_objslot *s;
	struct rd *rd;
	/* the cache's key: object, offset in its data */
	uint64_t seq, data_off;
	char *dst; /* where the piece goes */
	size_t len;
	/*
	 * With a cache, a miss GETs whole chunks into fill (from data offset
	 * fill_off), so that they can be cached: a small read would
	 * otherwise never fill one (the cache stores whole chunk prefixes).
	 */
	char *fill;
	uint64_t fill_off;
	uint32_t nblocks_obj; /* the object's data blocks */
};

struct rd {
	struct bs3_vol *v;
	bs3_cb done;
	void *arg;
	unsigned pending;
	int err;
	struct rd_piece p[];
};

/* Copy blocks off..off+n-1 of an unreleased object from its iovecs. */
static void copy_from_iov(struct bs3_vol *v, const struct bs3_objslot *s,
			  uint32_t off, uint32_t n, char *dst)
{
	size_t lo = 1, hi = s->niov;

	/* the last iov starting at or before off */
	while (hi - lo > 1) {
		size_t mid = (lo + hi) / 2;

		if (s->iov_blk[mid] <= off)
			lo = mid;
		else
			hi = mid;
	}
	for (size_t i = lo; n; i++) {
		uint32_t in = off - s->iov_blk[i];
		uint32_t avail = (uint32_t)(s->iov[i].iov_len / v->bs) - in;
		uint32_t k = avail < n ? avail : n;

		memcpy(dst, (const char *)s->iov[i].iov_base + (size_t)in * v->bs,
		       (size_t)k * v->bs);
		dst += (size_t)k * v->bs;
		off += k;
		n -= k;
	}
}

/* A piece is finished (lock held): true if it was the read's last. */
static bool rd_piece_done(struct rd *rd, struct rd_piece *p, int err)
{
	p->s->pins--;
	if (err)
		rd->err = err;
	pthread_cond_broadcast(&rd->v->cond);
	return --rd->pending == 0;
}

static void rd_done(struct s3_req *req)
{
	struct rd_piece *p = req->priv;
	struct rd *rd = p->rd;
	struct bs3_vol *v = rd->v;
	bool ok = !req->err && req->got == req->range_len;
	bool last;

	/* objects are immutable: what was read may be cached as it is */
	if (ok && v->cache)
		bs3_cache_put(v->cache, p->seq,
			      p->fill ? p->fill_off : p->data_off, req->rbuf,
			      req->range_len);
	if (p->fill) {
		if (ok)
			memcpy(p->dst, p->fill + (p->data_off - p->fill_off),
			       p->len);
		free(p->fill);
		p->fill = NULL;
	}
	pthread_mutex_lock(&v->lock);
	v->st_retries += req->retries;
	last = rd_piece_done(rd, p, ok ? 0 : -EIO);
	if (last)
		bs3_cb_queue(v, rd->done, rd->arg, rd->err);
	pthread_mutex_unlock(&v->lock);
	s3_req_reset(req);
	if (last) {
		/* the other pieces are finished: their requests are ours */
		free(rd);
	}
}

/* A cache miss: GET the chunks around the piece instead (see fill). */
static void widen_to_chunks(struct bs3_vol *v, struct rd_piece *rp)
{
	uint64_t chunk = bs3_cache_chunk(v->cache);
	uint64_t end = (uint64_t)rp->nblocks_obj * v->bs;
	uint64_t lo = rp->data_off / chunk * chunk;
	uint64_t hi = (rp->data_off + rp->len + chunk - 1) / chunk * chunk;

	if (hi > end)
		hi = end;
	/* whole chunks already: straight into the caller's buffer */
	if (lo == rp->data_off && hi == rp->data_off + rp->len)
		return;
	rp->fill = malloc(hi - lo);
	if (!rp->fill)
		return; /* read just the piece: it is then not cached */
	rp->fill_off = lo;
	rp->req.range_off = rp->s->data_offset + lo;
	rp->req.range_len = hi - lo;
	rp->req.rbuf = rp->fill;
	rp->req.rbuf_len = hi - lo;
}

int bs3_read(struct bs3_vol *v, uint64_t off, uint32_t len, void *buf,
	     bs3_cb done, void *arg)
{
	struct bs3_map_piece stackp[16], *pc = stackp;
	uint64_t lba;
	size_t np;
	struct rd *rd = NULL;
	int err = 0;

	if (!len || off % v->bs || len % v->bs || off > v->geo.size ||
	    len > v->geo.size - off)
		return -EINVAL;
	lba = off / v->bs;
	pthread_mutex_lock(&v->lock);
	np = bs3_map_lookup(v->map, lba, len / v->bs, pc, 16);
	if (np > 16) {
		pc = malloc(np * sizeof(*pc));
		if (!pc) {
			pthread_mutex_unlock(&v->lock);
			return -ENOMEM;
		}
		bs3_map_lookup(v->map, lba, len / v->bs, pc, np);
	}
	for (size_t i = 0; i < np; i++) {
		const struct bs3_map_piece *p = &pc[i];
		char *dst = (char *)buf + (p->lba - lba) * v->bs;
		struct bs3_objslot *s;

		if (p->obj == BS3_MAP_NONE) {
			memset(dst, 0, (size_t)p->nblocks * v->bs);
			continue;
		}
		s = p->obj < v->nslots ? v->slots[p->obj] : NULL;
		if (s && s->niov > 1 && !s->released) {
			copy_from_iov(v, s, p->off, p->nblocks, dst);
			v->st_reads_memory++;
			continue;
		}
		if (!s || s->state != BS3_OBJ_STORED) {
			err = -EIO; /* data lost to a failure before storing */
			break;
		}
		if (!rd) {
			rd = calloc(1, sizeof(*rd) + np * sizeof(rd->p[0]));
			if (!rd) {
				err = -ENOMEM;
				break;
			}
			rd->v = v;
			rd->done = done;
			rd->arg = arg;
		}
		struct rd_piece *rp = &rd->p[rd->pending++];

		s->pins++; /* GC must not delete it under this read */
		rp->s = s;
		rp->rd = rd;
		rp->seq = s->seq;
		rp->data_off = (uint64_t)p->off * v->bs;
		rp->dst = dst;
		rp->len = (size_t)p->nblocks * v->bs;
		rp->nblocks_obj = s->nblocks;
		rp->req = (struct s3_req){
			.method = S3_GET,
			.bucket = v->bucket,
			.key = s->key,
			.range_off = s->data_offset + (uint64_t)p->off * v->bs,
			.range_len = (uint64_t)p->nblocks * v->bs,
			.rbuf = dst,
			.rbuf_len = (size_t)p->nblocks * v->bs,
			.retry_ms = 60000, /* a read may fail after a long outage */
			.done = rd_done,
			.priv = rp,
		};
	}
	if (err && rd) {
		for (unsigned i = 0; i < rd->pending; i++)
			rd->p[i].s->pins--;
		free(rd);
		rd = NULL;
	}
	unsigned n = rd ? rd->pending : 0;

	/* one extra reference while submitting: rd outlives the loop */
	if (rd)
		rd->pending++;
	pthread_mutex_unlock(&v->lock);
	if (pc != stackp)
		free(pc);
	if (err)
		return err;
	if (!rd)
		return 0;
	/* the cache first, outside the engine's lock (it does file I/O) */
	for (unsigned i = 0; i < n; i++) {
		struct rd_piece *rp = &rd->p[i];

		if (v->cache && !bs3_cache_get(v->cache, rp->seq, rp->data_off,
					       rp->len, rp->dst)) {
			pthread_mutex_lock(&v->lock);
			rd_piece_done(rd, rp, 0);
			pthread_mutex_unlock(&v->lock);
			continue;
		}
		if (v->cache)
			widen_to_chunks(v, rp);
		s3_submit(v->cl, &rp->req);
	}
	pthread_mutex_lock(&v->lock);
	bool last = --rd->pending == 0;

	pthread_mutex_unlock(&v->lock);
	if (!last)
		return BS3_PENDING;
	/* every piece finished already (cache hits): served at once */
	err = rd->err;
	free(rd);
	return err;
}
