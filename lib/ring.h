/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The daemon's side of one queue's shared region: consume sqes, produce
 * cqes.  No locking and no system calls here; the caller serialises cq
 * producers and decides when to hand completions to the kernel.
 */
#ifndef BUSE_LIB_RING_H
#define BUSE_LIB_RING_H

#include <stdbool.h>
#include <stdint.h>

#include <linux/buse.h>

struct buse_ring {
	struct buse_ring_hdr *hdr;
	struct buse_sqe *sqes;
	struct buse_cqe *cqes;
	char *base;
	uint64_t size; /* of the whole region */
	uint64_t data_off;
	uint64_t data_size;
	uint64_t log_off; /* write-back log; 0 and 0 otherwise */
	uint64_t log_size;
	uint32_t depth; /* tags: requests, then write-back log records */
	uint32_t sq_entries;
	uint32_t cq_entries;
	uint32_t sq_head; /* next sqe to consume; published by sq_commit */
	uint32_t cq_tail; /* next cqe slot; published by cq_publish */
};

/*
 * Check the layout the kernel reported in @a and set up @r over @region.
 * Returns 0 or -EPROTO if the layout is unusable.
 */
int buse_ring_init(struct buse_ring *r, void *region,
		   const struct buse_queue_attach *a);

/* The kernel's sq tail (acquire). */
uint32_t buse_ring_sq_tail(const struct buse_ring *r);
/* sqes ready up to @tail, or -EPROTO if @tail is impossible. */
int buse_ring_sq_count(const struct buse_ring *r, uint32_t tail);
/* Copy the next sqe out of shared memory and advance the local head. */
void buse_ring_sq_pop(struct buse_ring *r, struct buse_sqe *out);
/* Tell the kernel every popped sqe slot is free again (release). */
void buse_ring_sq_commit(struct buse_ring *r);

/*
 * The data buffer of a read or write: NULL unless [data_off, data_off + len)
 * lies inside the data area (the log, for a logged write).
 */
void *buse_ring_data(const struct buse_ring *r, const struct buse_sqe *sqe);

/* Free cq slots, judged by the kernel's cq head (acquire). */
uint32_t buse_ring_cq_space(const struct buse_ring *r);
/* Write one cqe; the caller checked cq_space.  Not visible until publish. */
void buse_ring_cq_put(struct buse_ring *r, uint32_t tag, uint32_t cookie,
		      int32_t status);
/* The same with BUSE_CQE_* flags. */
void buse_ring_cq_put_flags(struct buse_ring *r, uint32_t tag,
			    uint32_t cookie, int32_t status, uint32_t flags);
/* Make every cqe put so far visible to the kernel (release). */
void buse_ring_cq_publish(struct buse_ring *r);

/* 0 or a negative errno; anything else becomes -EIO. */
int32_t buse_status_clamp(int status);

#endif /* BUSE_LIB_RING_H */
