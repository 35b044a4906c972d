// SPDX-License-Identifier: LGPL-2.1-or-later
/* The fake buse.ko; see fake_kernel.h. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <buse/fake.h>
#include "sys.h"

#define FAKE_MAX_FDS 256

enum { FD_FREE, FD_CTL, FD_QUEUE };

struct fq {
	bool attached;
	int fd;
	char *region;
	uint64_t region_size;
	int maps;
	struct buse_ring_hdr *hdr;
	struct buse_sqe *sq;
	struct buse_cqe *cq;
	uint32_t sq_entries, cq_entries, depth, slot_size;
	uint32_t req_depth; /* depth - log records */
	uint64_t data_off, data_size;
	uint32_t sq_tail; /* kernel's indices */
	uint32_t cq_head;
	uint32_t next_tag;
	unsigned sleepers; /* threads asleep in SYNC_WAIT */
	bool busy[FAKE_MAX_DEPTH];
	uint32_t cookie[FAKE_MAX_DEPTH];
	unsigned ticket[FAKE_MAX_DEPTH];
};

struct fdev {
	bool used;   /* slot holds a device, maybe deleted */
	bool exists; /* not deleted */
	struct buse_dev_params params;
	uint32_t state;
	struct fq q[FAKE_MAX_QUEUES];
};

struct ticket {
	unsigned dev, qid, tag;
	uint64_t data_off;
	bool done;
	int status;
	bool logged, applied;
	uint64_t seq;
};

static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct fake_cfg cfg;
	struct fdev dev[FAKE_MAX_DEVS];
	int last_dev;
	struct buse_dev_params last_add;
	struct {
		int kind;
		unsigned dev, qid;
	} fds[FAKE_MAX_FDS];
	struct ticket *tickets;
	unsigned nr_tickets, cap_tickets;
	struct fake_stats st;
	uint32_t cookie_seed;
	uint64_t max_seq;
} fk = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.cond = PTHREAD_COND_INITIALIZER,
};

static struct buse_sys_ops real_sys;

/* Fail the test from the test thread without leaving fk.lock held. */
#define check_locked(cond)                                                     \
	do {                                                                   \
		if (!(cond)) {                                                 \
			pthread_mutex_unlock(&fk.lock);                        \
			fail_msg("fake kernel: %s", #cond);                    \
		}                                                              \
	} while (0)

static void wake(void)
{
	pthread_cond_broadcast(&fk.cond);
}

/* Wait on fk.cond until @deadline; false on timeout.  Under fk.lock. */
static bool wait_until(const struct timespec *deadline)
{
	return pthread_cond_timedwait(&fk.cond, &fk.lock, deadline) == 0;
}

static struct timespec deadline_ms(unsigned ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	return ts;
}

static uint32_t roundup_pow2(uint32_t v)
{
	uint32_t p = 1;

	while (p < v)
		p <<= 1;
	return p;
}

static int fd_new(int kind, unsigned dev, unsigned qid)
{
	int i;

	for (i = 0; i < FAKE_MAX_FDS; i++) {
		if (fk.fds[i].kind == FD_FREE) {
			fk.fds[i].kind = kind;
			fk.fds[i].dev = dev;
			fk.fds[i].qid = qid;
			return FAKE_FD_BASE + i;
		}
	}
	return -1;
}

static int fd_kind(int fd)
{
	if (fd < FAKE_FD_BASE || fd >= FAKE_FD_BASE + FAKE_MAX_FDS)
		return FD_FREE;
	return fk.fds[fd - FAKE_FD_BASE].kind;
}

static int set_errno(int err)
{
	errno = err;
	return -1;
}

static int fk_open(const char *path, int flags)
{
	int fd;

	pthread_mutex_lock(&fk.lock);
	if (strcmp(path, "/dev/buse-control") ||
	    (flags & O_ACCMODE) != O_RDWR || !(flags & O_CLOEXEC))
		fk.st.bad_call++;
	if (fk.cfg.open_errno) {
		pthread_mutex_unlock(&fk.lock);
		return set_errno(fk.cfg.open_errno);
	}
	fd = fd_new(FD_CTL, 0, 0);
	fk.st.opens++;
	pthread_mutex_unlock(&fk.lock);
	return fd < 0 ? set_errno(EMFILE) : fd;
}

static int fk_close(int fd)
{
	int kind;

	pthread_mutex_lock(&fk.lock);
	kind = fd_kind(fd);
	if (kind == FD_FREE) {
		fk.st.bad_call++;
		pthread_mutex_unlock(&fk.lock);
		return set_errno(EBADF);
	}
	if (kind == FD_CTL) {
		fk.st.ctl_closes++;
	} else {
		struct fdev *d = &fk.dev[fk.fds[fd - FAKE_FD_BASE].dev];

		d->q[fk.fds[fd - FAKE_FD_BASE].qid].fd = -1;
		fk.st.q_closes++;
	}
	fk.fds[fd - FAKE_FD_BASE].kind = FD_FREE;
	pthread_mutex_unlock(&fk.lock);
	return 0;
}

/* Lay out a region like buse.ko does. */
static int make_region(struct fq *q, uint32_t depth)
{
	uint64_t off;

	q->depth = depth;
	q->sq_entries =
		fk.cfg.sq_entries ? fk.cfg.sq_entries : roundup_pow2(depth);
	q->cq_entries =
		fk.cfg.cq_entries ? fk.cfg.cq_entries : roundup_pow2(depth);
	q->slot_size = fk.cfg.slot_size;
	off = sizeof(struct buse_ring_hdr);
	q->sq = (void *)(uintptr_t)off; /* offsets for now */
	off += (uint64_t)q->sq_entries * sizeof(struct buse_sqe);
	off = (off + 63) & ~63ULL;
	q->cq = (void *)(uintptr_t)off;
	off += (uint64_t)q->cq_entries * sizeof(struct buse_cqe);
	q->data_off = (off + 4095) & ~4095ULL;
	q->data_size = (uint64_t)depth * q->slot_size;
	q->region_size = q->data_off + q->data_size;
	q->region = mmap(NULL, q->region_size, PROT_READ | PROT_WRITE,
			 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (q->region == MAP_FAILED) {
		q->region = NULL;
		return -ENOMEM;
	}
	q->hdr = (void *)q->region;
	q->sq = (void *)(q->region + (uintptr_t)q->sq);
	q->cq = (void *)(q->region + (uintptr_t)q->cq);
	q->sq_tail = q->cq_head = fk.cfg.start_index;
	q->hdr->sq_tail = q->hdr->sq_head = fk.cfg.start_index;
	q->hdr->cq_tail = q->hdr->cq_head = fk.cfg.start_index;
	return 0;
}

static int find_dev(uint32_t id)
{
	int i;

	for (i = 0; i < FAKE_MAX_DEVS; i++)
		if (fk.dev[i].exists && fk.dev[i].params.dev_id == id)
			return i;
	return -1;
}

static int new_dev(struct buse_dev_params *p)
{
	int i, slot = -1;
	uint32_t id;

	for (i = 0; i < FAKE_MAX_DEVS; i++) {
		if (!fk.dev[i].used) {
			slot = i;
			break;
		}
	}
	if (slot < 0)
		return -ENOSPC;
	if (p->dev_id == BUSE_DEV_ID_ANY) {
		for (id = 0; find_dev(id) >= 0; id++)
			;
		p->dev_id = id;
	} else if (find_dev(p->dev_id) >= 0) {
		return -EEXIST;
	}
	memset(&fk.dev[slot], 0, sizeof(fk.dev[slot]));
	fk.dev[slot].used = true;
	fk.dev[slot].exists = true;
	fk.dev[slot].params = *p;
	fk.dev[slot].state = BUSE_STATE_CREATED;
	for (i = 0; i < FAKE_MAX_QUEUES; i++)
		fk.dev[slot].q[i].fd = -1;
	fk.last_dev = slot;
	return slot;
}

static int ctl_add(struct buse_dev_params *p)
{
	size_t i;
	int slot;

	fk.st.add_calls++;
	fk.last_add = *p;
	if (fk.cfg.add_errno)
		return -fk.cfg.add_errno;
	for (i = 0; i < sizeof(p->reserved) / sizeof(p->reserved[0]); i++)
		if (p->reserved[i])
			return -EINVAL;
	if (p->flags & ~BUSE_F_SUPPORTED ||
	    !memchr(p->name, 0, sizeof(p->name)))
		return -EINVAL;
	if (p->logical_block_size < 512 || p->logical_block_size > 4096 ||
	    p->logical_block_size & (p->logical_block_size - 1) || !p->size ||
	    p->size % p->logical_block_size)
		return -EINVAL;
	if (p->nr_queues > FAKE_MAX_QUEUES || p->queue_depth > FAKE_MAX_DEPTH)
		return -EINVAL;
	if (!p->physical_block_size)
		p->physical_block_size = p->logical_block_size;
	if (!p->nr_queues)
		p->nr_queues = fk.cfg.nr_queues;
	if (!p->queue_depth)
		p->queue_depth = fk.cfg.depth;
	if (!p->max_io_bytes)
		p->max_io_bytes = fk.cfg.slot_size;
	if (!p->timeout_ms)
		p->timeout_ms = BUSE_DEF_TIMEOUT_MS;
	slot = new_dev(p);
	return slot < 0 ? slot : 0;
}

static int ctl_attach(struct buse_queue_attach *a)
{
	struct fdev *d;
	struct fq *q;
	int slot, ret;

	fk.st.attach_calls++;
	slot = find_dev(a->dev_id);
	if (slot < 0)
		return -ENOENT;
	d = &fk.dev[slot];
	if (a->qid >= d->params.nr_queues)
		return -EINVAL;
	q = &d->q[a->qid];
	if (q->attached)
		return -EBUSY;
	if ((int)a->qid == fk.cfg.attach_fail_qid)
		return -fk.cfg.attach_errno;
	ret = make_region(q, d->params.queue_depth + (d->params.flags &
							       BUSE_F_WRITE_BACK ?
						       fk.cfg.log_recs : 0));
	if (ret)
		return ret;
	q->req_depth = d->params.queue_depth;
	q->fd = fd_new(FD_QUEUE, slot, a->qid);
	if (q->fd < 0)
		return -EMFILE;
	q->attached = true;
	a->fd = q->fd;
	a->depth = q->req_depth;
	a->log_recs = q->depth - q->req_depth;
	if (a->log_recs) {
		a->log_off = q->data_off + (uint64_t)q->req_depth * q->slot_size;
		a->log_size = (uint64_t)a->log_recs * q->slot_size;
	}
	a->region_size = q->region_size;
	a->sq_off = (char *)q->sq - q->region;
	a->sq_entries = q->sq_entries;
	a->cq_off = (char *)q->cq - q->region;
	a->cq_entries = q->cq_entries;
	a->data_off = q->data_off;
	a->data_size = (uint64_t)q->req_depth * q->slot_size;
	a->slot_size = q->slot_size;
	memset(a->cpu_mask, 0, sizeof(a->cpu_mask));
	a->cpu_mask[0] = fk.cfg.cpu_mask0;
	if (d->state == BUSE_STATE_CREATED) {
		unsigned i, n = 0;

		for (i = 0; i < d->params.nr_queues; i++)
			n += d->q[i].attached;
		if (n == d->params.nr_queues)
			d->state = BUSE_STATE_READY;
	}
	return 0;
}

static int ctl_start(uint32_t id)
{
	int slot = find_dev(id);

	fk.st.start_calls++;
	if (slot < 0)
		return -ENOENT;
	if (fk.dev[slot].state != BUSE_STATE_READY)
		return -EINVAL;
	if (fk.cfg.start_errno)
		return -fk.cfg.start_errno;
	fk.dev[slot].state = BUSE_STATE_LIVE;
	wake();
	return 0;
}

static int do_del(uint32_t id)
{
	int slot = find_dev(id);

	if (slot < 0)
		return -ENOENT;
	fk.dev[slot].exists = false;
	fk.dev[slot].state = BUSE_STATE_DELETING;
	wake();
	return 0;
}

static int ctl_info(struct buse_dev_info *info)
{
	int i, best = -1;
	struct fdev *d;
	unsigned n = 0;

	fk.st.info_calls++;
	if (info->flags & ~BUSE_INFO_NEXT)
		return -EINVAL;
	for (i = 0; i < FAKE_MAX_DEVS; i++) {
		d = &fk.dev[i];
		if (!d->exists)
			continue;
		if (info->flags & BUSE_INFO_NEXT) {
			if (d->params.dev_id >= info->dev_id &&
			    (best < 0 ||
			     d->params.dev_id < fk.dev[best].params.dev_id))
				best = i;
		} else if (d->params.dev_id == info->dev_id) {
			best = i;
		}
	}
	if (best < 0)
		return -ENOENT;
	d = &fk.dev[best];
	info->dev_id = d->params.dev_id;
	info->params = d->params;
	info->state = d->state;
	info->daemon_pid = getpid();
	for (i = 0; i < FAKE_MAX_QUEUES; i++)
		n += d->q[i].fd >= 0;
	info->nr_attached = n;
	info->major = 259;
	info->minor = d->params.dev_id;
	return 0;
}

/* The header's wb_applied on every queue of device @slot.  Under fk.lock. */
static void publish_applied(unsigned slot)
{
	uint64_t wm = fk.max_seq + 1;
	unsigned i;

	for (i = 0; i < fk.nr_tickets; i++) {
		const struct ticket *t = &fk.tickets[i];

		if (t->dev == slot && t->logged && !t->applied && !t->done &&
		    t->seq < wm)
			wm = t->seq;
	}
	for (i = 0; i < FAKE_MAX_QUEUES; i++)
		if (fk.dev[slot].q[i].hdr)
			__atomic_store_n(&fk.dev[slot].q[i].hdr->wb_applied, wm,
					 __ATOMIC_RELEASE);
}

/* Take every completion the daemon published.  Under fk.lock. */
static void consume(unsigned slot, unsigned qid)
{
	struct fq *q = &fk.dev[slot].q[qid];
	uint32_t tail = __atomic_load_n(&q->hdr->cq_tail, __ATOMIC_ACQUIRE);

	if (tail - q->cq_head > q->cq_entries) {
		fk.st.bad_cqe++;
		return;
	}
	while (q->cq_head != tail) {
		struct buse_cqe c = q->cq[q->cq_head & (q->cq_entries - 1)];
		struct ticket *t;

		q->cq_head++;
		if (c.tag >= q->depth || !q->busy[c.tag] ||
		    q->cookie[c.tag] != c.cookie ||
		    (c.flags && (c.flags != BUSE_CQE_RETAIN ||
				 c.tag < q->req_depth || c.status ||
				 fk.tickets[q->ticket[c.tag]].applied))) {
			fk.st.bad_cqe++;
			continue;
		}
		t = &fk.tickets[q->ticket[c.tag]];
		if (c.flags) {
			t->applied = true;
			continue;
		}
		q->busy[c.tag] = false;
		t->applied = true;
		t->done = true;
		t->status = c.status;
		fk.st.completed[qid]++;
		fk.st.completed_total++;
	}
	/* A buggy kernel: publish a head a whole ring behind. */
	if (fk.cfg.stale_cq_head) {
		fk.cfg.stale_cq_head--;
		__atomic_store_n(&q->hdr->cq_head, q->cq_head - q->cq_entries,
				 __ATOMIC_RELEASE);
	} else {
		__atomic_store_n(&q->hdr->cq_head, q->cq_head,
				 __ATOMIC_RELEASE);
	}
	publish_applied(slot);
	wake();
}

/* The injected failure of a queue's kernel connection. */
static bool sync_fails(const struct fdev *d, unsigned qid)
{
	return (int)qid == fk.cfg.sync_fail_qid && d->state == BUSE_STATE_LIVE;
}

static int q_sync(unsigned slot, unsigned qid, unsigned long flags)
{
	struct fdev *d = &fk.dev[slot];
	struct fq *q = &d->q[qid];

	if (flags & ~(unsigned long)BUSE_SYNC_WAIT)
		return -EINVAL;
	if (flags & BUSE_SYNC_WAIT)
		fk.st.syncwait[qid]++;
	else
		fk.st.sync0[qid]++;
	consume(slot, qid);
	if (flags & BUSE_SYNC_WAIT) {
		q->sleepers++;
		wake();
		while (d->exists && !sync_fails(d, qid) &&
		       q->sq_tail == __atomic_load_n(&q->hdr->sq_head,
						     __ATOMIC_ACQUIRE) &&
		       !(q->hdr->wb_want &&
			 q->hdr->wb_applied >= q->hdr->wb_want))
			pthread_cond_wait(&fk.cond, &fk.lock);
		q->sleepers--;
	}
	if (d->exists && sync_fails(d, qid))
		return -fk.cfg.sync_errno;
	if (!d->exists)
		return -ENODEV;
	return q->sq_tail - __atomic_load_n(&q->hdr->sq_head, __ATOMIC_ACQUIRE);
}

static int fk_ioctl(int fd, unsigned long req, unsigned long arg)
{
	void *p = (void *)(uintptr_t)arg;
	int kind, ret;

	pthread_mutex_lock(&fk.lock);
	kind = fd_kind(fd);
	if (kind == FD_FREE) {
		fk.st.bad_call++;
		ret = -EBADF;
	} else if (kind == FD_QUEUE) {
		ret = req == BUSE_IOC_SYNC
			      ? q_sync(fk.fds[fd - FAKE_FD_BASE].dev,
				       fk.fds[fd - FAKE_FD_BASE].qid, arg)
			      : -ENOTTY;
	} else {
		switch (req) {
		case BUSE_CTL_ADD:
			ret = ctl_add(p);
			break;
		case BUSE_CTL_ATTACH_QUEUE:
			ret = ctl_attach(p);
			break;
		case BUSE_CTL_START:
			ret = ctl_start(arg);
			break;
		case BUSE_CTL_DEL:
			fk.st.del_calls++;
			ret = do_del(arg);
			break;
		case BUSE_CTL_GET_INFO:
			ret = ctl_info(p);
			break;
		default:
			ret = -ENOTTY;
		}
	}
	pthread_mutex_unlock(&fk.lock);
	return ret < 0 ? set_errno(-ret) : ret;
}

static struct fq *fd_queue(int fd)
{
	if (fd_kind(fd) != FD_QUEUE)
		return NULL;
	return &fk.dev[fk.fds[fd - FAKE_FD_BASE].dev]
			.q[fk.fds[fd - FAKE_FD_BASE].qid];
}

static void *fk_mmap(void *addr, size_t len, int prot, int flags, int fd,
		     off_t off)
{
	struct fq *q;
	void *ret = MAP_FAILED;

	pthread_mutex_lock(&fk.lock);
	q = fd_queue(fd);
	if (!q || addr || len != q->region_size ||
	    prot != (PROT_READ | PROT_WRITE) || flags != MAP_SHARED || off) {
		fk.st.bad_call++;
		errno = EINVAL;
	} else if ((int)fk.fds[fd - FAKE_FD_BASE].qid == fk.cfg.mmap_fail_qid) {
		errno = fk.cfg.mmap_errno;
	} else {
		q->maps++;
		ret = q->region;
	}
	pthread_mutex_unlock(&fk.lock);
	return ret;
}

static int fk_munmap(void *addr, size_t len)
{
	int i, j;

	pthread_mutex_lock(&fk.lock);
	for (i = 0; i < FAKE_MAX_DEVS; i++) {
		for (j = 0; j < FAKE_MAX_QUEUES; j++) {
			struct fq *q = &fk.dev[i].q[j];

			if (q->region == addr && q->region && q->maps > 0 &&
			    len == q->region_size) {
				q->maps--;
				pthread_mutex_unlock(&fk.lock);
				return 0;
			}
		}
	}
	fk.st.bad_call++;
	pthread_mutex_unlock(&fk.lock);
	return set_errno(EINVAL);
}

void fake_cfg_init(struct fake_cfg *c)
{
	memset(c, 0, sizeof(*c));
	c->nr_queues = 2;
	c->depth = 8;
	c->slot_size = 8192;
	c->attach_fail_qid = -1;
	c->mmap_fail_qid = -1;
	c->sync_fail_qid = -1;
}

/* Forget every device, fd and ticket.  Under fk.lock. */
static void reset(void)
{
	int i, j;

	for (i = 0; i < FAKE_MAX_DEVS; i++)
		for (j = 0; j < FAKE_MAX_QUEUES; j++)
			if (fk.dev[i].q[j].region)
				munmap(fk.dev[i].q[j].region,
				       fk.dev[i].q[j].region_size);
	free(fk.tickets);
	fk.tickets = NULL;
	fk.nr_tickets = fk.cap_tickets = 0;
	memset(fk.dev, 0, sizeof(fk.dev));
	memset(fk.fds, 0, sizeof(fk.fds));
	memset(&fk.st, 0, sizeof(fk.st));
	fk.last_dev = -1;
}

void fake_install(const struct fake_cfg *c)
{
	static const struct buse_sys_ops fake_sys = {
		.open = fk_open,
		.close = fk_close,
		.ioctl = fk_ioctl,
		.mmap = fk_mmap,
		.munmap = fk_munmap,
	};

	pthread_mutex_lock(&fk.lock);
	/* Start clean even if an earlier test failed half way. */
	reset();
	fk.cfg = *c;
	fk.cookie_seed = 0x9e3779b9;
	if (buse_sys.open != fk_open)
		real_sys = buse_sys;
	buse_sys = fake_sys;
	pthread_mutex_unlock(&fk.lock);
}

void fake_uninstall(void)
{
	int i, j, open_fds = 0, maps = 0;
	struct fake_stats st;

	pthread_mutex_lock(&fk.lock);
	for (i = 0; i < FAKE_MAX_FDS; i++)
		open_fds += fk.fds[i].kind != FD_FREE;
	for (i = 0; i < FAKE_MAX_DEVS; i++)
		for (j = 0; j < FAKE_MAX_QUEUES; j++)
			maps += fk.dev[i].q[j].maps;
	st = fk.st;
	reset();
	buse_sys = real_sys;
	pthread_mutex_unlock(&fk.lock);

	assert_int_equal(open_fds, 0);
	assert_int_equal(maps, 0);
	assert_int_equal(st.bad_call, 0);
	assert_int_equal(st.bad_cqe, 0);
}

uint32_t fake_dev_id(void)
{
	uint32_t id;

	pthread_mutex_lock(&fk.lock);
	check_locked(fk.last_dev >= 0);
	id = fk.dev[fk.last_dev].params.dev_id;
	pthread_mutex_unlock(&fk.lock);
	return id;
}

struct buse_dev_params fake_last_add(void)
{
	struct buse_dev_params p;

	pthread_mutex_lock(&fk.lock);
	p = fk.last_add;
	pthread_mutex_unlock(&fk.lock);
	return p;
}

bool fake_wait_state(uint32_t state)
{
	struct timespec dl = deadline_ms(FAKE_WAIT_MS);
	bool ok = true;

	pthread_mutex_lock(&fk.lock);
	while (fk.last_dev < 0 || fk.dev[fk.last_dev].state != state)
		if (!wait_until(&dl)) {
			ok = false;
			break;
		}
	pthread_mutex_unlock(&fk.lock);
	return ok;
}

int fake_delete(uint32_t dev_id)
{
	int ret;

	pthread_mutex_lock(&fk.lock);
	ret = do_del(dev_id);
	pthread_mutex_unlock(&fk.lock);
	return ret;
}

uint32_t fake_add_device(uint32_t dev_id, const char *name)
{
	struct buse_dev_params p;
	int slot;

	memset(&p, 0, sizeof(p));
	p.dev_id = dev_id;
	p.size = 1 << 20;
	p.logical_block_size = 512;
	snprintf(p.name, sizeof(p.name), "%s", name);
	pthread_mutex_lock(&fk.lock);
	slot = ctl_add(&p);
	fk.st.add_calls--;
	pthread_mutex_unlock(&fk.lock);
	assert_int_equal(slot, 0);
	return p.dev_id;
}

static struct fq *last_q(unsigned qid)
{
	check_locked(fk.last_dev >= 0 && qid < FAKE_MAX_QUEUES);
	return &fk.dev[fk.last_dev].q[qid];
}

char *fake_region(unsigned qid)
{
	return last_q(qid)->region;
}

uint64_t fake_region_size(unsigned qid)
{
	return last_q(qid)->region_size;
}

uint64_t fake_data_off(unsigned qid)
{
	return last_q(qid)->data_off;
}

uint64_t fake_data_size(unsigned qid)
{
	return last_q(qid)->data_size;
}

uint64_t fake_slot_off(unsigned qid, unsigned tag)
{
	struct fq *q = last_q(qid);

	return q->data_off + (uint64_t)tag * q->slot_size;
}

unsigned fake_submit(unsigned qid, struct fake_io *io)
{
	struct timespec dl = deadline_ms(FAKE_WAIT_MS);
	struct buse_sqe *sqe;
	struct fq *q;
	unsigned t, i;
	int tag = -1;

	pthread_mutex_lock(&fk.lock);
	q = last_q(qid);
	check_locked(q->attached);
	/* Rotate through the tags so that every slot gets used. */
	while (tag < 0) {
		if (io->tag >= 0) {
			if (!q->busy[io->tag])
				tag = io->tag;
		} else {
			/* Any request tag; log records only when asked. */
			for (i = 0; i < q->req_depth; i++) {
				t = (q->next_tag + i) % q->req_depth;
				if (!q->busy[t]) {
					tag = t;
					break;
				}
			}
		}
		if (tag < 0 && !wait_until(&dl)) {
			pthread_mutex_unlock(&fk.lock);
			fail_msg("no free tag on queue %u", qid);
		}
	}
	/*
	 * A free tag must mean a free sqe slot (sq_entries >= depth): libbuse
	 * gives slots back before it runs the callbacks.
	 */
	if (q->sq_tail - __atomic_load_n(&q->hdr->sq_head, __ATOMIC_ACQUIRE) >=
	    q->sq_entries) {
		pthread_mutex_unlock(&fk.lock);
		fail_msg("queue %u: free tag %d but the sq is full", qid, tag);
	}
	q->next_tag = tag + 1;
	if (fk.nr_tickets == fk.cap_tickets) {
		fk.cap_tickets = fk.cap_tickets ? 2 * fk.cap_tickets : 1024;
		fk.tickets = realloc(fk.tickets,
				     fk.cap_tickets * sizeof(*fk.tickets));
		check_locked(fk.tickets);
	}
	t = fk.nr_tickets++;
	if (!io->raw_data_off)
		io->data_off = q->data_off + (uint64_t)tag * q->slot_size;
	fk.tickets[t] = (struct ticket){.dev = fk.last_dev,
					.qid = qid,
					.tag = tag,
					.data_off = io->data_off,
					.logged = io->flags & BUSE_SQE_LOGGED,
					.seq = io->seq};
	if ((io->flags & BUSE_SQE_LOGGED) && io->seq > fk.max_seq)
		fk.max_seq = io->seq;
	fk.cookie_seed = fk.cookie_seed * 1103515245 + 12345;
	io->tag = tag;
	io->cookie = fk.cookie_seed;
	q->busy[tag] = true;
	q->cookie[tag] = io->cookie;
	q->ticket[tag] = t;
	if (io->wdata)
		memcpy(q->region + io->data_off, io->wdata, io->len);

	sqe = &q->sq[q->sq_tail & (q->sq_entries - 1)];
	memset(sqe, 0, sizeof(*sqe));
	sqe->op = io->op;
	sqe->flags = io->flags;
	sqe->tag = tag;
	sqe->sector = io->sector;
	sqe->len = io->len;
	sqe->cookie = io->cookie;
	sqe->data_off = io->data_off;
	sqe->seq = io->seq;
	publish_applied(fk.last_dev);
	q->sq_tail++;
	__atomic_store_n(&q->hdr->sq_tail, q->sq_tail, __ATOMIC_RELEASE);
	wake();
	pthread_mutex_unlock(&fk.lock);
	return t;
}

void fake_set_stale_cq_head(unsigned n)
{
	pthread_mutex_lock(&fk.lock);
	fk.cfg.stale_cq_head = n;
	pthread_mutex_unlock(&fk.lock);
}

void fake_corrupt_sq(unsigned qid)
{
	struct fq *q;

	pthread_mutex_lock(&fk.lock);
	q = last_q(qid);
	q->sq_tail += q->sq_entries + 1;
	__atomic_store_n(&q->hdr->sq_tail, q->sq_tail, __ATOMIC_RELEASE);
	wake();
	pthread_mutex_unlock(&fk.lock);
}

bool fake_wait_sleeping(unsigned qid)
{
	struct timespec dl = deadline_ms(FAKE_WAIT_MS);
	bool ok = true;
	struct fq *q;

	pthread_mutex_lock(&fk.lock);
	q = last_q(qid);
	while (!q->sleepers || q->sq_tail != __atomic_load_n(&q->hdr->sq_head,
							     __ATOMIC_ACQUIRE))
		if (!wait_until(&dl)) {
			ok = false;
			break;
		}
	pthread_mutex_unlock(&fk.lock);
	return ok;
}

int fake_wait(unsigned ticket)
{
	struct timespec dl = deadline_ms(FAKE_WAIT_MS);
	int status = FAKE_TIMEOUT;

	pthread_mutex_lock(&fk.lock);
	check_locked(ticket < fk.nr_tickets);
	while (!fk.tickets[ticket].done)
		if (!wait_until(&dl))
			break;
	if (fk.tickets[ticket].done)
		status = fk.tickets[ticket].status;
	pthread_mutex_unlock(&fk.lock);
	return status;
}

bool fake_done(unsigned ticket)
{
	bool done;

	pthread_mutex_lock(&fk.lock);
	check_locked(ticket < fk.nr_tickets);
	done = fk.tickets[ticket].done;
	pthread_mutex_unlock(&fk.lock);
	return done;
}

bool fake_applied(unsigned ticket)
{
	bool applied;

	pthread_mutex_lock(&fk.lock);
	check_locked(ticket < fk.nr_tickets);
	applied = fk.tickets[ticket].applied;
	pthread_mutex_unlock(&fk.lock);
	return applied;
}

bool fake_wait_applied(unsigned ticket)
{
	struct timespec dl = deadline_ms(FAKE_WAIT_MS);
	bool ok = true;

	pthread_mutex_lock(&fk.lock);
	check_locked(ticket < fk.nr_tickets);
	while (!fk.tickets[ticket].applied)
		if (!wait_until(&dl)) {
			ok = false;
			break;
		}
	pthread_mutex_unlock(&fk.lock);
	return ok;
}

bool fake_wait_completed(unsigned n)
{
	struct timespec dl = deadline_ms(FAKE_WAIT_MS);
	bool ok = true;

	pthread_mutex_lock(&fk.lock);
	while (fk.st.completed_total < n)
		if (!wait_until(&dl)) {
			ok = false;
			break;
		}
	pthread_mutex_unlock(&fk.lock);
	return ok;
}

bool fake_wait_all(void)
{
	unsigned n;

	pthread_mutex_lock(&fk.lock);
	n = fk.nr_tickets;
	pthread_mutex_unlock(&fk.lock);
	return fake_wait_completed(n);
}

char *fake_ticket_buf(unsigned ticket)
{
	struct ticket *t;
	char *p;

	pthread_mutex_lock(&fk.lock);
	check_locked(ticket < fk.nr_tickets);
	t = &fk.tickets[ticket];
	p = fk.dev[t->dev].q[t->qid].region + t->data_off;
	pthread_mutex_unlock(&fk.lock);
	return p;
}

void fake_get_stats(struct fake_stats *s)
{
	pthread_mutex_lock(&fk.lock);
	*s = fk.st;
	pthread_mutex_unlock(&fk.lock);
}

static void *runner_main(void *arg)
{
	struct fake_runner *r = arg;

	r->ret = buse_run(&r->params, &r->ops, r->priv);
	__atomic_store_n(&r->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

void fake_run_start(struct fake_runner *r)
{
	r->done = 0;
	r->ret = -1;
	assert_int_equal(pthread_create(&r->thread, NULL, runner_main, r), 0);
}

int fake_run_join(struct fake_runner *r)
{
	struct timespec dl = deadline_ms(FAKE_WAIT_MS);

	assert_int_equal(pthread_timedjoin_np(r->thread, NULL, &dl), 0);
	return r->ret;
}

int fake_run_stop(struct fake_runner *r)
{
	int del = fake_delete(fake_dev_id());
	int run = fake_run_join(r);

	fake_uninstall();
	return del ? del : run;
}
