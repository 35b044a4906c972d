/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libbuse internals shared by the library sources and the unit tests. */
#ifndef BUSE_LIB_INTERNAL_H
#define BUSE_LIB_INTERNAL_H

#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdbool.h>
#include <stdint.h>

#include <buse/buse.h>

#include "ring.h"
#include "sched_policy.h"

/* The library is built with -fvisibility=hidden: mark the public API. */
#define BUSE_EXPORT __attribute__((visibility("default")))

/* A message for the driver's log (log.c): stderr unless buse_set_log(). */
void buse_log_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
#define buse_log(...) buse_log_msg(__VA_ARGS__)

/* struct buse_req.state */
enum {
	REQ_IDLE,  /* not in flight */
	REQ_BUSY,  /* its callback is running */
	REQ_ASYNC, /* callback returned BUSE_ASYNC, waiting for buse_complete */
	REQ_EARLY, /* buse_complete ran before the callback returned */
	REQ_RETAINED,	   /* write-back: applied, waiting for buse_release */
	REQ_EARLY_APPLIED, /* buse_complete_applied before the callback returned */
	/*
	 * buse_release() before the write was applied: the driver handed the
	 * request to a thread that made it durable before the write callback
	 * returned BUSE_RETAIN (EARLY_RELEASED), or before a pool worker's
	 * callback returned or buse_complete_applied() ran (ASYNC_RELEASED).
	 * Applying it then releases it too: one plain completion.
	 */
	REQ_EARLY_RELEASED,
	REQ_ASYNC_RELEASED,
};

struct buse_queue;

struct buse_req {
	struct buse_queue *q;
	uint32_t tag;
	uint32_t cookie;
	uint8_t op;
	bool logged; /* write-back: a logged write with seq */
	uint64_t seq;
	unsigned flags; /* BUSE_REQ_* */
	int state; /* REQ_*, atomic */
	/* buse_params.workers: the request as the pool runs it (pool.c) */
	struct buse_sqe pool_sqe;
	struct buse_req *pool_next;
};

/* pool.c: worker threads that run blocking callbacks. */
struct buse_pool;
int buse_pool_start(struct buse_pool **p, unsigned nr);
/* Hand a request (state REQ_ASYNC, pool_sqe set) to a worker. */
void buse_pool_submit(struct buse_pool *p, struct buse_req *req);
/* Run everything queued, then join the workers and free the pool. */
void buse_pool_stop(struct buse_pool *p);
/* queue.c: run a pooled request's callback and complete it (a worker). */
void buse_pool_exec(struct buse_req *req);

/* One buse_run(): the device and its queues (buse.c). */
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

struct buse_queue {
	struct buse_dev *dev;
	unsigned qid;
	int fd;
	void *region;
	uint64_t region_size;
	struct buse_ring ring;
	struct buse_req *reqs; /* one per tag */
	uint64_t cpu_mask[BUSE_MAX_CPU_WORDS];

	/* Queue thread only: the sqes of a batch, copied out of the ring */
	struct buse_sqe *batch;
	/* ... and its own completions, posted once per batch. */
	struct buse_cqe *local;
	uint32_t nr_local;
	/* ... and write-back writes waiting for their turn (FIFO, depth). */
	struct buse_sqe *deferred;
	uint32_t def_head, nr_deferred;
	uint64_t dispatched; /* sqes consumed; read by buse_run after join */
	struct buse_sched sched; /* queue thread only */

	/* Guards the cq, the fd's commits and the fields below. */
	pthread_mutex_t lock;
	uint64_t released; /* completions posted and handed to the kernel */
	bool closed;	   /* region unmapped: drop late completions */
	bool cq_broken;	   /* the kernel stopped consuming: drop */

	pthread_t thread;
	bool thread_started;
	int exited; /* atomic; result is valid once set */
	int result;
	struct buse_queue *grave_next;
};

/*
 * queue.c: attach and map queue @qid of @d (d->queues[qid] is set even on
 * failure, for buse_queue_free()); start its thread; unmap and close it,
 * keeping the struct for late completions; free it.
 */
int buse_queue_setup(struct buse_dev *d, unsigned qid);
int buse_queue_start(struct buse_queue *q);
void buse_queue_close(struct buse_queue *q);
void buse_queue_free(struct buse_queue *q);

/*
 * complete.c.  The queue this thread serves, if it is a queue thread.
 * buse_local_push() adds a completion to the queue thread's own batch,
 * buse_flush_local() posts that batch.  buse_req_retain() applies a logged
 * write whose callback returned BUSE_RETAIN: true if it is now retained,
 * false if it was released (or completed) meanwhile.
 */
extern _Thread_local struct buse_queue *buse_cur_queue;
void buse_local_push(struct buse_queue *q, uint32_t tag, uint32_t cookie,
		     int32_t status, uint32_t flags);
void buse_flush_local(struct buse_queue *q);
bool buse_req_retain(struct buse_req *req);

/*
 * params.cpus (cpulist.c): parse "N", "N-M" and comma-separated lists of
 * them into @set; -EINVAL if malformed, empty or naming CPU_SETSIZE or
 * more.  buse_cpulist_nth() is the (n mod count)-th CPU of @set, or -1.
 */
int buse_cpulist_parse(const char *s, cpu_set_t *set);
int buse_cpulist_nth(const cpu_set_t *set, unsigned n);

/* Fill the kernel's parameters from the library's; see buse_run(). */
void buse_make_dev_params(struct buse_dev_params *kp,
			  const struct buse_params *p,
			  const struct buse_ops *ops);

/*
 * How long buse_run() waits, once the device is gone, for async requests the
 * driver has not completed before it gives up on them.  Tests shorten it.
 */
extern unsigned buse_drain_timeout_ms;

#endif /* BUSE_LIB_INTERNAL_H */
