// SPDX-License-Identifier: LGPL-2.1-or-later
#include <errno.h>
#include <string.h>

#include "ring.h"

#define MAX_ERRNO 4095

static bool is_pow2(uint32_t v)
{
	return v && !(v & (v - 1));
}

/* [off, off + len) inside [lo, hi), without overflow. */
static bool range_in(uint64_t off, uint64_t len, uint64_t lo, uint64_t hi)
{
	return off >= lo && off <= hi && len <= hi - off;
}

int buse_ring_init(struct buse_ring *r, void *region,
		   const struct buse_queue_attach *a)
{
	uint64_t hdr_end = sizeof(struct buse_ring_hdr);

	memset(r, 0, sizeof(*r));
	if (!region || !a->region_size || !is_pow2(a->sq_entries) ||
	    !is_pow2(a->cq_entries) || !a->depth || a->depth > BUSE_MAX_DEPTH ||
	    a->log_recs > BUSE_MAX_LOG_RECS ||
	    a->cq_entries < a->depth + a->log_recs)
		return -EPROTO;
	if (a->sq_off % _Alignof(struct buse_sqe) ||
	    a->cq_off % _Alignof(struct buse_cqe))
		return -EPROTO;
	if (!range_in(a->sq_off,
		      (uint64_t)a->sq_entries * sizeof(struct buse_sqe),
		      hdr_end, a->region_size) ||
	    !range_in(a->cq_off,
		      (uint64_t)a->cq_entries * sizeof(struct buse_cqe),
		      hdr_end, a->region_size) ||
	    !range_in(a->data_off, a->data_size, hdr_end, a->region_size) ||
	    !range_in(a->log_off, a->log_size, 0, a->region_size))
		return -EPROTO;

	r->base = region;
	r->hdr = region;
	r->sqes = (struct buse_sqe *)(r->base + a->sq_off);
	r->cqes = (struct buse_cqe *)(r->base + a->cq_off);
	r->size = a->region_size;
	r->data_off = a->data_off;
	r->data_size = a->data_size;
	r->log_off = a->log_off;
	r->log_size = a->log_size;
	r->depth = a->depth + a->log_recs;
	r->sq_entries = a->sq_entries;
	r->cq_entries = a->cq_entries;
	/* Pick up where the indices are: they need not start at zero. */
	r->sq_head = __atomic_load_n(&r->hdr->sq_head, __ATOMIC_ACQUIRE);
	r->cq_tail = __atomic_load_n(&r->hdr->cq_tail, __ATOMIC_ACQUIRE);
	return 0;
}

uint32_t buse_ring_sq_tail(const struct buse_ring *r)
{
	return __atomic_load_n(&r->hdr->sq_tail, __ATOMIC_ACQUIRE);
}

int buse_ring_sq_count(const struct buse_ring *r, uint32_t tail)
{
	uint32_t n = tail - r->sq_head;

	return n > r->sq_entries ? -EPROTO : (int)n;
}

void buse_ring_sq_pop(struct buse_ring *r, struct buse_sqe *out)
{
	/* A private copy: the shared entry may be rewritten once we move on. */
	memcpy(out, &r->sqes[r->sq_head & (r->sq_entries - 1)], sizeof(*out));
	r->sq_head++;
}

void buse_ring_sq_commit(struct buse_ring *r)
{
	__atomic_store_n(&r->hdr->sq_head, r->sq_head, __ATOMIC_RELEASE);
}

void *buse_ring_data(const struct buse_ring *r, const struct buse_sqe *sqe)
{
	uint64_t lo = r->data_off, size = r->data_size;

	if (sqe->flags & BUSE_SQE_LOGGED) {
		lo = r->log_off;
		size = r->log_size;
	}
	if (!size || !range_in(sqe->data_off, sqe->len, lo, lo + size))
		return NULL;
	return r->base + sqe->data_off;
}

uint32_t buse_ring_cq_space(const struct buse_ring *r)
{
	uint32_t head = __atomic_load_n(&r->hdr->cq_head, __ATOMIC_ACQUIRE);
	uint32_t used = r->cq_tail - head;

	/* A head ahead of our tail is nonsense: treat the ring as full. */
	return used >= r->cq_entries ? 0 : r->cq_entries - used;
}

void buse_ring_cq_put_flags(struct buse_ring *r, uint32_t tag,
			    uint32_t cookie, int32_t status, uint32_t flags)
{
	struct buse_cqe *c = &r->cqes[r->cq_tail & (r->cq_entries - 1)];

	c->tag = tag;
	c->cookie = cookie;
	c->status = status;
	c->flags = flags;
	r->cq_tail++;
}

void buse_ring_cq_put(struct buse_ring *r, uint32_t tag, uint32_t cookie,
		      int32_t status)
{
	buse_ring_cq_put_flags(r, tag, cookie, status, 0);
}

void buse_ring_cq_publish(struct buse_ring *r)
{
	__atomic_store_n(&r->hdr->cq_tail, r->cq_tail, __ATOMIC_RELEASE);
}

int32_t buse_status_clamp(int status)
{
	if (status == 0 || (status < 0 && status >= -MAX_ERRNO))
		return status;
	return -EIO;
}
