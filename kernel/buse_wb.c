// SPDX-License-Identifier: GPL-2.0
/*
 * BUSE write-back mode.
 *
 * A write completes as soon as its data is copied into its queue's write
 * log, a ring of bytes in the shared region; the daemon receives it as a
 * "logged" sqe carrying a device-wide sequence number and acknowledges it
 * once applied, which frees the log space.  The disk still behaves as one
 * disk:
 *
 * - Write after write: overlapping logged writes must reach the driver in
 *   seq order.  Each 4 KiB chunk has a count of unapplied writes; a write
 *   that finds one nonzero is flagged BUSE_SQE_AFTER and libbuse applies it
 *   only after every write with a smaller seq.
 * - Read after write: a read overlapping a chunk with unapplied writes is
 *   held ("parked") until every write completed before it has been applied,
 *   then served by the driver.  Held rather than served from the log because
 *   the newest data of a range may be spread over several log records, on
 *   several queues, partly overwritten by each other: the driver is the one
 *   place where it is already merged.
 * - Flush, FUA writes, discard and write-zeroes are parked the same way, so
 *   a flush completes only when every earlier write is applied and the
 *   driver's flush returned; a write the driver failed after it was
 *   completed makes the next flush fail with EIO.
 * - A full log makes new writes wait (BLK_STS_RESOURCE) until
 *   acknowledgements free space: no error, no loss.
 *
 * The watermark is the smallest unacknowledged seq over all queues; a
 * request parked with need_seq may go once need_seq < watermark.
 */
#include <linux/blk-mq.h>
#include <linux/blkdev.h>
#include <linux/delay.h>
#include <linux/hash.h>
#include <linux/pagemap.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/sched/signal.h>
#include <linux/sizes.h>
#include <linux/slab.h>
#include <linux/version.h>

#include "buse.h"

bool buse_wb_unordered;
module_param_named(wb_unordered, buse_wb_unordered, bool, 0444);
MODULE_PARM_DESC(wb_unordered,
		 "TEST ONLY: turn off write-back ordering (read-after-write and write-after-write) to show that the ordering tests can fail");

static bool buse_wb_ignore_retain;
module_param_named(wb_ignore_retain, buse_wb_ignore_retain, bool, 0444);
MODULE_PARM_DESC(wb_ignore_retain,
		 "TEST ONLY: treat a retaining completion as a release, to show that the retained-write tests can fail");

static unsigned int buse_wb_park_delay_us;
module_param_named(wb_park_delay_us, buse_wb_park_delay_us, uint, 0444);
MODULE_PARM_DESC(wb_park_delay_us,
		 "TEST ONLY: widen the window in which a request being held races with the acknowledgement that frees it (microseconds; 0: off)");

#define BUSE_MIN_LOG_RECS	256

int buse_wb_init(struct buse_queue *q)
{
	const struct buse_dev_params *p = &q->dev->params;

	q->oldest_unacked = U64_MAX;
	if (!(p->flags & BUSE_F_WRITE_BACK))
		return 0;
	/*
	 * A record per 4 KiB of log: retained records stay until the driver
	 * releases them (BS3: until their object is stored), so the number
	 * of records, not only the log's bytes, bounds small writes in
	 * flight: a log of 128 MiB holds 32k of them, enough for 4 KiB
	 * writes retained for 200 ms at 160k writes/s.
	 */
	q->nr_recs = max_t(u32, BUSE_MIN_LOG_RECS,
			   roundup_pow_of_two(p->queue_depth));
	q->nr_recs = max_t(u32, q->nr_recs,
			   min_t(u64, BUSE_MAX_LOG_RECS,
				 roundup_pow_of_two(p->log_bytes / SZ_4K)));
	q->log_size = p->log_bytes;
	q->recs = kvcalloc(q->nr_recs, sizeof(*q->recs), GFP_KERNEL);
	return q->recs ? 0 : -ENOMEM;
}

void buse_wb_free(struct buse_queue *q)
{
	kvfree(q->recs);
	q->recs = NULL;
}

/*
 * The table of unapplied writes per 4 KiB chunk, after the queues' logs
 * are sized.  A slot that is busy makes a write wait for every earlier
 * write and a read wait to be served, so false sharing is what costs: 32
 * slots per log record keep a full log of random 4 KiB writes at a few
 * percent of collisions.  (With 1024 slots of 64 KiB, a full log marked
 * nearly every slot, and write-back fell to a sixth of write-through.)
 */
int buse_wb_dev_init(struct buse_dev *dev)
{
	u64 chunks = dev->params.size >> (SECTOR_SHIFT + BUSE_DIRTY_SHIFT);
	u64 slots = 0;
	unsigned int i;

	if (!(dev->params.flags & BUSE_F_WRITE_BACK))
		return 0;
	for (i = 0; i < dev->params.nr_queues; i++)
		slots += 32 * (u64)dev->queues[i].nr_recs;
	slots = clamp_t(u64, min(slots, chunks), SZ_1K, SZ_1M);
	dev->dirty_bits = ilog2(roundup_pow_of_two(slots));
	dev->dirty = kvcalloc(1UL << dev->dirty_bits, sizeof(*dev->dirty),
			      GFP_KERNEL);
	return dev->dirty ? 0 : -ENOMEM;
}

void buse_wb_dev_free(struct buse_dev *dev)
{
	kvfree(dev->dirty);
	dev->dirty = NULL;
}

static struct buse_cmd *buse_cmd(struct request *rq)
{
	return blk_mq_rq_to_pdu(rq);
}

static atomic_t *buse_chunk(struct buse_dev *dev, sector_t chunk)
{
	return &dev->dirty[hash_64(chunk, dev->dirty_bits)];
}

/* Count a logged write in its chunks; true if any had unapplied writes. */
static bool buse_wb_mark(struct buse_dev *dev, sector_t sector, u32 len)
{
	sector_t c, last = (sector + (len >> SECTOR_SHIFT) - 1) >>
			   BUSE_DIRTY_SHIFT;
	bool busy = false;

	for (c = sector >> BUSE_DIRTY_SHIFT; c <= last; c++)
		if (atomic_inc_return(buse_chunk(dev, c)) > 1)
			busy = true;
	return busy;
}

static void buse_wb_unmark(struct buse_dev *dev, sector_t sector, u32 len)
{
	sector_t c, last = (sector + (len >> SECTOR_SHIFT) - 1) >>
			   BUSE_DIRTY_SHIFT;

	for (c = sector >> BUSE_DIRTY_SHIFT; c <= last; c++)
		atomic_dec(buse_chunk(dev, c));
}

static bool buse_wb_dirty(struct buse_dev *dev, struct request *rq)
{
	sector_t c, last = (blk_rq_pos(rq) + blk_rq_sectors(rq) - 1) >>
			   BUSE_DIRTY_SHIFT;

	for (c = blk_rq_pos(rq) >> BUSE_DIRTY_SHIFT; c <= last; c++)
		if (atomic_read(buse_chunk(dev, c)))
			return true;
	return false;
}

static u64 buse_wb_watermark(struct buse_dev *dev)
{
	u64 wm = U64_MAX;
	unsigned int i;

	for (i = 0; i < dev->params.nr_queues; i++)
		wm = min(wm, READ_ONCE(dev->queues[i].oldest_unacked));
	return wm;
}

/*
 * Every logged write with a seq below the result is applied.  wb_seq is read
 * first: a queue that logs a write lowers its oldest_unacked before it takes
 * a seq (buse_wb_log()), so every seq up to the one read here is covered by
 * the scan, even one whose record is still being filled in.
 */
u64 buse_wb_applied(struct buse_dev *dev)
{
	u64 seq = atomic64_read(&dev->wb_seq);

	/* Pairs with the full barrier of atomic64_inc_return() in buse_wb_log(). */
	smp_rmb();
	return min(buse_wb_watermark(dev), seq + 1);
}

/* BUSE_SYNC_WAIT: the write this queue's daemon holds may go now. */
bool buse_wb_want_met(struct buse_queue *q)
{
	u64 want = READ_ONCE(q->hdr->wb_want);
	u64 wm;

	if (!want || !q->recs)
		return false;
	wm = buse_wb_applied(q->dev);
	WRITE_ONCE(q->hdr->wb_applied, wm);
	return wm >= want;
}

/*
 * The watermark may have moved: tell every queue's daemon (in its header)
 * and wake the queue threads that wait for it.  O(queues).
 */
static void buse_wb_publish(struct buse_dev *dev)
{
	u64 wm = buse_wb_applied(dev);
	unsigned int i;

	for (i = 0; i < dev->params.nr_queues; i++) {
		struct buse_queue *q = &dev->queues[i];
		u64 want;

		/* A queue being attached gets it after its replay. */
		if (!READ_ONCE(q->attached))
			continue;
		if (READ_ONCE(q->hdr->wb_applied) != wm)
			WRITE_ONCE(q->hdr->wb_applied, wm);
		want = READ_ONCE(q->hdr->wb_want);
		if (want && want <= wm && wq_has_sleeper(&q->wait))
			wake_up(&q->wait);
	}
}

static errseq_t *buse_wb_errseq(struct buse_dev *dev)
{
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 10, 0)
	return &dev->disk->part0->bd_mapping->wb_err;
#else
	return &dev->disk->part0->bd_inode->i_mapping->wb_err;
#endif
}

/*
 * A logged write, complete for the application, is lost (the driver failed
 * it, or its daemon is gone).  It is recorded errseq-style in the block
 * device's page cache mapping, so every file of /dev/buseN opened before it
 * sees EIO at its next fsync(), not only the first to flush; and the next
 * flush fails (what a filesystem's journal sees) unless an fsync() has
 * reported it already (the errseq is marked seen).
 */
static void buse_wb_lost(struct buse_dev *dev)
{
	errseq_set(buse_wb_errseq(dev), -EIO);
	/* The errseq first: a flush that sees the bit sees the new error. */
	smp_mb__before_atomic();
	set_bit(0, &dev->wb_error);
}

bool buse_wb_flush_failed(struct buse_dev *dev)
{
	errseq_t *err = buse_wb_errseq(dev);
	errseq_t since = 0;

	if (!test_and_clear_bit(0, &dev->wb_error))
		return false;
	/* Nonzero only once the newest error has been seen by someone. */
	if (errseq_sample(err))
		return false;
	/* Reported now: later openers need not see it again. */
	errseq_check_and_advance(err, &since);
	return true;
}

static struct buse_logrec *buse_wb_rec(struct buse_queue *q, u32 i)
{
	return &q->recs[i & (q->nr_recs - 1)];
}

static void buse_wb_retire(struct buse_queue *q);

static void buse_wb_update_oldest(struct buse_queue *q)
{
	lockdep_assert_held(&q->sq_lock);
	WRITE_ONCE(q->oldest_unacked, q->rec_apply == q->rec_tail ? U64_MAX :
		   buse_wb_rec(q, q->rec_apply)->seq);
}

/* Room for @len bytes and a record?  Caller holds sq_lock. */
static struct buse_logrec *buse_wb_alloc(struct buse_queue *q, u32 len)
{
	size_t pos = q->log_tail % q->log_size;
	size_t waste;
	struct buse_logrec *rec;

	/*
	 * An empty log starts again at its beginning, so that a write as
	 * large as the whole log always fits once the log has drained.
	 */
	if (q->log_head == q->log_tail && pos) {
		q->log_tail += q->log_size - pos;
		q->log_head = q->log_tail;
		pos = 0;
	}
	waste = pos + len > q->log_size ? q->log_size - pos : 0;

	if (q->rec_tail - q->rec_head >= q->nr_recs ||
	    q->log_tail - q->log_head + waste + len > q->log_size)
		return NULL;
	/* Data is contiguous: skip the end of the ring if it is too short. */
	q->log_tail += waste;
	rec = &q->recs[q->rec_tail & (q->nr_recs - 1)];
	rec->off = q->log_tail % q->log_size;
	q->log_tail += len;
	rec->end = q->log_tail;
	rec->applied = false;
	rec->released = false;
	rec->applied_before = false;
	rec->copied = false;
	rec->after = false;
	return rec;
}

static void buse_wb_push(struct buse_queue *q, struct buse_logrec *rec,
			 u16 flags)
{
	u32 idx = rec - q->recs;

	rec->cookie = buse_next_cookie(rec->cookie);
	/* Armed before the daemon can see the entry. */
	smp_store_release(&rec->key, buse_key(rec->cookie));
	buse_push_sqe(q, BUSE_OP_WRITE, BUSE_SQE_LOGGED | flags,
		      q->dev->params.queue_depth + idx, rec->sector, rec->len,
		      rec->cookie, q->log_off + rec->off, rec->seq);
}

/*
 * Hand the daemon every record copied in, oldest first, up to the first
 * one a worker is still copying.  In record order, so that within a queue
 * the daemon sees logged writes in seq order, as when every copy was
 * inline: libbuse keeps the writes that must wait in one FIFO.
 */
static void buse_wb_push_copied(struct buse_queue *q)
{
	lockdep_assert_held(&q->sq_lock);
	while (q->rec_push != q->rec_tail) {
		struct buse_logrec *rec = buse_wb_rec(q, q->rec_push);

		if (!rec->copied)
			break;
		rec->stamp = jiffies;
		buse_wb_push(q, rec, rec->after ? BUSE_SQE_AFTER : 0);
		q->rec_push++;
	}
}

/*
 * The copy worker put @rq's data into @rec: hand it on and complete the
 * write.  If the queue failed or is going away meanwhile, the records
 * copied but not handed on (this one and those behind it in the queue's
 * order, whose writes completed already) are dropped: this write fails,
 * and the others count as lost, as buse_wb_abort() counts the handed-out
 * records it drops.
 */
void buse_wb_copied(struct buse_queue *q, struct request *rq,
		    struct buse_logrec *rec)
{
	struct buse_dev *dev = q->dev;
	u32 i, lost = 0;
	bool drop;

	buse_copy_to_buf(rq, q->log + rec->off);
	spin_lock(&q->sq_lock);
	rec->copied = true;
	drop = q->dead || q->shutdown;
	if (!drop) {
		buse_wb_push_copied(q);
		spin_unlock(&q->sq_lock);
		if (wq_has_sleeper(&q->wait))
			wake_up(&q->wait);
		blk_mq_end_request(rq, BLK_STS_OK);
		return;
	}
	for (i = q->rec_push; i != q->rec_tail; i++) {
		struct buse_logrec *r = buse_wb_rec(q, i);

		if (!r->copied || r->released)
			continue;
		r->applied = true;
		r->released = true;
		buse_wb_unmark(dev, r->sector, r->len);
		if (r != rec)
			lost++;
	}
	buse_wb_retire(q);
	spin_unlock(&q->sq_lock);
	if (lost) {
		buse_wb_lost(dev);
		atomic_add(lost, &dev->wb_lost);
		pr_warn("buse%u: queue %u: %u logged writes lost\n", dev->id,
			q->qid, lost);
	}
	buse_wb_release(dev);
	blk_mq_end_request(rq, BLK_STS_IOERR);
}

/*
 * Log a write and complete it.  A large one is copied into the log by a
 * worker (buse_copy_offloaded()), as write-through does into its slot: the
 * log space and the seq are taken here, in order, and the write completes
 * once copied.
 */
static blk_status_t buse_wb_log(struct buse_queue *q, struct request *rq)
{
	struct buse_dev *dev = q->dev;
	u32 len = blk_rq_bytes(rq);
	struct buse_logrec *rec;
	bool offload;

	if (len > q->log_size)
		return BLK_STS_IOERR;
	spin_lock(&q->sq_lock);
	if (unlikely(q->dead || q->shutdown)) {
		spin_unlock(&q->sq_lock);
		return BLK_STS_IOERR;
	}
	rec = buse_wb_alloc(q, len);
	if (!rec) {
		/*
		 * An acknowledgement runs the queue again.  BLK_STS_RESOURCE,
		 * not DEV_RESOURCE: if that acknowledgement comes before blk-mq
		 * has put the request back, blk-mq's own delayed rerun still
		 * finds it, so a lone writer cannot wait forever.  If no
		 * acknowledgement comes within the request timeout, the
		 * expiry work fails the queue.
		 */
		q->need_rerun = true;
		spin_unlock(&q->sq_lock);
		schedule_delayed_work(&dev->wb_work,
				      msecs_to_jiffies(dev->params.timeout_ms));
		return BLK_STS_RESOURCE;
	}
	blk_mq_start_request(rq);
	offload = buse_copy_offloaded(rq);
	/* Under the lock, so records, bytes and seqs stay in one order. */
	if (!offload) {
		buse_copy_to_buf(rq, q->log + rec->off);
		rec->copied = true;
	}
	/*
	 * Cover the seq about to be taken before taking it, for
	 * buse_wb_applied(); atomic64_inc_return() orders the two.
	 */
	if (q->oldest_unacked == U64_MAX)
		WRITE_ONCE(q->oldest_unacked, atomic64_read(&dev->wb_seq) + 1);
	rec->seq = atomic64_inc_return(&dev->wb_seq);
	rec->sector = blk_rq_pos(rq);
	rec->len = len;
	rec->stamp = jiffies;
	q->rec_tail++;
	buse_wb_update_oldest(q);
	rec->after = buse_wb_mark(dev, rec->sector, len) && !buse_wb_unordered;
	/* An orphaned queue keeps logging: the next daemon gets it. */
	buse_wb_push_copied(q);
	spin_unlock(&q->sq_lock);

	if (offload) {
		struct buse_cmd *cmd = buse_cmd(rq);

		cmd->rec = rec;
		cmd->read = false;
		queue_work(dev->copy_wq, &cmd->copy);
		return BLK_STS_OK;
	}
	if (wq_has_sleeper(&q->wait))
		wake_up(&q->wait);
	blk_mq_end_request(rq, BLK_STS_OK);
	return BLK_STS_OK;
}

/* Hold a request until every write completed before it is applied. */
static blk_status_t buse_wb_park(struct buse_queue *q, struct request *rq,
				 int op)
{
	struct buse_dev *dev = q->dev;
	struct buse_cmd *cmd = buse_cmd(rq);

	blk_mq_start_request(rq);
	if (op == BUSE_OP_WRITE)
		buse_copy_to_buf(rq, q->data + (size_t)rq->tag * q->slot_size);
	cmd->need_seq = atomic64_read(&dev->wb_seq);

	/*
	 * On the list first, then look at the watermark (in
	 * buse_wb_release()): an acknowledgement that moves the watermark
	 * meanwhile either finds us on the list or moved it before we look.
	 */
	spin_lock(&dev->park_lock);
	list_add_tail(&cmd->park, &dev->parked);
	cmd->parked = true;
	cmd->held_at = jiffies;
	spin_unlock(&dev->park_lock);
	if (buse_wb_park_delay_us)
		udelay(buse_wb_park_delay_us);
	buse_wb_release(dev);
	return BLK_STS_OK;
}

/*
 * The write-back part of ->queue_rq(): true if it took the request, with
 * the status to return in *sts; false for requests that go straight to the
 * daemon.
 */
bool buse_wb_queue_rq(struct buse_queue *q, struct request *rq, int op,
		      u16 flags, blk_status_t *sts)
{
	if (op == BUSE_OP_WRITE && !(flags & BUSE_SQE_FUA)) {
		*sts = buse_wb_log(q, rq);
		return true;
	}
	if (op == BUSE_OP_READ &&
	    (buse_wb_unordered || !buse_wb_dirty(q->dev, rq)))
		return false;
	/* Reads of unapplied data, flushes, FUA, discard, write-zeroes. */
	*sts = buse_wb_park(q, rq, op);
	return true;
}

/* Send on every parked request whose writes have all been applied. */
void buse_wb_release(struct buse_dev *dev)
{
	struct buse_cmd *cmd, *tmp;
	LIST_HEAD(ready);
	u64 wm;

	/*
	 * Orders the caller's update of the watermark before the look at the
	 * list; pairs with the lock and barrier in buse_wb_park().
	 */
	smp_mb();
	buse_wb_publish(dev);
	if (list_empty_careful(&dev->parked))
		return;
	spin_lock(&dev->park_lock);
	wm = buse_wb_applied(dev) - 1;
	list_for_each_entry_safe(cmd, tmp, &dev->parked, park) {
		if (cmd->need_seq <= wm) {
			list_move_tail(&cmd->park, &ready);
			cmd->parked = false;
		}
	}
	spin_unlock(&dev->park_lock);

	list_for_each_entry_safe(cmd, tmp, &ready, park) {
		struct request *rq = blk_mq_rq_from_pdu(cmd);
		blk_status_t sts;

		list_del_init(&cmd->park);
		sts = buse_queue_dispatch(rq->mq_hctx->driver_data, rq);
		if (sts != BLK_STS_OK)
			blk_mq_end_request(rq, sts);
	}
}

/*
 * The request timeout fired on @rq.  If it is still parked, its writes were
 * not applied in time: fail it, once it has been held for a full timeout
 * since it was parked or since a queue last handed its log to a new daemon
 * (the replayed writes have a fresh timeout too), and never while a queue
 * waits for a new daemon (the recovery timeout is the limit then: when it
 * expires, the writes are dropped and the request goes on).
 */
enum buse_held buse_wb_timeout(struct buse_dev *dev, struct request *rq)
{
	unsigned long tmo = rq->q->rq_timeout;
	struct buse_cmd *cmd = buse_cmd(rq);
	unsigned long from, replayed;
	enum buse_held ret = BUSE_NOT_HELD;

	spin_lock(&dev->park_lock);
	if (cmd->parked) {
		from = cmd->held_at;
		replayed = READ_ONCE(dev->wb_replayed_at);
		if (time_after(replayed, from))
			from = replayed;
		if (buse_dev_orphaned(dev)) {
			buse_rearm(rq, tmo);
			ret = BUSE_HELD_WAIT;
		} else if (time_before(jiffies, from + tmo)) {
			buse_rearm(rq, from + tmo - jiffies);
			ret = BUSE_HELD_WAIT;
		} else {
			list_del_init(&cmd->park);
			cmd->parked = false;
			ret = BUSE_HELD_FAILED;
		}
	}
	spin_unlock(&dev->park_lock);
	if (ret == BUSE_HELD_FAILED)
		blk_mq_end_request(rq, BLK_STS_IOERR);
	return ret;
}

/*
 * Move the applied mark past applied records and free the released records
 * at the head.  If that frees space a write waits for, the queue is due a
 * rerun: buse_wb_kick() does it once per batch of completions, not once
 * per record.  A rerun per record made the log-full state a ping-pong
 * between the daemon and kblockd (a nice -20 worker that preempts it on
 * 6.6+ schedulers): one write let in per context switch, 3 per I/O.
 */
static void buse_wb_retire(struct buse_queue *q)
{
	u32 head = q->rec_head;

	lockdep_assert_held(&q->sq_lock);
	while (q->rec_apply != q->rec_tail &&
	       buse_wb_rec(q, q->rec_apply)->applied)
		q->rec_apply++;
	/* Released implies applied: the head never passes rec_apply. */
	while (q->rec_head != q->rec_apply &&
	       buse_wb_rec(q, q->rec_head)->released) {
		q->log_head = buse_wb_rec(q, q->rec_head)->end;
		q->rec_head++;
	}
	buse_wb_update_oldest(q);
	if (q->rec_head != head && q->need_rerun) {
		q->need_rerun = false;
		q->rerun_due = true;
	}
}

/*
 * Run the queue if completions freed log space a write waits for.  @async
 * from contexts that must not dispatch themselves; the daemon's own SYNC
 * dispatches inline (it runs on the queue's CPU), saving a switch to
 * kblockd and back.
 */
void buse_wb_kick(struct buse_queue *q, bool async)
{
	bool due;

	if (!q->recs)
		return;
	spin_lock(&q->sq_lock);
	due = q->rerun_due;
	q->rerun_due = false;
	spin_unlock(&q->sq_lock);
	if (due && q->hctx)
		blk_mq_run_hw_queue(q->hctx, async);
}

/*
 * Mark @rec applied and, with @release, released (whoever calls owns that
 * step: the key was claimed, or checked under sq_lock).  Unmarks its chunks
 * exactly once.  The caller kicks the queue when its batch is done.
 */
static void buse_wb_done(struct buse_queue *q, struct buse_logrec *rec,
			 bool release)
{
	sector_t sector = rec->sector;
	u32 len = rec->len;
	bool unmark;

	spin_lock(&q->sq_lock);
	unmark = !rec->applied;
	rec->applied = true;
	if (release)
		rec->released = true;
	buse_wb_retire(q);
	spin_unlock(&q->sq_lock);
	/* @rec may be reused from here on: sector and len were saved. */
	if (unmark)
		buse_wb_unmark(q->dev, sector, len);
}

/* Apply-and-retain: false unless @rec is armed with @key and unapplied. */
static bool buse_wb_retain(struct buse_queue *q, struct buse_logrec *rec,
			   unsigned long key)
{
	sector_t sector;
	u32 len;

	spin_lock(&q->sq_lock);
	if (READ_ONCE(rec->key) != key || rec->applied) {
		spin_unlock(&q->sq_lock);
		return false;
	}
	rec->applied = true;
	sector = rec->sector;
	len = rec->len;
	buse_wb_retire(q);
	spin_unlock(&q->sq_lock);
	buse_wb_unmark(q->dev, sector, len);
	return true;
}

/*
 * A completion of logged write @idx: applied and retained (BUSE_CQE_RETAIN),
 * or released (applied too, if it was not yet).  False if it is not valid.
 */
bool buse_wb_ack(struct buse_queue *q, u32 idx, u32 cookie, s32 status,
		 u32 flags)
{
	struct buse_logrec *rec;
	unsigned long key = buse_key(cookie);

	if (!q->recs || idx >= q->nr_recs || (flags & ~BUSE_CQE_RETAIN))
		return false;
	rec = &q->recs[idx];
	/* A failed write is not kept: it is lost, the next flush says so. */
	if ((flags & BUSE_CQE_RETAIN) && !status && !buse_wb_ignore_retain)
		return buse_wb_retain(q, rec, key);
	if (cmpxchg(&rec->key, key, 0) != key)
		return false;
	if (status)
		buse_wb_lost(q->dev);
	buse_wb_done(q, rec, true);
	return true;
}

/*
 * The daemon is gone for good, or the device is going away: records still
 * unacknowledged are dropped; with @lost, data the application was told is
 * written is lost, and the next flush says so.
 */
u32 buse_wb_abort(struct buse_queue *q, bool lost)
{
	u32 i, n = 0;

	if (!q->recs)
		return 0;
	for (i = 0; i < q->nr_recs; i++) {
		struct buse_logrec *rec = &q->recs[i];
		unsigned long key = READ_ONCE(rec->key);

		if (!(key & 1) || cmpxchg(&rec->key, key, 0) != key)
			continue;
		if (lost)
			buse_wb_lost(q->dev);
		buse_wb_done(q, rec, true);
		n++;
	}
	if (n && lost) {
		atomic_add(n, &q->dev->wb_lost);
		pr_warn("buse%u: queue %u: %u logged writes lost\n",
			q->dev->id, q->qid, n);
	}
	buse_wb_kick(q, true);
	buse_wb_release(q->dev);
	return n;
}

/*
 * Before the disk goes away: write back the page cache and flush, so every
 * completed write reaches the driver (the flush is held until they are all
 * applied) and is made durable there.
 */
void buse_wb_sync(struct buse_dev *dev)
{
	struct block_device *bdev = dev->disk->part0;
	int ret;

	sync_blockdev(bdev);
	ret = blkdev_issue_flush(bdev);
	if (ret)
		dev_warn(disk_to_dev(dev->disk), "flush before delete: %d\n",
			 ret);
}

/*
 * After del_gendisk(): wait until every logged write is applied and its
 * record given back, as long as the daemon makes progress (a request
 * timeout without any is the limit).  False if records are left.
 */
bool buse_wb_drain(struct buse_dev *dev)
{
	unsigned long tmo = msecs_to_jiffies(dev->params.timeout_ms);
	unsigned long last = jiffies;
	u64 done, prev = 0;
	unsigned int i;
	u32 left;

	for (;;) {
		left = 0;
		done = 0;
		for (i = 0; i < dev->params.nr_queues; i++) {
			struct buse_queue *q = &dev->queues[i];

			spin_lock(&q->sq_lock);
			if (!q->dead && !q->shutdown)
				left += q->rec_tail - q->rec_head;
			done += q->rec_head;
			spin_unlock(&q->sq_lock);
		}
		if (!left)
			return true;
		if (done != prev) {
			prev = done;
			last = jiffies;
		} else if (time_after(jiffies, last + tmo) ||
			   fatal_signal_pending(current)) {
			return false;
		}
		msleep(20);
	}
}

/*
 * Writes wait for log space that the daemon does not free: a logged write
 * it left unacknowledged for the whole request timeout fails the queue like
 * a timed-out request (its log space must not be reused while the daemon
 * may still read it); the logged writes are lost, so the next flush fails,
 * and the waiting writes fail instead of hanging.  Orphaned queues wait for
 * their recovery timeout instead.
 */
void buse_wb_expire_work(struct work_struct *work)
{
	struct buse_dev *dev = container_of(to_delayed_work(work),
					    struct buse_dev, wb_work);
	unsigned long tmo = msecs_to_jiffies(dev->params.timeout_ms);
	bool again = false;
	unsigned int i;

	for (i = 0; i < dev->params.nr_queues; i++) {
		struct buse_queue *q = &dev->queues[i];
		bool expired;

		if (!q->recs || READ_ONCE(q->orphaned) || READ_ONCE(q->dead))
			continue;
		/*
		 * The timeout is for applying, not for releasing: look at the
		 * oldest unapplied record.
		 */
		spin_lock(&q->sq_lock);
		expired = q->rec_apply != q->rec_tail &&
			  time_after_eq(jiffies,
					buse_wb_rec(q, q->rec_apply)->stamp + tmo);
		spin_unlock(&q->sq_lock);
		if (expired) {
			buse_queue_timed_out(q);
			buse_wb_abort(q, true);
		} else if (READ_ONCE(q->need_rerun)) {
			again = true;
		}
	}
	buse_wb_release(dev);
	if (again)
		schedule_delayed_work(&dev->wb_work, tmo);
}

/*
 * The queue's daemon died and a new one may come: what the dead one had
 * applied and retained lived in its memory only, so it counts as unapplied
 * again (reads, flushes and overlapping writes wait for the next daemon to
 * apply it once more).  Caller holds sq_lock, the daemon's last completions
 * consumed.
 */
void buse_wb_orphan(struct buse_queue *q)
{
	u32 i;

	lockdep_assert_held(&q->sq_lock);
	if (!q->recs)
		return;
	for (i = q->rec_head; i != q->rec_tail; i++) {
		struct buse_logrec *rec = buse_wb_rec(q, i);

		if (!rec->applied || rec->released)
			continue;
		rec->applied = false;
		rec->applied_before = true;
		buse_wb_mark(q->dev, rec->sector, rec->len);
	}
	q->rec_apply = q->rec_head;
	buse_wb_update_oldest(q);
}

/*
 * Recovery: a request the dead daemon had taken that write-back mode holds
 * behind unapplied writes (a read of such a chunk, a flush, FUA, discard,
 * write-zeroes) is held again instead of being handed out, since writes
 * the dead daemon had applied are to be applied again first.
 */
bool buse_wb_repark(struct buse_queue *q, struct request *rq)
{
	struct buse_dev *dev = q->dev;
	struct buse_cmd *cmd = buse_cmd(rq);

	/* Other writes than FUA ones never take a slot in write-back mode. */
	if (!q->recs || buse_wb_unordered ||
	    (req_op(rq) == REQ_OP_READ && !buse_wb_dirty(dev, rq)))
		return false;
	cmd->need_seq = atomic64_read(&dev->wb_seq);
	spin_lock(&dev->park_lock);
	list_add_tail(&cmd->park, &dev->parked);
	cmd->parked = true;
	cmd->held_at = jiffies;
	spin_unlock(&dev->park_lock);
	return true;
}

/* BUSE_CTL_GET_INFO: how full the logs are. */
void buse_wb_usage(struct buse_dev *dev, struct buse_dev_info *info)
{
	unsigned int i;
	u32 r;

	for (i = 0; i < dev->params.nr_queues; i++) {
		struct buse_queue *q = &dev->queues[i];

		if (!q->recs)
			continue;
		spin_lock(&q->sq_lock);
		info->log_recs += q->nr_recs;
		info->log_size += q->log_size;
		info->log_free += q->log_size - (q->log_tail - q->log_head);
		for (r = q->rec_head; r != q->rec_tail; r++) {
			struct buse_logrec *rec = buse_wb_rec(q, r);

			if (rec->released)
				continue;
			if (rec->applied) {
				info->retained_recs++;
				info->retained_bytes += rec->len;
			} else {
				info->unapplied_recs++;
				info->unapplied_bytes += rec->len;
			}
		}
		spin_unlock(&q->sq_lock);
	}
}

/*
 * A new daemon took over an orphaned queue: hand it every unreleased
 * record again, in seq order, with a fresh timeout; those a dead daemon had
 * applied and retained are marked so.  Caller holds cq_lock and sq_lock,
 * with the rings just reset.
 */
void buse_wb_replay(struct buse_queue *q)
{
	u32 i;

	lockdep_assert_held(&q->sq_lock);
	for (i = q->rec_head; i != q->rec_tail; i++) {
		struct buse_logrec *rec = buse_wb_rec(q, i);
		unsigned long key = READ_ONCE(rec->key);

		/* Order is unknown now: every replayed write waits its turn. */
		if (!(key & 1) || cmpxchg(&rec->key, key, 0) != key)
			continue;
		rec->stamp = jiffies;
		buse_wb_push(q, rec, BUSE_SQE_AFTER | BUSE_SQE_REPLAYED |
			     (rec->applied_before ?
			      BUSE_SQE_APPLIED_BEFORE : 0));
	}
}
