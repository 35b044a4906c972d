/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libbuse: write a Linux block device as an ordinary process.
 *
 * A driver fills a struct buse_ops with the operations it supports and calls
 * buse_run().  libbuse creates /dev/buseN, starts one thread per hardware
 * queue (pinned to the CPUs that queue serves), hands each request to the
 * matching callback and moves completions back to the kernel in batches.
 *
 *   static int my_read(void *priv, struct buse_req *req, void *buf,
 *                      uint32_t len, uint64_t off)
 *   {
 *           memcpy(buf, (char *)priv + off, len);
 *           return 0;
 *   }
 *   ...
 *   struct buse_params p;
 *   buse_params_init(&p);
 *   p.size = 1 << 30;
 *   struct buse_ops ops = { .read = my_read, .write = my_write };
 *   return buse_run(&p, &ops, mem) < 0;
 *
 * Completion: a callback returns 0 or a negative errno and the request
 * completes with that status (synchronous), or returns BUSE_ASYNC and
 * later calls buse_complete() from any thread (asynchronous).  In
 * write-back mode a write can also be acknowledged in two steps, "applied"
 * and "released" (BUSE_RETAIN, buse_complete_applied(), buse_release()):
 * see "Retained writes" below.
 *
 * Callbacks of one queue run in that queue's thread, one at a time; callbacks
 * of different queues run concurrently, so shared driver state needs locking.
 *
 * Buffers: the buf a read or write callback gets is the request's data slot
 * in memory shared with the kernel.  It is valid, like req, until the
 * request completes (the callback returns a status, or buse_complete() /
 * buse_release() for BUSE_ASYNC / BUSE_RETAIN); an asynchronous driver may
 * hand it to its own I/O until then, never after.  A read must fill all
 * len bytes before it completes.
 *
 * Queues: with nr_queues 0 the kernel makes one queue per possible CPU
 * (capped at BUSE_MAX_QUEUES).  A driver that keeps per-queue state can
 * size it with get_nprocs_conf() (<sys/sysinfo.h>) before buse_run(), by
 * BUSE_MAX_QUEUES, or allocate it in queue_init(), which runs once per qid
 * 0..nr_queues-1 before any request of that queue.
 *
 * Status and what the application sees: a callback's negative errno
 * reaches the block layer through errno_to_blk_status() and the
 * application's read()/write()/fsync() through blk_status_to_errno():
 * -EOPNOTSUPP, -ETIMEDOUT, -ENOSPC, -ENOLINK, -EREMOTEIO, -ENODATA,
 * -EILSEQ, -ENOMEM, -EBUSY and -EAGAIN keep their meaning; every other
 * value (and a positive one from a buggy driver) becomes EIO.  Buffered
 * I/O usually reports any failure as EIO at fsync().  -EOPNOTSUPP from
 * write_zeroes is special: blkdev_issue_zeroout() (BLKZEROOUT, fallocate
 * ZERO_RANGE, file systems) then retries with zero-filled writes, so a
 * driver may support only the cases it can do cheaply.
 *
 * Messages: libbuse reports problems as text on stderr; buse_set_log()
 * routes or silences them.
 */
#ifndef BUSE_BUSE_H
#define BUSE_BUSE_H

#include <stdbool.h>
#include <stdint.h>

/*
 * The kernel ABI (include/uapi/linux/buse.h in the source tree).  It is
 * reached as <buse/uapi.h>, a link to it in-tree and an installed copy, so
 * that an install never puts a file among the system's <linux/...> headers.
 */
#include <buse/uapi.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A callback's return value: the driver completes the request later. */
#define BUSE_ASYNC 1
/*
 * A write callback's return value on a write-back device: the write is
 * applied (the driver serves reads of it from now on) but not yet durable;
 * keep the kernel's log record until buse_release().  Anywhere else (a
 * write-through device, a FUA write, another callback) it means 0.
 */
#define BUSE_RETAIN 2

/* buse_req_flags() */
#define BUSE_REQ_REPLAYED	(1U << 0) /* handed again after a recovery */
#define BUSE_REQ_APPLIED_BEFORE	(1U << 1) /* a previous daemon had applied
					   * and retained it */

/* Flags passed to write and write_zeroes. */
#define BUSE_FUA     (1U << 0) /* data must be durable when the request completes */
#define BUSE_NOUNMAP (1U << 1) /* write_zeroes: keep the blocks allocated */

/*
 * How queue threads are scheduled (buse_params.sched).  A queue thread that
 * sleeps is woken per request, on the CPU of the submitter it serves.
 */
enum buse_sched_policy {
	/*
	 * Default: SCHED_BATCH (the thread does not preempt the submitter,
	 * so requests batch up) while that yields batches, plain SCHED_OTHER
	 * (lowest latency for lone requests) while it does not.
	 */
	BUSE_SCHED_ADAPTIVE = 0,
	BUSE_SCHED_LATENCY = 1,	   /* always SCHED_OTHER */
	BUSE_SCHED_THROUGHPUT = 2, /* always SCHED_BATCH */
};

/* One request in flight; valid until it is completed. */
struct buse_req;

/* Device parameters.  Initialise with buse_params_init(), then override. */
struct buse_params {
	uint64_t size;		      /* bytes; required */
	uint32_t logical_block_size;  /* 512 (default) .. 4096 */
	uint32_t physical_block_size; /* 0: same as logical */
	uint32_t nr_queues;	      /* 0: one per CPU */
	uint32_t queue_depth;	      /* 0: kernel default (128) */
	uint32_t max_io_bytes;	      /* 0: kernel default (256 KiB) */
	uint32_t max_discard_bytes;   /* 0: kernel default */
	uint32_t timeout_ms;	      /* 0: kernel default (30 s) */
	uint32_t dev_id;	      /* BUSE_DEV_ID_ANY (default) or N */
	uint32_t recovery_timeout_ms; /* 0: kernel default (30 s) */
	uint64_t log_bytes; /* write_back: log per queue; 0: default 16 MiB */
	/*
	 * Busy-poll: after a batch, look for new requests for this many
	 * microseconds (yielding the CPU between looks) before sleeping.
	 * Trades CPU for fewer wake-ups and bigger batches.  0: off.
	 */
	uint32_t poll_us;
	uint32_t sched; /* enum buse_sched_policy; default adaptive */
	/*
	 * Write-back mode: writes complete once copied into the kernel's
	 * write log; libbuse still hands overlapping writes to the driver in
	 * the order they completed, reads see the newest data, and a flush
	 * returns only after every earlier write is applied.
	 */
	bool write_back;
	bool read_only;
	bool rotational;
	/*
	 * Recoverable device: when the daemon dies, requests wait (up to
	 * recovery_timeout_ms) for a new daemon that calls buse_run() with
	 * recover set; it receives every request left unfinished.
	 */
	bool recoverable;
	/*
	 * Take over the existing recoverable device dev_id instead of creating
	 * one; its geometry comes from the kernel (size etc. are ignored).
	 */
	bool recover;
	bool handle_signals; /* default true: SIGINT/SIGTERM delete the device */
	bool pin_threads;    /* default true: pin queue threads to their CPUs */
	const char *name;    /* driver name shown by `buse info` */
	/*
	 * Thread pool for blocking callbacks: 0 (default) calls them in the
	 * queue threads, one at a time per queue, so a callback that blocks
	 * stalls its queue.  N (1..BUSE_MAX_WORKERS) runs them on N worker
	 * threads shared by all queues, up to N at once: a driver over slow
	 * storage writes plain blocking code and returns a status; libbuse
	 * completes the request, batching a worker's completions per queue.
	 * The callbacks then run concurrently even within a queue (lock shared
	 * state), and queue_init/queue_exit/batch_end still run in the queue
	 * threads.  BUSE_ASYNC and BUSE_RETAIN keep their meaning.
	 */
	uint32_t workers;
	/*
	 * A stable name, or NULL: up to 31 of [A-Za-z0-9._-], not starting
	 * with '.' or '-', unique among devices (buse_run() fails with
	 * -EEXIST if another device has it).  udev links the disk as
	 * /dev/disk/by-id/buse-NAME (the rule ships with the tool).
	 */
	const char *serial;
	/*
	 * The CPUs to run the queue threads on, as a list ("1", "2-3,6"), or
	 * NULL (default): each thread on its queue's CPUs (pin_threads).
	 * Thread i runs on the i-th CPU of the list, round robin, whatever
	 * pin_threads says.  With a large poll_us on a CPU that submits no
	 * I/O this is the low-latency mode: the poller sees a request as soon
	 * as it is queued and no wake-up is paid on either side, at the cost
	 * of that CPU, which it keeps busy while requests keep coming (and for
	 * poll_us after the last).  buse_run() fails with -EINVAL if the list
	 * is malformed or names a CPU this process may not run on.
	 */
	const char *cpus;
};

#define BUSE_MAX_WORKERS 1024

/*
 * The driver.  Every data callback gets the driver's private pointer, the
 * request and its byte range; offsets and lengths are multiples of the
 * logical block size and lie inside the device.  NULL callbacks mean the
 * operation is not supported: the kernel is told and never sends it.
 */
struct buse_ops {
	int (*read)(void *priv, struct buse_req *req, void *buf, uint32_t len,
		    uint64_t offset);
	int (*write)(void *priv, struct buse_req *req, const void *buf,
		     uint32_t len, uint64_t offset, unsigned flags);
	/* Make every completed write durable.  Also enables FUA writes. */
	int (*flush)(void *priv, struct buse_req *req);
	int (*discard)(void *priv, struct buse_req *req, uint32_t len,
		       uint64_t offset);
	int (*write_zeroes)(void *priv, struct buse_req *req, uint32_t len,
			    uint64_t offset, unsigned flags);

	/* Optional hooks, each run in the queue's own thread. */
	int (*queue_init)(void *priv, unsigned qid); /* <0 aborts buse_run */
	void (*queue_exit)(void *priv, unsigned qid);
	/* After a batch of requests was handed out: submit queued work now. */
	void (*batch_end)(void *priv, unsigned qid);

	/* Optional: the disk is visible as /dev/buse<dev_id>. */
	void (*started)(void *priv, uint32_t dev_id);
};

/* Fill in the defaults. */
void buse_params_init(struct buse_params *p);

/*
 * libbuse reports what goes wrong (a failed attach, a driver completing a
 * request twice, requests never completed at exit) as one line of text per
 * event.  By default each goes to stderr, prefixed "libbuse: ".  A driver
 * can route them with buse_set_log(fn, arg): fn gets arg and the line,
 * without prefix or newline, from whichever thread hit the problem (so fn
 * must be thread-safe), until the next call.  buse_set_log(NULL, NULL)
 * restores stderr; a fn that does nothing silences the library.
 */
typedef void (*buse_log_fn)(void *arg, const char *line);
void buse_set_log(buse_log_fn fn, void *arg);

/*
 * Create the device, serve it until it is deleted (buse_delete(), `buse del`)
 * or, with handle_signals, until SIGINT/SIGTERM, which deletes it after the
 * kernel has written back everything cached.  Returns 0 or a negative errno.
 *
 * Signals, with handle_signals: buse_run() blocks SIGINT and SIGTERM in its
 * own thread (reading them from a signalfd) and in the queue threads, and
 * restores the mask on return.  Threads the driver started before, which
 * may have them unblocked, are covered too: while buse_run() serves, a
 * process-wide handler replaces the default action of each (not a handler
 * the application installed itself) and turns the signal into the same
 * clean delete, whichever thread the kernel delivers it to.  An
 * application with its own SIGINT/SIGTERM handler keeps it, and should
 * call buse_delete() from it (or set handle_signals = false).  With
 * several buse_run() at once in one process, only the first owns the
 * handler.
 */
int buse_run(const struct buse_params *p, const struct buse_ops *ops,
	     void *priv);

/* Complete a request for which a callback returned BUSE_ASYNC.  Any thread. */
void buse_complete(struct buse_req *req, int status);

/*
 * Completions from another thread are handed to the kernel at once, one
 * system call each, unless they are bracketed by these: then the kernel gets
 * them all at buse_batch_end().  Per thread; may nest.
 */
void buse_batch_begin(void);
void buse_batch_end(void);

/* The hardware queue (0..nr_queues-1) a request came in on. */
unsigned buse_req_queue(const struct buse_req *req);

/*
 * Retained writes (write-back devices).  A write that the driver has applied
 * (in its own memory: reads will find it) but not yet made durable (e.g. an
 * object upload still running) need not be acknowledged early or late:
 *
 *   - the write callback returns BUSE_RETAIN, or, after BUSE_ASYNC, the
 *     driver calls buse_complete_applied(req): the write is applied.  Reads,
 *     flushes and later overlapping writes no longer wait for it; its log
 *     record stays in the kernel and its space is not reused.
 *   - once it is durable, the driver calls buse_release(req), from any
 *     thread (batched by buse_batch_begin/end like buse_complete()).  The
 *     req handle stays valid until then.  buse_complete(req, 0) of an async
 *     write is apply and release at once (what drivers that do not retain
 *     do).  The release may come first: a thread the write was handed to
 *     may make it durable before the callback has returned BUSE_RETAIN (or
 *     before buse_complete_applied()); applying it then also releases it.
 *
 * If the daemon dies, a recoverable device hands every unreleased write to
 * the next daemon, in seq order, with buse_req_flags() BUSE_REQ_REPLAYED and,
 * for those it had applied, BUSE_REQ_APPLIED_BEFORE; a normal device fails
 * the next flush with EIO.  Retained records count against the log: a full
 * log makes writers wait (no timeout: the request timeout is for applying).
 *
 * The rule: release a write only when it and everything it depends on in
 * the driver's own durability order is durable (a log-structured driver
 * releases in object order).  Replayed writes are applied again over the
 * durable state in seq order, so an overlapping pair can never end up
 * older-over-newer: the newer one is released only after the older one is
 * durable.  A driver's flush callback must make every applied write durable
 * (and may release them) before it returns.
 *
 * On a write-through device BUSE_RETAIN behaves as 0, buse_release() is a
 * harmless no-op and buse_req_seq() is 0.
 */
void buse_complete_applied(struct buse_req *req);
void buse_release(struct buse_req *req);
/* A logged write's device-wide write-back sequence number; 0 otherwise. */
uint64_t buse_req_seq(const struct buse_req *req);
/* BUSE_REQ_* */
unsigned buse_req_flags(const struct buse_req *req);

/* Control plane: for tools.  All return 0 or a negative errno. */
int buse_info(uint32_t dev_id, struct buse_dev_info *info);
/* The device with the smallest id >= dev_id; -ENOENT if there is none. */
int buse_info_next(uint32_t dev_id, struct buse_dev_info *info);
/* Remove a device; its daemon's buse_run() returns. */
int buse_delete(uint32_t dev_id);

/* "created", "ready", "live", "dead", "deleting", "orphaned" */
const char *buse_state_name(uint32_t state);

#ifdef __cplusplus
}
#endif

#endif /* BUSE_BUSE_H */
