// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * ram: a sparse disk in memory.  The disk is cut into 64 KiB chunks that are
 * allocated on first write; a chunk never written reads as zeros, and
 * discard or write-zeroes (without NOUNMAP) of a whole chunk frees it again.
 *
 * Queue threads run concurrently, and a discard on one queue may free a
 * chunk that a read on another is copying, so every access to a chunk holds
 * its lock.  The locks are striped (chunk index modulo RAM_LOCKS) to keep
 * memory small while unrelated chunks rarely share a lock.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../tool/drivers.h"

#define RAM_CHUNK (64U << 10)
#define RAM_LOCKS 1024

struct ram_lock {
	_Alignas(64) pthread_mutex_t mutex; /* one per cache line */
};

struct ram_dev {
	uint64_t nr_chunks;
	/*
	 * Indexed by offset / RAM_CHUNK; NULL: all zeros.  Even for a large
	 * disk this is cheap: calloc() maps it lazily, so only the parts of
	 * the table that were written cost memory.
	 */
	char **chunks;
	/* Test option: writes on queue delay_queue sleep delay_us first. */
	unsigned delay_queue;
	unsigned delay_us;
	struct ram_lock locks[RAM_LOCKS];
};

static pthread_mutex_t *ram_lock(struct ram_dev *ram, uint64_t idx)
{
	return &ram->locks[idx % RAM_LOCKS].mutex;
}

/* The part of [off, off + len) that lies in off's chunk. */
static uint32_t ram_piece(uint64_t off, uint32_t len)
{
	uint32_t left = RAM_CHUNK - off % RAM_CHUNK;

	return len < left ? len : left;
}

static int ram_read(void *priv, struct buse_req *req, void *buf, uint32_t len,
		    uint64_t off)
{
	struct ram_dev *ram = priv;
	char *dst = buf;

	while (len) {
		uint64_t idx = off / RAM_CHUNK;
		uint32_t in = off % RAM_CHUNK, n = ram_piece(off, len);

		pthread_mutex_lock(ram_lock(ram, idx));
		if (ram->chunks[idx])
			memcpy(dst, ram->chunks[idx] + in, n);
		else
			memset(dst, 0, n);
		pthread_mutex_unlock(ram_lock(ram, idx));
		dst += n;
		off += n;
		len -= n;
	}
	return 0;
}

static int ram_write(void *priv, struct buse_req *req, const void *buf,
		     uint32_t len, uint64_t off, unsigned flags)
{
	struct ram_dev *ram = priv;
	const char *src = buf;

	if (ram->delay_us && buse_req_queue(req) == ram->delay_queue)
		usleep(ram->delay_us);
	while (len) {
		uint64_t idx = off / RAM_CHUNK;
		uint32_t in = off % RAM_CHUNK, n = ram_piece(off, len);

		pthread_mutex_lock(ram_lock(ram, idx));
		if (!ram->chunks[idx])
			ram->chunks[idx] = calloc(1, RAM_CHUNK);
		if (!ram->chunks[idx]) {
			pthread_mutex_unlock(ram_lock(ram, idx));
			return -ENOSPC;
		}
		memcpy(ram->chunks[idx] + in, src, n);
		pthread_mutex_unlock(ram_lock(ram, idx));
		src += n;
		off += n;
		len -= n;
	}
	return 0;
}

/* Memory is as durable as it gets: nothing to do. */
static int ram_flush(void *priv, struct buse_req *req)
{
	return 0;
}

static void ram_zero(struct ram_dev *ram, uint32_t len, uint64_t off,
		     unsigned flags)
{
	while (len) {
		uint64_t idx = off / RAM_CHUNK;
		uint32_t in = off % RAM_CHUNK, n = ram_piece(off, len);

		pthread_mutex_lock(ram_lock(ram, idx));
		if (!ram->chunks[idx]) {
			/* already zeros */
		} else if (n == RAM_CHUNK && !(flags & BUSE_NOUNMAP)) {
			free(ram->chunks[idx]);
			ram->chunks[idx] = NULL;
		} else {
			memset(ram->chunks[idx] + in, 0, n);
		}
		pthread_mutex_unlock(ram_lock(ram, idx));
		off += n;
		len -= n;
	}
}

/* Discarded blocks read back as zeros, which filesystems may rely on. */
static int ram_discard(void *priv, struct buse_req *req, uint32_t len,
		       uint64_t off)
{
	ram_zero(priv, len, off, 0);
	return 0;
}

static int ram_write_zeroes(void *priv, struct buse_req *req, uint32_t len,
			    uint64_t off, unsigned flags)
{
	ram_zero(priv, len, off, flags);
	return 0;
}

static void ram_cleanup(void *priv)
{
	struct ram_dev *ram = priv;
	uint64_t i;
	unsigned l;

	for (i = 0; i < ram->nr_chunks; i++)
		free(ram->chunks[i]);
	for (l = 0; l < RAM_LOCKS; l++)
		pthread_mutex_destroy(&ram->locks[l].mutex);
	free(ram->chunks);
	free(ram);
}

static int ram_parse(int argc, char **argv, struct buse_params *p, void **priv)
{
	static const struct option opts[] = {
		{"delay-queue", required_argument, NULL, 'd'},
		{0},
	};
	unsigned dq = 0, dus = 0;
	struct ram_dev *ram;
	unsigned l;
	int c;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c != 'd' || sscanf(optarg, "%u:%u", &dq, &dus) != 2) {
			fprintf(stderr, "ram: takes no options\n");
			return BUSE_DRV_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "ram: unknown option '%s'\n", argv[optind]);
		return BUSE_DRV_USAGE;
	}
	if (!p->size) {
		fprintf(stderr, "ram: --size is required\n");
		return BUSE_DRV_USAGE;
	}
	/* Aligned, so the locks really sit on cache lines of their own. */
	ram = aligned_alloc(_Alignof(struct ram_dev), sizeof(*ram));
	if (!ram)
		goto nomem;
	memset(ram, 0, sizeof(*ram));
	ram->delay_queue = dq;
	ram->delay_us = dus;
	ram->nr_chunks = (p->size + RAM_CHUNK - 1) / RAM_CHUNK;
	ram->chunks = calloc(ram->nr_chunks, sizeof(*ram->chunks));
	if (!ram->chunks) {
		free(ram);
		goto nomem;
	}
	for (l = 0; l < RAM_LOCKS; l++)
		pthread_mutex_init(&ram->locks[l].mutex, NULL);
	*priv = ram;
	return 0;
nomem:
	fprintf(stderr, "ram: cannot allocate the chunk table: %s\n",
		strerror(ENOMEM));
	return -ENOMEM;
}

static const struct buse_ops ram_ops = {
	.read = ram_read,
	.write = ram_write,
	.flush = ram_flush,
	.discard = ram_discard,
	.write_zeroes = ram_write_zeroes,
};

const struct buse_driver ram_driver = {
	.name = "ram",
	.summary = "sparse disk in memory, allocated in 64K chunks on write",
	/* --delay-queue Q:USEC (writes on queue Q sleep first) is for tests. */
	.usage = NULL,
	.parse = ram_parse,
	.data_in_daemon = true,
	.cleanup = ram_cleanup,
	.ops = &ram_ops,
};
