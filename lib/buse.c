// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * buse_run(): create the device, serve it with one thread per hardware
 * queue, tear it down.
 *
 * Completions.  A queue thread collects its own completions in q->local and
 * posts them to the cq under q->lock once per batch; its next BUSE_IOC_SYNC
 * hands them to the kernel.  Any other thread posts under q->lock and then
 * commits with a SYNC without WAIT, at once or, inside buse_batch_begin/end,
 * once per queue at the outermost buse_batch_end().
 *
 * Write-back ordering.  A logged write flagged BUSE_SQE_AFTER may be applied
 * once the kernel's watermark (the header's wb_applied: every write with a
 * smaller seq is applied) reaches its seq.  Until then the queue thread
 * keeps it, and the AFTER writes behind it, in q->deferred and goes on
 * serving everything else; SYNC_WAIT with wb_want set wakes it when the
 * watermark gets there.  The kernel counts applied writes over all queues
 * and all daemons, so recovery needs nothing of the old daemon.
 *
 * Lifetime.  Every consumed sqe counts in q->dispatched; its completion
 * counts in q->released once it is posted and committed.  A queue is freed
 * only when both match, so a late buse_complete() never touches freed
 * memory; queues that never drain are parked in a graveyard instead.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <sys/resource.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "sys.h"

#define CQ_FULL_RETRIES	 1000
#define BATCH_MAX_QUEUES 32

unsigned buse_drain_timeout_ms = 5000;

struct buse_dev {
	const struct buse_params *p;
	const struct buse_ops *ops;
	void *priv;
	struct buse_dev_params kp; /* as accepted by the kernel */
	int ctl;
	int efd; /* queue threads bump it when they exit */
	int sfd; /* SIGINT/SIGTERM, with handle_signals */
	int hfd; /* the same, when another thread took them (sig_handler) */
	bool added;
	bool del_sent;
	unsigned nr_queues;
	struct buse_queue **queues;

	struct buse_pool *pool; /* p->workers: runs the callbacks */
	cpu_set_t cpus;		/* p->cpus, parsed; empty if NULL */

	pthread_mutex_t init_lock;
	pthread_cond_t init_cond;
	unsigned nr_init; /* queue threads done with queue_init */
	int init_err;

};

/* The queue this thread serves, if it is a queue thread. */
static _Thread_local struct buse_queue *cur_queue;

/* This thread's buse_batch_begin/end state. */
static _Thread_local unsigned batch_nest;
static _Thread_local unsigned batch_nr;
static _Thread_local struct {
	struct buse_queue *q;
	unsigned n; /* requests ended by cqes posted, not yet committed */
} batch_set[BATCH_MAX_QUEUES];

/* Queues given up on with requests outstanding: kept, never freed. */
static pthread_mutex_t grave_lock = PTHREAD_MUTEX_INITIALIZER;
static struct buse_queue *graveyard;

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
static void flush_local(struct buse_queue *q)
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

/* Write-back: every logged write before @seq is applied (kernel's word). */
static bool wb_ready(const struct buse_queue *q, uint64_t seq)
{
	return __atomic_load_n(&q->ring.hdr->wb_applied, __ATOMIC_ACQUIRE) >=
	       seq;
}

static void local_push(struct buse_queue *q, uint32_t tag, uint32_t cookie,
		       int32_t status, uint32_t flags)
{
	if (q->nr_local == q->ring.depth)
		flush_local(q);
	q->local[q->nr_local++] = (struct buse_cqe){
		.tag = tag,
		.cookie = cookie,
		.status = status,
		.flags = flags,
	};
}

/* The request lies inside the device. */
static bool in_dev(const struct buse_queue *q, const struct buse_sqe *sqe)
{
	uint64_t size = q->dev->kp.size;

	return sqe->sector <= size >> 9 &&
	       sqe->len <= size - (sqe->sector << 9);
}

static int do_op(struct buse_queue *q, struct buse_req *req,
		 const struct buse_sqe *sqe)
{
	const struct buse_ops *ops = q->dev->ops;
	void *priv = q->dev->priv;
	uint64_t off = sqe->sector << 9;
	unsigned flags = 0;
	void *buf;

	switch (sqe->op) {
	case BUSE_OP_READ:
		if (!ops->read)
			return -EOPNOTSUPP;
		buf = buse_ring_data(&q->ring, sqe);
		if (!buf || !in_dev(q, sqe))
			return -EIO;
		return ops->read(priv, req, buf, sqe->len, off);
	case BUSE_OP_WRITE:
		if (!ops->write)
			return -EOPNOTSUPP;
		buf = buse_ring_data(&q->ring, sqe);
		if (!buf || !in_dev(q, sqe))
			return -EIO;
		if (sqe->flags & BUSE_SQE_FUA)
			flags |= BUSE_FUA;
		return ops->write(priv, req, buf, sqe->len, off, flags);
	case BUSE_OP_FLUSH:
		/*
		 * Write-back disks always get flushes; without a flush
		 * callback, applied writes are durable already.
		 */
		if (!ops->flush)
			return q->dev->kp.flags & BUSE_F_WRITE_BACK ?
				       0 :
				       -EOPNOTSUPP;
		return ops->flush(priv, req);
	case BUSE_OP_DISCARD:
		if (!ops->discard)
			return -EOPNOTSUPP;
		if (!in_dev(q, sqe))
			return -EIO;
		return ops->discard(priv, req, sqe->len, off);
	case BUSE_OP_WRITE_ZEROES:
		if (!ops->write_zeroes)
			return -EOPNOTSUPP;
		if (!in_dev(q, sqe))
			return -EIO;
		if (sqe->flags & BUSE_SQE_NOUNMAP)
			flags |= BUSE_NOUNMAP;
		return ops->write_zeroes(priv, req, sqe->len, off, flags);
	default:
		return -EOPNOTSUPP;
	}
}

static void run(struct buse_queue *q, const struct buse_sqe *sqe);
static int retain_transition(struct buse_req *req, int (*next_of)(int));

/* The write callback returned BUSE_RETAIN. */
static int retained_next(int s)
{
	return s == REQ_BUSY ? REQ_RETAINED : -1;
}

static void dispatch(struct buse_queue *q, const struct buse_sqe *sqe)
{
	q->dispatched++;
	if ((sqe->flags & BUSE_SQE_LOGGED) && (sqe->flags & BUSE_SQE_AFTER) &&
	    sqe->tag < q->ring.depth &&
	    (q->nr_deferred || !wb_ready(q, sqe->seq))) {
		/* At most one per log record: there is always room. */
		q->deferred[(q->def_head + q->nr_deferred) % q->ring.depth] =
			*sqe;
		q->nr_deferred++;
		return;
	}
	run(q, sqe);
}

/*
 * Apply the deferred writes whose turn has come, oldest first, after
 * handing our completions to the kernel (they may be what moves the
 * watermark).  True if any ran.
 */
static bool run_deferred(struct buse_queue *q)
{
	const struct buse_ops *ops = q->dev->ops;
	bool ran = false;

	flush_local(q);
	if (buse_sys_ioctl(q->fd, BUSE_IOC_SYNC, 0) < 0)
		return false;
	while (q->nr_deferred && wb_ready(q, q->deferred[q->def_head].seq)) {
		struct buse_sqe sqe = q->deferred[q->def_head];

		q->def_head = (q->def_head + 1) % q->ring.depth;
		q->nr_deferred--;
		run(q, &sqe);
		ran = true;
	}
	if (ran && ops->batch_end)
		ops->batch_end(q->dev->priv, q->qid);
	return ran;
}

static void run(struct buse_queue *q, const struct buse_sqe *sqe)
{
	struct buse_req *req;
	int ret, s;

	if (sqe->tag >= q->ring.depth) {
		local_push(q, sqe->tag, sqe->cookie, -EIO, 0);
		return;
	}
	req = &q->reqs[sqe->tag];
	if (__atomic_load_n(&req->state, __ATOMIC_ACQUIRE) != REQ_IDLE) {
		/* Completing it would complete the request in flight. */
		buse_log("queue %u: tag %u reused while in flight\n", q->qid,
			 sqe->tag);
		pthread_mutex_lock(&q->lock);
		q->released++;
		pthread_mutex_unlock(&q->lock);
		return;
	}
	req->cookie = sqe->cookie;
	req->op = sqe->op;
	req->logged = sqe->flags & BUSE_SQE_LOGGED;
	req->seq = sqe->seq;
	req->flags = 0;
	if (sqe->flags & BUSE_SQE_REPLAYED)
		req->flags |= BUSE_REQ_REPLAYED;
	if (sqe->flags & BUSE_SQE_APPLIED_BEFORE)
		req->flags |= BUSE_REQ_APPLIED_BEFORE;
	if (q->dev->pool) {
		/* A worker calls the callback and completes it (pool.c). */
		req->pool_sqe = *sqe;
		__atomic_store_n(&req->state, REQ_ASYNC, __ATOMIC_RELEASE);
		buse_pool_submit(q->dev->pool, req);
		return;
	}
	__atomic_store_n(&req->state, REQ_BUSY, __ATOMIC_RELAXED);

	ret = do_op(q, req, sqe);

	s = REQ_BUSY;
	if (ret == BUSE_ASYNC) {
		if (__atomic_compare_exchange_n(&req->state, &s, REQ_ASYNC,
						false, __ATOMIC_ACQ_REL,
						__ATOMIC_ACQUIRE))
			return;
		/* buse_complete() already ran (REQ_EARLY), only
		 * buse_complete_applied() (REQ_EARLY_APPLIED), or only
		 * buse_release() (REQ_EARLY_RELEASED). */
		__atomic_store_n(&req->state,
				 s == REQ_EARLY_APPLIED	 ? REQ_RETAINED :
				 s == REQ_EARLY_RELEASED ? REQ_ASYNC_RELEASED :
							   REQ_IDLE,
				 __ATOMIC_RELEASE);
		return;
	}
	/* Only a logged write can be retained; else it means success. */
	if (ret == BUSE_RETAIN && !req->logged)
		ret = 0;
	if (ret == BUSE_RETAIN) {
		if (retain_transition(req, retained_next) == REQ_RETAINED)
			return;
		s = __atomic_load_n(&req->state, __ATOMIC_ACQUIRE);
		if (s != REQ_EARLY_RELEASED) {
			buse_log("queue %u: tag %u completed while retained\n",
				 q->qid, req->tag);
			__atomic_store_n(&req->state, REQ_IDLE,
					 __ATOMIC_RELEASE);
			return;
		}
		/* Durable already: applied and released at once, below. */
		ret = 0;
	}
	if (!__atomic_compare_exchange_n(&req->state, &s, REQ_IDLE, false,
					 __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
		__atomic_store_n(&req->state, REQ_IDLE, __ATOMIC_RELEASE);
		/* Released, then a plain status: that status ends it. */
		if (s != REQ_EARLY_RELEASED) {
			buse_log("queue %u: tag %u completed twice\n", q->qid,
				 req->tag);
			return;
		}
	}
	local_push(q, req->tag, req->cookie, buse_status_clamp(ret), 0);
}

void buse_pool_exec(struct buse_req *req)
{
	int ret = do_op(req->q, req, &req->pool_sqe);

	/* As in run(); the request is REQ_ASYNC while the callback runs. */
	if (ret == BUSE_ASYNC)
		return;
	if (ret == BUSE_RETAIN && req->logged)
		buse_complete_applied(req);
	else
		buse_complete(req, ret == BUSE_RETAIN ? 0 : ret);
}

/* Move the queue thread to the class q->sched asks for; see sched_policy.h. */
static void apply_sched(struct buse_queue *q)
{
	struct sched_param sp = {0};

	/* Best effort: a seccomp or container policy may refuse it. */
	if (sched_setscheduler(0, q->sched.batch ? SCHED_BATCH : SCHED_OTHER,
			       &sp) < 0) {
		buse_sched_init(&q->sched, BUSE_SCHED_LATENCY);
		return;
	}
	/*
	 * In SCHED_OTHER, whether the woken thread preempts the submitter
	 * depends on their CPU use so far; a higher weight makes it do so
	 * reliably, so a lone request is served at once instead of after the
	 * submitter sleeps and is woken again.  Needs CAP_SYS_NICE; without
	 * it the thread stays at nice 0.
	 */
	(void)setpriority(PRIO_PROCESS, (id_t)gettid(),
			  q->sched.batch ? 0 : BUSE_LATENCY_NICE);
}

/*
 * Handle every sqe the kernel has published.  The slots are handed back
 * before any callback runs: a tag can then only be reissued (its completion
 * consumed) after its sqe left the ring, so with sq_entries >= depth the
 * kernel always finds room even when completions overtake the batch.
 */
static int process(struct buse_queue *q)
{
	const struct buse_ops *ops = q->dev->ops;
	int n, i;

	n = buse_ring_sq_count(&q->ring, buse_ring_sq_tail(&q->ring));
	if (n < 0) {
		buse_log("queue %u: corrupt submission ring\n", q->qid);
		return n;
	}
	for (i = 0; i < n; i++)
		buse_ring_sq_pop(&q->ring, &q->batch[i]);
	buse_ring_sq_commit(&q->ring);
	if (buse_sched_pass(&q->sched, n))
		apply_sched(q);
	for (i = 0; i < n; i++)
		dispatch(q, &q->batch[i]);
	if (ops->batch_end)
		ops->batch_end(q->dev->priv, q->qid);
	return 0;
}

/*
 * Busy-poll (params.poll_us): after a batch, hand the completions over
 * without sleeping and watch the submission ring for a while, yielding the
 * CPU (often the submitter's) between looks.  Requests found this way cost
 * no wake-up, since the kernel only wakes sleepers, so batches grow under
 * load; an idle queue soon falls back to sleeping.  True if there is work.
 */
static bool poll_sq(struct buse_queue *q)
{
	uint32_t us = q->dev->p->poll_us;
	struct timespec start, now;

	if (!us || buse_sys_ioctl(q->fd, BUSE_IOC_SYNC, 0) < 0)
		return false;
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		if (buse_ring_sq_tail(&q->ring) != q->ring.sq_head)
			return true;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if ((now.tv_sec - start.tv_sec) * 1000000 +
			    (now.tv_nsec - start.tv_nsec) / 1000 >=
		    us)
			return false;
		sched_yield();
	}
}

/* The queue loop: 0 once the device is deleted, else a negative errno. */
static int serve(struct buse_queue *q)
{
	int ret;

	for (;;) {
		flush_local(q);
		if (q->nr_deferred && run_deferred(q))
			continue;
		if (poll_sq(q)) {
			ret = process(q);
			if (ret < 0)
				return ret;
			continue;
		}
		if (q->ring.log_size)
			__atomic_store_n(&q->ring.hdr->wb_want,
					 q->nr_deferred ?
						 q->deferred[q->def_head].seq :
						 0,
					 __ATOMIC_RELAXED);
		ret = buse_sys.ioctl(q->fd, BUSE_IOC_SYNC, BUSE_SYNC_WAIT);
		if (ret < 0) {
			ret = errno;
			if (ret == EINTR || ret == EAGAIN)
				continue;
			if (ret == ENODEV || ret == ESHUTDOWN)
				return 0;
			if (ret == ETIMEDOUT)
				buse_log("queue %u: a request was not completed "
					 "within the timeout; the kernel failed "
					 "the queue\n",
					 q->qid);
			else
				buse_log("queue %u: %s\n", q->qid,
					 strerror(ret));
			return -ret;
		}
		ret = process(q);
		if (ret < 0)
			return ret;
	}
}

/*
 * On the CPU params.cpus gives this queue, else on the queue's own CPUs.
 * The latter is best effort: a cpuset may forbid some of them.
 */
static void pin_thread(const struct buse_queue *q)
{
	int chosen = buse_cpulist_nth(&q->dev->cpus, q->qid);
	cpu_set_t set;
	unsigned cpu;

	CPU_ZERO(&set);
	if (chosen >= 0) {
		CPU_SET(chosen, &set);
	} else if (q->dev->p->pin_threads) {
		for (cpu = 0; cpu < BUSE_MAX_CPU_WORDS * 64 && cpu < CPU_SETSIZE;
		     cpu++)
			if (q->cpu_mask[cpu / 64] >> (cpu % 64) & 1)
				CPU_SET(cpu, &set);
	}
	if (CPU_COUNT(&set) &&
	    pthread_setaffinity_np(pthread_self(), sizeof(set), &set) &&
	    chosen >= 0)
		buse_log("queue %u: cannot run on CPU %d\n", q->qid, chosen);
}

static void init_done(struct buse_dev *d, int err)
{
	pthread_mutex_lock(&d->init_lock);
	d->nr_init++;
	if (err < 0 && !d->init_err)
		d->init_err = err;
	pthread_cond_broadcast(&d->init_cond);
	pthread_mutex_unlock(&d->init_lock);
}

static void *queue_thread(void *arg)
{
	struct buse_queue *q = arg;
	struct buse_dev *d = q->dev;
	uint64_t one = 1;
	char name[16];
	int ret = 0;

	snprintf(name, sizeof(name), "buse%u-q%u", d->kp.dev_id, q->qid);
	pthread_setname_np(pthread_self(), name);
	/*
	 * Memory reclaim may wait for this thread's writes: let it allocate
	 * without recursing into I/O.  Needs CAP_SYS_RESOURCE; best effort.
	 */
	(void)prctl(PR_SET_IO_FLUSHER, 1, 0, 0, 0);
	pin_thread(q);
	buse_sched_init(&q->sched, d->p->sched);
	apply_sched(q);
	cur_queue = q;
	if (d->ops->queue_init)
		ret = d->ops->queue_init(d->priv, q->qid);
	init_done(d, ret);
	if (ret < 0) {
		q->result = ret;
	} else {
		q->result = serve(q);
		if (d->ops->queue_exit)
			d->ops->queue_exit(d->priv, q->qid);
		flush_local(q);
	}
	cur_queue = NULL;
	/* Writes still deferred are dropped with the queue. */
	pthread_mutex_lock(&q->lock);
	q->released += q->nr_deferred;
	pthread_mutex_unlock(&q->lock);
	q->nr_deferred = 0;
	__atomic_store_n(&q->exited, 1, __ATOMIC_RELEASE);
	if (write(d->efd, &one, sizeof(one)) < 0)
		buse_log("queue %u: eventfd: %s\n", q->qid, strerror(errno));
	return NULL;
}

/* Queue threads never take SIGINT/SIGTERM: the application's threads do. */
static int start_thread(struct buse_queue *q)
{
	sigset_t block, old;
	int ret;

	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &block, &old);
	ret = pthread_create(&q->thread, NULL, queue_thread, q);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (ret)
		return -ret;
	q->thread_started = true;
	return 0;
}

static int queue_setup(struct buse_dev *d, unsigned qid)
{
	struct buse_queue_attach a;
	struct buse_queue *q;
	void *region;
	uint32_t tag;
	int ret;

	q = calloc(1, sizeof(*q));
	if (!q)
		return -ENOMEM;
	q->dev = d;
	q->qid = qid;
	q->fd = -1;
	pthread_mutex_init(&q->lock, NULL);
	d->queues[qid] = q;

	memset(&a, 0, sizeof(a));
	a.dev_id = d->kp.dev_id;
	a.qid = qid;
	if (buse_sys_ioctl(d->ctl, BUSE_CTL_ATTACH_QUEUE,
			   (unsigned long)(uintptr_t)&a) < 0) {
		ret = -errno;
		buse_log("attaching queue %u: %s\n", qid, strerror(-ret));
		return ret;
	}
	q->fd = a.fd;
	if (a.fd < 0 || !a.region_size || a.region_size > SIZE_MAX)
		return -EPROTO;
	region = buse_sys.mmap(NULL, a.region_size, PROT_READ | PROT_WRITE,
			       MAP_SHARED, a.fd, 0);
	if (region == MAP_FAILED) {
		ret = -errno;
		buse_log("mapping queue %u: %s\n", qid, strerror(-ret));
		return ret;
	}
	q->region = region;
	q->region_size = a.region_size;
	ret = buse_ring_init(&q->ring, region, &a);
	if (ret) {
		buse_log("queue %u: unusable ring layout\n", qid);
		return ret;
	}
	/* Tags of requests, then of write-back log records. */
	q->reqs = calloc(q->ring.depth, sizeof(*q->reqs));
	q->local = calloc(q->ring.depth, sizeof(*q->local));
	q->batch = calloc(a.sq_entries, sizeof(*q->batch));
	q->deferred = calloc(q->ring.depth, sizeof(*q->deferred));
	if (!q->reqs || !q->local || !q->batch || !q->deferred)
		return -ENOMEM;
	for (tag = 0; tag < q->ring.depth; tag++) {
		q->reqs[tag].q = q;
		q->reqs[tag].tag = tag;
	}
	memcpy(q->cpu_mask, a.cpu_mask, sizeof(q->cpu_mask));
	return 0;
}

/* Unmap and close; the struct itself stays for late completions. */
static void queue_close(struct buse_queue *q)
{
	if (q->region)
		buse_sys.munmap(q->region, q->region_size);
	q->region = NULL;
	if (q->fd >= 0)
		buse_sys.close(q->fd);
	q->fd = -1;
	free(q->local);
	q->local = NULL;
	free(q->batch);
	q->batch = NULL;
	free(q->deferred);
	q->deferred = NULL;
}

static void queue_free(struct buse_queue *q)
{
	queue_close(q);
	free(q->reqs);
	pthread_mutex_destroy(&q->lock);
	free(q);
}

static void timespec_add_ms(struct timespec *ts, unsigned ms)
{
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (long)(ms % 1000) * 1000000;
	if (ts->tv_nsec >= 1000000000) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000;
	}
}

static bool time_after(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec > b->tv_sec ||
	       (a->tv_sec == b->tv_sec && a->tv_nsec > b->tv_nsec);
}

/*
 * Wait for async requests the driver still holds.  False if it gave up: then
 * the queue is closed and late completions are dropped.
 */
static bool queue_drain(struct buse_queue *q, const struct timespec *deadline)
{
	const struct timespec tick = {0, 1000000};
	struct timespec now;
	bool done;

	for (;;) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		pthread_mutex_lock(&q->lock);
		done = q->released >= q->dispatched;
		if (!done && time_after(&now, deadline))
			q->closed = true;
		pthread_mutex_unlock(&q->lock);
		if (done)
			return true;
		if (q->closed)
			return false;
		nanosleep(&tick, NULL);
	}
}

static void del_device(struct buse_dev *d)
{
	if (d->del_sent)
		return;
	d->del_sent = true;
	if (buse_sys_ioctl(d->ctl, BUSE_CTL_DEL, d->kp.dev_id) < 0 &&
	    errno != ENOENT) {
		buse_log("deleting device %u: %s\n", d->kp.dev_id,
			 strerror(errno));
		d->del_sent = false; /* another signal tries again */
	}
}

/*
 * Taking over a recoverable device: its accepted parameters come from the
 * kernel, and a failure leaves it to wait for the next daemon (no DEL).
 */
static int recover_params(struct buse_dev *d)
{
	struct buse_dev_info info;

	memset(&info, 0, sizeof(info));
	info.dev_id = d->p->dev_id;
	if (buse_sys_ioctl(d->ctl, BUSE_CTL_GET_INFO,
			   (unsigned long)(uintptr_t)&info) < 0) {
		buse_log("device %u: %s\n", d->p->dev_id, strerror(errno));
		return -errno;
	}
	if (!(info.params.flags & BUSE_F_RECOVERABLE)) {
		buse_log("device %u is not recoverable\n", d->p->dev_id);
		return -EINVAL;
	}
	d->kp = info.params;
	return 0;
}

static int dev_create(struct buse_dev *d, const sigset_t *sigs)
{
	unsigned i, started = 0;
	int ret = 0;

	d->ctl = buse_sys.open(BUSE_CONTROL_PATH, O_RDWR | O_CLOEXEC);
	if (d->ctl < 0) {
		ret = -errno;
		buse_log("%s: %s%s\n", BUSE_CONTROL_PATH, strerror(-ret),
			 ret == -ENOENT ? " (is buse.ko loaded?)" : "");
		return ret;
	}
	if (d->p->recover) {
		ret = recover_params(d);
		if (ret)
			return ret;
	} else if (buse_sys_ioctl(d->ctl, BUSE_CTL_ADD,
				  (unsigned long)(uintptr_t)&d->kp) < 0) {
		ret = -errno;
		/* Name the budget: ENOMEM alone reads like a failed malloc. */
		buse_log("adding device: %s%s\n", strerror(-ret),
			 ret == -ENOMEM ?
				 " (all devices' queues together may pin at"
				 " most half of RAM, or the module's"
				 " pinned_limit_mb)" :
			 ret == -EEXIST && d->kp.serial[0] ?
				 " (the device id or the name is taken)" :
			 ret == -EINVAL && d->kp.serial[0] ?
				 " (is the name 1 to 31 of A-Z a-z 0-9 . _ -?)" :
				 "");
		return ret;
	} else {
		d->added = true;
	}
	if (!d->kp.nr_queues || d->kp.nr_queues > BUSE_MAX_QUEUES)
		return -EPROTO;
	d->queues = calloc(d->kp.nr_queues, sizeof(*d->queues));
	if (!d->queues)
		return -ENOMEM;
	d->nr_queues = d->kp.nr_queues;
	for (i = 0; i < d->nr_queues; i++) {
		ret = queue_setup(d, i);
		if (ret)
			return ret;
	}
	d->efd = eventfd(0, EFD_CLOEXEC);
	if (d->efd < 0)
		return -errno;
	if (d->p->handle_signals) {
		/*
		 * Non-blocking: poll() may see a signal pending that a driver
		 * thread with it unblocked then takes (sig_handler), and a
		 * blocking read would wait for the next one forever.
		 */
		d->sfd = signalfd(-1, sigs, SFD_CLOEXEC | SFD_NONBLOCK);
		if (d->sfd < 0)
			return -errno;
	}
	if (d->p->workers) {
		ret = buse_pool_start(&d->pool, d->p->workers);
		if (ret) {
			buse_log("starting %u workers: %s\n", d->p->workers,
				 strerror(-ret));
			return ret;
		}
	}

	for (i = 0; i < d->nr_queues && !ret; i++) {
		ret = start_thread(d->queues[i]);
		if (!ret)
			started++;
	}
	/* Every thread must be serving before START reads the partitions. */
	pthread_mutex_lock(&d->init_lock);
	while (d->nr_init < started)
		pthread_cond_wait(&d->init_cond, &d->init_lock);
	if (!ret)
		ret = d->init_err;
	pthread_mutex_unlock(&d->init_lock);
	if (ret)
		return ret;

	/* A recovered device is usually live already. */
	if (buse_sys_ioctl(d->ctl, BUSE_CTL_START, d->kp.dev_id) < 0 &&
	    !(d->p->recover && errno == EALREADY)) {
		ret = -errno;
		buse_log("starting device %u: %s\n", d->kp.dev_id,
			 strerror(-ret));
		return ret;
	}
	return 0;
}

/*
 * SIGINT/SIGTERM are blocked in buse_run()'s thread and read from its
 * signalfd, but a thread the driver started before buse_run() does not
 * block them, and the kernel may deliver them there, where the default
 * action would kill the process with the device still up.  While
 * buse_run() serves, a process-wide handler (installed only over the
 * default action) forwards such a signal to the main loop instead.
 */
static _Atomic int sig_fd = -1;

static void sig_handler(int sig)
{
	int fd = atomic_load(&sig_fd), saved = errno;
	uint64_t one = 1;

	(void)sig;
	/* Async-signal-safe; a full eventfd already says "delete". */
	if (fd >= 0 && write(fd, &one, sizeof(one)) < 0)
		one = 0;
	errno = saved;
}

struct sig_saved {
	struct sigaction act[2];
	bool set[2];
};

static void sig_install(struct buse_dev *d, struct sig_saved *sv)
{
	static const int sigs[2] = {SIGINT, SIGTERM};
	struct sigaction sa;
	int expect = -1, i;

	memset(sv, 0, sizeof(*sv));
	d->hfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	/* One buse_run() at a time owns the handler; others keep signalfd. */
	if (d->hfd < 0 ||
	    !atomic_compare_exchange_strong(&sig_fd, &expect, d->hfd))
		return;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = sig_handler;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	for (i = 0; i < 2; i++) {
		if (sigaction(sigs[i], NULL, &sv->act[i]) ||
		    sv->act[i].sa_handler != SIG_DFL)
			continue; /* the application handles it itself */
		sv->set[i] = !sigaction(sigs[i], &sa, NULL);
	}
}

static void sig_restore(struct buse_dev *d, const struct sig_saved *sv)
{
	static const int sigs[2] = {SIGINT, SIGTERM};
	int expect = d->hfd, i;

	for (i = 0; i < 2; i++)
		if (sv->set[i])
			sigaction(sigs[i], &sv->act[i], NULL);
	if (d->hfd >= 0) {
		atomic_compare_exchange_strong(&sig_fd, &expect, -1);
		close(d->hfd);
		d->hfd = -1;
	}
}

/* Until every queue thread is gone; deletes the device on a signal. */
static int dev_wait(struct buse_dev *d)
{
	struct pollfd pfd[3] = {
		{.fd = d->efd, .events = POLLIN},
		{.fd = d->sfd, .events = POLLIN},
		{.fd = d->hfd, .events = POLLIN},
	};
	struct signalfd_siginfo si;
	unsigned i, exited;
	uint64_t cnt;
	int ret = 0;

	for (;;) {
		exited = 0;
		for (i = 0; i < d->nr_queues; i++) {
			struct buse_queue *q = d->queues[i];

			if (!__atomic_load_n(&q->exited, __ATOMIC_ACQUIRE))
				continue;
			exited++;
			if (q->result < 0 && !ret)
				ret = q->result;
		}
		/* A queue failed: take the device down to stop the others. */
		if (ret < 0)
			del_device(d);
		if (exited == d->nr_queues)
			return ret;

		if (poll(pfd, 3, -1) < 0) {
			if (errno == EINTR)
				continue;
			ret = -errno;
			buse_log("poll: %s\n", strerror(-ret));
			continue;
		}
		if (pfd[0].revents && read(d->efd, &cnt, sizeof(cnt)) < 0 &&
		    errno != EAGAIN)
			buse_log("eventfd: %s\n", strerror(errno));
		if (d->sfd >= 0 && pfd[1].revents &&
		    read(d->sfd, &si, sizeof(si)) == sizeof(si))
			del_device(d);
		if (d->hfd >= 0 && pfd[2].revents &&
		    read(d->hfd, &cnt, sizeof(cnt)) == sizeof(cnt))
			del_device(d);
	}
}

static void dev_destroy(struct buse_dev *d)
{
	struct timespec deadline;
	unsigned i;

	for (i = 0; i < d->nr_queues; i++)
		if (d->queues[i] && d->queues[i]->thread_started)
			pthread_join(d->queues[i]->thread, NULL);
	/* No queue thread hands out more: run and complete what is left. */
	buse_pool_stop(d->pool);
	d->pool = NULL;

	clock_gettime(CLOCK_MONOTONIC, &deadline);
	timespec_add_ms(&deadline, buse_drain_timeout_ms);
	for (i = 0; i < d->nr_queues; i++) {
		struct buse_queue *q = d->queues[i];

		if (!q)
			continue;
		if (queue_drain(q, &deadline)) {
			queue_free(q);
			continue;
		}
		buse_log("queue %u: %llu requests never completed\n", q->qid,
			 (unsigned long long)(q->dispatched - q->released));
		queue_close(q);
		pthread_mutex_lock(&grave_lock);
		q->grave_next = graveyard;
		graveyard = q;
		pthread_mutex_unlock(&grave_lock);
	}
	free(d->queues);
	if (d->sfd >= 0)
		close(d->sfd);
	if (d->efd >= 0)
		close(d->efd);
	if (d->ctl >= 0)
		buse_sys.close(d->ctl);
	pthread_cond_destroy(&d->init_cond);
	pthread_mutex_destroy(&d->init_lock);
}

/* params.cpus: well formed, and only CPUs this process may run on. */
static int cpus_check(const char *list, cpu_set_t *set)
{
	cpu_set_t allowed, both;

	if (buse_cpulist_parse(list, set)) {
		buse_log("cpus \"%s\": not a CPU list\n", list);
		return -EINVAL;
	}
	if (sched_getaffinity(0, sizeof(allowed), &allowed))
		return 0; /* cannot tell: pinning reports what fails */
	CPU_AND(&both, set, &allowed);
	if (!CPU_EQUAL(&both, set)) {
		buse_log("cpus \"%s\": this process may not run on all of "
			 "them\n",
			 list);
		return -EINVAL;
	}
	return 0;
}

BUSE_EXPORT int buse_run(const struct buse_params *p,
			 const struct buse_ops *ops, void *priv)
{
	struct buse_dev d;
	sigset_t sigs, old;
	struct sig_saved sv;
	int ret;

	if (!p || !ops || !ops->read || p->sched > BUSE_SCHED_THROUGHPUT ||
	    p->workers > BUSE_MAX_WORKERS)
		return -EINVAL;
	memset(&d, 0, sizeof(d));
	if (p->cpus && cpus_check(p->cpus, &d.cpus))
		return -EINVAL;
	d.p = p;
	d.ops = ops;
	d.priv = priv;
	d.ctl = d.efd = d.sfd = d.hfd = -1;
	pthread_mutex_init(&d.init_lock, NULL);
	pthread_cond_init(&d.init_cond, NULL);
	buse_make_dev_params(&d.kp, p, ops);

	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	/* From here on the signals queue up for our signalfd. */
	if (p->handle_signals) {
		pthread_sigmask(SIG_BLOCK, &sigs, &old);
		sig_install(&d, &sv);
	}

	ret = dev_create(&d, &sigs);
	if (!ret) {
		if (ops->started)
			ops->started(priv, d.kp.dev_id);
		ret = dev_wait(&d);
	} else if (d.added) {
		del_device(&d);
	}
	dev_destroy(&d);

	if (p->handle_signals) {
		sig_restore(&d, &sv);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
	}
	return ret;
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
	if (q == cur_queue) {
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

	if (q == cur_queue) {
		local_push(q, req->tag, req->cookie, status, 0);
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
