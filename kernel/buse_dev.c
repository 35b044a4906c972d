// SPDX-License-Identifier: GPL-2.0
/*
 * BUSE devices: parameters, lifetime, the gendisk and its blk-mq tag set.
 *
 * A device is referenced by the id table (until BUSE_CTL_DEL) and by every
 * open queue fd, so the shared regions a daemon still maps outlive deletion.
 * Each device also pins the module: unloading with devices present fails
 * with EBUSY instead of leaving them behind.
 */
#include <linux/blkdev.h>
#include <linux/ctype.h>
#include <linux/cpumask.h>
#include <linux/file.h>
#include <linux/idr.h>
#include <linux/log2.h>
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/sysfs.h>
#include <linux/uaccess.h>
#include <linux/version.h>

#include "buse.h"

static DEFINE_MUTEX(buse_idr_lock);
static DEFINE_IDR(buse_idr);
static int buse_major;

/*
 * Shared regions are pinned, unswappable memory.  Allocating them until
 * the pages run out would leave the OOM killer to choose a victim, so all
 * devices together get a budget, checked before anything is allocated.
 */
static unsigned int buse_pinned_limit_mb;
module_param_named(pinned_limit_mb, buse_pinned_limit_mb, uint, 0644);
MODULE_PARM_DESC(pinned_limit_mb,
		 "MiB of shared regions all devices together may pin (0: half of RAM)");
static atomic64_t buse_pinned_total = ATOMIC64_INIT(0);

static u64 buse_pinned_limit(void)
{
	unsigned int mb = READ_ONCE(buse_pinned_limit_mb);

	if (mb)
		return (u64)mb << 20;
	return ((u64)totalram_pages() << PAGE_SHIFT) / 2;
}

/* Take @bytes from the budget, or -ENOMEM when they do not fit in it. */
static int buse_pin_charge(u64 bytes)
{
	u64 limit = buse_pinned_limit();
	s64 total;

	if (bytes > limit)
		return -ENOMEM;
	total = atomic64_add_return(bytes, &buse_pinned_total);
	if (total < 0 || (u64)total > limit) {
		atomic64_sub(bytes, &buse_pinned_total);
		return -ENOMEM;
	}
	return 0;
}

static const struct block_device_operations buse_bdev_fops = {
	.owner = THIS_MODULE,
};

/* /sys/block/buseN/serial: the stable name udev links in by-id. */
static ssize_t serial_show(struct device *d, struct device_attribute *attr,
			   char *buf)
{
	struct buse_dev *dev = dev_to_disk(d)->private_data;

	return sysfs_emit(buf, "%s\n", dev->params.serial);
}
static DEVICE_ATTR_RO(serial);

static struct attribute *buse_disk_attrs[] = {
	&dev_attr_serial.attr,
	NULL,
};

static const struct attribute_group buse_disk_group = {
	.attrs = buse_disk_attrs,
};

static const struct attribute_group *buse_disk_groups[] = {
	&buse_disk_group,
	NULL,
};

static int buse_init_hctx(struct blk_mq_hw_ctx *hctx, void *data,
			  unsigned int hctx_idx)
{
	struct buse_dev *dev = data;

	hctx->driver_data = &dev->queues[hctx_idx];
	dev->queues[hctx_idx].hctx = hctx;
	return 0;
}

static int buse_init_request(struct blk_mq_tag_set *set, struct request *rq,
			     unsigned int hctx_idx, unsigned int numa_node)
{
	struct buse_cmd *cmd = blk_mq_rq_to_pdu(rq);

	INIT_LIST_HEAD(&cmd->park);
	INIT_WORK(&cmd->copy, buse_copy_work);
	return 0;
}

static const struct blk_mq_ops buse_mq_ops = {
	.queue_rq	= buse_queue_rq,
	.timeout	= buse_timeout,
	.init_hctx	= buse_init_hctx,
	.init_request	= buse_init_request,
};

static bool buse_valid_bs(u32 bs, u32 max)
{
	return bs >= BUSE_MIN_BLOCK_SIZE && bs <= max && is_power_of_2(bs);
}

/*
 * A serial becomes a file name under /dev/disk/by-id: a safe alphabet,
 * NUL-terminated and zero-padded so that GET_INFO returns only what was
 * accepted.
 */
static bool buse_valid_serial(const char *s)
{
	size_t len = strnlen(s, BUSE_SERIAL_LEN), i;

	if (len == BUSE_SERIAL_LEN || (len && (s[0] == '.' || s[0] == '-')))
		return false;
	for (i = 0; i < len; i++)
		if (!isalnum(s[i]) && s[i] != '.' && s[i] != '_' && s[i] != '-')
			return false;
	return !memchr_inv(s + len, 0, BUSE_SERIAL_LEN - len);
}

/* Whether another device has @serial; buse_idr_lock held. */
static bool buse_serial_taken(const char *serial)
{
	struct buse_dev *dev;
	int id;

	if (!serial[0])
		return false;
	idr_for_each_entry(&buse_idr, dev, id)
		if (dev && !strcmp(dev->params.serial, serial))
			return true;
	return false;
}

/* Check what userspace asked for, fill in defaults, and say why not. */
static int buse_check_params(struct buse_dev_params *p)
{
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(p->reserved); i++)
		if (p->reserved[i])
			return -EINVAL;
	if (p->flags & ~BUSE_F_SUPPORTED)
		return -EOPNOTSUPP;
	if (strnlen(p->name, sizeof(p->name)) == sizeof(p->name))
		return -EINVAL;
	if (!buse_valid_serial(p->serial))
		return -EINVAL;
	if (p->dev_id != BUSE_DEV_ID_ANY && p->dev_id >= BUSE_MAX_DEVS)
		return -EINVAL;

	if (!p->logical_block_size)
		p->logical_block_size = BUSE_MIN_BLOCK_SIZE;
	if (!buse_valid_bs(p->logical_block_size, BUSE_MAX_BLOCK_SIZE))
		return -EINVAL;
	if (!p->physical_block_size)
		p->physical_block_size = p->logical_block_size;
	if (!buse_valid_bs(p->physical_block_size, 65536) ||
	    p->physical_block_size < p->logical_block_size)
		return -EINVAL;

	if (!p->size || p->size % p->logical_block_size ||
	    p->size > (1ULL << 60))
		return -EINVAL;

	if (!p->nr_queues)
		p->nr_queues = num_possible_cpus();
	p->nr_queues = min3(p->nr_queues, nr_cpu_ids, BUSE_MAX_QUEUES);

	if (!p->queue_depth)
		p->queue_depth = BUSE_DEF_DEPTH;
	if (p->queue_depth > BUSE_MAX_DEPTH)
		return -EINVAL;

	if (!p->max_io_bytes)
		p->max_io_bytes = BUSE_DEF_IO_BYTES;
	if (p->max_io_bytes % 4096 || p->max_io_bytes > BUSE_MAX_IO_BYTES ||
	    p->max_io_bytes % PAGE_SIZE)
		return -EINVAL;
	if ((u64)p->queue_depth * p->max_io_bytes > BUSE_MAX_QUEUE_DATA)
		return -EINVAL;

	if (p->flags & (BUSE_F_DISCARD | BUSE_F_WRITE_ZEROES)) {
		if (!p->max_discard_bytes)
			p->max_discard_bytes = BUSE_MAX_DISCARD_BYTES;
		if (p->max_discard_bytes % p->logical_block_size ||
		    p->max_discard_bytes > BUSE_MAX_DISCARD_BYTES)
			return -EINVAL;
	} else {
		p->max_discard_bytes = 0;
	}
	/* FUA means nothing without a cache to bypass. */
	if (!(p->flags & BUSE_F_FLUSH))
		p->flags &= ~BUSE_F_FUA;

	if (!p->timeout_ms)
		p->timeout_ms = BUSE_DEF_TIMEOUT_MS;
	if (p->timeout_ms < 100 || p->timeout_ms > BUSE_MAX_TIMEOUT_MS)
		return -EINVAL;

	/*
	 * A write-back disk has a volatile cache whatever the driver says:
	 * only a flush waits for the log to apply and reports lost writes.
	 */
	if (p->flags & BUSE_F_WRITE_BACK)
		p->flags |= BUSE_F_FLUSH | BUSE_F_FUA;
	if (!(p->flags & BUSE_F_WRITE_BACK))
		p->log_bytes = 0;
	else if (!p->log_bytes)
		p->log_bytes = BUSE_DEF_LOG_BYTES;
	if (p->log_bytes % PAGE_SIZE || p->log_bytes > BUSE_MAX_LOG_BYTES ||
	    (p->log_bytes && p->log_bytes < p->max_io_bytes))
		return -EINVAL;

	if (!(p->flags & BUSE_F_RECOVERABLE))
		p->recovery_timeout_ms = 0;
	else if (!p->recovery_timeout_ms)
		p->recovery_timeout_ms = BUSE_DEF_RECOVERY_MS;
	if (p->recovery_timeout_ms > BUSE_MAX_TIMEOUT_MS)
		return -EINVAL;
	return 0;
}

/* The pinned bytes a device's regions take (data slots and logs). */
static u64 buse_pinned_bytes(const struct buse_dev_params *p)
{
	return (u64)p->nr_queues *
	       ((u64)p->queue_depth * p->max_io_bytes + p->log_bytes);
}

#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 9, 0)
static struct gendisk *buse_alloc_disk(struct buse_dev *dev)
{
	const struct buse_dev_params *p = &dev->params;
	struct queue_limits lim = {
		.logical_block_size	= p->logical_block_size,
		.physical_block_size	= p->physical_block_size,
		.io_min			= p->physical_block_size,
		.max_hw_sectors		= p->max_io_bytes >> SECTOR_SHIFT,
		.max_segments		= USHRT_MAX,
		.max_segment_size	= UINT_MAX,
	};
	struct gendisk *disk;

	if (p->flags & BUSE_F_DISCARD) {
		lim.max_hw_discard_sectors = p->max_discard_bytes >> SECTOR_SHIFT;
		lim.discard_granularity = p->logical_block_size;
	}
	if (p->flags & BUSE_F_WRITE_ZEROES)
		lim.max_write_zeroes_sectors = p->max_discard_bytes >> SECTOR_SHIFT;
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 11, 0)
	if (p->flags & BUSE_F_FLUSH)
		lim.features |= BLK_FEAT_WRITE_CACHE;
	if (p->flags & BUSE_F_FUA)
		lim.features |= BLK_FEAT_FUA;
	if (p->flags & BUSE_F_ROTATIONAL)
		lim.features |= BLK_FEAT_ROTATIONAL;
#endif
	disk = blk_mq_alloc_disk(&dev->tag_set, &lim, dev);
#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 11, 0)
	if (!IS_ERR(disk)) {
		blk_queue_write_cache(disk->queue, p->flags & BUSE_F_FLUSH,
				      p->flags & BUSE_F_FUA);
		if (!(p->flags & BUSE_F_ROTATIONAL))
			blk_queue_flag_set(QUEUE_FLAG_NONROT, disk->queue);
	}
#endif
	return disk;
}
#else
static struct gendisk *buse_alloc_disk(struct buse_dev *dev)
{
	const struct buse_dev_params *p = &dev->params;
	struct request_queue *q;
	struct gendisk *disk;

	disk = blk_mq_alloc_disk(&dev->tag_set, dev);
	if (IS_ERR(disk))
		return disk;
	q = disk->queue;
	blk_queue_logical_block_size(q, p->logical_block_size);
	blk_queue_physical_block_size(q, p->physical_block_size);
	blk_queue_io_min(q, p->physical_block_size);
	blk_queue_max_hw_sectors(q, p->max_io_bytes >> SECTOR_SHIFT);
	blk_queue_max_segments(q, USHRT_MAX);
	blk_queue_max_segment_size(q, UINT_MAX);
	if (p->flags & BUSE_F_DISCARD) {
		blk_queue_max_discard_sectors(q,
					      p->max_discard_bytes >> SECTOR_SHIFT);
		q->limits.discard_granularity = p->logical_block_size;
	}
	if (p->flags & BUSE_F_WRITE_ZEROES)
		blk_queue_max_write_zeroes_sectors(q,
						   p->max_discard_bytes >> SECTOR_SHIFT);
	blk_queue_write_cache(q, p->flags & BUSE_F_FLUSH,
			      p->flags & BUSE_F_FUA);
	if (!(p->flags & BUSE_F_ROTATIONAL))
		blk_queue_flag_set(QUEUE_FLAG_NONROT, q);
	return disk;
}
#endif

/* Fail the requests of queues whose daemon did not come back in time. */
static void buse_recovery_work(struct work_struct *work)
{
	struct buse_dev *dev = container_of(to_delayed_work(work),
					    struct buse_dev, recovery_work);
	unsigned long next, first = 0;
	bool waiting = false;
	unsigned int i;

	for (i = 0; i < dev->params.nr_queues; i++) {
		if (!buse_queue_expire(&dev->queues[i], &next, false))
			continue;
		if (!waiting || time_before(next, first))
			first = next;
		waiting = true;
	}
	if (waiting)
		mod_delayed_work(system_wq, &dev->recovery_work,
				 time_after(first, jiffies) ? first - jiffies : 0);
}

static void buse_dev_release(struct kref *ref)
{
	struct buse_dev *dev = container_of(ref, struct buse_dev, ref);
	unsigned int i;

	cancel_delayed_work_sync(&dev->recovery_work);
	cancel_delayed_work_sync(&dev->wb_work);
	/* A copy work may still be on its way out of buse_queue_dispatch(). */
	if (dev->copy_wq)
		destroy_workqueue(dev->copy_wq);
	/* After del_gendisk(), or never added: the tag set must outlive it. */
	if (dev->disk)
		put_disk(dev->disk);
	if (dev->tag_set.tags)
		blk_mq_free_tag_set(&dev->tag_set);
	for (i = 0; i < dev->params.nr_queues; i++)
		buse_queue_free(&dev->queues[i]);
	kfree(dev->queues);
	buse_wb_dev_free(dev);
	put_pid(dev->daemon);
	atomic64_sub(dev->pinned, &buse_pinned_total);
	kfree(dev);
	module_put(THIS_MODULE);
}

void buse_dev_put(struct buse_dev *dev)
{
	kref_put(&dev->ref, buse_dev_release);
}

struct buse_dev *buse_dev_get(u32 id)
{
	struct buse_dev *dev;

	mutex_lock(&buse_idr_lock);
	dev = idr_find(&buse_idr, id);
	if (dev)
		kref_get(&dev->ref);
	mutex_unlock(&buse_idr_lock);
	return dev;
}

int buse_dev_add(struct buse_dev_params *p, struct buse_dev **out)
{
	struct buse_dev *dev;
	struct gendisk *disk;
	unsigned int i;
	int ret;

	ret = buse_check_params(p);
	if (ret)
		return ret;

	dev = kzalloc(sizeof(*dev), GFP_KERNEL);
	if (!dev)
		return -ENOMEM;
	__module_get(THIS_MODULE);
	kref_init(&dev->ref);
	mutex_init(&dev->lock);
	init_waitqueue_head(&dev->state_wait);
	INIT_DELAYED_WORK(&dev->recovery_work, buse_recovery_work);
	INIT_DELAYED_WORK(&dev->wb_work, buse_wb_expire_work);
	spin_lock_init(&dev->park_lock);
	INIT_LIST_HEAD(&dev->parked);
	dev->wb_replayed_at = jiffies;	/* never after a park: no replay yet */
	dev->params = *p;
	dev->params.name[BUSE_NAME_LEN - 1] = '\0';

	/* From here on, buse_dev_release() undoes whatever was done. */
	ret = buse_pin_charge(buse_pinned_bytes(p));
	if (ret) {
		dev->params.nr_queues = 0;
		goto out_put;
	}
	dev->pinned = buse_pinned_bytes(p); /* released with the device */
	dev->queues = kcalloc(p->nr_queues, sizeof(*dev->queues), GFP_KERNEL);
	if (!dev->queues) {
		dev->params.nr_queues = 0;
		ret = -ENOMEM;
		goto out_put;
	}
	for (i = 0; i < p->nr_queues; i++) {
		ret = buse_queue_init(dev, &dev->queues[i], i);
		if (ret)
			goto out_put;
	}
	ret = buse_wb_dev_init(dev);
	if (ret)
		goto out_put;

	dev->copy_wq = alloc_workqueue("buse-copy", WQ_UNBOUND | WQ_MEM_RECLAIM,
				       0);
	if (!dev->copy_wq) {
		ret = -ENOMEM;
		goto out_put;
	}

	dev->tag_set.ops = &buse_mq_ops;
	dev->tag_set.nr_hw_queues = p->nr_queues;
	dev->tag_set.queue_depth = p->queue_depth;
	dev->tag_set.numa_node = NUMA_NO_NODE;
	dev->tag_set.timeout = msecs_to_jiffies(p->timeout_ms);
	dev->tag_set.driver_data = dev;
	dev->tag_set.cmd_size = sizeof(struct buse_cmd);
#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 14, 0)
	dev->tag_set.flags = BLK_MQ_F_SHOULD_MERGE;
#endif
	ret = blk_mq_alloc_tag_set(&dev->tag_set);
	if (ret) {
		dev->tag_set.tags = NULL;
		goto out_put;
	}

	disk = buse_alloc_disk(dev);
	if (IS_ERR(disk)) {
		ret = PTR_ERR(disk);
		goto out_put;
	}
	dev->disk = disk;
	disk->fops = &buse_bdev_fops;
	disk->private_data = dev;
	disk->major = buse_major;
	disk->minors = 1 << BUSE_PART_SHIFT;
	set_capacity(disk, p->size >> SECTOR_SHIFT);
	if (p->flags & BUSE_F_READ_ONLY)
		set_disk_ro(disk, true);

	/*
	 * Reserve the id empty, so nobody finds a half-made device, and
	 * publish it under the same lock, so that of two devices with one
	 * serial only one gets in.
	 */
	mutex_lock(&buse_idr_lock);
	if (buse_serial_taken(p->serial))
		ret = -EEXIST;
	else if (p->dev_id == BUSE_DEV_ID_ANY)
		ret = idr_alloc(&buse_idr, NULL, 0, BUSE_MAX_DEVS, GFP_KERNEL);
	else
		ret = idr_alloc(&buse_idr, NULL, p->dev_id, p->dev_id + 1,
				GFP_KERNEL);
	if (ret < 0) {
		mutex_unlock(&buse_idr_lock);
		if (ret == -ENOSPC && p->dev_id != BUSE_DEV_ID_ANY)
			ret = -EEXIST;
		goto out_put;
	}
	dev->id = ret;
	dev->params.dev_id = ret;
	disk->first_minor = dev->id << BUSE_PART_SHIFT;
	snprintf(disk->disk_name, sizeof(disk->disk_name), BUSE_DISK_NAME "%u",
		 dev->id);
	*p = dev->params;

	/* The table's reference, and the caller's: a DEL may come at once. */
	kref_get(&dev->ref);
	*out = dev;
	idr_replace(&buse_idr, dev, dev->id);
	mutex_unlock(&buse_idr_lock);
	return 0;

out_put:
	buse_dev_put(dev);
	return ret;
}

/*
 * ATTACH: a new file for the queue, its layout copied to @argp, and only
 * then an fd for it, so that a caller whose buffer is bad gets no fd it
 * cannot learn (and the queue is as before).
 */
int buse_dev_attach(struct buse_queue_attach *a, void __user *argp)
{
	struct buse_dev *dev;
	struct buse_queue *q;
	struct file *file;
	bool was_orphaned;
	unsigned int cpu;
	int fd, ret;

	fd = get_unused_fd_flags(O_CLOEXEC);
	if (fd < 0)
		return fd;
	dev = buse_dev_get(a->dev_id);
	if (!dev) {
		put_unused_fd(fd);
		return -ENOENT;
	}
	mutex_lock(&dev->lock);
	ret = -ENODEV;
	if (dev->deleting)
		goto out;
	ret = -EINVAL;
	if (a->qid >= dev->params.nr_queues)
		goto out;
	q = &dev->queues[a->qid];
	file = buse_queue_open_file(q, &was_orphaned);
	if (IS_ERR(file)) {
		ret = PTR_ERR(file);
		goto out;
	}

	a->fd = fd;
	a->depth = dev->params.queue_depth;
	a->region_size = q->region_size;
	a->sq_off = q->sq_off;
	a->sq_entries = q->sq_entries;
	a->cq_off = q->cq_off;
	a->cq_entries = q->cq_entries;
	a->data_off = q->data_off;
	a->data_size = (u64)dev->params.queue_depth * q->slot_size;
	a->slot_size = q->slot_size;
	if (q->recs) {
		u64 applied = buse_wb_applied(dev);

		a->log_off = q->log_off;
		a->log_size = q->log_size;
		a->log_recs = q->nr_recs;
		a->wb_seq_base = applied - 1;
	}
	for_each_possible_cpu(cpu) {
		if (cpu < BUSE_MAX_CPU_WORDS * 64 &&
		    dev->tag_set.map[HCTX_TYPE_DEFAULT].mq_map[cpu] == a->qid)
			a->cpu_mask[cpu / 64] |= 1ULL << (cpu % 64);
	}
	put_pid(dev->daemon);
	dev->daemon = get_pid(task_tgid(current));
	mutex_unlock(&dev->lock);

	/* Unlocked: the copy may fault for as long as the caller likes. */
	if (copy_to_user(argp, a, sizeof(*a))) {
		mutex_lock(&dev->lock);
		buse_queue_attach_undo(q, file, was_orphaned);
		mutex_unlock(&dev->lock);
		put_unused_fd(fd);
		buse_dev_put(dev);
		return -EFAULT;
	}
	fd_install(fd, file);
	buse_dev_put(dev);
	return 0;
out:
	mutex_unlock(&dev->lock);
	put_unused_fd(fd);
	buse_dev_put(dev);
	return ret;
}

int buse_dev_start(u32 id)
{
	struct buse_dev *dev;
	int ret;

	dev = buse_dev_get(id);
	if (!dev)
		return -ENOENT;
	mutex_lock(&dev->lock);
	if (dev->deleting)
		ret = -ENODEV;
	else if (dev->started || dev->starting)
		ret = -EALREADY;
	else if (dev->add_failed)
		ret = -EIO;	/* a gendisk cannot be added twice: DEL it */
	else if (dev->nr_attached != dev->params.nr_queues)
		ret = -EBUSY;
	else
		ret = 0;
	if (!ret)
		dev->starting = true;
	mutex_unlock(&dev->lock);
	if (ret)
		goto out;

	/*
	 * Unlocked: add_disk() reads the partition table through the daemon,
	 * and meanwhile GET_INFO must answer and a recoverable daemon that
	 * dies must be able to re-attach.  starting keeps out another START;
	 * DEL waits for it to end.
	 */
	ret = device_add_disk(NULL, dev->disk, buse_disk_groups);

	mutex_lock(&dev->lock);
	dev->starting = false;
	dev->started = !ret;
	dev->add_failed = ret != 0;
	mutex_unlock(&dev->lock);
	wake_up_all(&dev->state_wait);
out:
	buse_dev_put(dev);
	return ret;
}

/*
 * Remove the disk first, while the daemon still serves it, so cached data
 * is written back; a dead daemon fails requests at once and a hung one is
 * cut off by the request timeout, so this cannot hang forever.  In
 * write-back mode, wait for the log to drain too.  Then release the
 * daemon's queue threads and drop the table's reference.  Returns -EIO if
 * logged writes were lost meanwhile (the device is gone all the same).
 *
 * dev->lock is held only to set deleting: from then on no ATTACH and no
 * START begins, so the rest needs no lock and GET_INFO, ATTACH (refused)
 * and queue releases never wait for del_gendisk().  A second DEL waits
 * until the first is done and returns -ENOENT.
 */
int buse_dev_remove(struct buse_dev *dev)
{
	bool wb = dev->params.flags & BUSE_F_WRITE_BACK;
	unsigned long next;
	unsigned int i;
	int lost;

	mutex_lock(&dev->lock);
	if (dev->deleting) {
		mutex_unlock(&dev->lock);
		/* Killable: the first DEL may wait up to a request timeout. */
		if (wait_event_killable(dev->state_wait,
					READ_ONCE(dev->removed)))
			return -EINTR;
		return -ENOENT;
	}
	WRITE_ONCE(dev->deleting, true);
	mutex_unlock(&dev->lock);

	/* A START under way ends (its requests are served or time out). */
	wait_event(dev->state_wait, !READ_ONCE(dev->starting));

	lost = atomic_read(&dev->wb_lost);
	/* Requests waiting for a daemon that may never come fail now. */
	for (i = 0; i < dev->params.nr_queues; i++)
		buse_queue_expire(&dev->queues[i], &next, true);
	/* Stable now: only START sets it, and none can begin. */
	if (READ_ONCE(dev->started)) {
		if (wb)
			buse_wb_sync(dev);
		del_gendisk(dev->disk);
	}
	/*
	 * Logged writes are complete for the application: the queues stay
	 * served until the driver has them all.
	 */
	if (wb)
		buse_wb_drain(dev);
	for (i = 0; i < dev->params.nr_queues; i++)
		buse_queue_shutdown(&dev->queues[i]);
	lost = atomic_read(&dev->wb_lost) - lost;

	/* Whoever set deleting removes the id, so it still maps to us. */
	mutex_lock(&buse_idr_lock);
	idr_remove(&buse_idr, dev->id);
	mutex_unlock(&buse_idr_lock);
	WRITE_ONCE(dev->removed, true);
	wake_up_all(&dev->state_wait);

	buse_dev_put(dev);	/* the table's reference */
	/* The device is gone either way; say that writes were lost. */
	return lost ? -EIO : 0;
}

int buse_dev_del(u32 id)
{
	struct buse_dev *dev;
	int ret;

	dev = buse_dev_get(id);
	if (!dev)
		return -ENOENT;
	ret = buse_dev_remove(dev);
	buse_dev_put(dev);
	return ret;
}

static u32 buse_dev_state(struct buse_dev *dev)
{
	unsigned int i;

	if (dev->deleting)
		return BUSE_STATE_DELETING;
	for (i = 0; i < dev->params.nr_queues; i++)
		if (READ_ONCE(dev->queues[i].dead))
			return BUSE_STATE_DEAD;
	for (i = 0; i < dev->params.nr_queues; i++)
		if (READ_ONCE(dev->queues[i].orphaned))
			return BUSE_STATE_ORPHANED;
	if (dev->started)
		return BUSE_STATE_LIVE;
	if (dev->nr_attached == dev->params.nr_queues)
		return BUSE_STATE_READY;
	return BUSE_STATE_CREATED;
}

int buse_dev_info(struct buse_dev_info *info)
{
	struct buse_dev *dev = NULL;
	u32 id = info->dev_id;
	u32 flags = info->flags;

	if (flags & ~BUSE_INFO_NEXT)
		return -EINVAL;
	if (flags & BUSE_INFO_NEXT) {
		int next = id > INT_MAX ? INT_MAX : id;

		mutex_lock(&buse_idr_lock);
		dev = idr_get_next(&buse_idr, &next);
		if (dev)
			kref_get(&dev->ref);
		mutex_unlock(&buse_idr_lock);
	} else {
		dev = buse_dev_get(id);
	}
	if (!dev)
		return -ENOENT;

	memset(info, 0, sizeof(*info));
	mutex_lock(&dev->lock);
	info->dev_id = dev->id;
	info->flags = flags;
	info->params = dev->params;
	info->state = buse_dev_state(dev);
	info->daemon_pid = dev->daemon ? pid_vnr(dev->daemon) : 0;
	info->nr_attached = dev->nr_attached;
	info->major = buse_major;
	info->minor = dev->id << BUSE_PART_SHIFT;
	if (dev->params.flags & BUSE_F_WRITE_BACK)
		buse_wb_usage(dev, info);
	mutex_unlock(&dev->lock);
	buse_dev_put(dev);
	return 0;
}

int buse_blk_init(void)
{
	buse_major = register_blkdev(0, BUSE_DISK_NAME);
	return buse_major < 0 ? buse_major : 0;
}

void buse_blk_exit(void)
{
	unregister_blkdev(buse_major, BUSE_DISK_NAME);
}
