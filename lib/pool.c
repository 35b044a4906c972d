// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Worker threads for drivers with blocking callbacks (buse_params.workers):
 * a queue thread hands each request to the pool instead of calling its
 * callback, and keeps serving; a worker calls the callback, which may block,
 * and completes the request from its return value, as buse_complete()
 * would.  Completions a worker makes in one go are batched per queue.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>

#include "internal.h"

#define POOL_BATCH 64 /* requests a worker runs between two batch ends */

struct buse_pool {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct buse_req *head, **tail; /* FIFO through req->pool_next */
	bool stop;
	unsigned nr;
	pthread_t threads[];
};

static struct buse_req *take_locked(struct buse_pool *p)
{
	struct buse_req *req = p->head;

	if (req) {
		p->head = req->pool_next;
		if (!p->head)
			p->tail = &p->head;
	}
	return req;
}

static void *worker(void *arg)
{
	struct buse_pool *p = arg;
	struct buse_req *req;
	unsigned n;

	for (;;) {
		pthread_mutex_lock(&p->lock);
		while (!p->head && !p->stop)
			pthread_cond_wait(&p->cond, &p->lock);
		req = take_locked(p);
		pthread_mutex_unlock(&p->lock);
		if (!req)
			return NULL; /* stopping, and nothing is left */
		/* Whatever is already queued completes in one batch. */
		buse_batch_begin();
		for (n = 0; req && n < POOL_BATCH; n++) {
			buse_pool_exec(req);
			pthread_mutex_lock(&p->lock);
			req = n + 1 < POOL_BATCH ? take_locked(p) : NULL;
			pthread_mutex_unlock(&p->lock);
		}
		buse_batch_end();
	}
}

int buse_pool_start(struct buse_pool **out, unsigned nr)
{
	struct buse_pool *p;
	sigset_t block, old;
	unsigned i;
	int ret = 0;

	*out = NULL;
	p = calloc(1, sizeof(*p) + nr * sizeof(p->threads[0]));
	if (!p)
		return -ENOMEM;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
	p->tail = &p->head;
	/* Like queue threads, workers leave SIGINT/SIGTERM to buse_run(). */
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &block, &old);
	for (i = 0; i < nr; i++) {
		ret = -pthread_create(&p->threads[i], NULL, worker, p);
		if (ret)
			break;
		p->nr++;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (ret) {
		buse_pool_stop(p);
		return ret;
	}
	*out = p;
	return 0;
}

void buse_pool_submit(struct buse_pool *p, struct buse_req *req)
{
	req->pool_next = NULL;
	pthread_mutex_lock(&p->lock);
	*p->tail = req;
	p->tail = &req->pool_next;
	pthread_cond_signal(&p->cond);
	pthread_mutex_unlock(&p->lock);
}

void buse_pool_stop(struct buse_pool *p)
{
	unsigned i;

	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	p->stop = true;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
	/* Each worker runs what is queued before it sees the stop. */
	for (i = 0; i < p->nr; i++)
		pthread_join(p->threads[i], NULL);
	pthread_cond_destroy(&p->cond);
	pthread_mutex_destroy(&p->lock);
	free(p);
}
