// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * buse_run()'s life cycle: hooks, start, external delete, signals, failures
 * at every step of creation, a queue that dies, pinning (params.cpus too).  fake_uninstall()
 * checks that every fd was closed and every region unmapped; LeakSanitizer
 * checks the memory.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <buse/fake.h>
#include "internal.h"

static pthread_mutex_t hk_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
	unsigned inits, exits, started;
	int init_fail_qid, init_err;
	pthread_t init_thread[FAKE_MAX_QUEUES];
	pthread_t exit_thread[FAKE_MAX_QUEUES];
	bool init_ok[FAKE_MAX_QUEUES];
	bool exit_seen[FAKE_MAX_QUEUES];
	uint32_t started_id;
	uint32_t state_at_start;
	pthread_t started_thread;
	cpu_set_t affinity[FAKE_MAX_QUEUES];
} hk;

static int h_read(void *priv, struct buse_req *req, void *buf, uint32_t len,
		  uint64_t off)
{
	memset(buf, 0, len);
	return 0;
}

static int h_init(void *priv, unsigned qid)
{
	pthread_mutex_lock(&hk_lock);
	hk.inits++;
	hk.init_thread[qid] = pthread_self();
	sched_getaffinity(0, sizeof(hk.affinity[qid]), &hk.affinity[qid]);
	pthread_mutex_unlock(&hk_lock);
	if ((int)qid == hk.init_fail_qid)
		return hk.init_err;
	hk.init_ok[qid] = true;
	return 0;
}

static void h_exit(void *priv, unsigned qid)
{
	pthread_mutex_lock(&hk_lock);
	hk.exits++;
	hk.exit_thread[qid] = pthread_self();
	hk.exit_seen[qid] = true;
	pthread_mutex_unlock(&hk_lock);
}

static void h_started(void *priv, uint32_t dev_id)
{
	struct buse_dev_info info;

	/* The disk is already live when the driver hears of it. */
	if (buse_info(dev_id, &info) == 0)
		hk.state_at_start = info.state;
	pthread_mutex_lock(&hk_lock);
	hk.started_id = dev_id;
	hk.started_thread = pthread_self();
	__atomic_add_fetch(&hk.started, 1, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&hk_lock);
}

static const struct buse_ops h_ops = {
	.read = h_read,
	.queue_init = h_init,
	.queue_exit = h_exit,
	.started = h_started,
};

static int setup(void **state)
{
	pthread_mutex_lock(&hk_lock);
	memset(&hk, 0, sizeof(hk));
	hk.init_fail_qid = -1;
	hk.state_at_start = UINT32_MAX;
	pthread_mutex_unlock(&hk_lock);
	return 0;
}

static void params(struct fake_runner *r, bool signals)
{
	memset(r, 0, sizeof(*r));
	buse_params_init(&r->params);
	r->params.size = 1 << 20;
	r->params.handle_signals = signals;
	r->ops = h_ops;
}

static void test_external_delete(void **state)
{
	struct fake_stats st;
	struct fake_runner r;
	struct fake_cfg cfg;
	unsigned i;

	fake_cfg_init(&cfg);
	cfg.nr_queues = 3;
	fake_install(&cfg);
	params(&r, false);
	fake_run_start(&r);
	assert_true(fake_wait_state(BUSE_STATE_LIVE));
	while (!__atomic_load_n(&hk.started, __ATOMIC_ACQUIRE))
		sched_yield();
	struct fake_io rd = {.op = BUSE_OP_READ, .len = 512, .tag = -1};
	assert_int_equal(fake_wait(fake_submit(2, &rd)), 0);

	assert_int_equal(fake_delete(fake_dev_id()), 0);
	assert_int_equal(fake_run_join(&r), 0);

	assert_int_equal(hk.started, 1);
	assert_int_equal(hk.started_id, fake_dev_id());
	assert_true(pthread_equal(hk.started_thread, r.thread));
	assert_int_equal(hk.state_at_start, BUSE_STATE_LIVE);
	assert_int_equal(hk.inits, 3);
	assert_int_equal(hk.exits, 3);
	for (i = 0; i < 3; i++) {
		/* Hooks run in the queue's own thread, not the caller's. */
		assert_true(
			pthread_equal(hk.init_thread[i], hk.exit_thread[i]));
		assert_false(pthread_equal(hk.init_thread[i], r.thread));
		if (i)
			assert_false(pthread_equal(hk.init_thread[i],
						   hk.init_thread[0]));
	}
	fake_get_stats(&st);
	assert_int_equal(st.start_calls, 1);
	assert_int_equal(st.del_calls, 0); /* not deleted a second time */
	assert_int_equal(st.opens, 2);	   /* buse_run + buse_info */
	fake_uninstall();
}

struct sig_run {
	struct fake_runner r;
	sigset_t before, after, pending;
};

static void *sig_runner(void *arg)
{
	struct sig_run *s = arg;

	pthread_sigmask(SIG_SETMASK, NULL, &s->before);
	s->r.ret = buse_run(&s->r.params, &s->r.ops, s->r.priv);
	pthread_sigmask(SIG_SETMASK, NULL, &s->after);
	sigpending(&s->pending);
	return NULL;
}

static void signal_run(int sig)
{
	struct fake_stats st;
	struct fake_cfg cfg;
	struct sig_run s;
	struct timespec dl;

	fake_cfg_init(&cfg);
	fake_install(&cfg);
	memset(&s, 0, sizeof(s));
	params(&s.r, true);
	assert_int_equal(pthread_create(&s.r.thread, NULL, sig_runner, &s), 0);
	assert_true(fake_wait_state(BUSE_STATE_LIVE));
	while (!__atomic_load_n(&hk.started, __ATOMIC_ACQUIRE))
		sched_yield();
	/* Aimed at buse_run's thread, which blocks it and reads a signalfd. */
	assert_int_equal(pthread_kill(s.r.thread, sig), 0);
	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += 10;
	assert_int_equal(pthread_timedjoin_np(s.r.thread, NULL, &dl), 0);

	assert_int_equal(s.r.ret, 0);
	fake_get_stats(&st);
	assert_int_equal(st.del_calls, 1); /* the library deleted it */
	assert_int_equal(hk.exits, 2);
	/* The caller's signal mask is back and nothing is left pending. */
	assert_false(sigismember(&s.before, sig));
	assert_false(sigismember(&s.after, sig));
	assert_false(sigismember(&s.pending, sig));
	fake_uninstall();
}

static void test_sigterm(void **state)
{
	signal_run(SIGTERM);
}

/*
 * A driver's own thread, started before buse_run() with SIGTERM unblocked,
 * takes the signal (here: this test's thread): the device is deleted and
 * the process lives on, instead of dying with the device up.
 */
static void test_sigterm_other_thread(void **state)
{
	struct fake_stats st;
	struct fake_cfg cfg;
	struct sig_run s;
	struct timespec dl;
	sigset_t unblock;

	(void)state;
	sigemptyset(&unblock);
	sigaddset(&unblock, SIGTERM);
	pthread_sigmask(SIG_UNBLOCK, &unblock, NULL);
	fake_cfg_init(&cfg);
	fake_install(&cfg);
	memset(&s, 0, sizeof(s));
	params(&s.r, true);
	assert_int_equal(pthread_create(&s.r.thread, NULL, sig_runner, &s), 0);
	assert_true(fake_wait_state(BUSE_STATE_LIVE));
	while (!__atomic_load_n(&hk.started, __ATOMIC_ACQUIRE))
		sched_yield();
	assert_int_equal(pthread_kill(pthread_self(), SIGTERM), 0);
	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += 10;
	assert_int_equal(pthread_timedjoin_np(s.r.thread, NULL, &dl), 0);
	assert_int_equal(s.r.ret, 0);
	fake_get_stats(&st);
	assert_int_equal(st.del_calls, 1);
	/* the default action is back once buse_run() returned */
	{
		struct sigaction sa;

		assert_int_equal(sigaction(SIGTERM, NULL, &sa), 0);
		assert_true(sa.sa_handler == SIG_DFL);
	}
	fake_uninstall();
}

static void test_sigint(void **state)
{
	setup(state);
	signal_run(SIGINT);
}

/* Common checks after buse_run() failed while creating the device. */
static void check_failed_creation(int ret, int want, bool added)
{
	struct fake_stats st;

	assert_int_equal(ret, want);
	fake_get_stats(&st);
	assert_int_equal(st.del_calls, added ? 1 : 0);
	assert_int_equal(st.start_calls, 0);
	assert_int_equal(hk.started, 0);
	fake_uninstall(); /* every fd closed, every region unmapped */
}

static int run_sync(const struct fake_cfg *cfg, struct fake_runner *r)
{
	fake_install(cfg);
	params(r, true);
	return buse_run(&r->params, &r->ops, NULL);
}

static void test_open_fails(void **state)
{
	struct fake_runner r;
	struct fake_cfg cfg;

	fake_cfg_init(&cfg);
	cfg.open_errno = ENOENT;
	check_failed_creation(run_sync(&cfg, &r), -ENOENT, false);
}

static void test_add_fails(void **state)
{
	struct fake_runner r;
	struct fake_cfg cfg;

	fake_cfg_init(&cfg);
	cfg.add_errno = EINVAL;
	check_failed_creation(run_sync(&cfg, &r), -EINVAL, false);
}

/* buse_set_log(): the lines go to the driver's function, then stderr again. */
struct log_capture {
	int lines;
	char first[256];
};

static void capture_line(void *arg, const char *line)
{
	struct log_capture *c = arg;

	if (!c->lines++)
		snprintf(c->first, sizeof(c->first), "%s", line);
}

static void test_log_routed(void **state)
{
	struct log_capture c = {0};
	struct fake_runner r;
	struct fake_cfg cfg;

	(void)state;
	buse_set_log(capture_line, &c);
	fake_cfg_init(&cfg);
	cfg.add_errno = EINVAL;
	check_failed_creation(run_sync(&cfg, &r), -EINVAL, false);
	buse_set_log(NULL, NULL);
	assert_int_equal(c.lines, 1);
	/* one line, no prefix, no newline */
	assert_string_equal(c.first, "adding device: Invalid argument");
	/* restored: a second failure is not captured */
	fake_cfg_init(&cfg);
	cfg.add_errno = EINVAL;
	check_failed_creation(run_sync(&cfg, &r), -EINVAL, false);
	assert_int_equal(c.lines, 1);
}

static void test_attach_fails(void **state)
{
	struct fake_runner r;
	struct fake_cfg cfg;

	fake_cfg_init(&cfg);
	cfg.nr_queues = 3;
	cfg.attach_fail_qid = 1;
	cfg.attach_errno = ENOMEM;
	check_failed_creation(run_sync(&cfg, &r), -ENOMEM, true);
	assert_int_equal(hk.inits, 0);
}

static void test_mmap_fails(void **state)
{
	struct fake_runner r;
	struct fake_cfg cfg;

	fake_cfg_init(&cfg);
	cfg.nr_queues = 3;
	cfg.mmap_fail_qid = 2;
	cfg.mmap_errno = EAGAIN;
	check_failed_creation(run_sync(&cfg, &r), -EAGAIN, true);
	assert_int_equal(hk.inits, 0);
}

static void test_bad_layout_rejected(void **state)
{
	struct fake_runner r;
	struct fake_cfg cfg;

	fake_cfg_init(&cfg);
	cfg.depth = 8;
	cfg.cq_entries = 4; /* the cq could overflow */
	check_failed_creation(run_sync(&cfg, &r), -EPROTO, true);
}

static void test_queue_init_fails(void **state)
{
	struct fake_runner r;
	struct fake_cfg cfg;

	fake_cfg_init(&cfg);
	cfg.nr_queues = 3;
	hk.init_fail_qid = 1;
	hk.init_err = -EKEYREJECTED;
	check_failed_creation(run_sync(&cfg, &r), -EKEYREJECTED, true);
	assert_int_equal(hk.inits, 3);
	/* queue_exit only where queue_init succeeded. */
	assert_int_equal(hk.exits, 2);
	assert_true(hk.exit_seen[0]);
	assert_false(hk.exit_seen[1]);
	assert_true(hk.exit_seen[2]);
}

static void test_start_fails(void **state)
{
	struct fake_runner r;
	struct fake_stats st;
	struct fake_cfg cfg;

	fake_cfg_init(&cfg);
	cfg.start_errno = EBUSY;
	assert_int_equal(run_sync(&cfg, &r), -EBUSY);
	fake_get_stats(&st);
	assert_int_equal(st.start_calls, 1);
	assert_int_equal(st.del_calls, 1);
	assert_int_equal(hk.started, 0);
	assert_int_equal(hk.exits, 2);
	fake_uninstall();
}

/* A queue whose kernel connection fails takes the device down. */
static void test_queue_error(void **state)
{
	struct fake_runner r;
	struct fake_stats st;
	struct fake_cfg cfg;

	fake_cfg_init(&cfg);
	cfg.nr_queues = 3;
	cfg.sync_fail_qid = 1;
	cfg.sync_errno = EIO;
	fake_install(&cfg);
	params(&r, false);
	fake_run_start(&r);
	assert_int_equal(fake_run_join(&r), -EIO);
	fake_get_stats(&st);
	assert_int_equal(st.del_calls, 1);
	assert_int_equal(hk.exits, 3);
	fake_uninstall();
}

/* A corrupt submission ring stops the device instead of hanging. */
static void test_corrupt_sq(void **state)
{
	struct fake_runner r;
	struct fake_stats st;
	struct fake_cfg cfg;

	fake_cfg_init(&cfg);
	fake_install(&cfg);
	params(&r, false);
	fake_run_start(&r);
	assert_true(fake_wait_state(BUSE_STATE_LIVE));
	fake_corrupt_sq(0);
	assert_int_equal(fake_run_join(&r), -EPROTO);
	fake_get_stats(&st);
	assert_int_equal(st.del_calls, 1);
	fake_uninstall();
}

/* A full cq (kernel lagging) is committed and retried, not overrun. */
static void test_cq_full_retried(void **state)
{
	struct fake_runner r;
	struct fake_stats st;
	struct fake_cfg cfg;
	unsigned i;

	fake_cfg_init(&cfg);
	cfg.nr_queues = 1;
	fake_install(&cfg);
	params(&r, false);
	fake_run_start(&r);
	assert_true(fake_wait_state(BUSE_STATE_LIVE));
	for (i = 0; i < 5; i++) {
		struct fake_io rd = {.op = BUSE_OP_READ, .len = 512, .tag = -1};

		if (i == 1)
			fake_set_stale_cq_head(10);
		assert_int_equal(fake_wait(fake_submit(0, &rd)), 0);
	}
	fake_get_stats(&st);
	assert_true(st.sync0[0] >= 9);
	assert_int_equal(st.completed_total, 5);
	assert_int_equal(fake_delete(fake_dev_id()), 0);
	assert_int_equal(fake_run_join(&r), 0);
	fake_uninstall();
}

/* ... and a kernel that never catches up loses completions, not us. */
static void test_cq_stuck(void **state)
{
	struct fake_runner r;
	struct fake_cfg cfg;
	struct fake_io rd = {.op = BUSE_OP_READ, .len = 512, .tag = -1};
	unsigned t;

	fake_cfg_init(&cfg);
	cfg.nr_queues = 1;
	fake_install(&cfg);
	params(&r, false);
	fake_run_start(&r);
	assert_true(fake_wait_state(BUSE_STATE_LIVE));
	assert_int_equal(fake_wait(fake_submit(0, &rd)), 0);
	fake_set_stale_cq_head(UINT32_MAX);
	rd.tag = -1;
	assert_int_equal(fake_wait(fake_submit(0, &rd)), 0);
	rd.tag = -1;
	t = fake_submit(0, &rd);	    /* its cq slot never frees up */
	assert_true(fake_wait_sleeping(0)); /* gave up, serving again */
	assert_false(fake_done(t));
	assert_int_equal(fake_delete(fake_dev_id()), 0);
	assert_int_equal(fake_run_join(&r), 0);
	fake_uninstall();
}

/*
 * Queues whose own CPU is 0, with params.cpus @list: thread i runs on the
 * i-th CPU of the list, whatever @pin (pin_threads) says.
 */
static void cpus_run(const char *list, bool pin, unsigned nr_queues)
{
	struct fake_runner r;
	struct fake_cfg cfg;

	fake_cfg_init(&cfg);
	cfg.nr_queues = nr_queues;
	cfg.cpu_mask0 = 1; /* the queues' own CPU: 0 */
	fake_install(&cfg);
	params(&r, false);
	r.params.pin_threads = pin;
	r.params.cpus = list;
	fake_run_start(&r);
	assert_true(fake_wait_state(BUSE_STATE_LIVE));
	assert_int_equal(fake_delete(fake_dev_id()), 0);
	assert_int_equal(fake_run_join(&r), 0);
	fake_uninstall();
}

/* One queue whose own CPU is 0: where did its thread run? */
static void pin_run(bool pin, cpu_set_t *got)
{
	cpus_run(NULL, pin, 1);
	*got = hk.affinity[0];
}

static void test_pinning(void **state)
{
	cpu_set_t got, mine;

	sched_getaffinity(0, sizeof(mine), &mine);
	if (!CPU_ISSET(0, &mine))
		skip();
	pin_run(true, &got);
	assert_int_equal(CPU_COUNT(&got), 1);
	assert_true(CPU_ISSET(0, &got));
	pin_run(false, &got);
	assert_true(CPU_EQUAL(&got, &mine));
}

static void test_cpus(void **state)
{
	cpu_set_t mine;

	sched_getaffinity(0, sizeof(mine), &mine);
	if (!CPU_ISSET(0, &mine) || !CPU_ISSET(1, &mine))
		skip();
	cpus_run("1", false, 2); /* every thread on CPU 1, not on CPU 0 */
	for (unsigned q = 0; q < 2; q++) {
		assert_int_equal(CPU_COUNT(&hk.affinity[q]), 1);
		assert_true(CPU_ISSET(1, &hk.affinity[q]));
	}
	cpus_run("0-1", true, 3); /* round robin */
	assert_true(CPU_ISSET(0, &hk.affinity[0]));
	assert_true(CPU_ISSET(1, &hk.affinity[1]));
	assert_true(CPU_ISSET(0, &hk.affinity[2]));
	for (unsigned q = 0; q < 3; q++)
		assert_int_equal(CPU_COUNT(&hk.affinity[q]), 1);
}

static void test_cpus_rejected(void **state)
{
	static const char *const bad[] = {
		"", "a", "1-", "-1", "2-1", "1,,2", "1,", " 1", "0x1",
		"99999", "1-99999", "1023", /* 1023: not ours to run on */
	};
	struct fake_runner r;
	struct fake_cfg cfg;
	unsigned i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		fake_cfg_init(&cfg);
		fake_install(&cfg);
		params(&r, false);
		r.params.cpus = bad[i];
		fake_run_start(&r);
		if (fake_run_join(&r) != -EINVAL)
			fail_msg("cpus \"%s\" was accepted", bad[i]);
		fake_uninstall();
	}
}

static void test_cpulist_parse(void **state)
{
	cpu_set_t set;

	assert_int_equal(buse_cpulist_parse("0,2-4,7", &set), 0);
	assert_int_equal(CPU_COUNT(&set), 5);
	assert_true(CPU_ISSET(0, &set) && CPU_ISSET(2, &set) &&
		    CPU_ISSET(3, &set) && CPU_ISSET(4, &set) &&
		    CPU_ISSET(7, &set));
	assert_int_equal(buse_cpulist_nth(&set, 0), 0);
	assert_int_equal(buse_cpulist_nth(&set, 4), 7);
	assert_int_equal(buse_cpulist_nth(&set, 5), 0);
	assert_int_equal(buse_cpulist_parse("5-5", &set), 0);
	assert_int_equal(buse_cpulist_nth(&set, 3), 5);
	CPU_ZERO(&set);
	assert_int_equal(buse_cpulist_nth(&set, 0), -1);
	assert_int_equal(buse_cpulist_parse(NULL, &set), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_external_delete, setup),
		cmocka_unit_test_setup(test_sigterm, setup),
		cmocka_unit_test_setup(test_sigint, setup),
		cmocka_unit_test_setup(test_open_fails, setup),
		cmocka_unit_test_setup(test_add_fails, setup),
		cmocka_unit_test_setup(test_log_routed, setup),
		cmocka_unit_test_setup(test_sigterm_other_thread, setup),
		cmocka_unit_test_setup(test_attach_fails, setup),
		cmocka_unit_test_setup(test_mmap_fails, setup),
		cmocka_unit_test_setup(test_bad_layout_rejected, setup),
		cmocka_unit_test_setup(test_queue_init_fails, setup),
		cmocka_unit_test_setup(test_start_fails, setup),
		cmocka_unit_test_setup(test_queue_error, setup),
		cmocka_unit_test_setup(test_corrupt_sq, setup),
		cmocka_unit_test_setup(test_cq_full_retried, setup),
		cmocka_unit_test_setup(test_cq_stuck, setup),
		cmocka_unit_test_setup(test_pinning, setup),
		cmocka_unit_test_setup(test_cpus, setup),
		cmocka_unit_test_setup(test_cpus_rejected, setup),
		cmocka_unit_test(test_cpulist_parse),
	};

	alarm(120); /* a hang fails instead of blocking `make unit` */
	return cmocka_run_group_tests(tests, NULL, NULL);
}
