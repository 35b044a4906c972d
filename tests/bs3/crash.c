// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * kill -9 of the BS3 engine at random moments, 50 rounds, against a real
 * S3 server on loopback.  Each round a child process attaches the volume
 * and runs a writer (writes of 1..64 blocks, a few discards, a flush every
 * few operations, with GC and frequent checkpoints), telling the parent on
 * a pipe each operation before it issues it and each flush when it has
 * returned.  The parent SIGKILLs it after a random delay (some rounds while
 * it is still attaching, i.e. in recovery; some with the server's proxy
 * stopped, so that uploads it had sent are stored after its death),
 * attaches the volume itself and reads all of it.  What it finds must be the state before the round with
 * a prefix of the round's operations applied, the last of them perhaps
 * only in part (recovery replays an unbroken run of objects), and that
 * prefix must hold every operation a returned flush covered.  Every block
 * is exactly one generation of itself (or zeros): nothing torn, moved or
 * resurrected.  At the end bs3_check() must find the volume clean.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../unit/bs3/bs3_test.h"
#include "../unit/bs3/s3_host.h"
#include "bs3.h"

#define ROUNDS	 50
#define VOL_SIZE (8u << 20)
#define NBLK	 (VOL_SIZE / BS3T_BS)
#define OBJ_SIZE (128u << 10)
#define MAX_BLKS 64u
#define MAX_OPS	 100000u

static char bucket[64];
static struct s3_config cfg;
static unsigned seed;

/* What the child says, one write(2) each (atomic: < PIPE_BUF). */
enum { R_OPEN = 1, R_WRITE, R_DISCARD, R_FLUSHED, R_FAIL };

struct rec {
	uint32_t type;
	uint32_t gen; /* R_FLUSHED: every operation up to this one is durable */
	uint32_t lba;
	uint32_t n; /* R_FAIL: -errno */
};

struct op {
	uint32_t gen, lba, n;
	bool discard;
};

static int pipe_w = -1;

static void say(uint32_t type, uint32_t gen, uint32_t lba, uint32_t n)
{
	struct rec r = {type, gen, lba, n};

	/* the parent reads until we are dead: a short write cannot happen */
	if (write(pipe_w, &r, sizeof(r)) != sizeof(r))
		_exit(4);
}

static struct bs3_opts opts(bool child)
{
	struct bs3_opts o = {.bucket = bucket,
			     .volume = "crash",
			     .s3 = &cfg,
			     /* small: writes wait for uploads, often */
			     .dirty_limit = 2u << 20,
			     .ckpt_objects = 6,
			     .gc_live_pct = 60,
			     .no_gc = !child,
			     .progress = bs3t_quiet};
	return o;
}

static void free_buf(void *arg, int status)
{
	(void)status; /* a release after the kill cannot happen */
	free(arg);
}

static void flushed(void *arg, int status)
{
	uint32_t gen = (uint32_t)(uintptr_t)arg;

	if (status)
		say(R_FAIL, gen, 0, (uint32_t)-status);
	else
		say(R_FLUSHED, gen, 0, 0);
}

/* The child: attach, then write until killed.  Generations from gen0. */
static void child(uint32_t gen0, unsigned cseed)
{
	struct bs3_opts o = opts(true);
	struct bs3_vol *v;
	char err[512];
	uint32_t gen = gen0 - 1;
	unsigned left = 1;
	int e;

	alarm(120); /* if the parent is gone */
	e = bs3_open(&o, &v, err, sizeof(err));
	if (e) {
		fprintf(stderr, "child: bs3_open: %s\n", err);
		say(R_FAIL, 0, 0, (uint32_t)-e);
		_exit(3);
	}
	say(R_OPEN, 0, 0, 0);
	for (;;) {
		unsigned p = (unsigned)rand_r(&cseed) % 100;
		uint32_t n =
			1 + (uint32_t)rand_r(&cseed) % (p < 60 ? 4 : MAX_BLKS);
		uint32_t lba = (uint32_t)rand_r(&cseed) % (NBLK - n + 1);

		if (!--left) {
			e = bs3_flush(v, flushed, (void *)(uintptr_t)gen);
			if (e != BS3_PENDING) {
				say(R_FAIL, gen, 0, (uint32_t)-e);
				_exit(3);
			}
			left = 1 + (unsigned)rand_r(&cseed) % 8;
		}
		gen++;
		if (p < 5) {
			say(R_DISCARD, gen, lba, n);
			e = bs3_discard(v, (uint64_t)lba * BS3T_BS,
					(uint64_t)n * BS3T_BS, bs3t_nop, NULL);
			e = e == BS3_PENDING ? 0 : e;
		} else {
			void *buf = malloc((size_t)n * BS3T_BS);

			if (!buf)
				_exit(3);
			bs3t_fill(buf, lba, n, gen);
			say(R_WRITE, gen, lba, n);
			e = bs3_write(v, (uint64_t)lba * BS3T_BS, n * BS3T_BS,
				      buf, free_buf, buf);
		}
		if (e) {
			say(R_FAIL, gen, 0, (uint32_t)-e);
			_exit(3);
		}
	}
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* A round's record of what the child did. */
struct round {
	struct op *ops;
	size_t nops;
	uint32_t flushed; /* generation a returned flush covered; 0: none */
	bool opened;
	int fail; /* the child's error, 0 if none */
};

/* Read all there is; false at EOF. */
static bool take(int fd, struct round *r)
{
	struct rec rec[256];
	ssize_t got = read(fd, rec, sizeof(rec));

	if (got <= 0)
		return got < 0 && errno == EINTR;
	for (size_t i = 0; i < (size_t)got / sizeof(*rec); i++) {
		switch (rec[i].type) {
		case R_OPEN:
			r->opened = true;
			break;
		case R_WRITE:
		case R_DISCARD:
			if (r->nops < MAX_OPS)
				r->ops[r->nops++] = (struct op){
					rec[i].gen, rec[i].lba, rec[i].n,
					rec[i].type == R_DISCARD};
			break;
		case R_FLUSHED:
			if (rec[i].gen > r->flushed)
				r->flushed = rec[i].gen;
			break;
		case R_FAIL:
			r->fail = -(int)rec[i].n;
			break;
		}
	}
	return true;
}

/*
 * Run a child and kill it: in 1 of 5 rounds 0..800 ms after the fork (it
 * may still be attaching), else 100..2500 ms after it has attached.  In 1
 * of 3 of the others (when BS3_S3_PROXY_PID is set) the server's proxy is
 * stopped first, 0..500 ms before the kill, and continued 0..1000 ms
 * after it: requests whose bodies were already sent are then stored
 * after the writer died, in any order, some even while the next one is
 * attaching.  Returns the child's wait status; *stopped says whether
 * the proxy was stopped.
 */
static int run_child(uint32_t gen0, struct round *r, bool *stopped)
{
	int fds[2], status = 0;
	bool early = rand_r(&seed) % 5 == 0, killed = false;
	bool stop =
		!early && rand_r(&seed) % 3 == 0 && getenv("BS3_S3_PROXY_PID");
	uint64_t t0, kill_at;
	unsigned cseed = (unsigned)rand_r(&seed);
	pid_t pid;

	*stopped = false;
	if (pipe(fds))
		return -1;
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0)
		return -1;
	if (!pid) {
		close(fds[0]);
		pipe_w = fds[1];
		child(gen0, cseed);
	}
	close(fds[1]);
	t0 = now_ms();
	kill_at = early ? t0 + (unsigned)rand_r(&seed) % 800 : UINT64_MAX;
	for (;;) {
		struct pollfd p = {fds[0], POLLIN, 0};
		uint64_t now = now_ms();
		int tmo;

		if (!early && r->opened && kill_at == UINT64_MAX)
			kill_at = now + 100 + (unsigned)rand_r(&seed) % 2400;
		if (stop && !*stopped && now >= kill_at) {
			*stopped = !bs3h_proxy_stop();
			kill_at = now + (unsigned)rand_r(&seed) % 500;
			continue;
		}
		/* hang guard: a child that never attaches */
		if (!killed && (now >= kill_at || now > t0 + 120000)) {
			kill(pid, SIGKILL);
			killed = true;
		}
		tmo = killed ? -1
		      : kill_at == UINT64_MAX
			      ? 100
			      : (int)(kill_at > now ? kill_at - now : 0);
		if (poll(&p, 1, tmo) > 0 && !take(fds[0], r))
			break; /* EOF: the child is gone */
	}
	close(fds[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (*stopped) {
		bs3t_sleep_ms((unsigned)rand_r(&seed) % 1000);
		bs3h_proxy_cont();
	}
	return status;
}

/* Blocks as read: their generation, 0 zeros, -1 not a block of ours. */
static int read_all(struct bs3_vol *v, int64_t *got)
{
	uint8_t *buf = malloc(VOL_SIZE);
	int e;

	if (!buf)
		return -ENOMEM;
	memset(buf, 0xee, VOL_SIZE);
	e = bs3_read_sync(v, 0, VOL_SIZE, buf);
	for (uint32_t b = 0; !e && b < NBLK; b++)
		got[b] = bs3t_block_gen(buf + (size_t)b * BS3T_BS, b);
	free(buf);
	return e;
}

static int64_t op_val(const struct op *o)
{
	return o->discard ? 0 : o->gen;
}

/*
 * Is got the state cur with ops 1..c applied and op c+1 perhaps in part,
 * for some c >= must (the operations a returned flush covered)?  Returns
 * the largest such c, or -1 with the reason in why.
 */
static long prefix_of(const uint32_t *cur, const int64_t *got,
		      const struct round *r, size_t must, char *why, size_t len)
{
	int64_t *exp = malloc(NBLK * sizeof(*exp));
	long best = -1;
	size_t miss = 0;

	if (!exp) {
		snprintf(why, len, "out of memory");
		return -1;
	}
	for (uint32_t b = 0; b < NBLK; b++) {
		if (got[b] < 0) {
			snprintf(why, len,
				 "block %u is not a block of ours (torn or "
				 "misplaced)",
				 b);
			free(exp);
			return -1;
		}
		exp[b] = cur[b];
		miss += got[b] != exp[b];
	}
	for (size_t c = 0; c <= r->nops; c++) {
		/* blocks that differ must all be op c+1's, showing its value */
		size_t in_next = 0;

		if (c < r->nops) {
			const struct op *o = &r->ops[c];

			for (uint32_t b = o->lba; b < o->lba + o->n; b++)
				in_next +=
					got[b] != exp[b] && got[b] == op_val(o);
		}
		if (c >= must && miss == in_next)
			best = (long)c;
		if (c == r->nops)
			break;
		const struct op *o = &r->ops[c];

		for (uint32_t b = o->lba; b < o->lba + o->n; b++) {
			miss -= got[b] != exp[b];
			exp[b] = op_val(o);
			miss += got[b] != exp[b];
		}
	}
	if (best < 0) {
		/* the first block that differs from the durable prefix */
		for (uint32_t b = 0; b < NBLK; b++)
			exp[b] = cur[b];
		for (size_t c = 0; c < must; c++)
			for (uint32_t b = r->ops[c].lba;
			     b < r->ops[c].lba + r->ops[c].n; b++)
				exp[b] = op_val(&r->ops[c]);
		snprintf(why, len,
			 "no prefix of the %zu operations (%zu flushed)",
			 r->nops, must);
		for (uint32_t b = 0; b < NBLK; b++)
			if (got[b] != exp[b]) {
				snprintf(why, len,
					 "no prefix of the %zu operations "
					 "(%zu flushed) fits; first difference "
					 "from the flushed state: block %u is "
					 "generation %" PRId64 ", want %" PRId64
					 " or later",
					 r->nops, must, b, got[b], exp[b]);
				break;
			}
	}
	free(exp);
	return best;
}

int main(void)
{
	struct bs3_opts o;
	struct round r = {0};
	uint32_t *cur = calloc(NBLK, sizeof(*cur)), gen0 = 1;
	int64_t *got = calloc(NBLK, sizeof(*got));
	unsigned bad = 0, lost = 0, kept = 0, early = 0;
	char err[512] = "";
	int e;

	bs3h_config(&cfg);
	bs3h_bucket(&cfg, "bs3-crash", bucket, sizeof(bucket));
	seed = bs3h_seed(bucket);
	r.ops = malloc(MAX_OPS * sizeof(*r.ops));
	if (!cur || !got || !r.ops)
		return 2;
	o = opts(false);
	e = bs3_create(&o, VOL_SIZE, BS3T_BS, OBJ_SIZE, err, sizeof(err));
	if (!bs3h_check(!e, "create an 8 MiB volume of 128 KiB objects",
			"%d: %s", e, err))
		return 1;

	for (unsigned round = 1; round <= ROUNDS; round++) {
		struct bs3_vol *v = NULL;
		size_t must = 0;
		long c = -1;
		bool stopped;
		char name[64], why[600] = "";
		int st;

		r.nops = 0;
		r.flushed = 0;
		r.opened = false;
		r.fail = 0;
		st = run_child(gen0, &r, &stopped);
		snprintf(name, sizeof(name), "round %u", round);
		if (r.fail || !WIFSIGNALED(st) || WTERMSIG(st) != SIGKILL) {
			bs3h_check(false, name,
				   "the child failed before the kill: error "
				   "%d, wait status %#x",
				   r.fail, st);
			bad++;
			break;
		}
		while (must < r.nops && r.ops[must].gen <= r.flushed)
			must++;
		e = bs3_open(&o, &v, err, sizeof(err));
		if (e)
			snprintf(why, sizeof(why), "attach: %s", err);
		if (!e && (e = read_all(v, got)))
			snprintf(why, sizeof(why), "read: %s", strerror(-e));
		if (!e &&
		    (c = prefix_of(cur, got, &r, must, why, sizeof(why))) < 0)
			e = -EBADMSG;
		if (v) {
			int ce = bs3_close(v);

			if (!e && ce)
				snprintf(why, sizeof(why), "close: %s",
					 strerror(-ce));
			e = e ? e : ce;
		}
		if (!bs3h_check(!e, name, "%s", why)) {
			bad++;
			break;
		}
		printf("# round %u: %s%s, %zu operations, %zu flushed, %ld "
		       "found\n",
		       round, r.opened ? "attached" : "killed attaching",
		       stopped ? ", killed with the proxy stopped" : "", r.nops,
		       must, c);
		early += !r.opened;
		lost += (size_t)c < r.nops;
		kept += (size_t)c > must;
		for (uint32_t b = 0; b < NBLK; b++)
			cur[b] = (uint32_t)got[b];
		if (r.nops)
			gen0 = r.ops[r.nops - 1].gen + 1;
	}
	printf("# %u rounds killed attaching; unflushed operations lost in "
	       "%u, kept in %u\n",
	       early, lost, kept);
	if (!bad)
		bs3h_check(lost > 0, "some kills hit unstored writes",
			   "no round lost anything unflushed");
	{
		char *rep = NULL;
		size_t len = 0;
		FILE *f = open_memstream(&rep, &len);

		e = bs3_check(&o, f, err, sizeof(err));
		fclose(f);
		bs3h_check(!e, "bs3_check: clean", "%d: %s\n%s", e, err, rep);
		free(rep);
	}
	free(r.ops);
	free(cur);
	free(got);
	s3_config_free(&cfg);
	printf("# %d failed\n", bs3h_failures);
	return bs3h_failures ? 1 : 0;
}
