// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Completions, from the queue thread and from any other thread.
 *
 * A queue thread collects its own completions in q->local and posts them to
 * the cq under q->lock once per batch; its next BUSE_IOC_SYNC hands them to
 * the kernel.  Any other thread posts under q->lock and then commits with a
 * SYNC without WAIT, at once or, inside buse_batch_begin/end, once per queue
 * at the outermost buse_batch_end().
 *
 * Retained writes (write-back): BUSE_RETAIN or buse_complete_applied()
 * posts a RETAIN cqe (applied, record kept), buse_release() the plain one
 * that frees the record.  The request's state (internal.h) says which of
 * them came, in whatever order the driver's threads made them.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>

#include "internal.h"
#include "sys.h"

#define CQ_FULL_RETRIES	 1000
#define BATCH_MAX_QUEUES 32

_Thread_local struct buse_queue *buse_cur_queue;

/* This thread's buse_batch_begin/end state. */
static _Thread_local unsigned batch_nest;
static _Thread_local unsigned batch_nr;
static _Thread_local struct {
	struct buse_queue *q;
	unsigned n; /* requests ended by cqes posted, not yet committed */
} batch_set[BATCH_MAX_QUEUES];

/* Hand everything posted to the kernel now.  Under q->lock. */
static int commit_locked(struct buse_queue *q)
{
	if (q->closed)
		return -ENODEV;
	if (buse_sys_ioctl(q->fd, BUSE_IOC_SYNC, 0) < 0)
		return -errno;
	return 0;
}

/* Put @n completions on the cq and publish them.  Under q->lock. */
static void post_locked(struct buse_queue *q, const struct buse_cqe *c,
			uint32_t n)
{
	struct buse_ring *r = &q->ring;
	unsigned tries;
	uint32_t i;

	if (q->closed)
		return;
	for (i = 0; i < n; i++) {
		/* cq_entries >= depth: only a broken kernel gets us here. */
		for (tries = 0; !buse_ring_cq_space(r); tries++) {
			buse_ring_cq_publish(r);
			if (q->cq_broken || tries >= CQ_FULL_RETRIES ||
			    commit_locked(q) < 0)
				goto stuck;
			if (tries)
				sched_yield();
		}
		buse_ring_cq_put_flags(r, c[i].tag, c[i].cookie, c[i].status,
				       c[i].flags);
	}
	buse_ring_cq_publish(r);
	return;
stuck:
	/* Drop rather than hang: the kernel times those requests out. */
	if (!q->cq_broken)
		buse_log("queue %u: completion ring stuck, dropping\n", q->qid);
	q->cq_broken = true;
	buse_ring_cq_publish(r);
}

/* Queue thread: post its own completions, one lock round per batch. */
void buse_flush_local(struct buse_queue *q)
{
	if (!q->nr_local)
		return;
	/* Each ends its request: retaining ones are posted at once. */
	pthread_mutex_lock(&q->lock);
	post_locked(q, q->local, q->nr_local);
	q->released += q->nr_local;
	pthread_mutex_unlock(&q->lock);
	q->nr_local = 0;
}

void buse_local_push(struct buse_queue *q, uint32_t tag, uint32_t cookie,
		       int32_t status, uint32_t flags)
{
	if (q->nr_local == q->ring.depth)
		buse_flush_local(q);
	q->local[q->nr_local++] = (struct buse_cqe){
		.tag = tag,
		.cookie = cookie,
		.status = status,
		.flags = flags,
	};
}

/*
 * Remember @q for the outermost buse_batch_end(), with @ends requests ended
 * by what was posted; false if no room.
 */
static bool batch_add(struct buse_queue *q, unsigned ends)
{
	unsigned i;

	for (i = 0; i < batch_nr; i++) {
		if (batch_set[i].q == q) {
			batch_set[i].n += ends;
			return true;
		}
	}
	if (batch_nr == BATCH_MAX_QUEUES)
		return false;
	batch_set[batch_nr].q = q;
	batch_set[batch_nr].n = ends;
	batch_nr++;
	return true;
}

/*
 * Post one completion of @req under q->lock.  @ends: it ends the request
 * (counts as released).  The tag cannot be reissued before we post.
 */
static void post_cqe_locked(struct buse_req *req, int32_t status,
			    uint32_t flags, bool ends)
{
	struct buse_queue *q = req->q;
	struct buse_cqe cqe = {
		.tag = req->tag,
		.cookie = req->cookie,
		.status = status,
		.flags = flags,
	};

	post_locked(q, &cqe, 1);
	if (q == buse_cur_queue) {
		/* The queue loop's next SYNC commits it. */
		q->released += ends;
		return;
	}
	if (!(batch_nest && batch_add(q, ends))) {
		commit_locked(q);
		q->released += ends;
	}
}

/*
 * Post the completion that ends @req, from any thread.  The queue thread's
 * own wait in its local batch (retaining ones never do: see
 * retain_transition()).
 */
static void post_cqe(struct buse_req *req, int32_t status)
{
	struct buse_queue *q = req->q;

	if (q == buse_cur_queue) {
		buse_local_push(q, req->tag, req->cookie, status, 0);
		return;
	}
	pthread_mutex_lock(&q->lock);
	post_cqe_locked(req, status, 0, true);
	pthread_mutex_unlock(&q->lock);
}

/*
 * Applying and releasing a logged write change its state and post its cqe
 * under q->lock, together: the cq then carries a write's RETAIN before its
 * release whichever threads apply and release it.  (A release overtaking
 * its RETAIN is taken by the kernel as apply-and-release, and the late
 * RETAIN, posted with the tag's cookie of that time, could mark a newer
 * write on the reissued tag applied.)  @next_of gives the next state, or
 * -1 if @req cannot move; returns the new state, or -1.
 */
static int retain_transition(struct buse_req *req, int (*next_of)(int))
{
	struct buse_queue *q = req->q;
	int s, next;

	pthread_mutex_lock(&q->lock);
	s = __atomic_load_n(&req->state, __ATOMIC_ACQUIRE);
	do {
		next = next_of(s);
		if (next < 0)
			break;
	} while (!__atomic_compare_exchange_n(&req->state, &s, next, false,
					      __ATOMIC_ACQ_REL,
					      __ATOMIC_ACQUIRE));
	/* Applied and released now: one plain completion ends it. */
	if (next == REQ_IDLE || next == REQ_EARLY)
		post_cqe_locked(req, 0, 0, true);
	else if (next == REQ_RETAINED || next == REQ_EARLY_APPLIED)
		post_cqe_locked(req, 0, BUSE_CQE_RETAIN, false);
	pthread_mutex_unlock(&q->lock);
	return next;
}

BUSE_EXPORT void buse_complete(struct buse_req *req, int status)
{
	int s, next;

	if (!req)
		return;
	s = __atomic_load_n(&req->state, __ATOMIC_ACQUIRE);
	do {
		if (s == REQ_ASYNC || s == REQ_ASYNC_RELEASED)
			next = REQ_IDLE;
		else if (s == REQ_BUSY || s == REQ_EARLY_RELEASED)
			next = REQ_EARLY; /* its callback has not returned */
		else
			goto not_in_flight;
	} while (!__atomic_compare_exchange_n(&req->state, &s, next, false,
					      __ATOMIC_ACQ_REL,
					      __ATOMIC_ACQUIRE));
	post_cqe(req, buse_status_clamp(status));
	return;

not_in_flight:
	buse_log("queue %u: tag %u completed but not in flight\n", req->q->qid,
		 req->tag);
}

static int applied_next(int s)
{
	switch (s) {
	case REQ_ASYNC:
		return REQ_RETAINED;
	case REQ_BUSY:
		return REQ_EARLY_APPLIED;
	case REQ_ASYNC_RELEASED:
		return REQ_IDLE; /* released already */
	case REQ_EARLY_RELEASED:
		return REQ_EARLY; /* and its callback has not returned */
	default:
		return -1;
	}
}

BUSE_EXPORT void buse_complete_applied(struct buse_req *req)
{
	if (!req)
		return;
	/* Not a logged write: applying it is completing it. */
	if (!req->logged) {
		buse_complete(req, 0);
		return;
	}
	if (retain_transition(req, applied_next) < 0)
		buse_log("queue %u: tag %u applied but not in flight\n",
			 req->q->qid, req->tag);
}

static int release_next(int s)
{
	switch (s) {
	case REQ_RETAINED:
		return REQ_IDLE;
	case REQ_EARLY_APPLIED:
		return REQ_EARLY; /* its callback has not returned */
	case REQ_BUSY:
		return REQ_EARLY_RELEASED; /* nor applied it yet */
	case REQ_ASYNC:
		return REQ_ASYNC_RELEASED; /* pool worker, or async */
	default:
		return -1;
	}
}

BUSE_EXPORT void buse_release(struct buse_req *req)
{
	/* Write-through, or not a logged write: nothing is retained. */
	if (!req || !req->logged)
		return;
	if (retain_transition(req, release_next) < 0)
		buse_log("queue %u: tag %u released but not retained\n",
			 req->q->qid, req->tag);
}

BUSE_EXPORT uint64_t buse_req_seq(const struct buse_req *req)
{
	return req && req->logged ? req->seq : 0;
}

BUSE_EXPORT unsigned buse_req_flags(const struct buse_req *req)
{
	return req ? req->flags : 0;
}

BUSE_EXPORT void buse_batch_begin(void)
{
	batch_nest++;
}

BUSE_EXPORT void buse_batch_end(void)
{
	unsigned i;

	if (!batch_nest || --batch_nest)
		return;
	for (i = 0; i < batch_nr; i++) {
		struct buse_queue *q = batch_set[i].q;

		pthread_mutex_lock(&q->lock);
		commit_locked(q);
		q->released += batch_set[i].n;
		pthread_mutex_unlock(&q->lock);
	}
	batch_nr = 0;
}

BUSE_EXPORT unsigned buse_req_queue(const struct buse_req *req)
{
	return req->q->qid;
}

/* The write callback returned BUSE_RETAIN. */
static int retained_next(int s)
{
	return s == REQ_BUSY ? REQ_RETAINED : -1;
}

bool buse_req_retain(struct buse_req *req)
{
	return retain_transition(req, retained_next) == REQ_RETAINED;
}
