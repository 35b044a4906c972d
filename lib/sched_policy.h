/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Which scheduling class a queue thread runs in, decided from the sizes of
 * the batches it finds.  Pure logic, no system calls: the caller applies
 * the class when buse_sched_pass() says it changed.
 *
 * Why: the kernel wakes a sleeping queue thread for each request.  Pinned
 * to the submitter's CPU, a SCHED_OTHER thread preempts the submitter at
 * once and finds one request (two context switches per I/O, whatever the
 * queue depth).  A SCHED_BATCH thread is not allowed to preempt on wake-up:
 * it runs when the submitter blocks or at the next tick and finds every
 * request submitted meanwhile, which is what deep queues want; but a lone
 * request then waits for its submitter to block, which costs latency at
 * queue depth 1.  The adaptive policy stays in SCHED_BATCH while passes
 * find batches, falls back to SCHED_OTHER when they do not, and tries
 * SCHED_BATCH again now and then, less often while the tries fail.
 */
#ifndef BUSE_LIB_SCHED_H
#define BUSE_LIB_SCHED_H

#include <stdbool.h>
#include <stdint.h>

#define BUSE_LATENCY_NICE (-10)	       /* SCHED_OTHER threads: see buse.c */
#define BUSE_SCHED_WINDOW 64	       /* passes judged together */
#define BUSE_SCHED_MIN_BATCH 2	       /* mean batch that makes batching pay */
#define BUSE_SCHED_PROBE_MIN 256       /* passes in SCHED_OTHER before a try */
#define BUSE_SCHED_PROBE_MAX (1U << 16) /* ... at most, after failed tries */

struct buse_sched {
	int policy;   /* enum buse_sched_policy (include/buse/buse.h) */
	bool batch;   /* the class the thread should be in: SCHED_BATCH? */
	uint32_t passes, sqes; /* in the current window (batch only) */
	uint32_t probe_in;     /* passes left before the next try */
	uint32_t probe_every;  /* passes between tries; doubles on failure */
};

/* Start in the policy's class (adaptive: SCHED_BATCH). */
void buse_sched_init(struct buse_sched *s, int policy);

/* A pass found @n requests; true if s->batch changed. */
bool buse_sched_pass(struct buse_sched *s, uint32_t n);

#endif
