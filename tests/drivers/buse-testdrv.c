// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * buse-testdrv: a RAM disk with knobs for the guest tests, written against
 * libbuse alone (it shows the library works without the buse tool).
 *
 *   buse-testdrv [--size SIZE] [--block-size N] [--queues N] [--depth N]
 *                [--max-io BYTES] [--id N] [--read-only]
 *                [--fail-sector START:COUNT]... [--stats FILE]
 *                [--no-flush] [--no-discard] [--no-write-zeroes]
 *                [--recoverable] [--recovery-timeout S] [--recover ID]
 *                [--daemon] [--log FILE]
 *
 * It prints /dev/buseN once the disk is live; with --daemon it then leaves
 * a daemon behind and exits, so a shell test can write dev=$(buse-testdrv
 * --daemon).  SIGTERM or `buse del` ends it.
 *
 * --persist-delay MS --backing FILE: a driver that stores data "remotely":
 * every logged write is applied to the RAM image at once and retained
 * (BUSE_RETAIN); a persister thread writes its range of the RAM image into
 * FILE MS milliseconds later, in the order the writes were applied, and only
 * then releases it.  What reaches FILE is the range as it is then, this
 * write or a newer one applied on top: never older data than the write
 * released, and anything newer is itself retained and is persisted again
 * (or handed to the next daemon) later, so no per-write copy is needed.
 * FILE is read into RAM at start, so a recovered daemon starts from what
 * was persisted; the kernel hands it the unreleased rest.  A flush persists
 * everything applied.
 *
 * --persist-sync --backing FILE: the same driver not retaining: every write
 * is applied and written to FILE in its callback, then completed at once.
 * It does the retaining driver's persisting work on the plain write-back
 * path, the baseline the retained rows of the benchmark are measured by.
 *
 * --recover ID takes over the orphaned recoverable device ID (its geometry
 * comes from the kernel; --size must still be at least the device's).
 *
 * --stall-sector: reads and writes touching those sectors are not
 * completed, so the kernel's request timeout (--timeout) must end them;
 * SIGUSR1 to the daemon completes every request stalled so far (reads get
 * the data, writes are applied).
 * --slow-sector START:COUNT --slow-ms MS: reads and writes touching those
 * sectors complete MS milliseconds late (the queue thread sleeps).
 * --fail-sector: reads and writes touching those 512-byte sectors fail with
 * EIO.  --stats: FILE holds the counters ("reads N" lines); it is rewritten
 * atomically at start, after every flush, discard, write-zeroes, FUA write
 * and failed request, after every 1000 requests and at exit.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <buse/buse.h>

#define MAX_FAIL 64

struct range {
	uint64_t start, count; /* 512-byte sectors */
};

enum counter {
	READS,
	WRITES,
	FLUSHES,
	FUA_WRITES,
	DISCARDS,
	WRITE_ZEROES,
	ERRORS,
	REPLAYED_APPLIED,
	MAX_SLOW_WRITES, /* --delay-us: most writes sleeping at once */
	NR_COUNTERS
};

static const char *const counter_names[NR_COUNTERS] = {
	"reads",      "writes",		  "flushes",
	"fua_writes", "discards",	  "write_zeroes",
	"errors",     "replayed_applied", "max_slow_writes",
};

/* Retained writes persisted, then released, together. */
#define PERSIST_BATCH 256

/* A retained write waiting to be persisted. */
struct pending {
	struct pending *next;
	struct buse_req *req;
	uint64_t off;
	uint32_t len;
	struct timespec due;
};

/* A stalled request, completed by SIGUSR1. */
struct stalled {
	struct stalled *next;
	struct buse_req *req;
	void *buf;
	uint32_t len;
	uint64_t off;
	bool write;
};

struct testdrv {
	char *mem;
	unsigned persist_ms;
	bool persist_sync; /* --persist-sync: persist in the callback */
	const char *backing;
	int backing_fd;
	pthread_mutex_t plock;
	pthread_cond_t pcond;
	struct pending *phead, **ptail;
	uint64_t pending; /* queued, not yet persisted and released */
	bool persisting;  /* a batch is being persisted outside plock */
	struct range fail[MAX_FAIL];
	unsigned nr_fail;
	struct range stall[MAX_FAIL]; /* never completed: for timeouts */
	unsigned nr_stall;
	pthread_mutex_t stall_lock;
	struct stalled *stalled;
	struct range slow[MAX_FAIL]; /* completed late */
	unsigned nr_slow;
	unsigned slow_ms;
	unsigned delay_us; /* every write sleeps this long: a slow driver */
	atomic_uint_fast64_t slow_inside; /* writes sleeping now */
	const char *stats;
	pthread_mutex_t stats_lock; /* one writer of FILE.tmp at a time */
	atomic_uint_fast64_t count[NR_COUNTERS];
	atomic_uint_fast64_t ops;
	int notify_fd; /* --daemon: pipe to the waiting parent */
};

static void write_stats(struct testdrv *t)
{
	char tmp[4096];
	FILE *f;
	int i;

	if (!t->stats)
		return;
	snprintf(tmp, sizeof(tmp), "%s.tmp", t->stats);
	pthread_mutex_lock(&t->stats_lock);
	f = fopen(tmp, "w");
	if (f) {
		for (i = 0; i < NR_COUNTERS; i++)
			fprintf(f, "%s %" PRIuFAST64 "\n", counter_names[i],
				atomic_load(&t->count[i]));
		/* Readers see the old file or the new one, never half. */
		if (fclose(f) || rename(tmp, t->stats))
			fprintf(stderr, "testdrv: %s: %s\n", t->stats,
				strerror(errno));
	} else {
		fprintf(stderr, "testdrv: %s: %s\n", tmp, strerror(errno));
	}
	pthread_mutex_unlock(&t->stats_lock);
}

/* Count one request; `always` requests refresh the stats file at once. */
static void count(struct testdrv *t, enum counter c, bool always)
{
	atomic_fetch_add(&t->count[c], 1);
	if ((atomic_fetch_add(&t->ops, 1) + 1) % 1000 == 0 || always)
		write_stats(t);
}

static bool in_ranges(const struct range *r, unsigned n, uint32_t len,
		      uint64_t off)
{
	uint64_t first = off / 512, end = (off + len) / 512;
	unsigned i;

	for (i = 0; i < n; i++)
		if (first < r[i].start + r[i].count && r[i].start < end)
			return true;
	return false;
}

static bool must_fail(struct testdrv *t, uint32_t len, uint64_t off)
{
	return in_ranges(t->fail, t->nr_fail, len, off);
}

/* A request the driver "forgets": only the kernel's timeout ends it. */
static bool must_stall(struct testdrv *t, uint32_t len, uint64_t off)
{
	return in_ranges(t->stall, t->nr_stall, len, off);
}

/* Keep a stalled request for SIGUSR1; false if out of memory. */
static bool stall(struct testdrv *t, struct buse_req *req, void *buf,
		  uint32_t len, uint64_t off, bool write)
{
	struct stalled *s = malloc(sizeof(*s));

	if (!s)
		return false;
	s->req = req;
	s->buf = buf;
	s->len = len;
	s->off = off;
	s->write = write;
	pthread_mutex_lock(&t->stall_lock);
	s->next = t->stalled;
	t->stalled = s;
	pthread_mutex_unlock(&t->stall_lock);
	return true;
}

/* SIGUSR1: complete every stalled request. */
static void *unstaller(void *arg)
{
	struct testdrv *t = arg;
	sigset_t set;
	int sig;

	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	for (;;) {
		struct stalled *s, *next;

		if (sigwait(&set, &sig))
			continue;
		pthread_mutex_lock(&t->stall_lock);
		s = t->stalled;
		t->stalled = NULL;
		pthread_mutex_unlock(&t->stall_lock);
		for (; s; s = next) {
			next = s->next;
			if (s->write)
				memcpy(t->mem + s->off, s->buf, s->len);
			else
				memcpy(s->buf, t->mem + s->off, s->len);
			count(t, s->write ? WRITES : READS, true);
			buse_complete(s->req, 0);
			free(s);
		}
	}
	return NULL;
}

static void slow_down(struct testdrv *t, uint32_t len, uint64_t off)
{
	if (in_ranges(t->slow, t->nr_slow, len, off))
		usleep((useconds_t)t->slow_ms * 1000);
}

static int td_read(void *priv, struct buse_req *req, void *buf, uint32_t len,
		   uint64_t off)
{
	struct testdrv *t = priv;

	if (must_stall(t, len, off))
		return stall(t, req, buf, len, off, false) ? BUSE_ASYNC :
							     -ENOMEM;
	slow_down(t, len, off);
	if (must_fail(t, len, off)) {
		count(t, ERRORS, true);
		return -EIO;
	}
	memcpy(buf, t->mem + off, len);
	count(t, READS, false);
	return 0;
}

static void persist_one(struct testdrv *t, struct pending *p)
{
	if (pwrite(t->backing_fd, t->mem + p->off, p->len, (off_t)p->off) !=
	    (ssize_t)p->len)
		fprintf(stderr, "testdrv: persist: %s\n", strerror(errno));
	buse_release(p->req);
	free(p);
}

static bool is_due(const struct pending *p, const struct timespec *now)
{
	return now->tv_sec > p->due.tv_sec ||
	       (now->tv_sec == p->due.tv_sec && now->tv_nsec >= p->due.tv_nsec);
}

/*
 * Persist and release, oldest first, a batch taken off the queue with
 * t->persisting set (so a flush waits for it rather than persisting newer
 * writes first).  Outside the lock, so writers keep queueing; the releases
 * go to the kernel together at buse_batch_end().
 */
static void persist_batch(struct testdrv *t, struct pending *p, unsigned n)
{
	pthread_mutex_unlock(&t->plock);
	buse_batch_begin();
	while (p) {
		struct pending *next = p->next;

		persist_one(t, p);
		p = next;
	}
	buse_batch_end();
	pthread_mutex_lock(&t->plock);
	t->pending -= n;
	t->persisting = false;
	pthread_cond_broadcast(&t->pcond);
}

/* Take every due write (at most @max) off the queue; their count in @n. */
static struct pending *take_due(struct testdrv *t, const struct timespec *now,
				unsigned max, unsigned *n)
{
	struct pending *first = t->phead, **end = &t->phead;

	*n = 0;
	while (*end && *n < max && (!now || is_due(*end, now))) {
		end = &(*end)->next;
		(*n)++;
	}
	if (!*n)
		return NULL;
	t->phead = *end;
	if (!t->phead)
		t->ptail = &t->phead;
	*end = NULL;
	t->persisting = true;
	return first;
}

/* Persist every retained write once its delay is up, oldest first. */
static void *persister(void *arg)
{
	struct testdrv *t = arg;
	struct timespec now;

	pthread_mutex_lock(&t->plock);
	for (;;) {
		struct pending *batch;
		unsigned n;

		if (!t->phead || t->persisting) {
			pthread_cond_wait(&t->pcond, &t->plock);
			continue;
		}
		clock_gettime(CLOCK_MONOTONIC, &now);
		batch = take_due(t, &now, PERSIST_BATCH, &n);
		if (!batch) {
			pthread_cond_timedwait(&t->pcond, &t->plock,
					       &t->phead->due);
			continue;
		}
		persist_batch(t, batch, n);
	}
	return NULL;
}

/* Queue an applied write for persisting; false if out of memory. */
static bool retain(struct testdrv *t, struct buse_req *req, uint32_t len,
		   uint64_t off)
{
	struct pending *p = malloc(sizeof(*p));

	if (!p)
		return false;
	p->next = NULL;
	p->req = req;
	p->off = off;
	p->len = len;
	clock_gettime(CLOCK_MONOTONIC, &p->due);
	p->due.tv_sec += t->persist_ms / 1000;
	p->due.tv_nsec += (long)(t->persist_ms % 1000) * 1000000;
	if (p->due.tv_nsec >= 1000000000) {
		p->due.tv_sec++;
		p->due.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&t->plock);
	/*
	 * Only an empty queue leaves the persister waiting with no deadline;
	 * else it sleeps until the head is due, which is before this write.
	 */
	if (!t->phead)
		pthread_cond_broadcast(&t->pcond);
	*t->ptail = p;
	t->ptail = &p->next;
	t->pending++;
	pthread_mutex_unlock(&t->plock);
	return true;
}

static int td_write(void *priv, struct buse_req *req, const void *buf,
		    uint32_t len, uint64_t off, unsigned flags)
{
	struct testdrv *t = priv;

	if (must_stall(t, len, off))
		return stall(t, req, (void *)buf, len, off, true) ?
			       BUSE_ASYNC : -ENOMEM;
	slow_down(t, len, off);
	if (must_fail(t, len, off)) {
		count(t, ERRORS, true);
		return -EIO;
	}
	if (t->delay_us) {
		uint_fast64_t n = atomic_fetch_add(&t->slow_inside, 1) + 1;
		uint_fast64_t most = atomic_load(&t->count[MAX_SLOW_WRITES]);

		while (n > most &&
		       !atomic_compare_exchange_weak(&t->count[MAX_SLOW_WRITES],
						     &most, n))
			;
		usleep(t->delay_us);
		atomic_fetch_sub(&t->slow_inside, 1);
	}
	memcpy(t->mem + off, buf, len);
	if (flags & BUSE_FUA)
		atomic_fetch_add(&t->count[FUA_WRITES], 1);
	/* FUA writes are rare and tests look for them: refresh at once. */
	count(t, WRITES, flags & BUSE_FUA);
	if (t->backing_fd >= 0) {
		/*
		 * Not logged (FUA, write-through), or not retaining: durable
		 * before completion.
		 */
		if (!buse_req_seq(req) || t->persist_sync) {
			if (pwrite(t->backing_fd, buf, len, (off_t)off) !=
			    (ssize_t)len)
				return -EIO;
			return 0;
		}
		if (buse_req_flags(req) & BUSE_REQ_APPLIED_BEFORE)
			count(t, REPLAYED_APPLIED, false);
		return retain(t, req, len, off) ? BUSE_RETAIN : -ENOMEM;
	}
	return 0;
}

static int td_flush(void *priv, struct buse_req *req)
{
	struct testdrv *t = priv;

	/* Everything applied before the flush must be durable now. */
	if (t->backing_fd >= 0) {
		pthread_mutex_lock(&t->plock);
		for (;;) {
			struct pending *batch;
			unsigned n;

			/* The persister's batch is older than the queue. */
			while (t->persisting)
				pthread_cond_wait(&t->pcond, &t->plock);
			batch = take_due(t, NULL, PERSIST_BATCH, &n);
			if (!batch)
				break;
			persist_batch(t, batch, n);
		}
		pthread_mutex_unlock(&t->plock);
	}
	count(t, FLUSHES, true);
	return 0;
}

static int td_discard(void *priv, struct buse_req *req, uint32_t len,
		      uint64_t off)
{
	struct testdrv *t = priv;

	memset(t->mem + off, 0, len); /* so tests can check for zeros */
	count(t, DISCARDS, true);
	return 0;
}

static int td_write_zeroes(void *priv, struct buse_req *req, uint32_t len,
			   uint64_t off, unsigned flags)
{
	struct testdrv *t = priv;

	memset(t->mem + off, 0, len);
	count(t, WRITE_ZEROES, true);
	return 0;
}

static bool wait_for_node(const char *path)
{
	struct stat st;
	int i;

	for (i = 0; i < 500; i++) {
		if (!stat(path, &st) && S_ISBLK(st.st_mode))
			return true;
		usleep(10000);
	}
	return false;
}

static void print_dev(uint32_t dev_id)
{
	char path[64];

	snprintf(path, sizeof(path), "/dev/%s%u", BUSE_DISK_NAME, dev_id);
	if (!wait_for_node(path))
		fprintf(stderr, "testdrv: %s did not appear\n", path);
	printf("%s\n", path);
	fflush(stdout);
}

static struct testdrv drv = {.notify_fd = -1};

static void td_started(void *priv, uint32_t dev_id)
{
	struct testdrv *t = priv;
	int32_t msg[2] = {0, (int32_t)dev_id};

	write_stats(t); /* so the file exists from the start */
	if (t->notify_fd < 0) {
		print_dev(dev_id);
		return;
	}
	if (write(t->notify_fd, msg, sizeof(msg)) < 0)
		fprintf(stderr, "testdrv: notify: %s\n", strerror(errno));
	close(t->notify_fd);
	t->notify_fd = -1;
}

/*
 * --daemon: the parent waits for the child's started hook (or its error),
 * prints the device and exits; the child goes on serving.  Returns in the
 * child only.
 */
static void daemonize(const char *log)
{
	int pfd[2], nullfd, logfd;
	int32_t msg[2];
	ssize_t n;
	pid_t pid;

	nullfd = open("/dev/null", O_RDWR);
	logfd = log ? open(log, O_WRONLY | O_CREAT | O_APPEND, 0644) : nullfd;
	if (nullfd < 0 || logfd < 0) {
		perror(log && nullfd >= 0 ? log : "/dev/null");
		exit(1);
	}
	if (pipe2(pfd, O_CLOEXEC) < 0) {
		perror("testdrv: pipe");
		exit(1);
	}
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		perror("testdrv: fork");
		exit(1);
	}
	if (!pid) {
		close(pfd[0]);
		drv.notify_fd = pfd[1];
		setsid();
		signal(SIGPIPE, SIG_IGN);
		dup2(nullfd, STDIN_FILENO);
		/* Not holding the test's stdout open: $(...) would hang. */
		dup2(logfd, STDOUT_FILENO);
		dup2(logfd, STDERR_FILENO);
		return;
	}
	close(pfd[1]);
	do
		n = read(pfd[0], msg, sizeof(msg));
	while (n < 0 && errno == EINTR);
	if (n == sizeof(msg) && !msg[0]) {
		print_dev((uint32_t)msg[1]);
		exit(0);
	}
	if (n == sizeof(msg))
		fprintf(stderr, "testdrv: cannot start: %s\n",
			strerror(-msg[0]));
	else
		fprintf(stderr, "testdrv: the daemon died before starting\n");
	waitpid(pid, NULL, 0);
	exit(1);
}

static uint64_t parse_num(const char *opt, const char *s, bool suffix)
{
	uint64_t v, shift = 0;
	char *end;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (suffix && *end && strchr("KMGT", *end) && end[1] == 0) {
		shift = 10 * (strchr("KMGT", *end) - "KMGT" + 1);
		end++;
	}
	if (errno || end == s || *end || *s == '-' || v > UINT64_MAX >> shift) {
		fprintf(stderr, "testdrv: --%s: bad number '%s'\n", opt, s);
		exit(1);
	}
	return v << shift;
}

/* START:COUNT, in 512-byte sectors, appended to r[*n]. */
static int parse_range(char *arg, struct range *r, unsigned *n)
{
	char *colon = strchr(arg, ':');

	if (*n == MAX_FAIL || !colon) {
		fprintf(stderr, "testdrv: want at most %d START:COUNT ranges\n",
			MAX_FAIL);
		return -1;
	}
	*colon = 0;
	r[*n].start = parse_num("sector", arg, false);
	r[*n].count = parse_num("sector", colon + 1, false);
	(*n)++;
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: buse-testdrv [--size SIZE] [--block-size N]\n"
		"         [--queues N] [--depth N] [--max-io BYTES] [--id N]\n"
		"         [--read-only]\n"
		"         [--fail-sector START:COUNT]... [--stall-sector "
		"START:COUNT]...\n"
		"         [--slow-sector START:COUNT]... [--slow-ms MS]\n"
		"         [--timeout SECONDS] [--stats FILE] [--write-back]\n"
		"         [--log-size BYTES] [--delay-us USEC]\n"
		"         [--no-flush] [--no-discard] [--no-write-zeroes]\n"
		"         [--recoverable] [--recovery-timeout SECONDS]\n"
		"         [--recover ID] [--backing FILE]\n"
		"         [--persist-delay MS | --persist-sync]\n"
		"         [--workers N]\n"
		"         [--daemon] [--log FILE]\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"size", required_argument, NULL, 's'},
		{"block-size", required_argument, NULL, 'b'},
		{"queues", required_argument, NULL, 'q'},
		{"depth", required_argument, NULL, 'd'},
		{"max-io", required_argument, NULL, 'm'},
		{"id", required_argument, NULL, 'i'},
		{"read-only", no_argument, NULL, 'r'},
		{"fail-sector", required_argument, NULL, 'f'},
		{"stall-sector", required_argument, NULL, 'x'},
		{"slow-sector", required_argument, NULL, 'y'},
		{"slow-ms", required_argument, NULL, 'Y'},
		{"timeout", required_argument, NULL, 't'},
		{"write-back", no_argument, NULL, 'W'},
		{"log-size", required_argument, NULL, 'L'},
		{"delay-us", required_argument, NULL, 'u'},
		{"stats", required_argument, NULL, 'S'},
		{"no-flush", no_argument, NULL, 'F'},
		{"no-discard", no_argument, NULL, 'D'},
		{"no-write-zeroes", no_argument, NULL, 'Z'},
		{"daemon", no_argument, NULL, 'B'},
		{"log", required_argument, NULL, 'l'},
		{"recoverable", no_argument, NULL, 'R'},
		{"recovery-timeout", required_argument, NULL, 'T'},
		{"recover", required_argument, NULL, 'C'},
		{"persist-delay", required_argument, NULL, 'P'},
		{"persist-sync", no_argument, NULL, 'G'},
		{"workers", required_argument, NULL, 'O'},
		{"backing", required_argument, NULL, 'K'},
		{"help", no_argument, NULL, 'h'},
		{0},
	};
	struct buse_ops ops = {
		.read = td_read,
		.write = td_write,
		.flush = td_flush,
		.discard = td_discard,
		.write_zeroes = td_write_zeroes,
		.started = td_started,
	};
	const char *log = NULL;
	bool as_daemon = false;
	struct buse_params p;
	int c, ret;

	buse_params_init(&p);
	p.size = 64 << 20;
	p.name = "testdrv";
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			p.size = parse_num("size", optarg, true);
			break;
		case 'b':
			p.logical_block_size =
				parse_num("block-size", optarg, false);
			break;
		case 'q':
			p.nr_queues = parse_num("queues", optarg, false);
			break;
		case 'd':
			p.queue_depth = parse_num("depth", optarg, false);
			break;
		case 'm':
			p.max_io_bytes = parse_num("max-io", optarg, true);
			break;
		case 'i':
			p.dev_id = parse_num("id", optarg, false);
			break;
		case 'r':
			p.read_only = true;
			break;
		case 'f':
			if (parse_range(optarg, drv.fail, &drv.nr_fail))
				return 1;
			break;
		case 'x':
			if (parse_range(optarg, drv.stall, &drv.nr_stall))
				return 1;
			break;
		case 'y':
			if (parse_range(optarg, drv.slow, &drv.nr_slow))
				return 1;
			break;
		case 'Y':
			drv.slow_ms = parse_num("slow-ms", optarg, false);
			break;
		case 't':
			p.timeout_ms =
				parse_num("timeout", optarg, false) * 1000;
			break;
		case 'W':
			p.write_back = true;
			break;
		case 'L':
			p.log_bytes = parse_num("log-size", optarg, true);
			p.write_back = true;
			break;
		case 'u':
			drv.delay_us = parse_num("delay-us", optarg, false);
			break;
		case 'S':
			drv.stats = optarg;
			break;
		case 'F':
			ops.flush = NULL;
			break;
		case 'D':
			ops.discard = NULL;
			break;
		case 'Z':
			ops.write_zeroes = NULL;
			break;
		case 'B':
			as_daemon = true;
			break;
		case 'l':
			log = optarg;
			break;
		case 'R':
			p.recoverable = true;
			break;
		case 'T':
			p.recovery_timeout_ms =
				parse_num("recovery-timeout", optarg, false) *
				1000;
			p.recoverable = true;
			break;
		case 'P':
			drv.persist_ms = parse_num("persist-delay", optarg,
						   false);
			break;
		case 'G':
			drv.persist_sync = true;
			break;
		case 'O':
			p.workers =
				(uint32_t)parse_num("workers", optarg, false);
			break;
		case 'K':
			drv.backing = optarg;
			break;
		case 'C':
			p.dev_id = parse_num("recover", optarg, false);
			p.recover = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 1;
		}
	}
	if (optind < argc) {
		usage(stderr);
		return 1;
	}
	if (drv.persist_sync && !drv.backing) {
		fprintf(stderr, "testdrv: --persist-sync needs --backing\n");
		return 1;
	}
	if (!p.size || p.size % p.logical_block_size) {
		fprintf(stderr, "testdrv: bad size for the block size\n");
		return 1;
	}
	drv.mem = calloc(1, p.size);
	if (!drv.mem) {
		fprintf(stderr, "testdrv: %s\n", strerror(ENOMEM));
		return 1;
	}
	pthread_mutex_init(&drv.stats_lock, NULL);
	pthread_mutex_init(&drv.stall_lock, NULL);
	drv.backing_fd = -1;

	if (as_daemon)
		daemonize(log);
	if (drv.nr_stall) {
		sigset_t set;
		pthread_t th;

		/* Every thread started from here on leaves SIGUSR1 to it. */
		sigemptyset(&set);
		sigaddset(&set, SIGUSR1);
		pthread_sigmask(SIG_BLOCK, &set, NULL);
		if (pthread_create(&th, NULL, unstaller, &drv)) {
			fprintf(stderr, "testdrv: cannot start the unstaller\n");
			return 1;
		}
		pthread_detach(th);
	}
	/* After the fork: the persister thread must live in the daemon. */
	if (drv.backing) {
		pthread_t th;
		ssize_t n;

		drv.backing_fd = open(drv.backing, O_RDWR | O_CREAT, 0644);
		if (drv.backing_fd < 0) {
			perror(drv.backing);
			return 1;
		}
		n = pread(drv.backing_fd, drv.mem, p.size, 0);
		if (n < 0) {
			perror(drv.backing);
			return 1;
		}
		pthread_mutex_init(&drv.plock, NULL);
		pthread_condattr_t ca;

		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&drv.pcond, &ca);
		drv.ptail = &drv.phead;
		/* --persist-sync persists in the callback: no persister. */
		if (!drv.persist_sync) {
			if (pthread_create(&th, NULL, persister, &drv)) {
				fprintf(stderr,
					"testdrv: cannot start the persister\n");
				return 1;
			}
			pthread_detach(th);
		}
	}
	ret = buse_run(&p, &ops, &drv);
	if (ret < 0)
		fprintf(stderr, "testdrv: %s\n", strerror(-ret));
	if (drv.notify_fd >= 0) {
		/* Never started: tell the waiting parent why. */
		int32_t msg[2] = {ret < 0 ? ret : -ECANCELED, 0};

		if (write(drv.notify_fd, msg, sizeof(msg)) < 0)
			ret = -errno;
	}
	write_stats(&drv);
	free(drv.mem);
	return ret < 0;
}
