// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * bs3: a disk whose blocks live in an S3 bucket (the BS3 engine, bs3/),
 * bound to libbuse.  The engine does the work; this file maps requests:
 *
 *   write   bs3_write() applies it and keeps a pointer to the data, which
 *           is the kernel's write log itself (no object buffer: the one
 *           copy on the way to S3 is libcurl's, into its send buffer);
 *           the callback returns BUSE_RETAIN, so the kernel keeps the
 *           record, and the engine's release callback buse_release()s it
 *           once its object (and every object before it) is stored.  So a
 *           killed daemon loses nothing on a recoverable device: the next
 *           one gets every unreleased write back and applies it again
 *           (idempotent in a log-structured store), in seq order.
 *   FUA     the write, then a flush; the request completes when both the
 *           flush and the write's release have happened.
 *   read    bs3_read(): at once from memory, cache or zeros, or async.
 *   flush   bs3_flush(): every earlier write stored and still the owner.
 *   discard, write-zeroes   bs3_discard() (the map only, logged).
 *
 * A write the engine will never store (status < 0 at release: fenced by a
 * newer writer, or a permanent failure) is released all the same: keeping
 * it would only fill the log and stall every writer.  It is not lost
 * silently: the engine fails every later flush (-ESTALE/-EIO), which the
 * kernel reports as EIO to fsync() and the file system.
 *
 * The device is always write-back and, by default, recoverable; its size
 * and block size come from the volume (`buse bs3 create`).
 *
 * The volume is opened twice: read-only by bs3_inspect() in the tool (its
 * geometry, and errors where the user sees them), then for real in the
 * serving process by serve_init (the engine's threads would not survive the
 * fork into a daemon).  A stats thread writes bs3_get_stats() to
 * /run/buse/bs3-N.json every second for `buse info N`.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../bs3/bs3.h"
#include "../tool/bs3_tool.h"
#include "../tool/drivers.h"
#include "../tool/size.h"

struct bs3_dev {
	struct bs3_target target;
	struct bs3_opts opts;
	struct bs3_geometry geo;
	char *url;
	struct bs3_vol *vol;

	/* Requests the engine still has a callback for; shutdown waits. */
	pthread_mutex_t lock;
	pthread_cond_t idle;
	uint64_t pending;
	bool warned; /* a write was never stored: said once */

	/* The stats file. */
	pthread_t stats_thread;
	bool stats_running;
	bool stop;
	uint32_t dev_id;
};

/* A FUA write: done when both its release and the flush after it ran. */
struct bs3_fua {
	struct bs3_dev *dev;
	struct buse_req *req;
	int status;
	int left; /* callbacks still to come */
};

static void bs3_get(struct bs3_dev *dev)
{
	pthread_mutex_lock(&dev->lock);
	dev->pending++;
	pthread_mutex_unlock(&dev->lock);
}

static void bs3_put(struct bs3_dev *dev)
{
	pthread_mutex_lock(&dev->lock);
	if (!--dev->pending)
		pthread_cond_broadcast(&dev->idle);
	pthread_mutex_unlock(&dev->lock);
}

static void bs3_cb_begin(void *arg)
{
	buse_batch_begin();
}

static void bs3_cb_end(void *arg)
{
	buse_batch_end();
}

static void bs3_lost(struct bs3_dev *dev, int status)
{
	bool first;

	pthread_mutex_lock(&dev->lock);
	first = !dev->warned;
	dev->warned = true;
	pthread_mutex_unlock(&dev->lock);
	if (first)
		fprintf(stderr,
			"bs3: writes will never be stored (%s): later flushes "
			"fail with EIO\n",
			strerror(-status));
}

static void bs3_fua_step(struct bs3_fua *f, int status)
{
	struct bs3_dev *dev = f->dev;
	int left;

	pthread_mutex_lock(&dev->lock);
	if (status < 0 && !f->status)
		f->status = -EIO;
	left = --f->left;
	pthread_mutex_unlock(&dev->lock);
	if (left)
		return;
	buse_complete(f->req, f->status);
	free(f);
	bs3_put(dev);
}

static void bs3_fua_released(void *arg, int status)
{
	struct bs3_fua *f = arg;

	if (status < 0)
		bs3_lost(f->dev, status);
	bs3_fua_step(f, status);
}

static void bs3_fua_flushed(void *arg, int status)
{
	bs3_fua_step(arg, status);
}

/* Plain writes: a small context so the release can find the device. */
struct bs3_wr {
	struct bs3_dev *dev;
	struct buse_req *req;
};

static void bs3_wr_released(void *arg, int status)
{
	struct bs3_wr *w = arg;
	struct bs3_dev *dev = w->dev;

	if (status < 0)
		bs3_lost(dev, status);
	buse_release(w->req);
	free(w);
	bs3_put(dev);
}

static int bs3_dev_write(void *priv, struct buse_req *req, const void *buf,
			 uint32_t len, uint64_t off, unsigned flags)
{
	struct bs3_dev *dev = priv;
	struct bs3_fua *f;
	struct bs3_wr *w;
	int ret;

	if (!(flags & BUSE_FUA)) {
		w = malloc(sizeof(*w));
		if (!w)
			return -ENOMEM;
		w->dev = dev;
		w->req = req;
		bs3_get(dev);
		ret = bs3_write(dev->vol, off, len, buf, bs3_wr_released, w);
		if (ret < 0) {
			free(w);
			bs3_put(dev);
			return -EIO;
		}
		return BUSE_RETAIN;
	}

	/* FUA: not applied until durable (BUSE_RETAIN would mean 0 here). */
	f = calloc(1, sizeof(*f));
	if (!f)
		return -ENOMEM;
	f->dev = dev;
	f->req = req;
	f->left = 2;
	bs3_get(dev);
	ret = bs3_write(dev->vol, off, len, buf, bs3_fua_released, f);
	if (ret < 0) {
		free(f);
		bs3_put(dev);
		return -EIO;
	}
	ret = bs3_flush(dev->vol, bs3_fua_flushed, f);
	if (ret < 0)
		bs3_fua_step(f, ret); /* the release still comes */
	return BUSE_ASYNC;
}

/* Completes a request and drops the device's count of pending ones. */
struct bs3_op {
	struct bs3_dev *dev;
	struct buse_req *req;
};

static void bs3_op_done(void *arg, int status)
{
	struct bs3_op *op = arg;
	struct bs3_dev *dev = op->dev;

	buse_complete(op->req, status < 0 ? -EIO : 0);
	free(op);
	bs3_put(dev);
}

static struct bs3_op *bs3_op_new(struct bs3_dev *dev, struct buse_req *req)
{
	struct bs3_op *op = malloc(sizeof(*op));

	if (op) {
		op->dev = dev;
		op->req = req;
		bs3_get(dev);
	}
	return op;
}

static int bs3_op_ret(struct bs3_op *op, int ret)
{
	struct bs3_dev *dev = op->dev;

	if (ret == BS3_PENDING)
		return BUSE_ASYNC;
	free(op);
	bs3_put(dev);
	return ret < 0 ? -EIO : 0;
}

static int bs3_dev_read(void *priv, struct buse_req *req, void *buf,
			uint32_t len, uint64_t off)
{
	struct bs3_dev *dev = priv;
	struct bs3_op *op = bs3_op_new(dev, req);

	if (!op)
		return -ENOMEM;
	return bs3_op_ret(op, bs3_read(dev->vol, off, len, buf, bs3_op_done,
				       op));
}

static int bs3_dev_flush(void *priv, struct buse_req *req)
{
	struct bs3_dev *dev = priv;
	struct bs3_op *op = bs3_op_new(dev, req);

	if (!op)
		return -ENOMEM;
	return bs3_op_ret(op, bs3_flush(dev->vol, bs3_op_done, op));
}

static int bs3_dev_discard(void *priv, struct buse_req *req, uint32_t len,
			   uint64_t off)
{
	struct bs3_dev *dev = priv;
	struct bs3_op *op = bs3_op_new(dev, req);

	if (!op)
		return -ENOMEM;
	return bs3_op_ret(op, bs3_discard(dev->vol, off, len, bs3_op_done,
					  op));
}

static int bs3_dev_write_zeroes(void *priv, struct buse_req *req, uint32_t len,
				uint64_t off, unsigned flags)
{
	/* Unwritten ranges read as zeros: unmapped or not, the same. */
	return bs3_dev_discard(priv, req, len, off);
}

/*
 * A queue is stopping: store everything it applied, and wait for every
 * callback the engine still owes, so none runs after buse_run() returned
 * (a request handle is only valid until then).
 */
static void bs3_queue_exit(void *priv, unsigned qid)
{
	struct bs3_dev *dev = priv;
	int ret;

	if (!dev->vol)
		return;
	ret = bs3_flush_sync(dev->vol);
	if (ret < 0)
		fprintf(stderr, "bs3: queue %u: final flush: %s\n", qid,
			strerror(-ret));
	pthread_mutex_lock(&dev->lock);
	while (dev->pending)
		pthread_cond_wait(&dev->idle, &dev->lock);
	pthread_mutex_unlock(&dev->lock);
}

static void *bs3_stats_main(void *arg)
{
	struct bs3_dev *dev = arg;
	struct timespec until;
	struct bs3_stats st;
	bool warned = false;
	int ret;

	pthread_mutex_lock(&dev->lock);
	while (!dev->stop) {
		pthread_mutex_unlock(&dev->lock);
		bs3_get_stats(dev->vol, &st);
		ret = bs3_stats_write(dev->dev_id, dev->url, &dev->geo, &st);
		if (ret < 0 && !warned) {
			fprintf(stderr, "bs3: stats file: %s\n",
				strerror(-ret));
			warned = true;
		}
		pthread_mutex_lock(&dev->lock);
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec++;
		while (!dev->stop &&
		       pthread_cond_timedwait(&dev->idle, &dev->lock, &until) !=
			       ETIMEDOUT)
			;
	}
	pthread_mutex_unlock(&dev->lock);
	return NULL;
}

static void bs3_started(void *priv, uint32_t dev_id)
{
	struct bs3_dev *dev = priv;

	dev->dev_id = dev_id;
	if (!dev->vol)
		return;
	if (!pthread_create(&dev->stats_thread, NULL, bs3_stats_main, dev))
		dev->stats_running = true;
}

static void bs3_progress(void *arg, const char *line)
{
	fprintf(stderr, "bs3: %s\n", line);
}

/* In the serving process, before buse_run(): attach for real. */
static int bs3_serve_init(void *priv, char *err, size_t errlen)
{
	struct bs3_dev *dev = priv;
	const struct bs3_geometry *g;
	int ret;

	ret = bs3_open(&dev->opts, &dev->vol, err, errlen);
	if (ret)
		return ret < 0 ? ret : -EIO;
	g = bs3_geometry(dev->vol);
	if (g->size != dev->geo.size || g->block_size != dev->geo.block_size) {
		snprintf(err, errlen, "%s changed while attaching", dev->url);
		bs3_close(dev->vol);
		dev->vol = NULL;
		return -ESTALE;
	}
	dev->geo = *g;
	return 0;
}

static void bs3_cleanup(void *priv)
{
	struct bs3_dev *dev = priv;
	int ret;

	if (dev->stats_running) {
		pthread_mutex_lock(&dev->lock);
		dev->stop = true;
		pthread_cond_broadcast(&dev->idle);
		pthread_mutex_unlock(&dev->lock);
		pthread_join(dev->stats_thread, NULL);
		bs3_stats_remove(dev->dev_id);
	}
	if (dev->vol) {
		ret = bs3_close(dev->vol);
		if (ret < 0)
			fprintf(stderr, "bs3: detach: %s\n", strerror(-ret));
		else
			fprintf(stderr, "bs3: %s detached, everything stored\n",
				dev->url);
	}
	bs3_target_free(&dev->target);
	free(dev->url);
	pthread_mutex_destroy(&dev->lock);
	pthread_cond_destroy(&dev->idle);
	free(dev);
}

enum {
	O_ENDPOINT = 1,
	O_CA,
	O_CACHE_DIR,
	O_CACHE_SIZE,
	O_DIRTY,
	O_CONN,
	O_NOREC,
	O_NOGC,
};

static int bs3_size_opt(const char *name, const char *val, uint64_t *out)
{
	if (!parse_size(val, out))
		return 0;
	fprintf(stderr, "bs3: --%s: invalid size '%s'\n", name, val);
	return -EINVAL;
}

static int bs3_parse(int argc, char **argv, struct buse_params *p, void **priv)
{
	static const struct option opts[] = {
		{"endpoint", required_argument, NULL, O_ENDPOINT},
		{"ca-file", required_argument, NULL, O_CA},
		{"cache-dir", required_argument, NULL, O_CACHE_DIR},
		{"cache-size", required_argument, NULL, O_CACHE_SIZE},
		{"dirty-limit", required_argument, NULL, O_DIRTY},
		{"connections", required_argument, NULL, O_CONN},
		{"no-recoverable", no_argument, NULL, O_NOREC},
		{"no-gc", no_argument, NULL, O_NOGC},
		{0},
	};
	const char *endpoint = NULL, *ca = NULL, *cache_dir = NULL;
	uint64_t cache_size = 0, dirty = 0;
	uint32_t conns = 0;
	bool norec = false, nogc = false;
	struct bs3_stats st;
	struct bs3_dev *dev;
	char err[512] = "";
	int c, ret;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case O_ENDPOINT:
			endpoint = optarg;
			break;
		case O_CA:
			ca = optarg;
			break;
		case O_CACHE_DIR:
			cache_dir = optarg;
			break;
		case O_CACHE_SIZE:
			if (bs3_size_opt("cache-size", optarg, &cache_size))
				return BUSE_DRV_USAGE;
			break;
		case O_DIRTY:
			if (bs3_size_opt("dirty-limit", optarg, &dirty))
				return BUSE_DRV_USAGE;
			break;
		case O_CONN:
			if (parse_u32(optarg, 1, 1024, &conns)) {
				fprintf(stderr,
					"bs3: --connections: want 1 to 1024\n");
				return BUSE_DRV_USAGE;
			}
			break;
		case O_NOREC:
			norec = true;
			break;
		case O_NOGC:
			nogc = true;
			break;
		default:
			return BUSE_DRV_USAGE; /* getopt_long() said why */
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "bs3: give the volume: buse add bs3 "
				"s3://BUCKET/VOLUME (see buse help bs3)\n");
		return BUSE_DRV_USAGE;
	}
	if (optind + 1 < argc) {
		fprintf(stderr, "bs3: unexpected argument '%s'\n",
			argv[optind + 1]);
		return BUSE_DRV_USAGE;
	}
	if (cache_size && !cache_dir) {
		fprintf(stderr, "bs3: --cache-size needs --cache-dir\n");
		return BUSE_DRV_USAGE;
	}
	if (p->size && !p->recover) {
		fprintf(stderr, "bs3: the size is the volume's (set by `buse "
				"bs3 create`): drop --size\n");
		return BUSE_DRV_USAGE;
	}

	dev = calloc(1, sizeof(*dev));
	if (!dev)
		return -ENOMEM;
	pthread_mutex_init(&dev->lock, NULL);
	pthread_cond_init(&dev->idle, NULL);
	dev->url = strdup(argv[optind]);
	ret = dev->url ? bs3_target_init(&dev->target, &dev->opts, dev->url,
					 endpoint, ca, err, sizeof(err))
		       : -ENOMEM;
	if (!ret) {
		if (conns)
			dev->target.cfg.connections = conns;
		dev->opts.cache_dir = cache_dir;
		dev->opts.cache_size = cache_size;
		dev->opts.dirty_limit = dirty;
		dev->opts.no_gc = nogc;
		dev->opts.read_only = p->read_only;
		dev->opts.progress = bs3_progress;
		dev->opts.cb_begin = bs3_cb_begin;
		dev->opts.cb_end = bs3_cb_end;
		dev->opts.cb_arg = dev;
		/* Offline and read-only: the geometry, and every error now. */
		ret = bs3_inspect(&dev->opts, &dev->geo, &st, err,
				  sizeof(err));
	}
	if (ret) {
		fprintf(stderr, "bs3: %s\n", *err ? err : strerror(-ret));
		bs3_cleanup(dev);
		return ret < 0 ? ret : -EIO;
	}
	if (p->recover && p->size &&
	    (p->size != dev->geo.size ||
	     p->logical_block_size != dev->geo.block_size)) {
		fprintf(stderr,
			"bs3: %s is not the volume of buse%u (size or block "
			"size differ)\n",
			dev->url, p->dev_id);
		bs3_cleanup(dev);
		return -EINVAL;
	}
	p->size = dev->geo.size;
	p->logical_block_size = dev->geo.block_size;
	if (p->physical_block_size < dev->geo.block_size)
		p->physical_block_size = dev->geo.block_size;
	p->write_back = true;
	if (!norec)
		p->recoverable = true;
	*priv = dev;
	return 0;
}

static const char *bs3_backing(void *priv)
{
	return ((struct bs3_dev *)priv)->url;
}

static const struct buse_ops bs3_ops = {
	.read = bs3_dev_read,
	.write = bs3_dev_write,
	.flush = bs3_dev_flush,
	.discard = bs3_dev_discard,
	.write_zeroes = bs3_dev_write_zeroes,
	.queue_exit = bs3_queue_exit,
	.started = bs3_started,
};

const struct buse_driver bs3_driver = {
	.name = "bs3",
	.summary = "a disk in an S3 bucket (BS3: log-structured, crash-safe)",
	.usage = "s3://BUCKET/VOLUME  the volume (made by `buse bs3 create`)\n"
		 "--endpoint URL      S3 endpoint (default $AWS_ENDPOINT_URL)\n"
		 "--ca-file FILE      CA certificates for an https endpoint\n"
		 "--cache-dir DIR     local read cache\n"
		 "--cache-size SIZE   its limit (default 1G)\n"
		 "--dirty-limit SIZE  unstored data before writers wait "
		 "(default 256M)\n"
		 "--connections N     S3 requests in flight (default 16)\n"
		 "--no-recoverable    a daemon death fails I/O and loses "
		 "unflushed writes\n"
		 "                    (default: recoverable, `buse recover` "
		 "loses nothing)\n"
		 "--no-gc             no background garbage collection\n"
		 "Always write-back; size and block size are the volume's.\n"
		 "Credentials: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or the\n"
		 "shared credentials file, never the command line.\n",
	.parse = bs3_parse,
	.serve_init = bs3_serve_init,
	.backing = bs3_backing,
	.cleanup = bs3_cleanup,
	.ops = &bs3_ops,
};
