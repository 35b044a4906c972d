// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * buse_run(): create the device, start a thread per hardware queue
 * (queue.c), wait for a signal or the device's end, tear it down.
 * Completions are complete.c's.
 *
 * Lifetime.  Every consumed sqe counts in q->dispatched; its completion
 * counts in q->released once it is posted and committed.  A queue is freed
 * only when both match, so a late buse_complete() never touches freed
 * memory; queues that never drain are parked in a graveyard instead.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "sys.h"

unsigned buse_drain_timeout_ms = 5000;

/* Queues given up on with requests outstanding: kept, never freed. */
static pthread_mutex_t grave_lock = PTHREAD_MUTEX_INITIALIZER;
static struct buse_queue *graveyard;

static void timespec_add_ms(struct timespec *ts, unsigned ms)
{
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (long)(ms % 1000) * 1000000;
	if (ts->tv_nsec >= 1000000000) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000;
	}
}

static bool time_after(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec > b->tv_sec ||
	       (a->tv_sec == b->tv_sec && a->tv_nsec > b->tv_nsec);
}

/*
 * Wait for async requests the driver still holds.  False if it gave up: then
 * the queue is closed and late completions are dropped.
 */
static bool queue_drain(struct buse_queue *q, const struct timespec *deadline)
{
	const struct timespec tick = {0, 1000000};
	struct timespec now;
	bool done;

	for (;;) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		pthread_mutex_lock(&q->lock);
		done = q->released >= q->dispatched;
		if (!done && time_after(&now, deadline))
			q->closed = true;
		pthread_mutex_unlock(&q->lock);
		if (done)
			return true;
		if (q->closed)
			return false;
		nanosleep(&tick, NULL);
	}
}

static void del_device(struct buse_dev *d)
{
	if (d->del_sent)
		return;
	d->del_sent = true;
	if (buse_sys_ioctl(d->ctl, BUSE_CTL_DEL, d->kp.dev_id) < 0 &&
	    errno != ENOENT) {
		buse_log("deleting device %u: %s\n", d->kp.dev_id,
			 strerror(errno));
		d->del_sent = false; /* another signal tries again */
	}
}

/*
 * Taking over a recoverable device: its accepted parameters come from the
 * kernel, and a failure leaves it to wait for the next daemon (no DEL).
 */
static int recover_params(struct buse_dev *d)
{
	struct buse_dev_info info;

	memset(&info, 0, sizeof(info));
	info.dev_id = d->p->dev_id;
	if (buse_sys_ioctl(d->ctl, BUSE_CTL_GET_INFO,
			   (unsigned long)(uintptr_t)&info) < 0) {
		buse_log("device %u: %s\n", d->p->dev_id, strerror(errno));
		return -errno;
	}
	if (!(info.params.flags & BUSE_F_RECOVERABLE)) {
		buse_log("device %u is not recoverable\n", d->p->dev_id);
		return -EINVAL;
	}
	d->kp = info.params;
	return 0;
}

static int dev_create(struct buse_dev *d, const sigset_t *sigs)
{
	unsigned i, started = 0;
	int ret = 0;

	d->ctl = buse_sys.open(BUSE_CONTROL_PATH, O_RDWR | O_CLOEXEC);
	if (d->ctl < 0) {
		ret = -errno;
		buse_log("%s: %s%s\n", BUSE_CONTROL_PATH, strerror(-ret),
			 ret == -ENOENT ? " (is buse.ko loaded?)" : "");
		return ret;
	}
	if (d->p->recover) {
		ret = recover_params(d);
		if (ret)
			return ret;
	} else if (buse_sys_ioctl(d->ctl, BUSE_CTL_ADD,
				  (unsigned long)(uintptr_t)&d->kp) < 0) {
		ret = -errno;
		/* Name the budget: ENOMEM alone reads like a failed malloc. */
		buse_log("adding device: %s%s\n", strerror(-ret),
			 ret == -ENOMEM ?
				 " (all devices' queues together may pin at"
				 " most half of RAM, or the module's"
				 " pinned_limit_mb)" :
			 ret == -EEXIST && d->kp.serial[0] ?
				 " (the device id or the name is taken)" :
			 ret == -EINVAL && d->kp.serial[0] ?
				 " (is the name 1 to 31 of A-Z a-z 0-9 . _ -?)" :
				 "");
		return ret;
	} else {
		d->added = true;
	}
	if (!d->kp.nr_queues || d->kp.nr_queues > BUSE_MAX_QUEUES)
		return -EPROTO;
	d->queues = calloc(d->kp.nr_queues, sizeof(*d->queues));
	if (!d->queues)
		return -ENOMEM;
	d->nr_queues = d->kp.nr_queues;
	for (i = 0; i < d->nr_queues; i++) {
		ret = buse_queue_setup(d, i);
		if (ret)
			return ret;
	}
	d->efd = eventfd(0, EFD_CLOEXEC);
	if (d->efd < 0)
		return -errno;
	if (d->p->handle_signals) {
		/*
		 * Non-blocking: poll() may see a signal pending that a driver
		 * thread with it unblocked then takes (sig_handler), and a
		 * blocking read would wait for the next one forever.
		 */
		d->sfd = signalfd(-1, sigs, SFD_CLOEXEC | SFD_NONBLOCK);
		if (d->sfd < 0)
			return -errno;
	}
	if (d->p->workers) {
		ret = buse_pool_start(&d->pool, d->p->workers);
		if (ret) {
			buse_log("starting %u workers: %s\n", d->p->workers,
				 strerror(-ret));
			return ret;
		}
	}

	for (i = 0; i < d->nr_queues && !ret; i++) {
		ret = buse_queue_start(d->queues[i]);
		if (!ret)
			started++;
	}
	/* Every thread must be serving before START reads the partitions. */
	pthread_mutex_lock(&d->init_lock);
	while (d->nr_init < started)
		pthread_cond_wait(&d->init_cond, &d->init_lock);
	if (!ret)
		ret = d->init_err;
	pthread_mutex_unlock(&d->init_lock);
	if (ret)
		return ret;

	/* A recovered device is usually live already. */
	if (buse_sys_ioctl(d->ctl, BUSE_CTL_START, d->kp.dev_id) < 0 &&
	    !(d->p->recover && errno == EALREADY)) {
		ret = -errno;
		buse_log("starting device %u: %s\n", d->kp.dev_id,
			 strerror(-ret));
		return ret;
	}
	return 0;
}

/*
 * SIGINT/SIGTERM are blocked in buse_run()'s thread and read from its
 * signalfd, but a thread the driver started before buse_run() does not
 * block them, and the kernel may deliver them there, where the default
 * action would kill the process with the device still up.  While
 * buse_run() serves, a process-wide handler (installed only over the
 * default action) forwards such a signal to the main loop instead.
 */
static _Atomic int sig_fd = -1;

static void sig_handler(int sig)
{
	int fd = atomic_load(&sig_fd), saved = errno;
	uint64_t one = 1;

	(void)sig;
	/* Async-signal-safe; a full eventfd already says "delete". */
	if (fd >= 0 && write(fd, &one, sizeof(one)) < 0)
		one = 0;
	errno = saved;
}

struct sig_saved {
	struct sigaction act[2];
	bool set[2];
};

static void sig_install(struct buse_dev *d, struct sig_saved *sv)
{
	static const int sigs[2] = {SIGINT, SIGTERM};
	struct sigaction sa;
	int expect = -1, i;

	memset(sv, 0, sizeof(*sv));
	d->hfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	/* One buse_run() at a time owns the handler; others keep signalfd. */
	if (d->hfd < 0 ||
	    !atomic_compare_exchange_strong(&sig_fd, &expect, d->hfd))
		return;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = sig_handler;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	for (i = 0; i < 2; i++) {
		if (sigaction(sigs[i], NULL, &sv->act[i]) ||
		    sv->act[i].sa_handler != SIG_DFL)
			continue; /* the application handles it itself */
		sv->set[i] = !sigaction(sigs[i], &sa, NULL);
	}
}

static void sig_restore(struct buse_dev *d, const struct sig_saved *sv)
{
	static const int sigs[2] = {SIGINT, SIGTERM};
	int expect = d->hfd, i;

	for (i = 0; i < 2; i++)
		if (sv->set[i])
			sigaction(sigs[i], &sv->act[i], NULL);
	if (d->hfd >= 0) {
		atomic_compare_exchange_strong(&sig_fd, &expect, -1);
		close(d->hfd);
		d->hfd = -1;
	}
}

/* Until every queue thread is gone; deletes the device on a signal. */
static int dev_wait(struct buse_dev *d)
{
	struct pollfd pfd[3] = {
		{.fd = d->efd, .events = POLLIN},
		{.fd = d->sfd, .events = POLLIN},
		{.fd = d->hfd, .events = POLLIN},
	};
	struct signalfd_siginfo si;
	unsigned i, exited;
	uint64_t cnt;
	int ret = 0;

	for (;;) {
		exited = 0;
		for (i = 0; i < d->nr_queues; i++) {
			struct buse_queue *q = d->queues[i];

			if (!__atomic_load_n(&q->exited, __ATOMIC_ACQUIRE))
				continue;
			exited++;
			if (q->result < 0 && !ret)
				ret = q->result;
		}
		/* A queue failed: take the device down to stop the others. */
		if (ret < 0)
			del_device(d);
		if (exited == d->nr_queues)
			return ret;

		if (poll(pfd, 3, -1) < 0) {
			if (errno == EINTR)
				continue;
			ret = -errno;
			buse_log("poll: %s\n", strerror(-ret));
			continue;
		}
		if (pfd[0].revents && read(d->efd, &cnt, sizeof(cnt)) < 0 &&
		    errno != EAGAIN)
			buse_log("eventfd: %s\n", strerror(errno));
		if (d->sfd >= 0 && pfd[1].revents &&
		    read(d->sfd, &si, sizeof(si)) == sizeof(si))
			del_device(d);
		if (d->hfd >= 0 && pfd[2].revents &&
		    read(d->hfd, &cnt, sizeof(cnt)) == sizeof(cnt))
			del_device(d);
	}
}

static void dev_destroy(struct buse_dev *d)
{
	struct timespec deadline;
	unsigned i;

	for (i = 0; i < d->nr_queues; i++)
		if (d->queues[i] && d->queues[i]->thread_started)
			pthread_join(d->queues[i]->thread, NULL);
	/* No queue thread hands out more: run and complete what is left. */
	buse_pool_stop(d->pool);
	d->pool = NULL;

	clock_gettime(CLOCK_MONOTONIC, &deadline);
	timespec_add_ms(&deadline, buse_drain_timeout_ms);
	for (i = 0; i < d->nr_queues; i++) {
		struct buse_queue *q = d->queues[i];

		if (!q)
			continue;
		if (queue_drain(q, &deadline)) {
			buse_queue_free(q);
			continue;
		}
		buse_log("queue %u: %llu requests never completed\n", q->qid,
			 (unsigned long long)(q->dispatched - q->released));
		buse_queue_close(q);
		pthread_mutex_lock(&grave_lock);
		q->grave_next = graveyard;
		graveyard = q;
		pthread_mutex_unlock(&grave_lock);
	}
	free(d->queues);
	if (d->sfd >= 0)
		close(d->sfd);
	if (d->efd >= 0)
		close(d->efd);
	if (d->ctl >= 0)
		buse_sys.close(d->ctl);
	pthread_cond_destroy(&d->init_cond);
	pthread_mutex_destroy(&d->init_lock);
}

/* params.cpus: well formed, and only CPUs this process may run on. */
static int cpus_check(const char *list, cpu_set_t *set)
{
	cpu_set_t allowed, both;

	if (buse_cpulist_parse(list, set)) {
		buse_log("cpus \"%s\": not a CPU list\n", list);
		return -EINVAL;
	}
	if (sched_getaffinity(0, sizeof(allowed), &allowed))
		return 0; /* cannot tell: pinning reports what fails */
	CPU_AND(&both, set, &allowed);
	if (!CPU_EQUAL(&both, set)) {
		buse_log("cpus \"%s\": this process may not run on all of "
			 "them\n",
			 list);
		return -EINVAL;
	}
	return 0;
}

BUSE_EXPORT int buse_run(const struct buse_params *p,
			 const struct buse_ops *ops, void *priv)
{
	struct buse_dev d;
	sigset_t sigs, old;
	struct sig_saved sv;
	int ret;

	if (!p || !ops || !ops->read || p->sched > BUSE_SCHED_THROUGHPUT ||
	    p->workers > BUSE_MAX_WORKERS)
		return -EINVAL;
	memset(&d, 0, sizeof(d));
	if (p->cpus && cpus_check(p->cpus, &d.cpus))
		return -EINVAL;
	d.p = p;
	d.ops = ops;
	d.priv = priv;
	d.ctl = d.efd = d.sfd = d.hfd = -1;
	pthread_mutex_init(&d.init_lock, NULL);
	pthread_cond_init(&d.init_cond, NULL);
	buse_make_dev_params(&d.kp, p, ops);

	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	/* From here on the signals queue up for our signalfd. */
	if (p->handle_signals) {
		pthread_sigmask(SIG_BLOCK, &sigs, &old);
		sig_install(&d, &sv);
	}

	ret = dev_create(&d, &sigs);
	if (!ret) {
		if (ops->started)
			ops->started(priv, d.kp.dev_id);
		ret = dev_wait(&d);
	} else if (d.added) {
		del_device(&d);
	}
	dev_destroy(&d);

	if (p->handle_signals) {
		sig_restore(&d, &sv);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
	}
	return ret;
}

