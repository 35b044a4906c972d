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
	unsigned long given;	/* jiffies when handed to a daemon */
};

/* Write-back mode: one logged write, acknowledged by the daemon later. */
struct buse_logrec {
	unsigned long key;	/* as buse_slot.key, until released */
	u32 cookie;
	bool applied;		/* by the daemon (maybe retained) */
	bool released;		/* record free once it reaches the head */
	bool applied_before;	/* a dead daemon had applied and retained it */
	bool copied;		/* its data is in the log (a worker copies it) */
	bool after;		/* BUSE_SQE_AFTER: waits for earlier writes */
	u64 seq;
	sector_t sector;
	u32 len;
	size_t off;		/* of its data, in the log */
	u64 end;		/* log_tail after it: freeing it moves log_head */
	unsigned long stamp;	/* jiffies when logged */
};

/* Per request: write-back mode parks some requests until writes apply. */
struct buse_cmd {
	struct work_struct copy;	/* large writes: copied off the submitter */
	struct buse_logrec *rec;	/* ...into this log record, or a slot */
	bool read;			/* large reads: copied out by a worker */
	struct list_head park;
	bool parked;		/* on dev->parked, under park_lock */
	u64 need_seq;		/* every logged write up to this must apply */
	unsigned long held_at;	/* jiffies when parked */
};

#define BUSE_DIRTY_SHIFT	3	/* 4 KiB chunks, in sectors */

struct buse_queue {
	struct buse_dev *dev;
	unsigned int qid;
	struct blk_mq_hw_ctx *hctx;

	/* The shared region (zeroed pages, vmapped) and views into it. */
	struct page **pages;
	unsigned long nr_pages;
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

	/* Write-back log, under sq_lock (records are FIFO, like the bytes). */
	u8 *log;
	size_t log_off;
	size_t log_size;
	u64 log_head, log_tail;
	struct buse_logrec *recs;
	u32 nr_recs;
	u32 rec_head, rec_tail;	/* oldest unreleased, next free */
	u32 rec_apply;		/* oldest unapplied (rec_head..rec_tail) */
	u32 rec_push;		/* oldest not yet handed to the daemon */
	u64 oldest_unacked;	/* seq of recs[rec_apply], or U64_MAX */
	bool need_rerun;	/* a write waits for log space */
	bool rerun_due;		/* ...and completions freed some */

	/* Consumer side of the cq: one SYNC at a time. */
	struct mutex cq_lock ____cacheline_aligned_in_smp;
	u32 cq_head;

	wait_queue_head_t wait;
	struct buse_slot *slots;
};

struct buse_dev {
	struct kref ref;
	/*
	 * Serialises control operations and guards the state below; never
	 * held across add_disk() or del_gendisk(), which wait for the daemon:
	 * the states say that one of them is under way.
	 */
	struct mutex lock;
	u32 id;
	struct buse_dev_params params;	/* as accepted */
	bool starting;		/* START is in add_disk() */
	bool started;
	bool add_failed;	/* add_disk() failed: only DEL is left */
	bool deleting;		/* DEL under way (no ATTACH, no START) */
	bool removed;		/* DEL done: the id is free */
	wait_queue_head_t state_wait;	/* starting and removed change */
	unsigned int nr_attached;
	struct pid *daemon;
	u64 pinned;		/* bytes charged to buse_pinned_total */

	struct delayed_work recovery_work; /* fails orphans that wait too long */
	struct workqueue_struct *copy_wq;	/* large write copies */

	/* Write-back mode. */
	atomic64_t wb_seq;	/* last seq given to a logged write */
	struct delayed_work wb_work; /* fails queues whose log never drains */
	unsigned long wb_error;	/* bit 0: a logged write failed */
	atomic_t wb_lost;	/* logged writes dropped unapplied, ever */
	unsigned long wb_replayed_at; /* jiffies of the last replay */
	spinlock_t park_lock;
	struct list_head parked; /* requests waiting for writes to apply */
	atomic_t *dirty;	/* unapplied writes per chunk (hashed) */
	unsigned int dirty_bits; /* log2 of dirty's slots */

	struct blk_mq_tag_set tag_set;
	struct gendisk *disk;
	struct buse_queue *queues;
};

/* buse_dev.c */
int buse_dev_add(struct buse_dev_params *p, struct buse_dev **out);
int buse_dev_remove(struct buse_dev *dev);
int buse_dev_start(u32 id);
int buse_dev_del(u32 id);
int buse_dev_info(struct buse_dev_info *info);
int buse_dev_attach(struct buse_queue_attach *a, void __user *argp);
struct buse_dev *buse_dev_get(u32 id);
void buse_dev_put(struct buse_dev *dev);
int buse_blk_init(void);
void buse_blk_exit(void);

/* buse_wb.c */
extern bool buse_wb_unordered;
int buse_wb_init(struct buse_queue *q);
int buse_wb_dev_init(struct buse_dev *dev);
void buse_wb_dev_free(struct buse_dev *dev);
void buse_wb_free(struct buse_queue *q);
bool buse_wb_queue_rq(struct buse_queue *q, struct request *rq, int op,
		      u16 flags, blk_status_t *sts);
bool buse_wb_ack(struct buse_queue *q, u32 idx, u32 cookie, s32 status,
		 u32 flags);
void buse_wb_orphan(struct buse_queue *q);
bool buse_wb_repark(struct buse_queue *q, struct request *rq);
void buse_wb_usage(struct buse_dev *dev, struct buse_dev_info *info);
void buse_wb_release(struct buse_dev *dev);
u32 buse_wb_abort(struct buse_queue *q, bool lost);
void buse_wb_kick(struct buse_queue *q, bool async);
void buse_wb_replay(struct buse_queue *q);
u64 buse_wb_applied(struct buse_dev *dev);
bool buse_wb_want_met(struct buse_queue *q);
void buse_wb_sync(struct buse_dev *dev);
bool buse_wb_drain(struct buse_dev *dev);
enum buse_held {
	BUSE_NOT_HELD,		/* not parked: the caller decides */
	BUSE_HELD_WAIT,		/* parked, time left: rq->timeout set */
	BUSE_HELD_FAILED,	/* parked for a full timeout: ended */
};

enum buse_held buse_wb_timeout(struct buse_dev *dev, struct request *rq);
void buse_wb_expire_work(struct work_struct *work);
bool buse_wb_flush_failed(struct buse_dev *dev);

void buse_wb_copied(struct buse_queue *q, struct request *rq,
		    struct buse_logrec *rec);

/* buse_queue.c */
bool buse_copy_offloaded(struct request *rq);
void buse_copy_work(struct work_struct *work);
blk_status_t buse_queue_dispatch(struct buse_queue *q, struct request *rq);
void buse_copy_to_buf(struct request *rq, u8 *dst);
unsigned long buse_key(u32 cookie);
u32 buse_next_cookie(u32 cookie);
void buse_push_sqe(struct buse_queue *q, u8 op, u16 flags, u32 tag,
		   sector_t sector, u32 len, u32 cookie, u64 data_off, u64 seq);
int buse_queue_init(struct buse_dev *dev, struct buse_queue *q,
		    unsigned int qid);
void buse_queue_free(struct buse_queue *q);
struct file *buse_queue_open_file(struct buse_queue *q, bool *was_orphaned);
void buse_queue_attach_undo(struct buse_queue *q, struct file *file,
			    bool was_orphaned);
blk_status_t buse_queue_rq(struct blk_mq_hw_ctx *hctx,
			   const struct blk_mq_queue_data *bd);
enum blk_eh_timer_return buse_timeout(struct request *rq);
void buse_queue_shutdown(struct buse_queue *q);
void buse_queue_timed_out(struct buse_queue *q);
bool buse_queue_expire(struct buse_queue *q, unsigned long *next, bool now);
bool buse_dev_orphaned(struct buse_dev *dev);
enum blk_eh_timer_return buse_rearm(struct request *rq, unsigned long left);

#endif /* _BUSE_H */
