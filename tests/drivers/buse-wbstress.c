// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * buse-wbstress: ordering stress for write-back mode.
 *
 *   buse-wbstress DEV [--seconds N] [--blocks N] [--writers N] [--readers N]
 *
 * Writers and readers, pinned round-robin to the CPUs (so to different
 * hardware queues), share a small range of 4 KiB blocks.  Each write covers
 * 1..8 blocks, stamps every block with (block, version) and, once pwrite()
 * returned, records that version as the block's latest; writes to a block
 * are serialised, so "latest" is well defined.  Checks:
 *
 * - read after write: a read started after a write completed must return
 *   that version or a newer one;
 * - write after write: after the run and an fsync(), every block must hold
 *   exactly its latest version;
 * - every block read back names itself (no misplaced data).
 *
 * Prints the counts; exits 0 if all held, 2 on ordering violations, 1 on
 * I/O errors or bad usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BLK	 4096
#define MAX_SPAN 8
#define MAGIC	 0x42555345574253ULL /* "BUSEWBS" */

struct stamp {
	uint64_t magic;
	uint64_t block;
	uint64_t version;
};

static int fd;
static unsigned nblocks = 256;
static unsigned seconds = 10;
static atomic_bool stop;
static atomic_uint_fast64_t version;
static atomic_uint_fast64_t *latest; /* per block */
static pthread_mutex_t *block_lock;
static atomic_uint_fast64_t nwrites, nreads, raw_bad, corrupt, io_errors;

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void pin(unsigned i)
{
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(i % (ncpu > 0 ? ncpu : 1), &set);
	pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

/* Check one block read back; returns its version. */
static uint64_t check_block(const char *buf, uint64_t block)
{
	const struct stamp *st = (const struct stamp *)buf;

	if (st->magic == 0 && st->version == 0)
		return 0; /* never written */
	if (st->magic != MAGIC || st->block != block) {
		atomic_fetch_add(&corrupt, 1);
		return 0;
	}
	return st->version;
}

static void *writer(void *arg)
{
	uintptr_t id = (uintptr_t)arg;
	uint64_t seed = 0x9e3779b97f4a7c15ULL * (id + 1);
	char *buf;
	unsigned i;

	pin(id);
	if (posix_memalign((void **)&buf, BLK, BLK * MAX_SPAN))
		return NULL;
	memset(buf, 0, BLK * MAX_SPAN);
	while (!atomic_load(&stop)) {
		unsigned n = 1 + rnd(&seed) % MAX_SPAN;
		unsigned b = rnd(&seed) % (nblocks - n + 1);
		uint64_t v;

		for (i = 0; i < n; i++)
			pthread_mutex_lock(&block_lock[b + i]);
		v = atomic_fetch_add(&version, 1) + 1;
		for (i = 0; i < n; i++) {
			struct stamp *st = (struct stamp *)(buf + i * BLK);

			st->magic = MAGIC;
			st->block = b + i;
			st->version = v;
		}
		if (pwrite(fd, buf, (size_t)n * BLK, (off_t)b * BLK) !=
		    (ssize_t)n * BLK) {
			atomic_fetch_add(&io_errors, 1);
		} else {
			for (i = 0; i < n; i++)
				atomic_store(&latest[b + i], v);
			atomic_fetch_add(&nwrites, 1);
		}
		for (i = n; i-- > 0;)
			pthread_mutex_unlock(&block_lock[b + i]);
	}
	free(buf);
	return NULL;
}

static void *reader(void *arg)
{
	uintptr_t id = (uintptr_t)arg;
	uint64_t seed = 0x2545f4914f6cdd1dULL * (id + 7);
	char *buf;

	pin(id);
	if (posix_memalign((void **)&buf, BLK, BLK))
		return NULL;
	while (!atomic_load(&stop)) {
		unsigned b = rnd(&seed) % nblocks;
		uint64_t before = atomic_load(&latest[b]);

		if (pread(fd, buf, BLK, (off_t)b * BLK) != BLK) {
			atomic_fetch_add(&io_errors, 1);
			continue;
		}
		if (check_block(buf, b) < before)
			atomic_fetch_add(&raw_bad, 1);
		atomic_fetch_add(&nreads, 1);
	}
	free(buf);
	return NULL;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"seconds", required_argument, NULL, 's'},
		{"blocks", required_argument, NULL, 'b'},
		{"writers", required_argument, NULL, 'w'},
		{"readers", required_argument, NULL, 'r'},
		{0},
	};
	unsigned writers = 2, readers = 2, i, waw_bad = 0;
	pthread_t th[64];
	unsigned nth = 0;
	char *buf;
	int c;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			seconds = atoi(optarg);
			break;
		case 'b':
			nblocks = atoi(optarg);
			break;
		case 'w':
			writers = atoi(optarg);
			break;
		case 'r':
			readers = atoi(optarg);
			break;
		default:
			goto usage;
		}
	}
	if (optind + 1 != argc || nblocks < MAX_SPAN || !writers ||
	    writers + readers > 64)
		goto usage;
	fd = open(argv[optind], O_RDWR | O_DIRECT);
	if (fd < 0) {
		perror(argv[optind]);
		return 1;
	}
	latest = calloc(nblocks, sizeof(*latest));
	block_lock = calloc(nblocks, sizeof(*block_lock));
	if (!latest || !block_lock || posix_memalign((void **)&buf, BLK, BLK))
		return 1;
	for (i = 0; i < nblocks; i++)
		pthread_mutex_init(&block_lock[i], NULL);
	/* Start from zeros, so that "never written" is version 0. */
	memset(buf, 0, BLK);
	for (i = 0; i < nblocks; i++)
		if (pwrite(fd, buf, BLK, (off_t)i * BLK) != BLK)
			return perror("zero"), 1;
	if (fsync(fd))
		return perror("fsync"), 1;

	for (i = 0; i < writers; i++)
		pthread_create(&th[nth++], NULL, writer, (void *)(uintptr_t)i);
	/* Readers start on the CPU after the writers': other queues. */
	for (i = 0; i < readers; i++)
		pthread_create(&th[nth++], NULL, reader,
			       (void *)(uintptr_t)(i + 1));
	sleep(seconds);
	atomic_store(&stop, true);
	for (i = 0; i < nth; i++)
		pthread_join(th[i], NULL);

	/* Every write has completed: after a flush, the last one must win. */
	if (fsync(fd))
		return perror("fsync"), 1;
	for (i = 0; i < nblocks; i++) {
		if (pread(fd, buf, BLK, (off_t)i * BLK) != BLK) {
			atomic_fetch_add(&io_errors, 1);
			continue;
		}
		if (check_block(buf, i) != atomic_load(&latest[i]))
			waw_bad++;
	}
	printf("writes %" PRIuFAST64 " reads %" PRIuFAST64
	       " raw_violations %" PRIuFAST64 " waw_violations %u"
	       " corrupt %" PRIuFAST64 " io_errors %" PRIuFAST64 "\n",
	       atomic_load(&nwrites), atomic_load(&nreads),
	       atomic_load(&raw_bad), waw_bad, atomic_load(&corrupt),
	       atomic_load(&io_errors));
	if (atomic_load(&io_errors) || !atomic_load(&nwrites))
		return 1;
	return atomic_load(&raw_bad) || waw_bad || atomic_load(&corrupt) ? 2
									 : 0;
usage:
	fprintf(stderr, "usage: buse-wbstress DEV [--seconds N] [--blocks N] "
			"[--writers N] [--readers N]\n");
	return 1;
}
