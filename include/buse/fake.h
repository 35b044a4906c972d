/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A fake buse.ko behind libbuse's system call table, for testing a driver
 * without the module (libbuse's own unit tests use it too).  It keeps its
 * own kernel-side ring indices, checks every completion it consumes (tag in
 * flight, cookie echoed) and counts every call, so a test can drive a
 * driver from the "kernel" side: submit reads, writes, flushes, discards
 * and check what comes back.
 *
 * It is a cmocka helper: link with `pkg-config --libs libbuse-fake` (a
 * static libbuse with the fake behind it, and cmocka) instead of libbuse,
 * and call it from cmocka tests; its checks are cmocka assertions.  Calls
 * made by library threads never assert: problems are counted and
 * fake_uninstall() (test thread) asserts that there were none.
 * docs/drivers.md, "Testing a driver without the module", walks through
 * one.  The usual shape of a test:
 *
 *	fake_cfg_init(&cfg); fake_install(&cfg);
 *	buse_params_init(&r.params); r.params.size = ...;
 *	r.params.handle_signals = false; r.ops = my_ops; r.priv = my_state;
 *	fake_run_start(&r); assert_true(fake_wait_state(BUSE_STATE_LIVE));
 *	t = fake_submit(0, &io); assert_int_equal(fake_wait(t), 0);
 *	assert_int_equal(fake_run_stop(&r), 0);
 */
#ifndef BUSE_FAKE_H
#define BUSE_FAKE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <buse/uapi.h>

#include <buse/buse.h>

#define FAKE_MAX_DEVS	8
#define FAKE_MAX_QUEUES 8
#define FAKE_MAX_DEPTH	64
#define FAKE_FD_BASE	10000
#define FAKE_TIMEOUT	(-100000) /* fake_wait(): never completed */
#define FAKE_WAIT_MS	10000

struct fake_cfg {
	unsigned nr_queues;   /* accepted when ADD asks for 0 (default 2) */
	unsigned depth;	      /* accepted when ADD asks for 0 (default 8) */
	unsigned sq_entries;  /* 0: depth rounded up to a power of two */
	unsigned cq_entries;  /* 0: same */
	unsigned slot_size;   /* data bytes per tag (default 8192) */
	uint32_t start_index; /* initial value of all four ring indices */
	uint64_t cpu_mask0;   /* cpu_mask[0] of every queue */
	int open_errno;	      /* opening the control node fails */
	int add_errno;
	int attach_fail_qid; /* -1: none */
	int attach_errno;
	int mmap_fail_qid; /* -1: none */
	int mmap_errno;
	int start_errno;
	int sync_fail_qid; /* -1: none; SYNC on it fails once started */
	int sync_errno;
	unsigned stale_cq_head; /* this many SYNCs publish a stale cq head */
	/*
	 * Write-back (the device asks for it): log records per queue, tags
	 * depth..depth+log_recs-1, whose data lives in the log area.  The
	 * fake keeps the header's wb_applied: the smallest seq of a logged
	 * write not yet applied (BUSE_CQE_RETAIN or released), else the
	 * largest seq submitted + 1.
	 */
	unsigned log_recs;
};

struct fake_io {
	uint8_t op;
	uint16_t flags;
	uint64_t sector;
	uint32_t len;
	const void *wdata; /* copied into the buffer before submission */
	bool raw_data_off; /* use data_off as given, not the tag's slot */
	uint64_t data_off; /* in/out */
	uint64_t seq;	   /* logged writes (flags BUSE_SQE_LOGGED) */
	int tag;	   /* in: -1 for any free tag; out */
	uint32_t cookie;   /* out */
};

struct fake_stats {
	unsigned opens, ctl_closes, q_closes;
	unsigned add_calls, attach_calls, start_calls, del_calls, info_calls;
	unsigned sync0[FAKE_MAX_QUEUES];    /* SYNC without WAIT */
	unsigned syncwait[FAKE_MAX_QUEUES]; /* SYNC with WAIT */
	unsigned completed[FAKE_MAX_QUEUES];
	unsigned completed_total;
	unsigned bad_cqe;  /* unknown tag, wrong cookie, duplicate */
	unsigned bad_call; /* bad fd, bad mmap/munmap arguments, ... */
};

void fake_cfg_init(struct fake_cfg *c);
void fake_install(const struct fake_cfg *c);
/* Assert everything was closed and unmapped, no bad call; reset. */
void fake_uninstall(void);

/* The last device added (by the library or fake_add_device). */
uint32_t fake_dev_id(void);
/* What the last BUSE_CTL_ADD received, before defaults were filled in. */
struct buse_dev_params fake_last_add(void);
/* Wait until the last device reaches @state; false on timeout. */
bool fake_wait_state(uint32_t state);
/* Delete a device from "outside" (like `buse del`). */
int fake_delete(uint32_t dev_id);
/* A device no daemon serves, for the control-plane tests. */
uint32_t fake_add_device(uint32_t dev_id, const char *name);

/* Kernel's view of a queue of the last device. */
char *fake_region(unsigned qid);
uint64_t fake_region_size(unsigned qid);
uint64_t fake_data_off(unsigned qid);
uint64_t fake_data_size(unsigned qid);
uint64_t fake_slot_off(unsigned qid, unsigned tag);

/* Queue a request; blocks while every tag is busy.  Returns a ticket. */
unsigned fake_submit(unsigned qid, struct fake_io *io);
/* The completion status of a ticket, or FAKE_TIMEOUT. */
int fake_wait(unsigned ticket);
/* Completed yet?  Never waits. */
bool fake_done(unsigned ticket);
/* A logged write applied (retained or released)?  Never waits. */
bool fake_applied(unsigned ticket);
/* Wait until the ticket's write is applied; false on timeout. */
bool fake_wait_applied(unsigned ticket);
/* Wait until every ticket completed; false on timeout. */
bool fake_wait_all(void);
/* Wait until @n completions in total; false on timeout. */
bool fake_wait_completed(unsigned n);
/* The next @n SYNCs publish a cq head a whole ring behind. */
void fake_set_stale_cq_head(unsigned n);
/* Publish an sq tail more than a ring ahead of the daemon's head. */
void fake_corrupt_sq(unsigned qid);
/*
 * Wait until the queue's thread sleeps in SYNC_WAIT with nothing pending, so
 * only another thread's SYNC can consume completions; false on timeout.
 */
bool fake_wait_sleeping(unsigned qid);
/* Pointer to the ticket's data buffer (kernel's view). */
char *fake_ticket_buf(unsigned ticket);

void fake_get_stats(struct fake_stats *s);

/* Run buse_run() in a thread of its own. */
struct fake_runner {
	pthread_t thread;
	struct buse_params params;
	struct buse_ops ops;
	void *priv;
	int ret;
	int done; /* atomic */
};
void fake_run_start(struct fake_runner *r);
/* Join; fails the test if buse_run does not return within FAKE_WAIT_MS. */
int fake_run_join(struct fake_runner *r);
/*
 * Delete the device, join buse_run() and uninstall the fake: the usual end
 * of a test.  Returns 0, or the first thing that went wrong.
 */
int fake_run_stop(struct fake_runner *r);

#endif /* BUSE_FAKE_H */
