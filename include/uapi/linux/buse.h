/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * BUSE: block device in userspace.  The ABI shared by buse.ko and libbuse.
 *
 * Control plane: /dev/buse-control (root only) takes the BUSE_CTL_* ioctls.
 * A daemon creates a device (BUSE_CTL_ADD), attaches one file descriptor per
 * hardware queue (BUSE_CTL_ATTACH_QUEUE), maps each queue's shared region,
 * starts serving it and then makes the disk visible (BUSE_CTL_START).
 *
 * Data plane, per queue, one shared region:
 *
 *   +-------------------+ 0
 *   | struct buse_ring_hdr  (indices, each on its own cache line)
 *   +-------------------+ sq_off
 *   | struct buse_sqe[sq_entries]   kernel -> daemon: new requests
 *   +-------------------+ cq_off
 *   | struct buse_cqe[cq_entries]   daemon -> kernel: completions
 *   +-------------------+ data_off
 *   | data buffers (data_size bytes); sqe->data_off points into them
 *   +-------------------+ region_size
 *
 * Both rings are single-producer/single-consumer with free-running 32-bit
 * indices; entry i lives at index (i & (entries - 1)).  The producer writes
 * the entry, then publishes the tail with release semantics; the consumer
 * reads the tail with acquire semantics and publishes its head.
 *
 * One BUSE_IOC_SYNC on the queue fd hands every completion posted so far to
 * the kernel and, with BUSE_SYNC_WAIT, sleeps until new requests arrive, so a
 * whole batch of both moves per system call.
 *
 * The kernel never trusts what the daemon writes: every index, tag, cookie
 * and status is validated, and data offsets are taken from the kernel's own
 * records, never read back from the shared region.
 */
#ifndef _UAPI_LINUX_BUSE_H
#define _UAPI_LINUX_BUSE_H

#include <linux/ioctl.h>
#include <linux/types.h>

#define BUSE_CONTROL_NAME	"buse-control"
#define BUSE_DISK_NAME		"buse"
#define BUSE_ABI_VERSION	3 /* 2: retained writes, log usage; 3: serial */

#define BUSE_DEV_ID_ANY		((__u32)-1)
#define BUSE_NAME_LEN		32
#define BUSE_SERIAL_LEN		32

/* struct buse_dev_params.flags */
#define BUSE_F_READ_ONLY	(1U << 0)
#define BUSE_F_ROTATIONAL	(1U << 1)
#define BUSE_F_FLUSH		(1U << 2) /* volatile cache: send flushes */
#define BUSE_F_FUA		(1U << 3) /* forced unit access on writes */
#define BUSE_F_DISCARD		(1U << 4)
#define BUSE_F_WRITE_ZEROES	(1U << 5)
#define BUSE_F_WRITE_BACK	(1U << 6) /* writes complete once logged */
#define BUSE_F_RECOVERABLE	(1U << 7) /* requests wait for a new daemon */
#define BUSE_F_SUPPORTED	(BUSE_F_READ_ONLY | BUSE_F_ROTATIONAL | \
				 BUSE_F_FLUSH | BUSE_F_FUA | BUSE_F_DISCARD | \
				 BUSE_F_WRITE_ZEROES | BUSE_F_RECOVERABLE | \
				 BUSE_F_WRITE_BACK)

/* Limits the kernel enforces; zero in a parameter asks for the default. */
#define BUSE_MIN_BLOCK_SIZE	512
#define BUSE_MAX_BLOCK_SIZE	4096
#define BUSE_MAX_QUEUES		256
#define BUSE_MAX_DEPTH		4096
#define BUSE_DEF_DEPTH		128
#define BUSE_MAX_IO_BYTES	(4U << 20)
#define BUSE_DEF_IO_BYTES	(256U << 10)
#define BUSE_MAX_QUEUE_DATA	(1ULL << 30) /* depth * max_io, per queue */
#define BUSE_MAX_DISCARD_BYTES	(1U << 30)
#define BUSE_DEF_TIMEOUT_MS	30000
#define BUSE_MAX_TIMEOUT_MS	(3600U * 1000)
#define BUSE_DEF_RECOVERY_MS	30000
#define BUSE_DEF_LOG_BYTES	(16U << 20) /* write-back log, per queue */
#define BUSE_MAX_LOG_BYTES	(1U << 30)
/* Write-back log records (tags) per queue: one per 4 KiB of the largest log */
#define BUSE_MAX_LOG_RECS	(BUSE_MAX_LOG_BYTES / 4096)

/*
 * Device parameters.  BUSE_CTL_ADD reads them, validates them, fills in the
 * defaults and writes back what the kernel accepted.
 */
struct buse_dev_params {
	__u32 dev_id;		/* in: BUSE_DEV_ID_ANY or wanted id; out */
	__u32 flags;		/* BUSE_F_* */
	__u64 size;		/* bytes, a multiple of logical_block_size */
	__u32 logical_block_size;  /* 512..4096, power of two */
	__u32 physical_block_size; /* >= logical; 0: logical */
	__u32 nr_queues;	/* 0: one per possible CPU */
	__u32 queue_depth;	/* requests in flight per queue */
	__u32 max_io_bytes;	/* largest read/write, multiple of 4096 */
	__u32 max_discard_bytes; /* largest discard/write-zeroes */
	__u32 timeout_ms;	/* per request; expired requests fail */
	__u32 recovery_timeout_ms; /* BUSE_F_RECOVERABLE: how long requests
				    * wait for a new daemon before failing */
	char name[BUSE_NAME_LEN]; /* driver name, informational, NUL ended */
	__u64 log_bytes;	/* BUSE_F_WRITE_BACK: write log per queue */
	/*
	 * A stable name, or "": 1 to 31 of [A-Za-z0-9._-] (not starting with
	 * '.' or '-'), zero-padded, unique among devices (else EEXIST).
	 * Shown as /sys/block/buseN/serial, from which udev makes
	 * /dev/disk/by-id/buse-SERIAL.
	 */
	char serial[BUSE_SERIAL_LEN];
	__u64 reserved[3];	/* must be zero */
};

/* struct buse_dev_info.state */
#define BUSE_STATE_CREATED	0 /* added, not all queues attached */
#define BUSE_STATE_READY	1 /* every queue attached, not started */
#define BUSE_STATE_LIVE		2 /* disk visible, daemon serving */
#define BUSE_STATE_DEAD		3 /* a queue's daemon went away */
#define BUSE_STATE_DELETING	4
#define BUSE_STATE_ORPHANED	5 /* recoverable, waiting for a new daemon */

/* struct buse_dev_info.flags (in) */
#define BUSE_INFO_NEXT		(1U << 0) /* first device with id >= dev_id */

struct buse_dev_info {
	__u32 dev_id;		/* in, out */
	__u32 flags;		/* in: BUSE_INFO_* */
	struct buse_dev_params params;
	__u32 state;		/* BUSE_STATE_* */
	__s32 daemon_pid;	/* process that attached the queues, or 0 */
	__u32 nr_attached;	/* queues with a live daemon */
	__u32 major;
	__u32 minor;
	/* Write-back mode: the write logs of all queues together. */
	__u32 log_recs;		/* records */
	__u64 log_size;		/* bytes */
	__u64 log_free;		/* bytes free for new writes */
	__u64 unapplied_bytes;	/* logged, not yet applied by the driver */
	__u64 retained_bytes;	/* applied, kept until released */
	__u32 unapplied_recs;
	__u32 retained_recs;
	__u64 reserved[1];
};

#define BUSE_MAX_CPU_WORDS	16 /* cpu_mask covers CPUs 0..1023 */

struct buse_queue_attach {
	__u32 dev_id;		/* in */
	__u32 qid;		/* in; an orphaned queue of a recoverable
				 * device can be attached again: every
				 * request still in flight is in the sq anew */
	__s32 fd;		/* out: the queue's file descriptor */
	__u32 depth;		/* out: tags 0..depth-1 */
	__u64 region_size;	/* out: mmap exactly this, offset 0 */
	__u32 sq_off;		/* out */
	__u32 sq_entries;	/* out: power of two */
	__u32 cq_off;		/* out */
	__u32 cq_entries;	/* out: power of two */
	__u64 data_off;		/* out */
	__u64 data_size;	/* out */
	__u32 slot_size;	/* out: bytes of data per tag */
	__u32 reserved0;
	__u64 cpu_mask[BUSE_MAX_CPU_WORDS]; /* out: CPUs this queue serves */
	/* Write-back mode (else zero): the queue's write log. */
	__u64 log_off;		/* out: log data, inside the region */
	__u64 log_size;		/* out */
	__u32 log_recs;		/* out: logged writes use tags depth.. */
	__u32 reserved1;	/*	depth + log_recs - 1 */
	/* out: every write with seq <= this was applied at attach time */
	__u64 wb_seq_base;	/* (the header's wb_applied is kept current) */
	__u64 reserved[1];
};

/*
 * Write-back mode also uses two words of the header.  wb_applied (kernel):
 * every logged write of the device with a seq below it has been applied;
 * the kernel updates it whenever it consumes completions of logged writes
 * (on any queue) and before BUSE_IOC_SYNC returns.  wb_want (daemon): when
 * nonzero, BUSE_SYNC_WAIT also returns once wb_applied >= wb_want, so a
 * queue thread holding a BUSE_SQE_AFTER write wakes when it may apply it.
 */
struct buse_ring_hdr {
	__u32 sq_tail;		/* written by the kernel */
	__u32 pad0[15];
	__u32 sq_head;		/* written by the daemon */
	__u32 pad1[15];
	__u32 cq_tail;		/* written by the daemon */
	__u32 pad2a;
	__u64 wb_want;		/* written by the daemon */
	__u32 pad2[12];
	__u32 cq_head;		/* written by the kernel */
	__u32 pad3a;
	__u64 wb_applied;	/* written by the kernel */
	__u32 pad3[12];
};

/* struct buse_sqe.op */
#define BUSE_OP_READ		0
#define BUSE_OP_WRITE		1
#define BUSE_OP_FLUSH		2
#define BUSE_OP_DISCARD		3
#define BUSE_OP_WRITE_ZEROES	4

/* struct buse_sqe.flags */
#define BUSE_SQE_FUA		(1U << 0) /* write must be durable on completion */
#define BUSE_SQE_NOUNMAP	(1U << 1) /* write-zeroes must keep allocation */
/*
 * Write-back mode.  BUSE_SQE_LOGGED: a write the application has seen
 * complete already; its data is in the log and its tag is a log record
 * (>= depth); its completion acknowledges it and frees the log space.
 * @seq orders logged writes across all queues of the device.
 * BUSE_SQE_AFTER: it may overlap an earlier logged write still being
 * applied: apply it only after every write with a smaller seq, that is once
 * the header's wb_applied >= seq.
 */
#define BUSE_SQE_LOGGED		(1U << 2)
#define BUSE_SQE_AFTER		(1U << 3)
/*
 * Recovery: a logged write handed out again to a new daemon (REPLAYED), and
 * one that a previous daemon had applied and retained (APPLIED_BEFORE):
 * its data may or may not have reached the driver's durable store.
 */
#define BUSE_SQE_REPLAYED	(1U << 4)
#define BUSE_SQE_APPLIED_BEFORE	(1U << 5)

struct buse_sqe {
	__u8 op;
	__u8 reserved0;
	__u16 flags;
	__u32 tag;		/* echo in the completion */
	__u64 sector;		/* 512-byte units */
	__u32 len;		/* bytes */
	__u32 cookie;		/* echo in the completion */
	__u64 data_off;		/* from region start; read/write only */
	__u64 seq;		/* logged writes: order across queues */
};

/*
 * struct buse_cqe.flags.  BUSE_CQE_RETAIN, only on a successful completion
 * of a logged write: it is applied (reads, flushes and later overlapping
 * writes need no longer wait for it) but its log record stays, and is
 * handed to the next daemon if this one dies, until a second completion
 * without the flag releases it.  Any other flag, or RETAIN on anything else,
 * makes the completion invalid.
 */
#define BUSE_CQE_RETAIN		(1U << 0)

struct buse_cqe {
	__u32 tag;
	__u32 cookie;
	__s32 status;		/* 0 or a negative errno */
	__u32 flags;		/* BUSE_CQE_* */
};

#define BUSE_IOC_MAGIC		0xB5

/* On /dev/buse-control */
#define BUSE_CTL_ADD		_IOWR(BUSE_IOC_MAGIC, 0x00, struct buse_dev_params)
#define BUSE_CTL_ATTACH_QUEUE	_IOWR(BUSE_IOC_MAGIC, 0x01, struct buse_queue_attach)
#define BUSE_CTL_START		_IO(BUSE_IOC_MAGIC, 0x02)	/* arg: dev id */
#define BUSE_CTL_DEL		_IO(BUSE_IOC_MAGIC, 0x03)	/* arg: dev id */
#define BUSE_CTL_GET_INFO	_IOWR(BUSE_IOC_MAGIC, 0x04, struct buse_dev_info)

/* On a queue fd.  arg: BUSE_SYNC_* flags.  Returns new sqes pending. */
#define BUSE_IOC_SYNC		_IO(BUSE_IOC_MAGIC, 0x20)
#define BUSE_SYNC_WAIT		(1U << 0)

#endif /* _UAPI_LINUX_BUSE_H */
