// SPDX-License-Identifier: LGPL-2.1-or-later
/* The queue threads' scheduling class; see sched_policy.h for why. */
#include "sched_policy.h"

#include <buse/buse.h>

void buse_sched_init(struct buse_sched *s, int policy)
{
	s->policy = policy;
	s->batch = policy != BUSE_SCHED_LATENCY;
	s->passes = 0;
	s->sqes = 0;
	s->probe_every = BUSE_SCHED_PROBE_MIN;
	s->probe_in = s->probe_every;
}

bool buse_sched_pass(struct buse_sched *s, uint32_t n)
{
	if (s->policy != BUSE_SCHED_ADAPTIVE)
		return false;
	if (!s->batch) {
		if (--s->probe_in)
			return false;
		s->batch = true;
		s->passes = 0;
		s->sqes = 0;
		return true;
	}
	s->passes++;
	s->sqes += n;
	if (s->passes < BUSE_SCHED_WINDOW)
		return false;
	if (s->sqes >= BUSE_SCHED_MIN_BATCH * s->passes) {
		/* Batching pays: stay, and try soon again if it stops. */
		s->probe_every = BUSE_SCHED_PROBE_MIN;
		s->passes = 0;
		s->sqes = 0;
		return false;
	}
	s->batch = false;
	s->probe_in = s->probe_every;
	if (s->probe_every < BUSE_SCHED_PROBE_MAX)
		s->probe_every *= 2;
	return true;
}
