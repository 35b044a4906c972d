/* SPDX-License-Identifier: GPL-2.0 */
/*
 * BUSE: block device in userspace.  Definitions shared by the module's files.
 */
#ifndef _BUSE_H
#define _BUSE_H

#include <linux/blk-mq.h>
#include <linux/kref.h>
#include <linux/mutex.h>
#include <linux/pid.h>
#include <linux/spinlock.h>
#include <linux/wait.h>
#include <linux/workqueue.h>
#include <linux/buse.h>

#define BUSE_PART_SHIFT		4
#define BUSE_MAX_DEVS		(1U << (MINORBITS - BUSE_PART_SHIFT))

/*
 * Per-tag record of a request handed to userspace.  @key is nonzero exactly
 * while the request is owned by the daemon: (cookie << 1) | 1.  Whoever
 * moves it to zero with cmpxchg (a completion, the timeout handler or an
 * abort) owns the request and must end it; that makes a late, duplicate or
 * forged completion harmless.
 */
struct buse_slot {
	unsigned long key;
	struct request *rq;
	u32 cookie;
};

struct buse_queue {
	struct buse_dev *dev;
	unsigned int qid;

	/* The shared region (vmalloc_user, zeroed) and views into it. */
	void *region;
	size_t region_size;
	struct buse_ring_hdr *hdr;
	struct buse_sqe *sq;
	struct buse_cqe *cq;
	u8 *data;
	u32 sq_entries;
	u32 cq_entries;
	u32 sq_off;
	u32 cq_off;
	size_t data_off;
	u32 slot_size;

	/* Producer side of the sq: blk-mq may run queue_rq concurrently. */
	spinlock_t sq_lock ____cacheline_aligned_in_smp;
	u32 sq_tail;
	bool attached;		/* a daemon holds the queue fd */
	bool orphaned;		/* recoverable: waiting for a new daemon */
	bool dead;		/* the daemon went away: fail requests */
	unsigned long orphaned_at; /* jiffies */
	bool shutdown;		/* the device is being deleted */

	/* Consumer side of the cq: one SYNC at a time. */
	struct mutex cq_lock ____cacheline_aligned_in_smp;
	u32 cq_head;

	wait_queue_head_t wait;
	struct buse_slot *slots;
};

struct buse_dev {
	struct kref ref;
	struct mutex lock;	/* serialises control operations */
	u32 id;
	struct buse_dev_params params;	/* as accepted */
	bool started;
	bool deleting;
	unsigned int nr_attached;
	struct pid *daemon;

	struct delayed_work recovery_work; /* fails orphans that wait too long */

	struct blk_mq_tag_set tag_set;
	struct gendisk *disk;
	struct buse_queue *queues;
};

/* buse_dev.c */
int buse_dev_add(struct buse_dev_params *p);
int buse_dev_start(u32 id);
int buse_dev_del(u32 id);
int buse_dev_info(struct buse_dev_info *info);
int buse_dev_attach(struct buse_queue_attach *a);
struct buse_dev *buse_dev_get(u32 id);
void buse_dev_put(struct buse_dev *dev);
int buse_blk_init(void);
void buse_blk_exit(void);

/* buse_queue.c */
int buse_queue_init(struct buse_dev *dev, struct buse_queue *q,
		    unsigned int qid);
void buse_queue_free(struct buse_queue *q);
int buse_queue_open_fd(struct buse_queue *q);
blk_status_t buse_queue_rq(struct blk_mq_hw_ctx *hctx,
			   const struct blk_mq_queue_data *bd);
enum blk_eh_timer_return buse_timeout(struct request *rq);
void buse_queue_shutdown(struct buse_queue *q);
bool buse_queue_expire(struct buse_queue *q, unsigned long *next, bool now);

#endif /* _BUSE_H */
