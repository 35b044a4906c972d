// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * A queue thread: attach and map the queue, then take every request the
 * kernel publishes, call the driver's callback and complete it (complete.c),
 * one BUSE_IOC_SYNC per pass.
 *
 * Write-back ordering.  A logged write flagged BUSE_SQE_AFTER may be applied
 * once the kernel's watermark (the header's wb_applied: every write with a
 * smaller seq is applied) reaches its seq.  Until then the queue thread
 * keeps it, and the AFTER writes behind it, in q->deferred and goes on
 * serving everything else; SYNC_WAIT with wb_want set wakes it when the
 * watermark gets there.  The kernel counts applied writes over all queues
 * and all daemons, so recovery needs nothing of the old daemon.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "sys.h"

static void run(struct buse_queue *q, const struct buse_sqe *sqe);

/* Write-back: every logged write before @seq is applied (kernel's word). */
static bool wb_ready(const struct buse_queue *q, uint64_t seq)
{
	return __atomic_load_n(&q->ring.hdr->wb_applied, __ATOMIC_ACQUIRE) >=
	       seq;
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

	buse_flush_local(q);
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
		buse_local_push(q, sqe->tag, sqe->cookie, -EIO, 0);
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
		if (buse_req_retain(req))
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
	buse_local_push(q, req->tag, req->cookie, buse_status_clamp(ret), 0);
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
		buse_flush_local(q);
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
	buse_cur_queue = q;
	if (d->ops->queue_init)
		ret = d->ops->queue_init(d->priv, q->qid);
	init_done(d, ret);
	if (ret < 0) {
		q->result = ret;
	} else {
		q->result = serve(q);
		if (d->ops->queue_exit)
			d->ops->queue_exit(d->priv, q->qid);
		buse_flush_local(q);
	}
	buse_cur_queue = NULL;
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
int buse_queue_start(struct buse_queue *q)
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

int buse_queue_setup(struct buse_dev *d, unsigned qid)
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
void buse_queue_close(struct buse_queue *q)
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

void buse_queue_free(struct buse_queue *q)
{
	buse_queue_close(q);
	free(q->reqs);
	pthread_mutex_destroy(&q->lock);
	free(q);
}
