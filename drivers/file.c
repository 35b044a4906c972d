// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * file: a disk backed by a regular file or a block device, with io_uring.
 *
 * This is the example of asynchronous completion.  Each queue has its own
 * io_uring.  The read/write/flush callbacks only queue an sqe and return
 * BUSE_ASYNC; the batch_end hook submits the whole batch with one system
 * call.  A reaper thread per queue waits for cqes and completes their
 * requests with buse_complete(), bracketed by buse_batch_begin/end() so a
 * burst of completions also costs one system call.
 *
 * The rare cases stay simple and synchronous, in the reaper: the rest of a
 * short read or write, and zeroing by hand when fallocate() cannot.
 *
 * With --workers N it is instead the example of the worker pool: the same
 * operations as plain blocking system calls, N at a time on libbuse's
 * pool, no io_uring (bench/run compares the two: buse-file, buse-file-pool).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <liburing.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "../tool/drivers.h"
#include "../tool/size.h"

#define FILE_REAP_BATCH 128 /* cqes completed per system call, at most */

/* One request on its way through io_uring. */
struct file_io {
	struct buse_req *req;
	uint8_t op;	/* BUSE_OP_* */
	unsigned flags; /* BUSE_FUA, BUSE_NOUNMAP */
	void *buf;
	uint32_t len;
	uint64_t off;
};

struct file_dev;

struct file_queue {
	struct io_uring ring; /* sqes: queue thread only; cqes: reaper only */
	pthread_t reaper;
	struct file_dev *dev;
};

struct file_dev {
	int fd;
	char *path; /* absolute, for buse info */
	bool blkdev;
	uint64_t eof; /* a read-only file may end before the disk does */
	unsigned ring_entries;
	unsigned workers; /* --workers: blocking calls on the pool, no ring */
	struct file_queue *queues[BUSE_MAX_QUEUES];
};

/* Never written; page aligned, so it also works with O_DIRECT. */
static _Alignas(4096) char file_zeros[64 << 10];

/* Hand every queued sqe to the kernel. */
static void file_submit(struct file_queue *q)
{
	int ret;

	while (io_uring_sq_ready(&q->ring)) {
		ret = io_uring_submit(&q->ring);
		if (ret == -EAGAIN || ret == -EBUSY || ret == -EINTR) {
			/* Out of resources until the reaper catches up. */
			sched_yield();
		} else if (ret < 0) {
			fprintf(stderr, "file: io_uring_submit: %s\n",
				strerror(-ret));
			return;
		}
	}
}

static struct io_uring_sqe *file_get_sqe(struct file_queue *q)
{
	struct io_uring_sqe *sqe;

	/* The ring has room for a full queue depth; this is just in case. */
	while (!(sqe = io_uring_get_sqe(&q->ring)))
		file_submit(q);
	return sqe;
}

static int file_do_sync(struct file_dev *dev, struct file_io *io);

static int file_queue_io(struct file_dev *dev, struct buse_req *req, uint8_t op,
			 void *buf, uint32_t len, uint64_t off, unsigned flags)
{
	struct file_queue *q = dev->queues[buse_req_queue(req)];
	struct io_uring_sqe *sqe;
	struct file_io *io;
	int mode;

	if (dev->workers) {
		struct file_io sio = {.req = req, .op = op, .flags = flags,
				      .buf = buf, .len = len, .off = off};

		return file_do_sync(dev, &sio);
	}
	io = malloc(sizeof(*io));
	if (!io)
		return -ENOMEM;
	*io = (struct file_io){.req = req,
			       .op = op,
			       .flags = flags,
			       .buf = buf,
			       .len = len,
			       .off = off};
	sqe = file_get_sqe(q);
	switch (op) {
	case BUSE_OP_READ:
		io_uring_prep_read(sqe, dev->fd, buf, len, off);
		break;
	case BUSE_OP_WRITE:
		io_uring_prep_write(sqe, dev->fd, buf, len, off);
		if (flags & BUSE_FUA)
			sqe->rw_flags = RWF_DSYNC;
		break;
	case BUSE_OP_FLUSH:
		io_uring_prep_fsync(sqe, dev->fd, IORING_FSYNC_DATASYNC);
		break;
	case BUSE_OP_DISCARD:
		io_uring_prep_fallocate(
			sqe, dev->fd,
			FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, len);
		break;
	case BUSE_OP_WRITE_ZEROES:
		/*
		 * Both read back zeros.  On a block device ZERO_RANGE never
		 * unmaps and PUNCH_HOLE may, but fails rather than writing
		 * zeros itself: file_status() then writes them.
		 */
		mode = flags & BUSE_NOUNMAP ? FALLOC_FL_ZERO_RANGE
					    : FALLOC_FL_PUNCH_HOLE;
		io_uring_prep_fallocate(sqe, dev->fd,
					mode | FALLOC_FL_KEEP_SIZE, off, len);
		break;
	}
	io_uring_sqe_set_data(sqe, io);
	return BUSE_ASYNC;
}

static int file_read(void *priv, struct buse_req *req, void *buf, uint32_t len,
		     uint64_t off)
{
	return file_queue_io(priv, req, BUSE_OP_READ, buf, len, off, 0);
}

static int file_write(void *priv, struct buse_req *req, const void *buf,
		      uint32_t len, uint64_t off, unsigned flags)
{
	/* io_uring wants a void *, but only reads from it for a write. */
	return file_queue_io(priv, req, BUSE_OP_WRITE, (void *)buf, len, off,
			     flags);
}

static int file_flush(void *priv, struct buse_req *req)
{
	return file_queue_io(priv, req, BUSE_OP_FLUSH, NULL, 0, 0, 0);
}

static int file_discard(void *priv, struct buse_req *req, uint32_t len,
			uint64_t off)
{
	struct file_dev *dev = priv;
	uint64_t range[2] = {off, len};

	if (!dev->blkdev)
		return file_queue_io(dev, req, BUSE_OP_DISCARD, NULL, len, off,
				     0);
	/* io_uring cannot discard a block device: a synchronous ioctl. */
	if (ioctl(dev->fd, BLKDISCARD, range) < 0 && errno != EOPNOTSUPP)
		return -errno;
	return 0;
}

static int file_write_zeroes(void *priv, struct buse_req *req, uint32_t len,
			     uint64_t off, unsigned flags)
{
	return file_queue_io(priv, req, BUSE_OP_WRITE_ZEROES, NULL, len, off,
			     flags);
}

/*
 * Finish a read or write synchronously from byte done on: the rest of a
 * short transfer, or all of it if io_uring asked us to retry.
 */
static int file_rw_sync(struct file_dev *dev, struct file_io *io, uint32_t done)
{
	while (done < io->len) {
		struct iovec iov = {(char *)io->buf + done, io->len - done};
		off_t off = io->off + done;
		ssize_t ret;

		if (io->op == BUSE_OP_READ && (uint64_t)off >= dev->eof) {
			/* Past the end of a file that was not extended. */
			memset(iov.iov_base, 0, iov.iov_len);
			return 0;
		}
		if (io->op == BUSE_OP_READ)
			ret = preadv2(dev->fd, &iov, 1, off, 0);
		else
			ret = pwritev2(dev->fd, &iov, 1, off,
				       io->flags & BUSE_FUA ? RWF_DSYNC : 0);
		if (ret < 0 && errno == EINTR)
			continue;
		if (ret < 0)
			return -errno;
		if (!ret && io->op == BUSE_OP_READ) {
			/* Someone truncated the file under us. */
			memset(iov.iov_base, 0, iov.iov_len);
			return 0;
		}
		if (!ret)
			return -EIO;
		done += ret;
	}
	return 0;
}

/* When fallocate() cannot zero a range: write the zeros ourselves. */
static int file_zero_sync(struct file_dev *dev, struct file_io *io)
{
	uint32_t done = 0;

	while (done < io->len) {
		uint32_t n = io->len - done;
		ssize_t ret;

		if (n > sizeof(file_zeros))
			n = sizeof(file_zeros);
		ret = pwrite(dev->fd, file_zeros, n, io->off + done);
		if (ret < 0 && errno == EINTR)
			continue;
		if (ret < 0)
			return -errno;
		if (!ret)
			return -EIO;
		done += ret;
	}
	return 0;
}

/* The status of a request whose io_uring operation returned res. */
static int file_status(struct file_dev *dev, struct file_io *io, int res)
{
	bool retry = res == -EAGAIN || res == -EINTR;

	switch (io->op) {
	case BUSE_OP_READ:
	case BUSE_OP_WRITE:
		if (res < 0 && !retry)
			return res;
		if (res >= 0 && (uint32_t)res == io->len)
			return 0;
		return file_rw_sync(dev, io, res < 0 ? 0 : res);
	case BUSE_OP_DISCARD:
		/* Discard is a hint: the filesystem may not punch holes. */
		return res == -EOPNOTSUPP ? 0 : res;
	case BUSE_OP_WRITE_ZEROES:
		if (res == -EOPNOTSUPP || retry)
			return file_zero_sync(dev, io);
		return res;
	default:
		return res < 0 ? res : 0;
	}
}

/* --workers: the operation io would queue, as a blocking system call. */
static int file_do_sync(struct file_dev *dev, struct file_io *io)
{
	int mode, res = 0;

	switch (io->op) {
	case BUSE_OP_READ:
	case BUSE_OP_WRITE:
		return file_rw_sync(dev, io, 0);
	case BUSE_OP_FLUSH:
		res = fdatasync(dev->fd) ? -errno : 0;
		break;
	case BUSE_OP_DISCARD:
		res = fallocate(dev->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
				io->off, io->len) ? -errno : 0;
		break;
	case BUSE_OP_WRITE_ZEROES:
		mode = io->flags & BUSE_NOUNMAP ? FALLOC_FL_ZERO_RANGE
						: FALLOC_FL_PUNCH_HOLE;
		res = fallocate(dev->fd, mode | FALLOC_FL_KEEP_SIZE, io->off,
				io->len) ? -errno : 0;
		break;
	}
	/* What io_uring's result would have been: finished the same way. */
	return file_status(dev, io, res);
}

static void *file_reaper(void *arg)
{
	struct file_queue *q = arg;
	struct io_uring_cqe *cqes[FILE_REAP_BATCH];
	bool stop = false;
	unsigned i, n;
	int ret;

	while (!stop) {
		ret = io_uring_wait_cqe(&q->ring, &cqes[0]);
		if (ret == -EINTR)
			continue;
		if (ret < 0) {
			fprintf(stderr, "file: io_uring_wait_cqe: %s\n",
				strerror(-ret));
			break;
		}
		n = io_uring_peek_batch_cqe(&q->ring, cqes, FILE_REAP_BATCH);
		buse_batch_begin();
		for (i = 0; i < n; i++) {
			struct file_io *io = io_uring_cqe_get_data(cqes[i]);

			if (!io) {
				stop = true; /* file_queue_exit()'s NOP */
				continue;
			}
			buse_complete(io->req,
				      file_status(q->dev, io, cqes[i]->res));
			free(io);
		}
		io_uring_cq_advance(&q->ring, n);
		buse_batch_end();
	}
	return NULL;
}

static int file_queue_init(void *priv, unsigned qid)
{
	struct file_dev *dev = priv;
	struct file_queue *q;
	int ret;

	if (dev->workers)
		return 0; /* no ring, no reaper: the pool blocks instead */
	q = calloc(1, sizeof(*q));
	if (!q)
		return -ENOMEM;
	q->dev = dev;
	ret = io_uring_queue_init(dev->ring_entries, &q->ring, 0);
	if (ret < 0) {
		fprintf(stderr, "file: io_uring_queue_init: %s\n",
			strerror(-ret));
		free(q);
		return ret;
	}
	/* Inherits this thread's CPU affinity, so it stays near its queue. */
	ret = pthread_create(&q->reaper, NULL, file_reaper, q);
	if (ret) {
		io_uring_queue_exit(&q->ring);
		free(q);
		return -ret;
	}
	dev->queues[qid] = q;
	return 0;
}

static void file_queue_exit(void *priv, unsigned qid)
{
	struct file_dev *dev = priv;
	struct file_queue *q = dev->queues[qid];
	struct io_uring_sqe *sqe;

	if (!q)
		return;
	/* IO_DRAIN: the NOP runs after, and stops the reaper after, the rest. */
	sqe = file_get_sqe(q);
	io_uring_prep_nop(sqe);
	io_uring_sqe_set_data(sqe, NULL);
	sqe->flags |= IOSQE_IO_DRAIN;
	file_submit(q);
	pthread_join(q->reaper, NULL);
	io_uring_queue_exit(&q->ring);
	dev->queues[qid] = NULL;
	free(q);
}

static void file_batch_end(void *priv, unsigned qid)
{
	struct file_dev *dev = priv;

	if (dev->queues[qid])
		file_submit(dev->queues[qid]);
}

static void file_cleanup(void *priv)
{
	struct file_dev *dev = priv;

	close(dev->fd);
	free(dev->path);
	free(dev);
}

static const char *file_backing(void *priv)
{
	return ((struct file_dev *)priv)->path;
}

/* What the user asked for, as parsed. */
struct file_args {
	const char *path;
	bool direct; /* --direct: O_DIRECT */
	bool grow;   /* --grow: extend a shorter file to --size */
};

static int file_err(const char *path, int err)
{
	fprintf(stderr, "file: %s: %s\n", path, strerror(err));
	return -err;
}

/* Open the path; a missing file is created only when --size says how big. */
static int file_open_fd(struct file_dev *dev, const struct file_args *a,
			const struct buse_params *p, bool *created)
{
	int flags = (p->read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC;

	if (a->direct)
		flags |= O_DIRECT;
	*created = false;
	dev->fd = open(a->path, flags);
	if (dev->fd < 0 && errno == ENOENT && p->size && !p->read_only) {
		dev->fd = open(a->path, flags | O_CREAT | O_EXCL, 0600);
		*created = dev->fd >= 0;
	}
	if (dev->fd >= 0)
		return 0;
	if (errno == EINVAL && a->direct) {
		/* tmpfs and some FUSE file systems have no O_DIRECT. */
		fprintf(stderr,
			"file: %s: its file system does not support O_DIRECT: "
			"drop --direct\n",
			a->path);
		return BUSE_DRV_USAGE;
	}
	if (errno == ENOENT && !p->size) {
		fprintf(stderr,
			"file: %s does not exist: give --size to create it\n",
			a->path);
		return BUSE_DRV_USAGE;
	}
	return file_err(a->path, errno);
}

/*
 * Open the path and size the disk: p->size is --size, or 0 for the file's.
 * Never changes a file's size unless asked (--grow, or a new file).
 */
static int file_open(struct file_dev *dev, const struct file_args *a,
		     struct buse_params *p)
{
	uint32_t bs = p->logical_block_size;
	char s1[32], s2[32];
	uint64_t fsize;
	struct stat st;
	bool created;
	int sector, ret;

	ret = file_open_fd(dev, a, p, &created);
	if (ret)
		return ret;
	if (fstat(dev->fd, &st) < 0)
		return file_err(a->path, errno);
	if (S_ISBLK(st.st_mode)) {
		dev->blkdev = true;
		if (ioctl(dev->fd, BLKGETSIZE64, &fsize) < 0 ||
		    ioctl(dev->fd, BLKSSZGET, &sector) < 0)
			return file_err(a->path, errno);
		if (a->direct && (uint32_t)sector > bs) {
			fprintf(stderr,
				"file: %s: --direct needs --block-size %d "
				"(its sector size) or more\n",
				a->path, sector);
			return BUSE_DRV_USAGE;
		}
	} else if (S_ISREG(st.st_mode)) {
		fsize = st.st_size;
	} else {
		fprintf(stderr,
			"file: %s: not a regular file or block device\n",
			a->path);
		return BUSE_DRV_USAGE;
	}

	if (!p->size) {
		if (fsize % bs || !fsize) {
			fprintf(stderr,
				"file: %s holds %llu bytes, %s the %u-byte "
				"block size: give --size%s\n",
				a->path, (unsigned long long)fsize,
				fsize < bs ? "less than" : "not a multiple of",
				bs,
				fsize < bs ? " (with --grow) to extend it"
					   : " to serve a prefix of it");
			return BUSE_DRV_USAGE;
		}
		p->size = fsize;
	} else if (p->size > fsize && dev->blkdev) {
		fprintf(stderr, "file: %s holds only %s (%llu bytes)\n",
			a->path, format_size(fsize, s1, sizeof(s1)),
			(unsigned long long)fsize);
		return BUSE_DRV_USAGE;
	} else if (p->size > fsize && !p->read_only) {
		if (!a->grow && !created) {
			fprintf(stderr,
				"file: %s holds only %s (%llu bytes), less "
				"than --size %s: add --grow to extend it, or "
				"drop --size to serve it as it is\n",
				a->path, format_size(fsize, s1, sizeof(s1)),
				(unsigned long long)fsize,
				format_size(p->size, s2, sizeof(s2)));
			return BUSE_DRV_USAGE;
		}
		if (ftruncate(dev->fd, p->size) < 0)
			return file_err(a->path, errno);
		fsize = p->size;
	}
	/* Read-only, a short file stays short and reads zeros past its end. */
	dev->eof = fsize;
	return 0;
}

static int file_parse(int argc, char **argv, struct buse_params *p, void **priv)
{
	static const struct option opts[] = {
		{"path", required_argument, NULL, 'p'},
		{"direct", no_argument, NULL, 'd'},
		{"grow", no_argument, NULL, 'g'},
		{"workers", required_argument, NULL, 'w'},
		{0},
	};
	struct file_args a = {0};
	struct file_dev *dev;
	uint32_t workers = 0;
	unsigned depth;
	int c, ret;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'p':
			a.path = optarg;
			break;
		case 'd':
			a.direct = true;
			break;
		case 'g':
			a.grow = true;
			break;
		case 'w':
			if (parse_u32(optarg, 1, BUSE_MAX_WORKERS, &workers)) {
				fprintf(stderr,
					"file: --workers %s: want 1 to %u\n",
					optarg, BUSE_MAX_WORKERS);
				return BUSE_DRV_USAGE;
			}
			break;
		default:
			return BUSE_DRV_USAGE; /* getopt_long() said why */
		}
	}
	if (optind < argc) {
		fprintf(stderr, "file: unexpected argument '%s'\n",
			argv[optind]);
		return BUSE_DRV_USAGE;
	}
	if (!a.path) {
		fprintf(stderr, "file: --path is required\n");
		return BUSE_DRV_USAGE;
	}
	if (a.grow && !p->size) {
		fprintf(stderr, "file: --grow needs --size\n");
		return BUSE_DRV_USAGE;
	}

	dev = calloc(1, sizeof(*dev));
	if (!dev)
		return -ENOMEM;
	dev->fd = -1;
	ret = file_open(dev, &a, p);
	if (!ret) {
		dev->path = realpath(a.path, NULL);
		if (!dev->path)
			dev->path = strdup(a.path);
		if (!dev->path)
			ret = -ENOMEM;
	}
	if (ret) {
		if (dev->fd >= 0)
			close(dev->fd);
		free(dev);
		return ret;
	}
	/* Room for a full queue; file_get_sqe() copes if the kernel differs. */
	depth = p->queue_depth ? p->queue_depth : BUSE_DEF_DEPTH;
	dev->ring_entries = depth < BUSE_MAX_DEPTH ? depth : BUSE_MAX_DEPTH;
	dev->workers = workers;
	p->workers = workers;
	*priv = dev;
	return 0;
}

static const struct buse_ops file_ops = {
	.read = file_read,
	.write = file_write,
	.flush = file_flush,
	.discard = file_discard,
	.write_zeroes = file_write_zeroes,
	.queue_init = file_queue_init,
	.queue_exit = file_queue_exit,
	.batch_end = file_batch_end,
};

const struct buse_driver file_driver = {
	.name = "file",
	.summary = "a regular file or block device, through io_uring",
	.usage = "--path PATH   file or block device to serve (required);\n"
		 "              with --size, a missing file is created\n"
		 "--grow        extend a file shorter than --size to it\n"
		 "--direct      bypass the page cache (O_DIRECT)\n"
		 "--workers N   blocking calls on N pool threads instead of "
		 "io_uring\n",
	.parse = file_parse,
	.backing = file_backing,
	.cleanup = file_cleanup,
	.ops = &file_ops,
};
