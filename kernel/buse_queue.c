// SPDX-License-Identifier: GPL-2.0
/*
 * BUSE data path: one shared region per hardware queue, a submission ring
 * the kernel fills from ->queue_rq() and a completion ring the daemon fills
 * and hands over with BUSE_IOC_SYNC.  Data is copied once, between the bio
 * pages and the request's slot in the shared region.
 */
#include <linux/anon_inodes.h>
#include <linux/bvec.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/vmalloc.h>
#include <linux/version.h>

#include "buse.h"

#define BUSE_COOKIE_MASK	0x7fffffffU

static unsigned int buse_copy_offload = 262144;
module_param_named(copy_offload_bytes, buse_copy_offload, uint, 0644);
MODULE_PARM_DESC(copy_offload_bytes,
		 "reads and writes of at least this many bytes are copied between the bio and the shared region by a worker on any CPU, not by the submitter or the queue thread (0: never)");

unsigned long buse_key(u32 cookie)
{
	return ((unsigned long)cookie << 1) | 1;
}

u32 buse_next_cookie(u32 cookie)
{
	return (cookie + 1) & BUSE_COOKIE_MASK;
}

/*
 * The shared region: zeroed pages, so nothing of the kernel's reaches
 * userspace, mapped contiguously for the kernel and, by mmap, for the
 * daemon.  Its size is up to the user, so it is charged to the caller's
 * memory cgroup and fails with ENOMEM rather than calling the OOM killer
 * (vmalloc_user() would do the latter).
 */
static int buse_region_alloc(struct buse_queue *q)
{
	const gfp_t gfp = GFP_KERNEL | __GFP_ZERO | __GFP_ACCOUNT |
			  __GFP_RETRY_MAYFAIL | __GFP_NOWARN;
	unsigned long n = q->region_size >> PAGE_SHIFT;

	q->pages = kvcalloc(n, sizeof(*q->pages), gfp);
	if (!q->pages)
		return -ENOMEM;
	for (q->nr_pages = 0; q->nr_pages < n;) {
		struct page *page = alloc_page(gfp);

		if (!page)
			return -ENOMEM;
		/* Counted at once, so buse_queue_free() frees it on -EINTR. */
		q->pages[q->nr_pages++] = page;
		if (fatal_signal_pending(current))
			return -EINTR;
		cond_resched();
	}
	q->region = vmap(q->pages, n, VM_MAP, PAGE_KERNEL);
	return q->region ? 0 : -ENOMEM;
}

int buse_queue_init(struct buse_dev *dev, struct buse_queue *q,
		    unsigned int qid)
{
	const struct buse_dev_params *p = &dev->params;
	u32 entries;
	size_t off;
	int ret;

	q->dev = dev;
	q->qid = qid;
	q->slot_size = p->max_io_bytes;
	ret = buse_wb_init(q);
	if (ret)
		return ret;
	/* Every tag and every log record can be in the rings at once. */
	entries = roundup_pow_of_two(p->queue_depth + q->nr_recs);
	q->sq_entries = entries;
	q->cq_entries = entries;

	off = sizeof(struct buse_ring_hdr);
	q->sq_off = off;
	off = ALIGN(off + (size_t)entries * sizeof(struct buse_sqe),
		    SMP_CACHE_BYTES);
	q->cq_off = off;
	off += (size_t)entries * sizeof(struct buse_cqe);
	q->data_off = PAGE_ALIGN(off);
	off = PAGE_ALIGN(q->data_off + (size_t)p->queue_depth * q->slot_size);
	q->log_off = off;
	q->region_size = PAGE_ALIGN(off + q->log_size);

	q->slots = kcalloc(p->queue_depth, sizeof(*q->slots), GFP_KERNEL);
	if (!q->slots)
		goto fail;
	ret = buse_region_alloc(q);
	if (ret) {
		buse_queue_free(q);
		return ret;
	}
	q->hdr = q->region;
	q->sq = q->region + q->sq_off;
	q->cq = q->region + q->cq_off;
	q->data = q->region + q->data_off;
	q->log = q->region + q->log_off;

	spin_lock_init(&q->sq_lock);
	mutex_init(&q->cq_lock);
	init_waitqueue_head(&q->wait);
	return 0;
fail:
	buse_queue_free(q);
	return -ENOMEM;
}

void buse_queue_free(struct buse_queue *q)
{
	unsigned long i;

	if (q->region)
		vunmap(q->region);
	for (i = 0; i < q->nr_pages; i++)
		__free_page(q->pages[i]);
	kvfree(q->pages);
	kfree(q->slots);
	buse_wb_free(q);
	q->region = NULL;
	q->pages = NULL;
	q->nr_pages = 0;
	q->slots = NULL;
}

void buse_copy_to_buf(struct request *rq, u8 *dst)
{
	struct req_iterator iter;
	struct bio_vec bv;

	rq_for_each_segment(bv, rq, iter) {
		memcpy_from_bvec(dst, &bv);
		dst += bv.bv_len;
	}
}

static void buse_copy_from_slot(struct request *rq, const u8 *src)
{
	struct req_iterator iter;
	struct bio_vec bv;

	rq_for_each_segment(bv, rq, iter) {
		memcpy_to_bvec(&bv, src);
		src += bv.bv_len;
	}
}

static int buse_rq_op(struct request *rq, u16 *flags)
{
	*flags = 0;
	switch (req_op(rq)) {
	case REQ_OP_READ:
		return BUSE_OP_READ;
	case REQ_OP_WRITE:
		if (rq->cmd_flags & REQ_FUA)
			*flags |= BUSE_SQE_FUA;
		return BUSE_OP_WRITE;
	case REQ_OP_FLUSH:
		return BUSE_OP_FLUSH;
	case REQ_OP_DISCARD:
		return BUSE_OP_DISCARD;
	case REQ_OP_WRITE_ZEROES:
		if (rq->cmd_flags & REQ_NOUNMAP)
			*flags |= BUSE_SQE_NOUNMAP;
		return BUSE_OP_WRITE_ZEROES;
	default:
		return -EOPNOTSUPP;
	}
}

/* True when the daemon has requests it has not consumed yet. */
static bool buse_sq_pending(struct buse_queue *q)
{
	return READ_ONCE(q->sq_tail) != READ_ONCE(q->hdr->sq_head);
}

/* Fill the next sqe and publish it.  Caller holds sq_lock. */
void buse_push_sqe(struct buse_queue *q, u8 op, u16 flags, u32 tag,
		   sector_t sector, u32 len, u32 cookie, u64 data_off, u64 seq)
{
	struct buse_sqe *sqe = &q->sq[q->sq_tail & (q->sq_entries - 1)];

	sqe->op = op;
	sqe->reserved0 = 0;
	sqe->flags = flags;
	sqe->tag = tag;
	sqe->sector = sector;
	sqe->len = len;
	sqe->cookie = cookie;
	sqe->data_off = data_off;
	sqe->seq = seq;
	q->sq_tail++;
	/* Orders the entry's fields before the daemon's acquire of the tail. */
	smp_store_release(&q->hdr->sq_tail, q->sq_tail);
}

/*
 * Hand a started request to the daemon.  Caller holds sq_lock.  The write
 * data, if any, is in the tag's slot already.
 */
static void buse_push(struct buse_queue *q, struct request *rq)
{
	struct buse_slot *slot = &q->slots[rq->tag];
	u16 flags;
	int op = buse_rq_op(rq, &flags);

	slot->cookie = buse_next_cookie(slot->cookie);
	slot->rq = rq;
	slot->given = jiffies;
	/*
	 * The daemon may complete as soon as it sees the entry, so the slot
	 * is armed first.
	 */
	smp_store_release(&slot->key, buse_key(slot->cookie));
	buse_push_sqe(q, op, flags, rq->tag, blk_rq_pos(rq), blk_rq_bytes(rq),
		      slot->cookie,
		      op == BUSE_OP_READ || op == BUSE_OP_WRITE ?
		      q->data_off + (size_t)rq->tag * q->slot_size : 0, 0);
}

/* Publish a started request; an orphaned queue keeps it for the next daemon. */
blk_status_t buse_queue_dispatch(struct buse_queue *q, struct request *rq)
{
	spin_lock(&q->sq_lock);
	if (unlikely(q->dead || q->shutdown)) {
		spin_unlock(&q->sq_lock);
		return BLK_STS_IOERR;
	}
	buse_push(q, rq);
	spin_unlock(&q->sq_lock);

	if (wq_has_sleeper(&q->wait))
		wake_up(&q->wait);
	return BLK_STS_OK;
}

blk_status_t buse_queue_rq(struct blk_mq_hw_ctx *hctx,
			   const struct blk_mq_queue_data *bd)
{
	struct buse_queue *q = hctx->driver_data;
	struct request *rq = bd->rq;
	blk_status_t sts;
	u16 flags;
	int op;

	op = buse_rq_op(rq, &flags);
	if (op < 0)
		return BLK_STS_NOTSUPP;
	/*
	 * The driver said read-only: BLKROSET can make the disk writable for
	 * the block layer, but not for the driver.
	 */
	if (unlikely(q->dev->params.flags & BUSE_F_READ_ONLY) &&
	    op != BUSE_OP_READ && op != BUSE_OP_FLUSH)
		return BLK_STS_IOERR;
	/* Before any copy: a timed-out daemon may still use its slots. */
	if (unlikely(READ_ONCE(q->dead)))
		return BLK_STS_IOERR;
	/* The queue limits make this impossible; never overrun a slot. */
	if ((op == BUSE_OP_READ || op == BUSE_OP_WRITE) &&
	    blk_rq_bytes(rq) > q->slot_size)
		return BLK_STS_IOERR;

	if ((q->dev->params.flags & BUSE_F_WRITE_BACK) &&
	    buse_wb_queue_rq(q, rq, op, flags, &sts))
		return sts;

	blk_mq_start_request(rq);
	if (op == BUSE_OP_WRITE) {
		if (buse_copy_offloaded(rq)) {
			struct buse_cmd *cmd = blk_mq_rq_to_pdu(rq);

			cmd->rec = NULL;
			cmd->read = false;
			queue_work(q->dev->copy_wq, &cmd->copy);
			return BLK_STS_OK;
		}
		buse_copy_to_buf(rq, q->data + (size_t)rq->tag * q->slot_size);
	}
	return buse_queue_dispatch(q, rq);
}

/* A read or write large enough to be copied by a worker, with a CPU to spare. */
bool buse_copy_offloaded(struct request *rq)
{
	return buse_copy_offload && blk_rq_bytes(rq) >= buse_copy_offload &&
	       num_online_cpus() > 1;
}

static void buse_copy_from_slot(struct request *rq, const u8 *src);

/*
 * Copy a large write into its slot (or its write-back log record) and hand
 * it to the daemon, from an unbound worker: the submitter goes on
 * submitting while another CPU copies.  The request is started but not
 * armed, so a timeout meanwhile only rearms the timer.  Or copy a large
 * read's data out of its slot and end it: the daemon completed it, its
 * slot was claimed, and the tag is not reissued before the request ends,
 * so the slot holds still (but for a daemon that scribbles on it, which
 * only garbles its own device's data, as it could anyway).
 */
void buse_copy_work(struct work_struct *work)
{
	struct buse_cmd *cmd = container_of(work, struct buse_cmd, copy);
	struct request *rq = blk_mq_rq_from_pdu(cmd);
	struct buse_queue *q = rq->mq_hctx->driver_data;
	blk_status_t sts;

	if (cmd->read) {
		buse_copy_from_slot(rq, q->data + (size_t)rq->tag * q->slot_size);
		blk_mq_end_request(rq, BLK_STS_OK);
		return;
	}
	if (cmd->rec) {
		buse_wb_copied(q, rq, cmd->rec);
		return;
	}
	if (unlikely(READ_ONCE(q->dead))) {
		blk_mq_end_request(rq, BLK_STS_IOERR);
		return;
	}
	buse_copy_to_buf(rq, q->data + (size_t)rq->tag * q->slot_size);
	sts = buse_queue_dispatch(q, rq);
	if (sts != BLK_STS_OK)
		blk_mq_end_request(rq, sts);
}

/* Take ownership of an in-flight request; NULL if someone else has it. */
static struct request *buse_claim(struct buse_slot *slot, unsigned long key)
{
	if (!(key & 1) || cmpxchg(&slot->key, key, 0) != key)
		return NULL;
	return slot->rq;
}

static blk_status_t buse_status(s32 status)
{
	if (status > 0 || status < -MAX_ERRNO)
		return BLK_STS_IOERR;
	return errno_to_blk_status(status);
}

/* Apply one completion from the daemon; false if it was rejected. */
static bool buse_complete_cqe(struct buse_queue *q, const struct buse_cqe *cqe)
{
	unsigned int depth = q->dev->params.queue_depth;
	struct request *rq;
	blk_status_t sts;

	if (cqe->cookie > BUSE_COOKIE_MASK)
		return false;
	if (cqe->tag >= depth)
		return buse_wb_ack(q, cqe->tag - depth, cqe->cookie,
				   cqe->status, cqe->flags);
	if (cqe->flags)
		return false;
	rq = buse_claim(&q->slots[cqe->tag], buse_key(cqe->cookie));
	if (!rq)
		return false;

	sts = buse_status(cqe->status);
	/* A logged write the driver failed: the application learns it here. */
	if (sts == BLK_STS_OK && req_op(rq) == REQ_OP_FLUSH &&
	    buse_wb_flush_failed(q->dev))
		sts = BLK_STS_IOERR;
	if (sts == BLK_STS_OK && req_op(rq) == REQ_OP_READ) {
		/* Large reads: copied out on a worker, off the queue thread. */
		if (buse_copy_offloaded(rq)) {
			struct buse_cmd *cmd = blk_mq_rq_to_pdu(rq);

			cmd->read = true;
			queue_work(q->dev->copy_wq, &cmd->copy);
			return true;
		}
		buse_copy_from_slot(rq, q->data +
				    (size_t)cqe->tag * q->slot_size);
	}
	blk_mq_end_request(rq, sts);
	return true;
}

/* Consume every completion the daemon has posted.  Caller holds cq_lock. */
static int buse_reap(struct buse_queue *q)
{
	/* Pairs with the daemon's release of cq_tail after its entries. */
	u32 tail = smp_load_acquire(&q->hdr->cq_tail);
	u32 n = tail - q->cq_head;
	unsigned int bad = 0;
	struct buse_cqe cqe;

	if (n > q->cq_entries)
		return -EINVAL;
	for (; q->cq_head != tail; q->cq_head++) {
		const struct buse_cqe *src;

		/* Read the entry once: the daemon may change it under us. */
		src = &q->cq[q->cq_head & (q->cq_entries - 1)];
		cqe.tag = READ_ONCE(src->tag);
		cqe.cookie = READ_ONCE(src->cookie);
		cqe.status = READ_ONCE(src->status);
		cqe.flags = READ_ONCE(src->flags);
		if (!buse_complete_cqe(q, &cqe))
			bad++;
	}
	/* The daemon may reuse the entries once it sees the head. */
	smp_store_release(&q->hdr->cq_head, q->cq_head);
	if (q->recs)
		buse_wb_release(q->dev);
	if (bad)
		pr_warn_ratelimited("buse%u: queue %u: %u invalid completions\n",
				    q->dev->id, q->qid, bad);
	return 0;
}

/*
 * End every request the daemon owns, with an I/O error; drop its logged
 * writes (@lost: the application was told they are written).
 */
static void buse_abort_inflight(struct buse_queue *q, bool lost)
{
	unsigned int tag;

	buse_wb_abort(q, lost);
	for (tag = 0; tag < q->dev->params.queue_depth; tag++) {
		struct buse_slot *slot = &q->slots[tag];
		struct request *rq;

		rq = buse_claim(slot, READ_ONCE(slot->key));
		if (rq)
			blk_mq_end_request(rq, BLK_STS_IOERR);
	}
}

/*
 * The daemon left a request unanswered for the whole timeout.  It may still
 * be working on it, reading or writing the request's slot (or, in write-back
 * mode, its log records), so nothing of this queue may be reused: the queue
 * is failed as if the daemon had died (as NBD fails its connection).  Its
 * other requests end by their own timeouts or completions; new ones fail at
 * once, and the daemon's next SYNC says ETIMEDOUT.
 */
void buse_queue_timed_out(struct buse_queue *q)
{
	bool first;

	spin_lock(&q->sq_lock);
	first = !q->dead && !q->shutdown;
	q->dead = true;
	spin_unlock(&q->sq_lock);
	/* Seen by ->queue_rq() of whoever gets the freed tag next. */
	smp_mb();
	if (first)
		pr_warn("buse%u: queue %u: request timed out, failing the queue\n",
			q->dev->id, q->qid);
	wake_up_all(&q->wait);
}

/*
 * Let the timer fire again @left jiffies from now: blk-mq rearms with
 * rq->timeout, which is this request's alone (reset when it is allocated).
 */
enum blk_eh_timer_return buse_rearm(struct request *rq, unsigned long left)
{
	rq->timeout = clamp_t(unsigned long, left, 1, rq->q->rq_timeout);
	return BLK_EH_RESET_TIMER;
}

/* Any queue waiting for a new daemon? */
bool buse_dev_orphaned(struct buse_dev *dev)
{
	unsigned int i;

	for (i = 0; i < dev->params.nr_queues; i++)
		if (READ_ONCE(dev->queues[i].orphaned))
			return true;
	return false;
}

enum blk_eh_timer_return buse_timeout(struct request *rq)
{
	struct buse_queue *q = rq->mq_hctx->driver_data;
	struct buse_slot *slot = &q->slots[rq->tag];
	unsigned long tmo = rq->q->rq_timeout;
	unsigned long key = READ_ONCE(slot->key);
	unsigned long end;

	/* Waiting for a new daemon: the recovery timeout is the limit. */
	if (READ_ONCE(q->orphaned))
		return buse_rearm(rq, tmo);
	if (q->recs) {
		switch (buse_wb_timeout(q->dev, rq)) {
		case BUSE_HELD_WAIT:
			return BLK_EH_RESET_TIMER;
		case BUSE_HELD_FAILED:
			pr_warn_ratelimited("buse%u: queue %u: held request timed out\n",
					    q->dev->id, q->qid);
			return BLK_EH_DONE;
		case BUSE_NOT_HELD:
			break;
		}
	}
	if (!(key & 1) || READ_ONCE(slot->rq) != rq)
		/* Not handed out yet, or being completed right now. */
		return buse_rearm(rq, tmo);
	/*
	 * A full timeout from the hand-out, which is later than the start if
	 * the request was held first or handed to a new daemon on recovery.
	 */
	end = READ_ONCE(slot->given) + tmo;
	if (time_before(jiffies, end))
		return buse_rearm(rq, end - jiffies);
	if (buse_claim(slot, key) == rq) {
		buse_queue_timed_out(q);
		blk_mq_end_request(rq, BLK_STS_IOERR);
		return BLK_EH_DONE;
	}
	return buse_rearm(rq, tmo);
}

/* The device is going away: fail what is left and release the daemon. */
void buse_queue_shutdown(struct buse_queue *q)
{
	spin_lock(&q->sq_lock);
	q->shutdown = true;
	spin_unlock(&q->sq_lock);
	/* After buse_wb_drain(): logged writes left now are lost. */
	buse_abort_inflight(q, true);
	wake_up_all(&q->wait);
}

static long buse_queue_sync(struct buse_queue *q, unsigned long flags)
{
	int ret;

	if (flags & ~(unsigned long)BUSE_SYNC_WAIT)
		return -EINVAL;

	mutex_lock(&q->cq_lock);
	if (READ_ONCE(q->shutdown)) {
		mutex_unlock(&q->cq_lock);
		return -ENODEV;
	}
	ret = buse_reap(q);
	mutex_unlock(&q->cq_lock);
	if (ret)
		return ret;
	buse_wb_kick(q, false);
	/* Failed after a timeout: this daemon should go. */
	if (READ_ONCE(q->dead))
		return -ETIMEDOUT;

	if (flags & BUSE_SYNC_WAIT) {
		ret = wait_event_interruptible(q->wait, buse_sq_pending(q) ||
					       READ_ONCE(q->shutdown) ||
					       READ_ONCE(q->dead) ||
					       buse_wb_want_met(q));
		if (ret)
			return ret;
	}
	if (READ_ONCE(q->shutdown))
		return -ENODEV;
	if (READ_ONCE(q->dead))
		return -ETIMEDOUT;
	return min_t(u32, READ_ONCE(q->sq_tail) - READ_ONCE(q->hdr->sq_head),
		     q->sq_entries);
}

static long buse_queue_ioctl(struct file *file, unsigned int cmd,
			     unsigned long arg)
{
	struct buse_queue *q = file->private_data;

	switch (cmd) {
	case BUSE_IOC_SYNC:
		return buse_queue_sync(q, arg);
	default:
		return -ENOTTY;
	}
}

static int buse_queue_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct buse_queue *q = file->private_data;

	if (vma->vm_pgoff || vma->vm_end - vma->vm_start != q->region_size)
		return -EINVAL;
	if (!(vma->vm_flags & VM_SHARED))
		return -EINVAL;
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 3, 0)
	vm_flags_set(vma, VM_DONTCOPY | VM_DONTEXPAND | VM_DONTDUMP);
#else
	vma->vm_flags |= VM_DONTCOPY | VM_DONTEXPAND | VM_DONTDUMP;
#endif
	return vm_map_pages_zero(vma, q->pages, q->nr_pages);
}

/*
 * An orphaned queue whose recovery time is up (or, with @now, any orphaned
 * queue) fails its requests.  Returns true while the queue still waits,
 * with *next the jiffies it expires at.
 */
bool buse_queue_expire(struct buse_queue *q, unsigned long *next, bool now)
{
	unsigned long deadline;
	bool expire = false;

	spin_lock(&q->sq_lock);
	if (!q->orphaned) {
		spin_unlock(&q->sq_lock);
		return false;
	}
	deadline = q->orphaned_at +
		msecs_to_jiffies(q->dev->params.recovery_timeout_ms);
	if (now || time_after_eq(jiffies, deadline)) {
		q->orphaned = false;
		q->dead = true;
		expire = true;
	}
	spin_unlock(&q->sq_lock);
	if (expire) {
		if (!now)
			pr_warn("buse%u: queue %u: no daemon came back, failing I/O\n",
				q->dev->id, q->qid);
		buse_abort_inflight(q, true);
		return false;
	}
	*next = deadline;
	return true;
}

/*
 * The daemon closed the queue (or died).  Completions it posted still
 * count; then either its requests fail, or, on a recoverable device, they
 * wait for the next daemon.
 */
static int buse_queue_release(struct inode *inode, struct file *file)
{
	struct buse_queue *q = file->private_data;
	struct buse_dev *dev;
	bool recover;

	/* An attach that never reached the daemon (undone already). */
	if (!q)
		return 0;
	dev = q->dev;
	mutex_lock(&q->cq_lock);
	if (!READ_ONCE(q->shutdown))
		buse_reap(q);
	mutex_unlock(&q->cq_lock);
	buse_wb_kick(q, true);

	spin_lock(&q->sq_lock);
	q->attached = false;
	/*
	 * No daemon can attach to a device being deleted.  DEL sets deleting
	 * before it expires orphans under sq_lock, so one of us sees the other.
	 */
	recover = (dev->params.flags & BUSE_F_RECOVERABLE) && !q->shutdown &&
		  !q->dead && !READ_ONCE(dev->deleting);
	if (recover) {
		q->orphaned = true;
		q->orphaned_at = jiffies;
		buse_wb_orphan(q);
	} else {
		q->dead = true;
	}
	spin_unlock(&q->sq_lock);
	if (recover)
		schedule_delayed_work(&dev->recovery_work,
				      msecs_to_jiffies(dev->params.recovery_timeout_ms));
	else
		buse_abort_inflight(q, true);
	wake_up_all(&q->wait);

	mutex_lock(&dev->lock);
	dev->nr_attached--;
	mutex_unlock(&dev->lock);
	buse_dev_put(dev);
	return 0;
}

static const struct file_operations buse_queue_fops = {
	.owner		= THIS_MODULE,
	.release	= buse_queue_release,
	.unlocked_ioctl	= buse_queue_ioctl,
	.compat_ioctl	= compat_ptr_ioctl,
	.mmap		= buse_queue_mmap,
	.llseek		= noop_llseek,
};

/*
 * A new daemon takes over an orphaned queue: start both rings afresh and
 * hand it, with new cookies, every request the old one left unfinished.
 * Caller holds cq_lock and sq_lock.
 */
static void buse_queue_replay(struct buse_queue *q)
{
	unsigned int tag;

	q->sq_tail = 0;
	q->cq_head = 0;
	WRITE_ONCE(q->hdr->sq_head, 0);
	WRITE_ONCE(q->hdr->cq_tail, 0);
	WRITE_ONCE(q->hdr->cq_head, 0);
	smp_store_release(&q->hdr->sq_tail, 0);
	/* Held requests wait a full timeout from now (buse_wb_timeout()). */
	WRITE_ONCE(q->dev->wb_replayed_at, jiffies);
	if (q->recs)
		buse_wb_replay(q);
	for (tag = 0; tag < q->dev->params.queue_depth; tag++) {
		struct buse_slot *slot = &q->slots[tag];
		unsigned long key = READ_ONCE(slot->key);

		/* Nobody else claims while orphaned: timeouts wait. */
		if ((key & 1) && cmpxchg(&slot->key, key, 0) == key &&
		    !buse_wb_repark(q, slot->rq))
			buse_push(q, slot->rq);
	}
}

/*
 * Attach a daemon: a new file for the queue, which holds a device
 * reference; the caller installs it in an fd once the daemon has the layout
 * (or gives it back with buse_queue_attach_undo()).  Caller holds dev->lock.
 * The queue is marked attached before the file exists, so a close racing
 * with us finds it consistent.
 */
struct file *buse_queue_open_file(struct buse_queue *q, bool *was_orphaned)
{
	struct buse_dev *dev = q->dev;
	struct file *file;

	lockdep_assert_held(&dev->lock);
	mutex_lock(&q->cq_lock);
	spin_lock(&q->sq_lock);
	if (q->attached || q->dead || q->shutdown) {
		spin_unlock(&q->sq_lock);
		mutex_unlock(&q->cq_lock);
		return ERR_PTR(-EBUSY);
	}
	*was_orphaned = q->orphaned;
	if (*was_orphaned) {
		buse_queue_replay(q);
		q->orphaned = false;
	}
	q->attached = true;
	spin_unlock(&q->sq_lock);
	mutex_unlock(&q->cq_lock);
	if (*was_orphaned && q->recs)
		buse_wb_release(dev);
	dev->nr_attached++;
	kref_get(&dev->ref);

	file = anon_inode_getfile("[buse-queue]", &buse_queue_fops, q, O_RDWR);
	if (IS_ERR(file))
		buse_queue_attach_undo(q, NULL, *was_orphaned);
	return file;
}

/*
 * The attach did not reach the daemon: back to the state before it.  A
 * queue taken over from a dead daemon is orphaned again (its requests were
 * handed to rings nobody reads; the next attach replays them once more),
 * or failed if the device is being deleted meanwhile.  Caller holds
 * dev->lock; @file (if any) is never installed.
 */
void buse_queue_attach_undo(struct buse_queue *q, struct file *file,
			    bool was_orphaned)
{
	struct buse_dev *dev = q->dev;
	bool orphan = false, fail = false;

	lockdep_assert_held(&dev->lock);
	spin_lock(&q->sq_lock);
	q->attached = false;
	if (was_orphaned) {
		orphan = !q->shutdown && !q->dead && !READ_ONCE(dev->deleting);
		fail = !orphan;
		if (orphan) {
			q->orphaned = true;
			q->orphaned_at = jiffies;
			buse_wb_orphan(q);
		} else {
			q->dead = true;
		}
	}
	spin_unlock(&q->sq_lock);
	if (orphan)
		schedule_delayed_work(&dev->recovery_work,
				      msecs_to_jiffies(dev->params.recovery_timeout_ms));
	if (fail)
		buse_abort_inflight(q, true);
	wake_up_all(&q->wait);
	dev->nr_attached--;
	if (file) {
		/* Its release must not undo the attach a second time. */
		file->private_data = NULL;
		fput(file);
	}
	buse_dev_put(dev);
}
