// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * buse-hostile: attacks buse.ko through the raw ABI (no libbuse) and checks
 * that the kernel stays sane from userspace's point of view.
 *
 *   buse-hostile [--seed N] [--iters N] [--time SECONDS] [--hang SECONDS]
 *                [--mode MODE[,MODE...]] [--verbose]
 *   buse-hostile --try-open PATH [--drop-privs]
 *
 * Modes ("all", the default, is params,ioctl,mmap,daemon):
 *   params   random and boundary BUSE_CTL_ADD parameters; what is documented
 *            as invalid must be refused, what is accepted must obey the
 *            documented limits and read back unchanged with GET_INFO; every
 *            accepted device is deleted (twice: the second DEL is ENOENT)
 *   ioctl    bad pointers (NULL, unmapped, kernel, read-only, straddling)
 *            give EFAULT, unknown ioctl numbers ENOTTY, lifecycle misuse
 *            (START before attach, ATTACH of bad/attached/dead queues, DEL
 *            twice, everything after DEL) the documented errors, GET_INFO
 *            with random flags; then threads racing ADD/DEL/ATTACH/START
 *   mmap     the queue region: wrong sizes and offsets, MAP_PRIVATE,
 *            PROT_EXEC, mremap, madvise, fork, pages pinned in a pipe
 *            (vmsplice) past the device's deletion, mmap after DEL
 *   daemon   devices (write-through, write-back with small logs,
 *            recoverable) whose daemon answers I/O (pread/pwrite/flush/
 *            discard/write-zeroes from several threads, O_DIRECT) with
 *            garbage: wrong, duplicate, stale and forged tags and cookies,
 *            random statuses, bad cq tails, scribbled rings, no sq_head,
 *            random SYNC flags, SYNC storms, I/O into the region itself,
 *            logged writes never acknowledged, closing or unmapping the
 *            queue mid-I/O, dying (SIGKILL), a new daemon taking over, DEL
 *            racing with all that and with START, stale block device fds
 *            across DEL and re-ADD.  A DEL or I/O stuck for 20 s is a
 *            failure; the program then kills its own daemon to unblock it.
 * Reproducers (not in "all"), each asserting the correct behaviour:
 *   addrace  BUSE_CTL_ADD whose copy back to userspace is held in a
 *            userfaultfd write-protect fault: its error path must not
 *            delete a device it does not own
 *   wbstall  write-back device, log full, daemon stops acknowledging: the
 *            waiting write must fail by the request timeout, DEL must work
 *   wbrace   write-back device with a one-record log, one writer, a daemon
 *            that acknowledges at once: no write may wait for log space
 *            that was freed (a lost rerun after BLK_STS_DEV_RESOURCE)
 *   recoverdel  recoverable device whose daemon exits while DEL waits for
 *            its request: DEL must not wait for the recovery timeout
 *   bigmem   ADD the largest devices the limits allow until the kernel
 *            refuses: it must say ENOMEM (all devices together pin at
 *            most half of RAM), not OOM-kill or warn; a DEL returns the
 *            memory; the pinned_limit_mb parameter sets the budget
 *
 * Exit status: 0 when every call returned, every result was one the ABI
 * allows and no device was left behind; 1 when a check failed; 2 on a usage
 * or setup error; 3 when a call did not return within --hang seconds.
 *
 * --try-open PATH opens PATH read-write and, if that works, tries GET_INFO;
 * it prints "open=ok|ERRNO ioctl=ok|ERRNO" (ENOENT means "allowed, no
 * device").  With --drop-privs it opens as the caller, then becomes uid/gid
 * 65534 without groups and tries the ioctl on the fd it already holds.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <linux/fs.h>
#include <linux/userfaultfd.h>

#include <linux/buse.h>

#define CTL_PATH	"/dev/" BUSE_CONTROL_NAME
#define MAX_IDS		(1U << 16)	/* ids we track (the kernel's limit) */
#define COOKIE_MASK	0x7fffffffU
#define MEM_CAP		(64ULL << 20)	/* region bytes per random device */

/* ------------------------------------------------------------------------ */
/* Settings, failures, tallies */

static uint64_t g_seed;
static unsigned long g_iters = ULONG_MAX;
static double g_time = 60;
static double g_hang = 60;
static int g_verbose;
static int g_ctl = -1;
static long g_page;
static unsigned g_ncpu;			/* possible CPUs */
static unsigned g_nr_cpu_ids;		/* highest possible CPU + 1 */
static uint64_t g_possible[BUSE_MAX_CPU_WORDS];
static char g_nodedir[64];
static atomic_int *g_failures;		/* shared with forked children */
static atomic_int *g_hung;		/* a child saw a hang */
#define FAIL_LINES 8192
static atomic_int *g_fail_at;		/* failures per source line */
static pid_t g_main_pid;
static double g_deadline;		/* hard end of the whole run */

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static const char *errname(int e)
{
	static __thread char buf[16];
	const char *s;

	if (e == 0)
		return "ok";
	s = strerrorname_np(e);
	if (s)
		return s;
	snprintf(buf, sizeof(buf), "E%d", e);
	return buf;
}

static void failf(int line, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void failf(int line, const char *fmt, ...)
{
	char msg[600];
	va_list ap;
	int n = atomic_fetch_add(g_failures, 1);
	int at = line < FAIL_LINES ? atomic_fetch_add(&g_fail_at[line], 1) : 0;

	if (n >= 300 || at >= 3)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "buse-hostile: FAIL (line %d): %s\n", line, msg);
}
#define FAIL(...)	failf(__LINE__, __VA_ARGS__)
#define CHECK(cond, ...) do { if (!(cond)) FAIL(__VA_ARGS__); } while (0)

static void vlog(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void vlog(const char *fmt, ...)
{
	va_list ap;

	if (!g_verbose)
		return;
	va_start(ap, fmt);
	fputs("buse-hostile: ", stdout);
	vprintf(fmt, ap);
	fputc('\n', stdout);
	va_end(ap);
	fflush(stdout);
}

struct tally {
	char what[40];
	int err;
	unsigned long n;
};
#define MAX_TALLY 2048
static struct tally g_tally[MAX_TALLY];
static int g_ntally;
static pthread_mutex_t g_tally_lock = PTHREAD_MUTEX_INITIALIZER;

/* Count one outcome (err 0: success) of WHAT for the summary. */
static void tally(const char *what, int err)
{
	int i;

	pthread_mutex_lock(&g_tally_lock);
	for (i = 0; i < g_ntally; i++)
		if (g_tally[i].err == err && !strcmp(g_tally[i].what, what))
			break;
	if (i == g_ntally && g_ntally < MAX_TALLY) {
		snprintf(g_tally[i].what, sizeof(g_tally[i].what), "%s", what);
		g_tally[i].err = err;
		g_ntally++;
	}
	if (i < g_ntally)
		g_tally[i].n++;
	pthread_mutex_unlock(&g_tally_lock);
}

static int tally_cmp(const void *a, const void *b)
{
	const struct tally *x = a, *y = b;
	int c = strcmp(x->what, y->what);

	return c ? c : x->err - y->err;
}

static void print_tallies(void)
{
	char line[100];
	int i, col = 0;

	qsort(g_tally, g_ntally, sizeof(g_tally[0]), tally_cmp);
	printf("buse-hostile: outcomes (call: result x count):\n");
	for (i = 0; i < g_ntally; i++) {
		int n = snprintf(line, sizeof(line), "%s:%s x%lu",
				 g_tally[i].what, errname(g_tally[i].err),
				 g_tally[i].n);

		if (col && col + n + 2 > 100) {
			putchar('\n');
			col = 0;
		}
		printf("%s%s", col ? "  " : "  ", line);
		col += n + 2;
	}
	if (col)
		putchar('\n');
}

/* ------------------------------------------------------------------------ */
/* Seedable PRNG (splitmix64), one state per thread */

struct rng {
	uint64_t s;
};

static uint64_t rnd(struct rng *r)
{
	uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static uint64_t below(struct rng *r, uint64_t n)
{
	return n ? rnd(r) % n : 0;
}

static bool chance(struct rng *r, unsigned pct)
{
	return below(r, 100) < pct;
}

static atomic_uint g_streams;

static void rng_init(struct rng *r)
{
	r->s = g_seed ^ ((uint64_t)atomic_fetch_add(&g_streams, 1) *
			 0xd1342543de82ef95ULL);
	rnd(r);
}

#define PICK(r, arr) ((arr)[below((r), sizeof(arr) / sizeof((arr)[0]))])

/* ------------------------------------------------------------------------ */
/* Watchdog: every blocking call is bracketed; one that does not return
 * within --hang seconds ends the program with status 3. */

#define WD_SLOTS 512
struct wd_slot {
	atomic_int used;
	_Atomic(const char *) op;
	_Atomic int64_t since_us;
};
static struct wd_slot g_wd[WD_SLOTS];
static __thread struct wd_slot *t_wd;

static int64_t now_us(void)
{
	return (int64_t)(now() * 1e6);
}

static void wd_enter(void)
{
	int i;

	for (i = 0; i < WD_SLOTS; i++)
		if (!atomic_exchange(&g_wd[i].used, 1)) {
			t_wd = &g_wd[i];
			atomic_store(&t_wd->op, NULL);
			return;
		}
	t_wd = NULL;
}

static void wd_leave(void)
{
	if (!t_wd)
		return;
	atomic_store(&t_wd->op, NULL);
	atomic_store(&t_wd->used, 0);
	t_wd = NULL;
}

static inline void wd_begin(const char *op)
{
	if (t_wd) {
		atomic_store(&t_wd->since_us, now_us());
		atomic_store(&t_wd->op, op);
	}
}

static inline void wd_end(void)
{
	if (t_wd)
		atomic_store(&t_wd->op, NULL);
}

#define WD(opname, expr) __extension__({				\
	__typeof__(expr) wd_r_;						\
	int wd_e_;							\
	wd_begin(opname);						\
	wd_r_ = (expr);							\
	wd_e_ = errno;							\
	wd_end();							\
	errno = wd_e_;							\
	wd_r_;								\
})

static void dump_file(const char *path)
{
	char buf[4096];
	ssize_t n;
	int fd = open(path, O_RDONLY);

	if (fd < 0)
		return;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		fwrite(buf, 1, n, stderr);
	close(fd);
}

static void dump_stacks(void)
{
	struct dirent *de;
	char path[300];
	DIR *dir = opendir("/proc/self/task");

	if (!dir)
		return;
	while ((de = readdir(dir))) {
		if (de->d_name[0] == '.')
			continue;
		fprintf(stderr, "--- task %s: ", de->d_name);
		snprintf(path, sizeof(path), "/proc/self/task/%s/wchan",
			 de->d_name);
		dump_file(path);
		fputc('\n', stderr);
		snprintf(path, sizeof(path), "/proc/self/task/%s/stack",
			 de->d_name);
		dump_file(path);
	}
	closedir(dir);
}

static void *monitor(void *arg)
{
	for (;;) {
		int64_t t;
		int i;

		usleep(250000);
		t = now_us();
		for (i = 0; i < WD_SLOTS; i++) {
			const char *op;
			int64_t since;

			if (!atomic_load(&g_wd[i].used))
				continue;
			op = atomic_load(&g_wd[i].op);
			since = atomic_load(&g_wd[i].since_us);
			if (op && t - since > (int64_t)(g_hang * 1e6)) {
				fprintf(stderr,
					"buse-hostile: HANG: %s has not returned after %.0f s (pid %d)\n",
					op, (t - since) / 1e6, getpid());
				dump_stacks();
				atomic_store(g_hung, 1);
				fflush(NULL);
				_exit(3);
			}
		}
		if (g_deadline && now() > g_deadline) {
			fprintf(stderr,
				"buse-hostile: HANG: the run did not end within its time limit\n");
			dump_stacks();
			atomic_store(g_hung, 1);
			fflush(NULL);
			_exit(3);
		}
	}
	return arg;
}

static void start_monitor(void)
{
	pthread_t t;

	if (pthread_create(&t, NULL, monitor, NULL)) {
		perror("pthread_create");
		exit(2);
	}
	pthread_detach(t);
}

/* ------------------------------------------------------------------------ */
/* The control node */

static int xioctl(int fd, unsigned long cmd, unsigned long arg, const char *op)
{
	int r = WD(op, ioctl(fd, cmd, arg));

	return r < 0 ? errno : 0;
}

static pthread_mutex_t g_mine_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned char g_mine[MAX_IDS];	/* created by us, maybe not deleted */

static void mine(uint32_t id, bool set)
{
	if (id >= MAX_IDS)
		return;
	pthread_mutex_lock(&g_mine_lock);
	g_mine[id] = set;
	pthread_mutex_unlock(&g_mine_lock);
}

static int ctl_add(struct buse_dev_params *p)
{
	int e = xioctl(g_ctl, BUSE_CTL_ADD, (unsigned long)p, "BUSE_CTL_ADD");

	if (!e)
		mine(p->dev_id, true);
	return e;
}

static int ctl_del(uint32_t id)
{
	int e = xioctl(g_ctl, BUSE_CTL_DEL, id, "BUSE_CTL_DEL");

	if (!e)
		mine(id, false);
	return e;
}

static int ctl_start(uint32_t id)
{
	return xioctl(g_ctl, BUSE_CTL_START, id, "BUSE_CTL_START");
}

static int ctl_info(uint32_t id, uint32_t flags, struct buse_dev_info *i)
{
	memset(i, 0, sizeof(*i));
	i->dev_id = id;
	i->flags = flags;
	return xioctl(g_ctl, BUSE_CTL_GET_INFO, (unsigned long)i,
		      "BUSE_CTL_GET_INFO");
}

static int ctl_attach(uint32_t id, uint32_t qid, struct buse_queue_attach *a)
{
	memset(a, 0, sizeof(*a));
	a->dev_id = id;
	a->qid = qid;
	a->fd = -1;
	return xioctl(g_ctl, BUSE_CTL_ATTACH_QUEUE, (unsigned long)a,
		      "BUSE_CTL_ATTACH_QUEUE");
}

static bool sysfs_present(uint32_t id)
{
	char p[64];

	snprintf(p, sizeof(p), "/sys/block/" BUSE_DISK_NAME "%u", id);
	return access(p, F_OK) == 0;
}

/* After a successful DEL: the id is free and the disk is gone. */
static void expect_gone(uint32_t id, const char *ctx)
{
	struct buse_dev_info info;
	int e, i;

	e = ctl_info(id, 0, &info);
	CHECK(e == ENOENT, "%s: GET_INFO of deleted buse%u: %s, want ENOENT",
	      ctx, id, errname(e));
	for (i = 0; i < 50 && sysfs_present(id); i++)
		usleep(100000);
	CHECK(!sysfs_present(id), "%s: /sys/block/buse%u still there after DEL",
	      ctx, id);
}

/* A unique informational name, "hostile.<pid>.<what>". */
static void set_name(struct buse_dev_params *p, const char *what)
{
	memset(p->name, 0, sizeof(p->name));
	snprintf(p->name, sizeof(p->name), "hostile.%d.%s", (int)g_main_pid,
		 what);
}

static bool name_is_ours(const char *name)
{
	char pre[24];

	snprintf(pre, sizeof(pre), "hostile.%d.", (int)g_main_pid);
	return !strncmp(name, pre, strlen(pre));
}

/* Id of the first device whose name is NAME, or -1. */
static long find_by_name(const char *name)
{
	struct buse_dev_info info;
	uint32_t id = 0;

	while (!ctl_info(id, BUSE_INFO_NEXT, &info)) {
		if (!strncmp(info.params.name, name, BUSE_NAME_LEN))
			return info.dev_id;
		if (info.dev_id == UINT32_MAX)
			break;
		id = info.dev_id + 1;
	}
	return -1;
}

/* An id nobody uses, at or above FROM, with N free ids from there. */
static uint32_t free_ids(uint32_t from, unsigned n)
{
	struct buse_dev_info info;
	uint32_t id;
	unsigned k;

	for (id = from; id + n < MAX_IDS; id += n) {
		for (k = 0; k < n; k++)
			if (ctl_info(id + k, 0, &info) != ENOENT)
				break;
		if (k == n)
			return id;
	}
	return from;
}

/* ------------------------------------------------------------------------ */
/* Helpers */

static bool is_pow2(uint64_t x)
{
	return x && !(x & (x - 1));
}

static void *xmap(size_t len, int prot)
{
	void *p = mmap(NULL, len, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED) {
		perror("mmap");
		exit(2);
	}
	return p;
}

static void *shared_alloc(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED) {
		perror("mmap");
		exit(2);
	}
	return p;
}

static void read_possible_cpus(void)
{
	char buf[256], *s;
	FILE *f = fopen("/sys/devices/system/cpu/possible", "r");

	if (!f || !fgets(buf, sizeof(buf), f)) {
		fprintf(stderr, "buse-hostile: cannot read possible CPUs\n");
		exit(2);
	}
	fclose(f);
	for (s = strtok(buf, ",\n"); s; s = strtok(NULL, ",\n")) {
		unsigned a, b, c;

		if (sscanf(s, "%u-%u", &a, &b) != 2) {
			if (sscanf(s, "%u", &a) != 1)
				continue;
			b = a;
		}
		for (c = a; c <= b && c < BUSE_MAX_CPU_WORDS * 64; c++) {
			g_possible[c / 64] |= 1ULL << (c % 64);
			g_ncpu++;
			if (c + 1 > g_nr_cpu_ids)
				g_nr_cpu_ids = c + 1;
		}
	}
}

static size_t leaked_queue_fds(int *fds, size_t max)
{
	struct dirent *de;
	char path[300], target[128];
	size_t n = 0;
	DIR *dir = opendir("/proc/self/fd");

	if (!dir)
		return 0;
	while ((de = readdir(dir))) {
		ssize_t len;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/fd/%s", de->d_name);
		len = readlink(path, target, sizeof(target) - 1);
		if (len < 0)
			continue;
		target[len] = '\0';
		if (strstr(target, "buse-queue") && n < max)
			fds[n++] = atoi(de->d_name);
	}
	closedir(dir);
	return n;
}

/* True if every byte of [p, p + len) is zero. */
static bool all_zero(const void *p, size_t len)
{
	const unsigned char *c = p;
	size_t i;

	for (i = 0; i < len; i++)
		if (c[i])
			return false;
	return true;
}

/* ------------------------------------------------------------------------ */
/* Parameters: the documented rules */

/* Why the documentation says P must be refused, or NULL. */
static const char *must_refuse(const struct buse_dev_params *p)
{
	uint32_t lbs = p->logical_block_size ? p->logical_block_size :
					       BUSE_MIN_BLOCK_SIZE;
	uint32_t depth = p->queue_depth ? p->queue_depth : BUSE_DEF_DEPTH;
	uint32_t io = p->max_io_bytes ? p->max_io_bytes : BUSE_DEF_IO_BYTES;
	unsigned i;

	for (i = 0; i < sizeof(p->reserved) / sizeof(p->reserved[0]); i++)
		if (p->reserved[i])
			return "reserved";
	if (p->flags & ~BUSE_F_SUPPORTED)
		return "flags";
	if (!memchr(p->name, 0, sizeof(p->name)))
		return "name";
	if (lbs < BUSE_MIN_BLOCK_SIZE || lbs > BUSE_MAX_BLOCK_SIZE ||
	    !is_pow2(lbs))
		return "lbs";
	if (p->physical_block_size && (p->physical_block_size < lbs ||
				       !is_pow2(p->physical_block_size)))
		return "pbs";
	if (!p->size || p->size % lbs)
		return "size";
	if (p->queue_depth > BUSE_MAX_DEPTH)
		return "depth";
	if (io % 4096 || io > BUSE_MAX_IO_BYTES)
		return "max_io";
	if ((uint64_t)depth * io > BUSE_MAX_QUEUE_DATA)
		return "queue_data";
	if (p->timeout_ms > BUSE_MAX_TIMEOUT_MS)
		return "timeout";
	if ((p->flags & (BUSE_F_DISCARD | BUSE_F_WRITE_ZEROES)) &&
	    p->max_discard_bytes > BUSE_MAX_DISCARD_BYTES)
		return "max_discard";
	if (p->flags & BUSE_F_WRITE_BACK) {
		uint64_t log = p->log_bytes ? p->log_bytes : BUSE_DEF_LOG_BYTES;

		if (log % 4096 || log > BUSE_MAX_LOG_BYTES || log < io)
			return "log_bytes";
	}
	if ((p->flags & BUSE_F_RECOVERABLE) &&
	    p->recovery_timeout_ms > BUSE_MAX_TIMEOUT_MS)
		return "recovery_timeout";
	return NULL;
}

static unsigned eff_queues(const struct buse_dev_params *p)
{
	unsigned n = p->nr_queues ? p->nr_queues : g_ncpu;

	if (n > g_nr_cpu_ids)
		n = g_nr_cpu_ids;
	if (n > BUSE_MAX_QUEUES)
		n = BUSE_MAX_QUEUES;
	return n;
}

static uint64_t region_bytes(const struct buse_dev_params *p)
{
	uint64_t depth = p->queue_depth ? p->queue_depth : BUSE_DEF_DEPTH;
	uint64_t io = p->max_io_bytes ? p->max_io_bytes : BUSE_DEF_IO_BYTES;
	uint64_t log = !(p->flags & BUSE_F_WRITE_BACK) ? 0 :
		       p->log_bytes ? p->log_bytes : BUSE_DEF_LOG_BYTES;

	return (depth * io + log) * eff_queues(p);
}

/* What ADD wrote back must obey the documented limits and defaults. */
static void check_accepted(const struct buse_dev_params *in,
			   const struct buse_dev_params *out)
{
	unsigned i;

	if (in->dev_id != BUSE_DEV_ID_ANY)
		CHECK(out->dev_id == in->dev_id, "ADD: asked id %u, got %u",
		      in->dev_id, out->dev_id);
	/* Write-back forces a volatile cache: FLUSH (and FUA) are added. */
	CHECK((out->flags & ~BUSE_F_FUA) ==
		      ((in->flags | (in->flags & BUSE_F_WRITE_BACK ?
				     BUSE_F_FLUSH : 0)) & ~BUSE_F_FUA),
	      "ADD: flags %#x became %#x", in->flags, out->flags);
	CHECK(!(out->flags & BUSE_F_WRITE_BACK) ||
		      (out->flags & (BUSE_F_FLUSH | BUSE_F_FUA)) ==
			      (BUSE_F_FLUSH | BUSE_F_FUA),
	      "ADD: write-back without a volatile cache (%#x)", out->flags);
	CHECK(!(out->flags & BUSE_F_FUA) || (out->flags & BUSE_F_FLUSH),
	      "ADD: accepted FUA without FLUSH (%#x)", out->flags);
	CHECK(out->logical_block_size >= BUSE_MIN_BLOCK_SIZE &&
	      out->logical_block_size <= BUSE_MAX_BLOCK_SIZE &&
	      is_pow2(out->logical_block_size) &&
	      (!in->logical_block_size ||
	       out->logical_block_size == in->logical_block_size),
	      "ADD: logical block size %u -> %u", in->logical_block_size,
	      out->logical_block_size);
	CHECK(out->physical_block_size ==
	      (in->physical_block_size ? in->physical_block_size :
					 out->logical_block_size),
	      "ADD: physical block size %u -> %u", in->physical_block_size,
	      out->physical_block_size);
	CHECK(out->size == in->size, "ADD: size %" PRIu64 " -> %" PRIu64,
	      (uint64_t)in->size, (uint64_t)out->size);
	/* 0 is one per possible CPU; more than there are CPUs may be cut. */
	if (!in->nr_queues || in->nr_queues <= g_nr_cpu_ids)
		CHECK(out->nr_queues == (in->nr_queues ? in->nr_queues : g_ncpu),
		      "ADD: nr_queues %u -> %u", in->nr_queues, out->nr_queues);
	else
		CHECK(out->nr_queues >= 1 && out->nr_queues <= in->nr_queues &&
		      out->nr_queues <= BUSE_MAX_QUEUES,
		      "ADD: nr_queues %u -> %u", in->nr_queues, out->nr_queues);
	CHECK(out->queue_depth == (in->queue_depth ? in->queue_depth :
						     BUSE_DEF_DEPTH) &&
	      out->queue_depth >= 1 && out->queue_depth <= BUSE_MAX_DEPTH,
	      "ADD: depth %u -> %u", in->queue_depth, out->queue_depth);
	CHECK(out->max_io_bytes == (in->max_io_bytes ? in->max_io_bytes :
						       BUSE_DEF_IO_BYTES),
	      "ADD: max_io %u -> %u", in->max_io_bytes, out->max_io_bytes);
	CHECK((uint64_t)out->queue_depth * out->max_io_bytes <=
	      BUSE_MAX_QUEUE_DATA, "ADD: depth * max_io above the limit");
	if (out->flags & (BUSE_F_DISCARD | BUSE_F_WRITE_ZEROES))
		CHECK(out->max_discard_bytes > 0 &&
		      out->max_discard_bytes <= BUSE_MAX_DISCARD_BYTES &&
		      (!in->max_discard_bytes ||
		       out->max_discard_bytes == in->max_discard_bytes),
		      "ADD: max_discard %u -> %u", in->max_discard_bytes,
		      out->max_discard_bytes);
	CHECK(out->timeout_ms == (in->timeout_ms ? in->timeout_ms :
						   BUSE_DEF_TIMEOUT_MS) &&
	      out->timeout_ms <= BUSE_MAX_TIMEOUT_MS,
	      "ADD: timeout %u -> %u", in->timeout_ms, out->timeout_ms);
	if (out->flags & BUSE_F_WRITE_BACK)
		CHECK(out->log_bytes == (in->log_bytes ? in->log_bytes :
					 BUSE_DEF_LOG_BYTES) &&
		      out->log_bytes >= out->max_io_bytes,
		      "ADD: log_bytes %llu -> %llu",
		      (unsigned long long)in->log_bytes,
		      (unsigned long long)out->log_bytes);
	if (out->flags & BUSE_F_RECOVERABLE)
		CHECK(out->recovery_timeout_ms == (in->recovery_timeout_ms ?
						   in->recovery_timeout_ms :
						   BUSE_DEF_RECOVERY_MS),
		      "ADD: recovery_timeout_ms %u -> %u",
		      in->recovery_timeout_ms, out->recovery_timeout_ms);
	CHECK(!strncmp(in->name, out->name, BUSE_NAME_LEN),
	      "ADD: the name changed");
	for (i = 0; i < sizeof(out->reserved) / sizeof(out->reserved[0]); i++)
		CHECK(!out->reserved[i], "ADD: reserved[%u] = %#llx", i,
		      (unsigned long long)out->reserved[i]);
}

/* GET_INFO right after ADD: what was accepted, nothing else. */
static void check_info_fresh(const struct buse_dev_params *p)
{
	struct buse_dev_info info;
	unsigned i;
	int e = ctl_info(p->dev_id, 0, &info);

	CHECK(!e, "GET_INFO of new buse%u: %s", p->dev_id, errname(e));
	if (e)
		return;
	CHECK(info.dev_id == p->dev_id, "GET_INFO: id %u for %u", info.dev_id,
	      p->dev_id);
	CHECK(!memcmp(&info.params, p, sizeof(*p)),
	      "GET_INFO params of buse%u differ from what ADD returned",
	      p->dev_id);
	CHECK(info.state == BUSE_STATE_CREATED, "new device in state %u",
	      info.state);
	CHECK(info.nr_attached == 0 && info.daemon_pid == 0,
	      "new device: %u attached, daemon %d", info.nr_attached,
	      info.daemon_pid);
	CHECK(info.flags == 0, "GET_INFO flags out %#x", info.flags);
	CHECK(info.major > 0, "GET_INFO: major 0");
	if (p->flags & BUSE_F_WRITE_BACK)
		CHECK(info.log_size == p->log_bytes * p->nr_queues &&
			      info.log_free == info.log_size &&
			      !info.unapplied_recs && !info.retained_recs,
		      "GET_INFO: new write-back log %llu bytes, %llu free",
		      (unsigned long long)info.log_size,
		      (unsigned long long)info.log_free);
	else
		CHECK(!info.log_recs && !info.log_size,
		      "GET_INFO: write-through device with a log");
	for (i = 0; i < sizeof(info.reserved) / sizeof(info.reserved[0]); i++)
		CHECK(!info.reserved[i], "GET_INFO: reserved[%u] set", i);
}

/* The layout ATTACH reports must be usable and self-consistent. */
static bool check_layout(const struct buse_dev_params *p,
			 const struct buse_queue_attach *a, uint64_t *cpus)
{
	bool ok = true;
	unsigned i;

#define LCHECK(c, ...) do { if (!(c)) { FAIL(__VA_ARGS__); ok = false; } } while (0)
	LCHECK(a->fd >= 0, "ATTACH: fd %d", a->fd);
	LCHECK(a->depth == p->queue_depth, "ATTACH: depth %u, device %u",
	       a->depth, p->queue_depth);
	LCHECK(is_pow2(a->sq_entries) && a->sq_entries >= a->depth &&
	       is_pow2(a->cq_entries) && a->cq_entries >= a->depth,
	       "ATTACH: sq %u cq %u entries for depth %u", a->sq_entries,
	       a->cq_entries, a->depth);
	LCHECK(a->sq_off >= sizeof(struct buse_ring_hdr) && a->sq_off % 8 == 0 &&
	       (uint64_t)a->sq_off + (uint64_t)a->sq_entries *
	       sizeof(struct buse_sqe) <= a->cq_off && a->cq_off % 4 == 0 &&
	       (uint64_t)a->cq_off + (uint64_t)a->cq_entries *
	       sizeof(struct buse_cqe) <= a->data_off &&
	       a->data_off + a->data_size <= a->region_size,
	       "ATTACH: overlapping layout sq %u cq %u data %llu+%llu region %llu",
	       a->sq_off, a->cq_off, (unsigned long long)a->data_off,
	       (unsigned long long)a->data_size,
	       (unsigned long long)a->region_size);
	LCHECK(a->slot_size >= p->max_io_bytes &&
	       a->data_size == (uint64_t)a->depth * a->slot_size,
	       "ATTACH: slot %u data %llu for depth %u max_io %u", a->slot_size,
	       (unsigned long long)a->data_size, a->depth, p->max_io_bytes);
	LCHECK(a->region_size % g_page == 0, "ATTACH: region size %llu",
	       (unsigned long long)a->region_size);
	LCHECK(!a->reserved0 && !a->reserved1, "ATTACH: reserved0/1 set");
	if (p->flags & BUSE_F_WRITE_BACK) {
		LCHECK(a->log_size == p->log_bytes && a->log_recs >= a->depth &&
		       a->log_off >= a->data_off + a->data_size &&
		       a->log_off + a->log_size <= a->region_size,
		       "ATTACH: log %llu+%llu (%u records) in region %llu, data ends %llu",
		       (unsigned long long)a->log_off,
		       (unsigned long long)a->log_size, a->log_recs,
		       (unsigned long long)a->region_size,
		       (unsigned long long)(a->data_off + a->data_size));
		/* Every tag and every record may be in the rings at once. */
		LCHECK((uint64_t)a->sq_entries >= (uint64_t)a->depth + a->log_recs &&
		       (uint64_t)a->cq_entries >= (uint64_t)a->depth + a->log_recs,
		       "ATTACH: %u sq entries for %u tags + %u records",
		       a->sq_entries, a->depth, a->log_recs);
	} else {
		LCHECK(!a->log_off && !a->log_size && !a->log_recs &&
		       !a->wb_seq_base, "ATTACH: log fields without write-back");
	}
	for (i = 0; i < sizeof(a->reserved) / sizeof(a->reserved[0]); i++)
		LCHECK(!a->reserved[i], "ATTACH: reserved[%u] set", i);
	for (i = 0; i < BUSE_MAX_CPU_WORDS; i++) {
		LCHECK(!(a->cpu_mask[i] & ~g_possible[i]),
		       "ATTACH: cpu_mask word %u names impossible CPUs %#llx", i,
		       (unsigned long long)(a->cpu_mask[i] & ~g_possible[i]));
		if (cpus) {
			LCHECK(!(cpus[i] & a->cpu_mask[i]),
			       "ATTACH: CPUs %#llx served by two queues",
			       (unsigned long long)(cpus[i] & a->cpu_mask[i]));
			cpus[i] |= a->cpu_mask[i];
		}
	}
#undef LCHECK
	return ok;
}

/* A fresh region holds nothing but zeroes (no kernel memory leaks out). */
static void check_region_zero(const struct buse_queue_attach *a, void *map,
			      struct rng *r)
{
	const char *m = map;
	uint64_t off;
	int i;

	if (a->region_size <= (8ULL << 20)) {
		CHECK(all_zero(m, a->region_size),
		      "a fresh queue region is not all zero");
		return;
	}
	CHECK(all_zero(m, a->data_off), "fresh rings are not all zero");
	for (i = 0; i < 64; i++) {
		off = a->data_off + below(r, a->data_size / g_page) * g_page;
		CHECK(all_zero(m + off, g_page),
		      "fresh data page at %llu is not zero",
		      (unsigned long long)off);
	}
}

/* ------------------------------------------------------------------------ */
/* Mode params */

static const uint32_t bs_vals[] = {
	0, 1, 256, 511, 512, 513, 1024, 1536, 2048, 3072, 4096, 8192, 65536,
	131072, 0x80000000U, UINT32_MAX,
};
static const uint32_t depth_vals[] = {
	0, 1, 2, 3, 31, 64, 127, 128, 129, 1000, 4095, 4096, 4097, 65536,
	0x80000000U, UINT32_MAX,
};
static const uint32_t io_vals[] = {
	0, 1, 512, 4095, 4096, 8192, 12288, 65536, 262144, 1U << 20, 4U << 20,
	(4U << 20) + 4096, 8U << 20, 0x80000000U, UINT32_MAX - 4095, UINT32_MAX,
};
static const uint32_t q_vals[] = {
	0, 1, 2, 3, 4, 255, 256, 257, 1024, 0x80000000U, UINT32_MAX,
};
static const uint64_t size_vals[] = {
	0, 1, 511, 512, 1024, 4096, 4097, 1ULL << 20, (1ULL << 20) + 512,
	1ULL << 40, 1ULL << 60, (1ULL << 60) + 4096, 1ULL << 62, 1ULL << 63,
	UINT64_MAX - 4095, UINT64_MAX,
};
static const uint32_t to_vals[] = {
	0, 1, 99, 100, 101, 1000, 30000, 3600000, 3600001, 0x80000000U,
	UINT32_MAX,
};
static const uint32_t disc_vals[] = {
	0, 1, 511, 512, 4096, 1U << 20, 1U << 30, (1U << 30) + 512,
	0x80000000U, UINT32_MAX,
};

static uint32_t rnd_flags(struct rng *r)
{
	switch (below(r, 10)) {
	case 0:
		return (uint32_t)rnd(r);
	case 1:
		return 1U << below(r, 32);
	case 2:
		return BUSE_F_WRITE_BACK | (uint32_t)below(r, 64);
	default:
		return (uint32_t)rnd(r) & BUSE_F_SUPPORTED &
		       ~(uint32_t)BUSE_F_RECOVERABLE;
	}
}

static void gen_params(struct rng *r, struct buse_dev_params *p)
{
	unsigned style = below(r, 10);

	memset(p, 0, sizeof(*p));
	p->dev_id = BUSE_DEV_ID_ANY;
	set_name(p, "p");
	if (style < 5) {
		/* Mostly valid, one field at a time bent. */
		p->flags = (uint32_t)rnd(r) & BUSE_F_SUPPORTED &
			   ~(uint32_t)BUSE_F_RECOVERABLE;
		p->logical_block_size = 512U << below(r, 4);
		if (chance(r, 30))
			p->logical_block_size = 0;
		p->size = (1 + below(r, 64)) << 20;
		p->nr_queues = below(r, 3);
		p->queue_depth = below(r, 65);
		p->max_io_bytes = 4096 * below(r, 33);
		p->timeout_ms = chance(r, 50) ? 0 : 100 + below(r, 10000);
		if (chance(r, 30))
			p->physical_block_size = p->logical_block_size << below(r, 3);
		if (chance(r, 30))
			p->max_discard_bytes = 4096 * below(r, 1024);
		switch (below(r, 12)) {
		case 0: p->flags = rnd_flags(r); break;
		case 1: p->logical_block_size = PICK(r, bs_vals); break;
		case 2: p->physical_block_size = PICK(r, bs_vals); break;
		case 3: p->size = PICK(r, size_vals); break;
		case 4: p->queue_depth = PICK(r, depth_vals); break;
		case 5: p->max_io_bytes = PICK(r, io_vals); break;
		case 6: p->timeout_ms = PICK(r, to_vals); break;
		case 7: p->max_discard_bytes = PICK(r, disc_vals); break;
		case 8: p->nr_queues = PICK(r, q_vals); break;
		case 9: p->reserved[below(r, 8)] = rnd(r) | 1; break;
		default: break;
		}
	} else if (style < 8) {
		/* Boundary values everywhere. */
		p->flags = chance(r, 70) ? (uint32_t)rnd(r) & BUSE_F_SUPPORTED &
					   ~(uint32_t)BUSE_F_RECOVERABLE :
					   rnd_flags(r);
		p->logical_block_size = PICK(r, bs_vals);
		p->physical_block_size = PICK(r, bs_vals);
		p->size = PICK(r, size_vals);
		p->nr_queues = PICK(r, q_vals);
		p->queue_depth = PICK(r, depth_vals);
		p->max_io_bytes = PICK(r, io_vals);
		p->timeout_ms = PICK(r, to_vals);
		p->max_discard_bytes = PICK(r, disc_vals);
	} else {
		/* Noise. */
		unsigned char *b = (unsigned char *)p;
		size_t i;

		for (i = 0; i < sizeof(*p); i++)
			b[i] = (unsigned char)rnd(r);
		if (chance(r, 50))
			memset(p->reserved, 0, sizeof(p->reserved));
		if (chance(r, 50))
			p->dev_id = BUSE_DEV_ID_ANY;
	}
	switch (below(r, 20)) {
	case 0:
		memset(p->name, 'A', sizeof(p->name));	/* no NUL */
		break;
	case 1:
		memset(p->name, 0, sizeof(p->name));
		break;
	case 2: {
		size_t i;

		for (i = 0; i < sizeof(p->name); i++)
			p->name[i] = (char)rnd(r);
		p->name[below(r, sizeof(p->name))] = '\0';
		break;
	}
	case 3:
		memset(p->name, 'n', sizeof(p->name) - 1);
		p->name[sizeof(p->name) - 1] = '\0';
		break;
	default:
		break;
	}
	if (chance(r, 10)) {
		static const uint64_t logs[] = {
			0, 1, 4095, 4096, 8192, 65536, 1 << 20, 16 << 20,
			(1ULL << 30) - 4096, 1ULL << 30, (1ULL << 30) + 4096,
			1ULL << 40, UINT64_MAX,
		};

		p->flags |= BUSE_F_WRITE_BACK;
		p->log_bytes = PICK(r, logs);
	} else if (chance(r, 5)) {
		p->log_bytes = rnd(r);	/* ignored without write-back */
	}
	if (chance(r, 10)) {
		p->flags |= BUSE_F_RECOVERABLE;
		p->recovery_timeout_ms = chance(r, 50) ? PICK(r, to_vals) :
					 (uint32_t)below(r, 5000);
	} else if (chance(r, 5)) {
		p->recovery_timeout_ms = (uint32_t)rnd(r);
	}
	/* No accidental gigabytes: shrink what would be accepted and big. */
	if (!must_refuse(p) && region_bytes(p) > MEM_CAP) {
		p->max_io_bytes = 4096;
		if (p->log_bytes > (1 << 20))
			p->log_bytes = 1 << 20;
		if (region_bytes(p) > MEM_CAP)
			p->queue_depth = 64;
	}
}

/* Accepted: check it, look at it, maybe attach to it, delete it. */
static void exercise_accepted(struct rng *r, const struct buse_dev_params *in,
			      const struct buse_dev_params *out)
{
	struct buse_queue_attach a;
	uint64_t cpus[BUSE_MAX_CPU_WORDS] = { 0 };
	struct buse_dev_info info;
	int fds[BUSE_MAX_QUEUES];
	unsigned q, nq = 0;
	int e;

	check_accepted(in, out);
	check_info_fresh(out);
	if (chance(r, 30) && region_bytes(out) <= MEM_CAP) {
		for (q = 0; q < out->nr_queues; q++) {
			e = ctl_attach(out->dev_id, q, &a);
			CHECK(!e, "ATTACH q%u of buse%u: %s", q, out->dev_id,
			      errname(e));
			if (e)
				break;
			fds[nq++] = a.fd;
			if (check_layout(out, &a, cpus) && chance(r, 50)) {
				void *m = mmap(NULL, a.region_size,
					       PROT_READ | PROT_WRITE, MAP_SHARED,
					       a.fd, 0);

				CHECK(m != MAP_FAILED, "mmap of a queue: %s",
				      errname(errno));
				if (m != MAP_FAILED) {
					check_region_zero(&a, m, r);
					munmap(m, a.region_size);
				}
			}
		}
		if (nq == out->nr_queues) {
			unsigned i;

			for (i = 0; i < BUSE_MAX_CPU_WORDS; i++)
				CHECK(cpus[i] == g_possible[i],
				      "queues serve CPUs %#llx of %#llx", (unsigned long long)cpus[i],
				      (unsigned long long)g_possible[i]);
			e = ctl_info(out->dev_id, 0, &info);
			CHECK(!e && info.state == BUSE_STATE_READY &&
			      info.nr_attached == nq &&
			      info.daemon_pid == getpid(),
			      "all attached: %s state %u attached %u pid %d",
			      errname(e), info.state, info.nr_attached,
			      info.daemon_pid);
		}
		while (nq)
			close(fds[--nq]);
	}
	e = ctl_del(out->dev_id);
	CHECK(!e, "DEL of new buse%u: %s", out->dev_id, errname(e));
	tally("del", e);
	e = ctl_del(out->dev_id);
	CHECK(e == ENOENT, "second DEL of buse%u: %s, want ENOENT",
	      out->dev_id, errname(e));
	tally("del-again", e);
	expect_gone(out->dev_id, "params");
}

/* Boundary cases the documentation says are valid: they must be accepted. */
static void params_must_accept(struct rng *r)
{
	struct buse_dev_params p, out;
	unsigned i;
	int e;

	for (i = 0; i < 12; i++) {
		memset(&p, 0, sizeof(p));
		p.dev_id = BUSE_DEV_ID_ANY;
		set_name(&p, "ok");
		p.size = 1 << 20;
		p.nr_queues = 1;
		p.max_io_bytes = 4096;
		p.queue_depth = 1;
		switch (i) {
		case 0: p.logical_block_size = 512; break;
		case 1: p.logical_block_size = 4096; p.physical_block_size = 4096; break;
		case 2: p.logical_block_size = 1024; p.physical_block_size = 2048; break;
		case 3: p.queue_depth = BUSE_MAX_DEPTH; break;
		case 4: p.max_io_bytes = BUSE_MAX_IO_BYTES; break;
		case 5: p.timeout_ms = BUSE_MAX_TIMEOUT_MS; break;
		case 6: p.flags = BUSE_F_SUPPORTED & ~(uint32_t)BUSE_F_RECOVERABLE;
			p.max_discard_bytes = BUSE_MAX_DISCARD_BYTES; break;
		case 7: memset(p.name, 'x', sizeof(p.name) - 1); break;
		case 8: memset(p.name, 0, sizeof(p.name)); break;
		case 9: p.size = 512; break;
		case 10: p.nr_queues = 0; p.queue_depth = 0; p.max_io_bytes = 0;
			p.size = 1ULL << 40; break;
		case 11: /* exactly the per-queue data limit, one queue */
			p.queue_depth = BUSE_MAX_QUEUE_DATA / BUSE_MAX_IO_BYTES;
			p.max_io_bytes = BUSE_MAX_IO_BYTES;
			break;
		}
		out = p;
		e = ctl_add(&out);
		tally("add-boundary-valid", e);
		if (e == ENOMEM)
			continue;
		CHECK(!e, "ADD of valid boundary case %u refused: %s", i,
		      errname(e));
		if (!e)
			exercise_accepted(r, &p, &out);
	}
}

static void mode_params(double until)
{
	struct buse_dev_params p, out;
	unsigned long it;
	struct rng r;
	int e;

	rng_init(&r);
	params_must_accept(&r);
	for (it = 0; it < g_iters && now() < until; it++) {
		const char *why;

		gen_params(&r, &p);
		/* A specific id: pick a free one, or one that exists. */
		if (chance(&r, 15)) {
			p.dev_id = chance(&r, 70) ? free_ids(below(&r, 2000), 1) :
				   (uint32_t)PICK(&r, ((const uint32_t[]){
					   MAX_IDS - 1, MAX_IDS, 1U << 20,
					   UINT32_MAX - 1 }));
		}
		why = must_refuse(&p);
		out = p;
		e = ctl_add(&out);
		tally(why ? "add-invalid" : "add-random", e);
		if (why) {
			CHECK(e, "ADD accepted parameters that break the '%s' rule (id %u)",
			      why, out.dev_id);
			if (!strcmp(why, "flags"))
				CHECK(e == EOPNOTSUPP || e == EINVAL || !e,
				      "ADD with unknown flags: %s",
				      errname(e));
			else
				CHECK(e == EINVAL || e == EOPNOTSUPP || !e,
				      "ADD with bad '%s': %s, want EINVAL", why,
				      errname(e));
		} else {
			CHECK(!e || e == EINVAL || e == EOPNOTSUPP ||
			      e == ENOMEM || e == EEXIST,
			      "ADD: unexpected %s", errname(e));
		}
		if (!e) {
			exercise_accepted(&r, &p, &out);
		} else if (e == EEXIST) {
			struct buse_dev_info info;

			CHECK(!ctl_info(p.dev_id, 0, &info),
			      "ADD said EEXIST for free id %u", p.dev_id);
		}
		/* ADD of an id that exists is EEXIST. */
		if (!e && chance(&r, 10)) {
			struct buse_dev_params q = p;

			q.dev_id = free_ids(below(&r, 1000), 1);
			set_name(&q, "dup");
			q.logical_block_size = 512;
			q.physical_block_size = 0;
			q.size = 1 << 20;
			q.nr_queues = 1;
			q.queue_depth = 1;
			q.max_io_bytes = 4096;
			q.flags = 0;
			q.timeout_ms = 0;
			memset(q.reserved, 0, sizeof(q.reserved));
			q.log_bytes = 0;
			q.recovery_timeout_ms = 0;
			out = q;
			e = ctl_add(&out);
			CHECK(!e, "ADD with free id %u: %s", q.dev_id, errname(e));
			if (!e) {
				struct buse_dev_params q2 = q;

				e = ctl_add(&q2);
				CHECK(e == EEXIST, "ADD of existing id %u: %s, want EEXIST",
				      q.dev_id, errname(e));
				tally("add-existing-id", e);
				if (!e)
					ctl_del(q2.dev_id);
				CHECK(!ctl_del(q.dev_id), "DEL %u", q.dev_id);
			}
		}
	}
	vlog("params: %lu iterations", it);
}

/* ------------------------------------------------------------------------ */
/* Mode ioctl */

static void *g_unmapped;	/* a page nobody may access */
static char *g_straddle;	/* RW page followed by a PROT_NONE page */
static void *g_ro;		/* read-only page */

static void setup_bad_memory(void)
{
	char *two = xmap(2 * g_page, PROT_READ | PROT_WRITE);

	/* Inaccessible (an unmapped hole would be reused by later mmaps). */
	g_unmapped = xmap(g_page, PROT_NONE);
	mprotect(two + g_page, g_page, PROT_NONE);
	g_straddle = two;
	g_ro = xmap(g_page, PROT_READ | PROT_WRITE);
}

static void *bad_ptr(struct rng *r, size_t objsize)
{
	static const uintptr_t fixed[] = {
		0, 1, 8, 4095, UINTPTR_MAX, UINTPTR_MAX - 4095,
		0xffffffff81000000UL, 0xffff888000000000UL,
		0xffffc90000000000UL, 0xffffea0000000000UL,
		0x0000800000000000UL, 0x00007ffffffff000UL,
	};

	switch (below(r, 4)) {
	case 0:
		return g_unmapped;
	case 1: /* the object crosses into the PROT_NONE page */
		return g_straddle + g_page - 1 - below(r, objsize - 1);
	case 2:
		return (void *)(0xffff800000000000UL | (rnd(r) & ~7UL));
	default:
		return (void *)PICK(r, fixed);
	}
}

static const unsigned long known_cmds[] = {
	BUSE_CTL_ADD, BUSE_CTL_ATTACH_QUEUE, BUSE_CTL_START, BUSE_CTL_DEL,
	BUSE_CTL_GET_INFO, BUSE_IOC_SYNC,
};

static bool is_known(unsigned long cmd)
{
	size_t i;

	for (i = 0; i < sizeof(known_cmds) / sizeof(known_cmds[0]); i++)
		if (cmd == known_cmds[i])
			return true;
	return false;
}

/* ioctl type bytes the VFS handles itself (FIFREEZE would freeze /dev). */
static bool vfs_type(unsigned type)
{
	return type == 0 || type == 'X' || type == 'f' || type == 'T' ||
	       type == 0x94 || type == 0x12 || type == 0x15 ||
	       type == BUSE_IOC_MAGIC;
}

/* Unknown numbers: our magic must be ENOTTY; others must just return. */
static void unknown_ioctls(struct rng *r, int fd, const char *what)
{
	static char junk[1 << 14];
	char name[64];
	unsigned i;
	int e;

	for (i = 0; i < sizeof(junk); i++)
		junk[i] = (char)rnd(r);
	for (i = 0; i < 64; i++) {
		unsigned long cmd = _IOC(below(r, 4), BUSE_IOC_MAGIC,
					 below(r, 256), below(r, 1 << 14));
		unsigned long arg = chance(r, 50) ? (unsigned long)junk :
				    (unsigned long)bad_ptr(r, 64);

		if (i < 4) /* right number, wrong direction or size */
			cmd = _IOC(_IOC_READ, BUSE_IOC_MAGIC, i,
				   sizeof(struct buse_dev_params) + 8);
		if (is_known(cmd))
			continue;
		e = xioctl(fd, cmd, arg, "unknown ioctl");
		snprintf(name, sizeof(name), "%s-unknown-b5", what);
		tally(name, e);
		CHECK(e == ENOTTY, "%s: ioctl %#lx: %s, want ENOTTY", what, cmd,
		      errname(e));
	}
	for (i = 0; i < 64; i++) {
		unsigned long cmd = (unsigned long)(uint32_t)rnd(r);

		if (vfs_type(_IOC_TYPE(cmd)))
			continue;
		e = xioctl(fd, cmd, (unsigned long)junk, "random ioctl");
		snprintf(name, sizeof(name), "%s-random-ioctl", what);
		tally(name, e);
	}
}

/* Create a small device for misuse tests. */
static int small_dev(struct rng *r, struct buse_dev_params *p, unsigned nq,
		     const char *what)
{
	int e;

	memset(p, 0, sizeof(*p));
	p->dev_id = BUSE_DEV_ID_ANY;
	set_name(p, what);
	p->size = 1 << 20;
	p->nr_queues = nq;
	p->queue_depth = 1 + below(r, 8);
	p->max_io_bytes = 4096;
	p->timeout_ms = 1000;
	e = ctl_add(p);
	CHECK(!e, "ADD of a small device: %s", errname(e));
	return e;
}

static void bad_pointers(struct rng *r)
{
	struct buse_dev_params p, *pp;
	struct buse_queue_attach *ap;
	struct buse_dev_info *ip;
	int e, i, fds[16];
	size_t n;
	long id;

	for (i = 0; i < 24; i++) {
		e = xioctl(g_ctl, BUSE_CTL_ADD,
			   (unsigned long)bad_ptr(r, sizeof(p)), "ADD(bad)");
		tally("add-badptr", e);
		CHECK(e == EFAULT, "ADD with a bad pointer: %s, want EFAULT",
		      errname(e));
		e = xioctl(g_ctl, BUSE_CTL_ATTACH_QUEUE,
			   (unsigned long)bad_ptr(r, sizeof(*ap)), "ATTACH(bad)");
		tally("attach-badptr", e);
		CHECK(e == EFAULT, "ATTACH with a bad pointer: %s, want EFAULT",
		      errname(e));
		e = xioctl(g_ctl, BUSE_CTL_GET_INFO,
			   (unsigned long)bad_ptr(r, sizeof(*ip)), "INFO(bad)");
		tally("info-badptr", e);
		CHECK(e == EFAULT, "GET_INFO with a bad pointer: %s, want EFAULT",
		      errname(e));
	}

	/* START and DEL take an id; anything above 32 bits is EINVAL. */
	{
		static const unsigned long big[] = {
			1UL << 32, (1UL << 32) | 1, ULONG_MAX,
			0xffffffff81000000UL,
		};
		unsigned k;

		for (k = 0; k < 4; k++) {
			e = xioctl(g_ctl, BUSE_CTL_START, big[k], "START(big)");
			CHECK(e == EINVAL, "START %#lx: %s, want EINVAL", big[k],
			      errname(e));
			tally("start-bigarg", e);
			e = xioctl(g_ctl, BUSE_CTL_DEL, big[k], "DEL(big)");
			CHECK(e == EINVAL, "DEL %#lx: %s, want EINVAL", big[k],
			      errname(e));
			tally("del-bigarg", e);
		}
	}

	/* ADD whose result cannot be written back: EFAULT, no device left. */
	pp = g_ro;
	mprotect(g_ro, g_page, PROT_READ | PROT_WRITE);
	memset(pp, 0, sizeof(*pp));
	pp->dev_id = BUSE_DEV_ID_ANY;
	set_name(pp, "ro");
	pp->size = 1 << 20;
	pp->nr_queues = 1;
	pp->queue_depth = 1;
	pp->max_io_bytes = 4096;
	mprotect(g_ro, g_page, PROT_READ);
	e = xioctl(g_ctl, BUSE_CTL_ADD, (unsigned long)pp, "ADD(ro)");
	tally("add-readonly-arg", e);
	CHECK(e == EFAULT, "ADD into a read-only buffer: %s, want EFAULT",
	      errname(e));
	id = find_by_name(pp->name);
	CHECK(id < 0, "ADD failed with EFAULT but left buse%ld behind", id);
	if (id >= 0)
		ctl_del(id);

	/* GET_INFO into read-only memory: EFAULT. */
	if (small_dev(r, &p, 1, "ro2"))
		return;
	ip = g_ro;
	mprotect(g_ro, g_page, PROT_READ | PROT_WRITE);
	memset(ip, 0, sizeof(*ip));
	ip->dev_id = p.dev_id;
	mprotect(g_ro, g_page, PROT_READ);
	e = xioctl(g_ctl, BUSE_CTL_GET_INFO, (unsigned long)ip, "INFO(ro)");
	tally("info-readonly-arg", e);
	CHECK(e == EFAULT, "GET_INFO into a read-only buffer: %s, want EFAULT",
	      errname(e));

	/* ATTACH into read-only memory: EFAULT; the fd exists (documented in
	 * buse_main.c), closing it releases the queue. */
	ap = g_ro;
	mprotect(g_ro, g_page, PROT_READ | PROT_WRITE);
	memset(ap, 0, sizeof(*ap));
	ap->dev_id = p.dev_id;
	ap->qid = 0;
	mprotect(g_ro, g_page, PROT_READ);
	n = leaked_queue_fds(fds, 16);
	CHECK(n == 0, "%zu queue fds open before the read-only ATTACH", n);
	e = xioctl(g_ctl, BUSE_CTL_ATTACH_QUEUE, (unsigned long)ap, "ATTACH(ro)");
	tally("attach-readonly-arg", e);
	CHECK(e == EFAULT, "ATTACH into a read-only buffer: %s, want EFAULT",
	      errname(e));
	n = leaked_queue_fds(fds, 16);
	tally("attach-readonly-fd-installed", n ? 0 : ENOENT);
	while (n)
		close(fds[--n]);
	e = ctl_del(p.dev_id);
	CHECK(!e, "DEL after read-only ATTACH: %s", errname(e));
	expect_gone(p.dev_id, "read-only ATTACH");
}

/* Every step of a device's life, done in the wrong order. */
static void lifecycle_misuse(struct rng *r)
{
	struct buse_queue_attach a;
	struct buse_dev_params p;
	struct buse_dev_info info;
	int fds[BUSE_MAX_QUEUES];
	unsigned q, nq;
	uint32_t nx;
	long n;
	int e;

	if (small_dev(r, &p, 0, "life"))
		return;
	nq = p.nr_queues;
	e = ctl_start(p.dev_id);
	CHECK(e == EBUSY, "START before ATTACH: %s, want EBUSY", errname(e));
	tally("start-unattached", e);
	e = ctl_attach(p.dev_id, nq, &a);
	CHECK(e == EINVAL, "ATTACH qid %u of %u: %s, want EINVAL", nq, nq,
	      errname(e));
	tally("attach-bad-qid", e);
	e = ctl_attach(p.dev_id, UINT32_MAX - (uint32_t)below(r, 3), &a);
	CHECK(e == EINVAL, "ATTACH huge qid: %s, want EINVAL", errname(e));
	tally("attach-bad-qid", e);
	nx = free_ids(MAX_IDS - 64, 1);
	e = ctl_attach(nx, 0, &a);
	CHECK(e == ENOENT, "ATTACH of missing buse%u: %s, want ENOENT", nx,
	      errname(e));
	tally("attach-missing", e);
	e = ctl_start(nx);
	CHECK(e == ENOENT, "START of missing buse%u: %s", nx, errname(e));
	e = ctl_del(nx);
	CHECK(e == ENOENT, "DEL of missing buse%u: %s", nx, errname(e));
	e = ctl_del(UINT32_MAX);
	CHECK(e == ENOENT, "DEL of id 0xffffffff: %s", errname(e));
	e = ctl_attach(UINT32_MAX, 0, &a);
	CHECK(e == ENOENT, "ATTACH of id 0xffffffff: %s", errname(e));

	for (q = 0; q < nq; q++) {
		e = ctl_attach(p.dev_id, q, &a);
		CHECK(!e, "ATTACH q%u: %s", q, errname(e));
		fds[q] = e ? -1 : a.fd;
		if (!e && q == 0) {
			struct buse_queue_attach b;

			e = ctl_attach(p.dev_id, q, &b);
			CHECK(e == EBUSY, "second ATTACH of q0: %s, want EBUSY",
			      errname(e));
			tally("attach-twice", e);
			if (!e)
				close(b.fd);
			if (nq > 1) {
				e = ctl_start(p.dev_id);
				CHECK(e == EBUSY, "START half attached: %s",
				      errname(e));
			}
		}
	}
	e = ctl_info(p.dev_id, 0, &info);
	CHECK(!e && info.state == BUSE_STATE_READY && info.nr_attached == nq,
	      "attached: state %u, %u attached", info.state, info.nr_attached);
	if (fds[0] >= 0) {
		n = WD("SYNC", ioctl(fds[0], BUSE_IOC_SYNC, 2UL));
		CHECK(n < 0 && errno == EINVAL, "SYNC flags 2: %ld %s", n,
		      errname(n < 0 ? errno : 0));
		n = WD("SYNC", ioctl(fds[0], BUSE_IOC_SYNC, 0UL));
		CHECK(n == 0, "SYNC of an idle queue: %ld %s", n,
		      errname(n < 0 ? errno : 0));
		unknown_ioctls(r, fds[0], "queue");
		e = xioctl(fds[0], BUSE_CTL_ADD, (unsigned long)&p, "ADD on queue");
		CHECK(e == ENOTTY, "BUSE_CTL_ADD on a queue fd: %s", errname(e));
		close(fds[0]);
		fds[0] = -1;
		e = ctl_info(p.dev_id, 0, &info);
		CHECK(!e && info.nr_attached == nq - 1 &&
		      info.state != BUSE_STATE_READY &&
		      info.state != BUSE_STATE_LIVE,
		      "after closing q0: state %u, %u attached", info.state,
		      info.nr_attached);
		e = ctl_attach(p.dev_id, 0, &a);
		tally("attach-after-close", e);
		CHECK(e, "ATTACH of a dead queue of a non-recoverable device worked");
		if (!e)
			close(a.fd);
		e = ctl_start(p.dev_id);
		CHECK(e, "START with a dead queue worked");
	}
	e = ctl_del(p.dev_id);
	CHECK(!e, "DEL: %s", errname(e));
	e = ctl_del(p.dev_id);
	CHECK(e == ENOENT, "DEL twice: %s, want ENOENT", errname(e));
	e = ctl_attach(p.dev_id, 0, &a);
	CHECK(e == ENOENT, "ATTACH after DEL: %s, want ENOENT", errname(e));
	e = ctl_start(p.dev_id);
	CHECK(e == ENOENT, "START after DEL: %s, want ENOENT", errname(e));
	for (q = 1; q < nq; q++) {
		if (fds[q] < 0)
			continue;
		n = WD("SYNC", ioctl(fds[q], BUSE_IOC_SYNC, BUSE_SYNC_WAIT));
		CHECK(n < 0 && errno == ENODEV, "SYNC WAIT after DEL: %ld %s",
		      n, errname(n < 0 ? errno : 0));
		close(fds[q]);
	}
	expect_gone(p.dev_id, "lifecycle");

	/* Recoverable: a closed queue is orphaned and can be attached again. */
	memset(&p, 0, sizeof(p));
	p.dev_id = BUSE_DEV_ID_ANY;
	set_name(&p, "life-rec");
	p.size = 1 << 20;
	p.nr_queues = 1;
	p.queue_depth = 1 + below(r, 8);
	p.max_io_bytes = 4096;
	p.flags = BUSE_F_RECOVERABLE | (chance(r, 50) ? BUSE_F_WRITE_BACK : 0);
	p.recovery_timeout_ms = 1000;
	e = ctl_add(&p);
	CHECK(!e, "ADD recoverable: %s", errname(e));
	if (e)
		return;
	for (q = 0; q < 3; q++) {
		e = ctl_attach(p.dev_id, 0, &a);
		CHECK(!e, "ATTACH #%u of a recoverable queue: %s", q, errname(e));
		if (e)
			break;
		check_layout(&p, &a, NULL);
		if (q == 0) {
			struct buse_queue_attach b;

			e = ctl_attach(p.dev_id, 0, &b);
			CHECK(e == EBUSY, "second ATTACH of an attached "
			      "recoverable queue: %s", errname(e));
			if (!e)
				close(b.fd);
		}
		close(a.fd);
		e = ctl_info(p.dev_id, 0, &info);
		CHECK(!e && info.state == BUSE_STATE_ORPHANED &&
		      info.nr_attached == 0,
		      "closed recoverable queue: state %u, %u attached",
		      info.state, info.nr_attached);
	}
	e = ctl_del(p.dev_id);
	CHECK(!e, "DEL of an orphaned device: %s", errname(e));
	e = ctl_attach(p.dev_id, 0, &a);
	CHECK(e == ENOENT, "ATTACH after DEL of an orphaned device: %s",
	      errname(e));
	expect_gone(p.dev_id, "lifecycle-recoverable");
}

static void info_flags(struct rng *r)
{
	struct buse_dev_info info;
	unsigned i;
	int e;

	for (i = 0; i < 32; i++) {
		uint32_t flags = (uint32_t)rnd(r) & ~(uint32_t)BUSE_INFO_NEXT;
		uint32_t id = chance(r, 50) ? (uint32_t)rnd(r) :
			      (uint32_t)below(r, 100);

		if (!flags)
			flags = 2;
		e = ctl_info(id, flags | (uint32_t)below(r, 2), &info);
		CHECK(e == EINVAL, "GET_INFO flags %#x: %s, want EINVAL",
		      flags, errname(e));
		tally("info-badflags", e);
		e = ctl_info(id, BUSE_INFO_NEXT, &info);
		CHECK(e == ENOENT || (!e && info.dev_id >= id),
		      "GET_INFO NEXT from %u: %s id %u", id, errname(e),
		      info.dev_id);
		tally("info-next", e);
		CHECK(e || info.flags == BUSE_INFO_NEXT || info.flags == 0,
		      "GET_INFO NEXT flags out %#x", info.flags);
	}
}

/* Threads racing control operations over a few ids of our own. */
struct chaos {
	uint32_t base;
	double until;
	atomic_int adds, dels, starts;
};

static void *chaos_thread(void *arg)
{
	struct chaos *c = arg;
	struct rng r;

	rng_init(&r);
	wd_enter();
	while (now() < c->until) {
		uint32_t id = c->base + (uint32_t)below(&r, 4);
		struct buse_dev_params p;
		struct buse_queue_attach a;
		struct buse_dev_info info;
		int e;

		switch (below(&r, 6)) {
		case 0:
			memset(&p, 0, sizeof(p));
			p.dev_id = id;
			set_name(&p, "chaos");
			p.size = 1 << 20;
			p.nr_queues = (uint32_t)below(&r, 3);
			p.queue_depth = 1 + (uint32_t)below(&r, 4);
			p.max_io_bytes = 4096;
			p.timeout_ms = 100;
			e = ctl_add(&p);
			CHECK(!e || e == EEXIST, "chaos ADD %u: %s", id,
			      errname(e));
			tally("chaos-add", e);
			break;
		case 1:
			e = ctl_del(id);
			CHECK(!e || e == ENOENT, "chaos DEL %u: %s", id,
			      errname(e));
			tally("chaos-del", e);
			break;
		case 2:
		case 3:
			e = ctl_attach(id, (uint32_t)below(&r, 3), &a);
			CHECK(!e || e == ENOENT || e == EINVAL || e == EBUSY ||
			      e == ENODEV, "chaos ATTACH %u: %s", id,
			      errname(e));
			tally("chaos-attach", e);
			if (!e) {
				if (chance(&r, 50))
					WD("SYNC", ioctl(a.fd, BUSE_IOC_SYNC, 0UL));
				close(a.fd);
			}
			break;
		case 4:
			e = ctl_start(id);
			CHECK(!e || e == ENOENT || e == EBUSY || e == ENODEV ||
			      e == EALREADY, "chaos START %u: %s", id,
			      errname(e));
			tally("chaos-start", e);
			break;
		default:
			e = ctl_info(id, (uint32_t)below(&r, 2), &info);
			CHECK(!e || e == ENOENT, "chaos GET_INFO %u: %s", id,
			      errname(e));
			break;
		}
	}
	wd_leave();
	return NULL;
}

static void chaos(struct rng *r, double secs)
{
	struct chaos c = { .base = free_ids(100 + below(r, 1000), 4) };
	pthread_t t[6];
	unsigned i, k;

	c.until = now() + secs;
	for (i = 0; i < 6; i++)
		pthread_create(&t[i], NULL, chaos_thread, &c);
	for (i = 0; i < 6; i++)
		pthread_join(t[i], NULL);
	for (k = 0; k < 4; k++) {
		int e = ctl_del(c.base + k);

		CHECK(!e || e == ENOENT, "chaos cleanup DEL: %s", errname(e));
		if (!e)
			expect_gone(c.base + k, "chaos");
	}
}

static void mode_ioctl(double until)
{
	unsigned long it;
	struct rng r;
	int e;

	rng_init(&r);
	setup_bad_memory();
	for (it = 0; it < g_iters && now() < until; it++) {
		switch (it % 5) {
		case 0:
			bad_pointers(&r);
			break;
		case 1:
			lifecycle_misuse(&r);
			break;
		case 2:
			unknown_ioctls(&r, g_ctl, "ctl");
			e = xioctl(g_ctl, BUSE_IOC_SYNC, 0, "SYNC on ctl");
			CHECK(e == ENOTTY, "SYNC on the control node: %s",
			      errname(e));
			break;
		case 3:
			info_flags(&r);
			break;
		case 4:
			if (until - now() > 3)
				chaos(&r, 1 + below(&r, 2));
			break;
		}
	}
	vlog("ioctl: %lu iterations", it);
}

/* ------------------------------------------------------------------------ */
/* Mode mmap */

static void mmap_round(struct rng *r)
{
	struct buse_queue_attach a;
	struct buse_dev_params p;
	size_t rs;
	char *m, *m2, *m3;
	int pipefd[2] = { -1, -1 };
	int e, status;
	pid_t pid;
	void *x;

	memset(&p, 0, sizeof(p));
	p.dev_id = BUSE_DEV_ID_ANY;
	set_name(&p, "mmap");
	p.size = 1 << 20;
	p.nr_queues = 1;
	p.queue_depth = 1 + below(r, 8);
	p.max_io_bytes = 4096 * (1 + below(r, 4));
	e = ctl_add(&p);
	CHECK(!e, "mmap: ADD %s", errname(e));
	if (e)
		return;
	e = ctl_attach(p.dev_id, 0, &a);
	CHECK(!e, "mmap: ATTACH %s", errname(e));
	if (e || !check_layout(&p, &a, NULL))
		goto out_del;
	rs = a.region_size;

	/* Wrong shapes: refused. */
	{
		static const struct {
			long dlen;	/* added to the size, in pages */
			long off;	/* pages */
			int flags;
		} bad[] = {
			{ -1, 0, MAP_SHARED }, { 1, 0, MAP_SHARED },
			{ 1000, 0, MAP_SHARED }, { 0, 1, MAP_SHARED },
			{ -1, 1, MAP_SHARED }, { 0, 1L << 30, MAP_SHARED },
			{ 0, 0, MAP_PRIVATE },
		};
		size_t i;

		for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			size_t len = rs + bad[i].dlen * g_page;

			x = mmap(NULL, len, PROT_READ | PROT_WRITE, bad[i].flags,
				 a.fd, bad[i].off * g_page);
			tally("mmap-bad-shape", x == MAP_FAILED ? errno : 0);
			CHECK(x == MAP_FAILED,
			      "mmap of %zu bytes at page %ld, flags %#x worked",
			      len, bad[i].off, bad[i].flags);
			if (x != MAP_FAILED)
				munmap(x, len);
		}
	}
	x = mmap(NULL, rs - 1, PROT_READ, MAP_SHARED, a.fd, 0);
	tally("mmap-size-minus-1", x == MAP_FAILED ? errno : 0);
	if (x != MAP_FAILED)
		munmap(x, rs - 1);
	x = mmap(NULL, rs, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_SHARED, a.fd, 0);
	tally("mmap-exec", x == MAP_FAILED ? errno : 0);
	if (x != MAP_FAILED)
		munmap(x, rs);
	x = mmap(NULL, rs, PROT_READ, MAP_SHARED, a.fd, 0);
	CHECK(x != MAP_FAILED, "read-only mmap: %s", errname(errno));
	if (x != MAP_FAILED) {
		tally("mprotect-rw", mprotect(x, rs, PROT_READ | PROT_WRITE) ?
			     errno : 0);
		munmap(x, rs);
	}
	x = mmap(NULL, g_page, PROT_READ, MAP_SHARED, g_ctl, 0);
	tally("mmap-ctl", x == MAP_FAILED ? errno : 0);
	CHECK(x == MAP_FAILED, "mmap of the control node worked");
	if (x != MAP_FAILED)
		munmap(x, g_page);

	/* The real mapping: zero, shared between two mappings. */
	m = mmap(NULL, rs, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE,
		 a.fd, 0);
	CHECK(m != MAP_FAILED, "mmap: %s", errname(errno));
	if (m == MAP_FAILED)
		goto out_close;
	check_region_zero(&a, m, r);
	memset(m + a.data_off, 0x5a, a.data_size);
	m2 = mmap(NULL, rs, PROT_READ | PROT_WRITE, MAP_SHARED, a.fd, 0);
	CHECK(m2 != MAP_FAILED, "second mmap: %s", errname(errno));
	if (m2 != MAP_FAILED) {
		CHECK((unsigned char)m2[a.data_off + a.data_size - 1] == 0x5a,
		      "two mappings of one queue differ");
		munmap(m2, rs);
	}

	/* mremap: growing must not work (nothing backs it); others may. */
	x = mremap(m, rs, rs + g_page, MREMAP_MAYMOVE);
	tally("mremap-grow", x == MAP_FAILED ? errno : 0);
	if (x != MAP_FAILED) {
		FAIL("mremap grew a queue mapping beyond the region");
		m = x;
		munmap(m + rs, g_page);
	}
	m2 = mmap(NULL, rs, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	x = mremap(m, rs, rs, MREMAP_MAYMOVE | MREMAP_FIXED, m2);
	tally("mremap-move", x == MAP_FAILED ? errno : 0);
	if (x != MAP_FAILED)
		m = x;
	else
		munmap(m2, rs);
	if (rs > (size_t)g_page) {
		x = mremap(m, rs, rs - g_page, 0);
		tally("mremap-shrink", x == MAP_FAILED ? errno : 0);
		if (x != MAP_FAILED) {
			munmap(m, rs - g_page);
			m = mmap(NULL, rs, PROT_READ | PROT_WRITE, MAP_SHARED,
				 a.fd, 0);
			CHECK(m != MAP_FAILED, "mmap again: %s", errname(errno));
			if (m == MAP_FAILED)
				goto out_close;
		}
	}
	CHECK((unsigned char)m[a.data_off] == 0x5a, "region content lost");

	/* madvise: whatever the answer, the kernel's side stays intact. */
	{
		static const int advs[] = {
			MADV_WILLNEED, MADV_COLD, MADV_PAGEOUT, MADV_REMOVE,
			MADV_MERGEABLE, MADV_UNMERGEABLE, MADV_DONTDUMP,
			MADV_DODUMP, MADV_HUGEPAGE, MADV_NOHUGEPAGE, MADV_FREE,
			MADV_WIPEONFORK, MADV_KEEPONFORK, MADV_SEQUENTIAL,
			MADV_RANDOM, MADV_NORMAL,
#ifdef MADV_POPULATE_READ
			MADV_POPULATE_READ, MADV_POPULATE_WRITE,
#endif
#ifdef MADV_COLLAPSE
			MADV_COLLAPSE,
#endif
		};
		char name[32];
		size_t i;

		for (i = 0; i < sizeof(advs) / sizeof(advs[0]); i++) {
			snprintf(name, sizeof(name), "madvise-%d", advs[i]);
			tally(name, madvise(m, rs, advs[i]) ? errno : 0);
		}
		tally("mlock", mlock(m, rs) ? errno : 0);
		munlock(m, rs);
		CHECK((unsigned char)m[a.data_off] == 0x5a,
		      "region content lost after madvise");
	}

	/* fork: VM_DONTCOPY hides the mapping from the child; MADV_DOFORK
	 * shares it.  The child may use the inherited fd. */
	pid = fork();
	if (pid == 0) {
		long n;

		if (!msync(m, g_page, MS_ASYNC) || errno != ENOMEM)
			_exit(10);
		n = ioctl(a.fd, BUSE_IOC_SYNC, 0UL);
		_exit(n == 0 ? 0 : 11);
	}
	CHECK(pid > 0, "fork: %s", errname(errno));
	if (pid > 0) {
		WD("waitpid", waitpid(pid, &status, 0));
		CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "fork child: status %#x (10: mapping inherited, 11: SYNC failed)",
		      status);
	}
	if (!madvise(m, rs, MADV_DOFORK)) {
		pid = fork();
		if (pid == 0) {
			if ((unsigned char)m[a.data_off] != 0x5a)
				_exit(12);
			m[a.data_off + 1] = 0x33;
			_exit(0);
		}
		if (pid > 0) {
			WD("waitpid", waitpid(pid, &status, 0));
			CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
			      "MADV_DOFORK child: status %#x", status);
			CHECK(m[a.data_off + 1] == 0x33,
			      "MADV_DOFORK child's write not shared");
		}
	}

	/* Pin the region's pages in a pipe, then let the region go. */
	if (!pipe(pipefd)) {
		struct iovec iov = { m + a.data_off, (size_t)g_page };
		ssize_t n;

		m[a.data_off + 1] = 0x5a;
		n = vmsplice(pipefd[1], &iov, 1, 0);
		tally("vmsplice", n < 0 ? errno : 0);
		if (n < 0) {
			close(pipefd[0]);
			close(pipefd[1]);
			pipefd[0] = -1;
		}
	}

	/* MADV_DONTNEED: our PTEs go, the kernel's pages stay. */
	tally("madvise-dontneed", madvise(m, rs, MADV_DONTNEED) ? errno : 0);
	m3 = mmap(NULL, rs, PROT_READ | PROT_WRITE, MAP_SHARED, a.fd, 0);
	CHECK(m3 != MAP_FAILED, "mmap after DONTNEED: %s", errname(errno));
	if (m3 != MAP_FAILED) {
		CHECK((unsigned char)m3[a.data_off] == 0x5a,
		      "region content lost after MADV_DONTNEED");
		munmap(m3, rs);
	}
	munmap(m, rs);

	/* Plain file operations on the queue fd. */
	{
		char b[16];

		tally("queue-read", read(a.fd, b, sizeof(b)) < 0 ? errno : 0);
		tally("queue-write", write(a.fd, b, sizeof(b)) < 0 ? errno : 0);
		tally("queue-lseek", lseek(a.fd, 10, SEEK_SET) < 0 ? errno : 0);
		tally("queue-ftruncate", ftruncate(a.fd, 0) ? errno : 0);
		tally("ctl-read", read(g_ctl, b, sizeof(b)) < 0 ? errno : 0);
		tally("ctl-write", write(g_ctl, b, sizeof(b)) < 0 ? errno : 0);
	}

	/* DEL with the fd open: SYNC says ENODEV, the region stays usable. */
	e = ctl_del(p.dev_id);
	CHECK(!e, "mmap: DEL %s", errname(e));
	{
		long n = WD("SYNC", ioctl(a.fd, BUSE_IOC_SYNC, BUSE_SYNC_WAIT));

		CHECK(n < 0 && errno == ENODEV, "SYNC after DEL: %ld %s", n,
		      errname(n < 0 ? errno : 0));
	}
	m = mmap(NULL, rs, PROT_READ | PROT_WRITE, MAP_SHARED, a.fd, 0);
	tally("mmap-after-del", m == MAP_FAILED ? errno : 0);
	if (m != MAP_FAILED) {
		CHECK((unsigned char)m[a.data_off] == 0x5a,
		      "region content changed after DEL");
		munmap(m, rs);
	}
	close(a.fd);
	a.fd = -1;
	expect_gone(p.dev_id, "mmap");

	/* The region is freed by now; the pipe still holds its page. */
	if (pipefd[0] >= 0) {
		char *buf = malloc(g_page);
		ssize_t n = read(pipefd[0], buf, g_page);

		CHECK(n == g_page && (unsigned char)buf[0] == 0x5a &&
		      (unsigned char)buf[1] == 0x5a &&
		      (unsigned char)buf[g_page - 1] == 0x5a,
		      "a page pinned in a pipe changed after the region was freed (%zd bytes, %#x %#x)",
		      n, n > 0 ? (unsigned char)buf[0] : 0,
		      n > 1 ? (unsigned char)buf[1] : 0);
		free(buf);
		close(pipefd[0]);
		close(pipefd[1]);
	}
	return;

out_close:
	close(a.fd);
out_del:
	e = ctl_del(p.dev_id);
	CHECK(!e, "mmap: DEL %s", errname(e));
}

static void mode_mmap(double until)
{
	unsigned long it;
	struct rng r;

	rng_init(&r);
	for (it = 0; it < g_iters && now() < until; it++)
		mmap_round(&r);
	vlog("mmap: %lu iterations", it);
}

/* ------------------------------------------------------------------------ */
/* Mode addrace: ADD's failure path must not delete someone else's device */

struct add_blocked {
	void *arg;
	int err;
};

static void *add_blocked_thread(void *arg)
{
	struct add_blocked *b = arg;

	wd_enter();
	b->err = xioctl(g_ctl, BUSE_CTL_ADD, (unsigned long)b->arg, "ADD(uffd)");
	wd_leave();
	return NULL;
}

static void mode_addrace(double until)
{
	struct uffdio_api api = {
		.api = UFFD_API,
		.features = UFFD_FEATURE_PAGEFAULT_FLAG_WP,
	};
	struct uffdio_register reg;
	struct uffdio_writeprotect wp;
	struct uffdio_range wake;
	struct buse_dev_params *page, victim = { 0 };
	struct buse_dev_info info;
	struct add_blocked b;
	struct uffd_msg msg;
	struct pollfd pfd;
	char name[BUSE_NAME_LEN];
	pthread_t t;
	long id;
	int uffd, e;

	(void)until;
	uffd = syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (uffd < 0 || ioctl(uffd, UFFDIO_API, &api) ||
	    !(api.features & UFFD_FEATURE_PAGEFAULT_FLAG_WP)) {
		printf("buse-hostile: addrace: no userfaultfd write-protect (%s), skipped\n",
		       errname(errno));
		tally("addrace-skipped", errno);
		if (uffd >= 0)
			close(uffd);
		return;
	}
	page = xmap(g_page, PROT_READ | PROT_WRITE);
	memset(page, 0, sizeof(*page));
	page->dev_id = BUSE_DEV_ID_ANY;
	set_name(page, "uffd");
	memcpy(name, page->name, sizeof(name));
	page->size = 1 << 20;
	page->nr_queues = 1;
	page->queue_depth = 1;
	page->max_io_bytes = 4096;
	reg.range.start = (uintptr_t)page;
	reg.range.len = g_page;
	reg.mode = UFFDIO_REGISTER_MODE_WP;
	wp.range = reg.range;
	wp.mode = UFFDIO_WRITEPROTECT_MODE_WP;
	if (ioctl(uffd, UFFDIO_REGISTER, &reg) ||
	    ioctl(uffd, UFFDIO_WRITEPROTECT, &wp)) {
		printf("buse-hostile: addrace: cannot write-protect (%s), skipped\n",
		       errname(errno));
		tally("addrace-skipped", errno);
		close(uffd);
		munmap(page, g_page);
		return;
	}
	b.arg = page;
	b.err = -1;
	pthread_create(&t, NULL, add_blocked_thread, &b);

	/* ADD now sits in copy_to_user(), its device already in the table. */
	pfd.fd = uffd;
	pfd.events = POLLIN;
	e = WD("poll(uffd)", poll(&pfd, 1, 10000));
	if (e == 1 && read(uffd, &msg, sizeof(msg)) == sizeof(msg) &&
	    msg.event == UFFD_EVENT_PAGEFAULT) {
		tally("addrace-add-blocked", 0);
		id = find_by_name(name);
		tally("addrace-half-added-visible", id >= 0 ? 0 : ENOENT);
		if (id >= 0) {
			/* An admin deletes it, someone else gets the id. */
			e = ctl_del(id);
			CHECK(!e, "addrace: DEL %ld: %s", id, errname(e));
			memset(&victim, 0, sizeof(victim));
			victim.dev_id = id;
			set_name(&victim, "victim");
			victim.size = 1 << 20;
			victim.nr_queues = 1;
			victim.queue_depth = 1;
			victim.max_io_bytes = 4096;
			e = ctl_add(&victim);
			CHECK(!e, "addrace: ADD of id %ld: %s", id, errname(e));
		}
	} else {
		tally("addrace-add-not-blocked", 0);
		id = -1;
	}
	/* Make the blocked copy fail: the page goes, the fault is retried. */
	munmap(page, g_page);
	wake.start = reg.range.start;
	wake.len = g_page;
	ioctl(uffd, UFFDIO_WAKE, &wake);
	WD("join ADD(uffd)", pthread_join(t, NULL));
	close(uffd);
	tally("addrace-add", b.err);
	CHECK(b.err == EFAULT || id < 0,
	      "addrace: blocked ADD returned %s, want EFAULT", errname(b.err));
	if (id >= 0) {
		e = ctl_info(id, 0, &info);
		CHECK(!e && !strncmp(info.params.name, victim.name, BUSE_NAME_LEN),
		      "BUSE_CTL_ADD failing with EFAULT deleted buse%ld, a device "
		      "created by someone else after its own was deleted (GET_INFO: %s): "
		      "buse_ctl_add() cleans up with buse_dev_del(p.dev_id), by id",
		      id, errname(e));
		if (!e)
			ctl_del(id);
	}
	id = find_by_name(name);
	CHECK(id < 0, "addrace: the failed ADD's device buse%ld is still there",
	      id);
	if (id >= 0)
		ctl_del(id);
}

/* ------------------------------------------------------------------------ */
/* Mode daemon: a hostile daemon under I/O */

enum behave {
	B_POLITE, B_EIO, B_SILENT, B_RANDSTATUS, B_GARBAGE, B_CQTAIL,
	B_SCRIBBLE, B_NOSQHEAD, B_SYNCFLAGS, B_STORM, B_SELFIO, B_NOACK,
	B_MIX, NR_BEHAVE
};
static const char *const behave_name[NR_BEHAVE] = {
	"polite", "eio", "silent", "randstatus", "garbage", "cqtail",
	"scribble", "nosqhead", "syncflags", "storm", "selfio", "noack",
	"mix",
};

enum variant {
	V_DELRACE = 1 << 0,	/* DEL from another thread mid-I/O */
	V_CLOSEFD = 1 << 1,	/* another thread closes a queue fd (mapped) */
	V_SELFUNMAP = 1 << 2,	/* the daemon unmaps and closes its queue */
	V_UNMAPONLY = 1 << 3,	/* the daemon unmaps and stops, fd kept */
	V_PROC = 1 << 4,	/* the daemon is a child process, SIGKILLed */
	V_STARTRACE = 1 << 5,	/* DEL races with START */
	V_REATTACH = 1 << 6,	/* recoverable: a new daemon takes over */
};

/* A stuck DEL or I/O is failed after this long, and then unblocked by
 * killing our own daemon, so that one hang does not poison what follows. */
#define RESCUE_S	20.0

struct hdev;

struct hq {
	struct hdev *d;
	unsigned qid;
	int fd;
	char *map;
	size_t map_len;
	struct buse_queue_attach a;
	uint32_t sq_head;	/* next sqe to read */
	uint32_t cq_tail;	/* our producer index */
	uint32_t committed;	/* what the kernel has consumed */
	atomic_int tainted;	/* we scribbled: sqes may be ours */
	atomic_int closed;	/* fd replaced by /dev/null */
	double action_at;	/* V_SELFUNMAP/V_UNMAPONLY time */
	int action;
	bool reattach;		/* V_REATTACH after the action */
	atomic_ulong writes;
	struct { uint32_t tag, cookie; } hist[64];
	unsigned nhist;
	pthread_t thr, storm[3];
	int nstorm;
};

struct hdev {
	struct buse_dev_params p;
	uint32_t id;
	unsigned major, minor;
	char node[96];
	unsigned nq;
	atomic_int behaviour;
	atomic_int stop_io, stop_daemon, deleted;
	atomic_int del_started;	/* capacity may be 0 from here on */
	atomic_int rescued;	/* our daemon was killed to unblock things */
	atomic_ulong sqes, cqes, syncs, logged;
	pid_t owner;		/* the process that attached the queues */
	pid_t child;		/* V_PROC: the daemon process */
	bool ro, wb, recoverable, allow_rrpart;
	struct hq q[];
};

static void on_sigusr1(int sig)
{
	(void)sig;	/* only interrupts a SYNC WAIT */
}

static struct hdev *hdev_alloc(unsigned nq)
{
	struct hdev *d = shared_alloc(sizeof(*d) + nq * sizeof(struct hq));
	unsigned i;

	d->nq = nq;
	d->child = -1;
	for (i = 0; i < nq; i++) {
		d->q[i].d = d;
		d->q[i].qid = i;
		d->q[i].fd = -1;
	}
	return d;
}

static void hdev_free(struct hdev *d)
{
	munmap(d, sizeof(*d) + d->nq * sizeof(struct hq));
}

static struct buse_ring_hdr *HDR(struct hq *q)
{
	return (struct buse_ring_hdr *)q->map;
}

static struct buse_sqe *SQ(struct hq *q)
{
	return (struct buse_sqe *)(q->map + q->a.sq_off);
}

static struct buse_cqe *CQ(struct hq *q)
{
	return (struct buse_cqe *)(q->map + q->a.cq_off);
}

static void publish(struct hq *q)
{
	__atomic_store_n(&HDR(q)->cq_tail, q->cq_tail, __ATOMIC_RELEASE);
}

/* Queue one completion if the ring has room; false if it has none. */
static bool post(struct hq *q, uint32_t tag, uint32_t cookie, int32_t status)
{
	struct buse_cqe *c;

	if (q->cq_tail - q->committed >= q->a.cq_entries)
		return false;
	c = &CQ(q)[q->cq_tail & (q->a.cq_entries - 1)];
	c->tag = tag;
	c->cookie = cookie;
	c->status = status;
	c->flags = 0;
	q->cq_tail++;
	__atomic_fetch_add(&q->d->cqes, 1, __ATOMIC_RELAXED);
	return true;
}

static int32_t rand_status(struct rng *r)
{
	static const int32_t st[] = {
		0, -EIO, -ENOSPC, -EAGAIN, -ENOMEM, -EBUSY, -EOPNOTSUPP,
		-ETIMEDOUT, -ENODEV, -EREMCHG, -ENOLINK, -EILSEQ, -ENODATA,
		-EREMOTEIO, -EBADE, -ETOOMANYREFS, -EOVERFLOW, -EPERM, -EINTR,
		-512, -4095, -4096, -4097, INT32_MIN, INT32_MAX, 1, 4096,
	};

	return chance(r, 10) ? (int32_t)rnd(r) : PICK(r, st);
}

/* A new sqe must describe a request this device can have. */
static void check_sqe(struct hq *q, const struct buse_sqe *e)
{
	const struct buse_dev_params *p = &q->d->p;
	uint64_t end = e->sector * 512 + e->len;
	uint32_t lbs = p->logical_block_size;
	unsigned id = q->d->id;
	bool logged = e->flags & BUSE_SQE_LOGGED;

	CHECK(!e->reserved0, "buse%u: sqe reserved0 %u", id, e->reserved0);
	if (logged) {
		CHECK(q->d->wb, "buse%u: logged write without write-back", id);
		/* REPLAYED and APPLIED_BEFORE: after a takeover. */
		CHECK(e->op == BUSE_OP_WRITE &&
			      !(e->flags &
				~(BUSE_SQE_LOGGED | BUSE_SQE_AFTER |
				  BUSE_SQE_REPLAYED | BUSE_SQE_APPLIED_BEFORE)),
		      "buse%u: logged sqe op %u flags %#x", id, e->op, e->flags);
		CHECK(e->tag >= q->a.depth && e->tag - q->a.depth < q->a.log_recs,
		      "buse%u: logged write tag %u outside %u..%u", id, e->tag,
		      q->a.depth, q->a.depth + q->a.log_recs - 1);
		CHECK(e->data_off >= q->a.log_off &&
		      e->data_off + e->len <= q->a.log_off + q->a.log_size,
		      "buse%u: logged data %llu+%u outside the log %llu+%llu",
		      id, (unsigned long long)e->data_off, e->len,
		      (unsigned long long)q->a.log_off,
		      (unsigned long long)q->a.log_size);
		CHECK(e->seq > 0, "buse%u: logged write with seq 0", id);
		CHECK(e->len && e->len % lbs == 0 && e->len <= p->max_io_bytes,
		      "buse%u: logged write of %u bytes", id, e->len);
		CHECK(!(p->flags & BUSE_F_READ_ONLY),
		      "buse%u: a write reached a read-only device", id);
		goto range;
	}
	CHECK(e->tag < q->a.depth, "buse%u: sqe tag %u >= depth %u", id,
	      e->tag, q->a.depth);
	CHECK(!e->seq, "buse%u: seq %llu on a request that is not logged", id,
	      (unsigned long long)e->seq);
	switch (e->op) {
	case BUSE_OP_READ:
	case BUSE_OP_WRITE:
		CHECK(e->len && e->len % lbs == 0 && e->len <= q->a.slot_size,
		      "buse%u: %s of %u bytes (slot %u, lbs %u)", id,
		      e->op ? "write" : "read", e->len, q->a.slot_size, lbs);
		CHECK(e->data_off >= q->a.data_off &&
		      e->data_off + e->len <= q->a.data_off + q->a.data_size,
		      "buse%u: data_off %llu len %u outside the data area", id,
		      (unsigned long long)e->data_off, e->len);
		CHECK(!(e->flags & ~BUSE_SQE_FUA), "buse%u: sqe flags %#x", id,
		      e->flags);
		CHECK(!(e->flags & BUSE_SQE_FUA) || e->op == BUSE_OP_WRITE,
		      "buse%u: FUA on a read", id);
		CHECK(!(e->flags & BUSE_SQE_FUA) || (p->flags & BUSE_F_FUA),
		      "buse%u: FUA write on a device without FUA", id);
		CHECK(e->op == BUSE_OP_READ || !(p->flags & BUSE_F_READ_ONLY),
		      "buse%u: a write reached a read-only device", id);
		CHECK(e->op == BUSE_OP_READ || !q->d->wb ||
		      (e->flags & BUSE_SQE_FUA),
		      "buse%u: an unlogged, non-FUA write in write-back mode", id);
		break;
	case BUSE_OP_FLUSH:
		CHECK(p->flags & BUSE_F_FLUSH,
		      "buse%u: flush on a device without FLUSH", id);
		CHECK(!e->len && !e->flags, "buse%u: flush with %u bytes, flags %#x",
		      id, e->len, e->flags);
		return;
	case BUSE_OP_DISCARD:
	case BUSE_OP_WRITE_ZEROES:
		CHECK(p->flags & (e->op == BUSE_OP_DISCARD ? BUSE_F_DISCARD :
							     BUSE_F_WRITE_ZEROES),
		      "buse%u: op %u not enabled (flags %#x)", id, e->op,
		      p->flags);
		CHECK(e->len && e->len % lbs == 0 &&
		      e->len <= p->max_discard_bytes,
		      "buse%u: discard/write-zeroes of %u bytes", id, e->len);
		CHECK(!(e->flags & ~BUSE_SQE_NOUNMAP) &&
		      (!(e->flags & BUSE_SQE_NOUNMAP) ||
		       e->op == BUSE_OP_WRITE_ZEROES),
		      "buse%u: sqe flags %#x on op %u", id, e->flags, e->op);
		CHECK(!(p->flags & BUSE_F_READ_ONLY),
		      "buse%u: a discard/write-zeroes reached a read-only device",
		      id);
		break;
	default:
		FAIL("buse%u: sqe op %u", id, e->op);
		return;
	}
range:
	CHECK(end <= p->size && (e->sector * 512) % lbs == 0,
	      "buse%u: sector %llu + %u beyond size %llu or unaligned", id,
	      (unsigned long long)e->sector, e->len,
	      (unsigned long long)p->size);
}

static void scribble(struct hq *q, struct rng *r)
{
	unsigned k, n = 1 + below(r, 8);

	atomic_store(&q->tainted, 1);
	for (k = 0; k < n; k++) {
		uint64_t off;

		switch (below(r, 4)) {
		case 0: { /* a header word, except our own cq_tail */
			uint32_t *w = (uint32_t *)q->map;
			unsigned i = below(r, sizeof(struct buse_ring_hdr) / 4);

			if (i == offsetof(struct buse_ring_hdr, cq_tail) / 4)
				i = 0;
			w[i] = (uint32_t)rnd(r);
			break;
		}
		case 1:
			off = q->a.sq_off + below(r, q->a.sq_entries *
						  sizeof(struct buse_sqe));
			q->map[off] = (char)rnd(r);
			break;
		case 2:
			off = q->a.cq_off + below(r, q->a.cq_entries *
						  sizeof(struct buse_cqe));
			q->map[off] = (char)rnd(r);
			break;
		default: /* data slots and the write log */
			off = q->a.data_off + below(r, q->a.region_size -
						    q->a.data_off);
			memset(q->map + off, (int)rnd(r),
			       (size_t)below(r, q->a.region_size - off) % 4096);
			break;
		}
	}
}

static void remember(struct hq *q, uint32_t tag, uint32_t cookie)
{
	unsigned i = q->nhist++ % 64;

	q->hist[i].tag = tag;
	q->hist[i].cookie = cookie;
}

/* A random tag: in range, just beyond, a log record, or anything. */
static uint32_t rnd_tag(struct hq *q, struct rng *r)
{
	switch (below(r, 5)) {
	case 0:
		return q->a.depth + q->a.log_recs + (uint32_t)below(r, 1000);
	case 1:
		return (uint32_t)rnd(r);
	case 2:
		return q->a.depth + (uint32_t)below(r, q->a.log_recs + 1);
	default:
		return (uint32_t)below(r, q->a.depth);
	}
}

static void garbage_burst(struct hq *q, struct rng *r)
{
	unsigned k, n = below(r, q->a.cq_entries + 1);

	for (k = 0; k < n; k++) {
		uint32_t cookie = chance(r, 50) ? (uint32_t)below(r, 16) :
				  (uint32_t)rnd(r);

		if (!post(q, rnd_tag(q, r), cookie, rand_status(r)))
			break;
	}
}

static void respond_garbage(struct hq *q, struct rng *r, uint32_t tag,
			    uint32_t cookie)
{
	switch (below(r, 9)) {
	case 0:
		post(q, tag, cookie, 0);
		break;
	case 1: /* duplicate */
		post(q, tag, cookie, 0);
		post(q, tag, cookie, -EIO);
		break;
	case 2: /* wrong cookie first */
		post(q, tag, (cookie + 1) & COOKIE_MASK, 0);
		post(q, tag, cookie ^ 0x80000000U, 0);
		post(q, tag, (uint32_t)rnd(r), 0);
		post(q, tag, cookie, rand_status(r));
		break;
	case 3: /* tag out of range */
		post(q, q->a.depth + q->a.log_recs + (uint32_t)below(r, 3),
		     cookie, 0);
		post(q, UINT32_MAX, cookie, 0);
		post(q, 0x80000000U | tag, cookie, 0);
		post(q, tag, cookie, 0);
		break;
	case 4: /* another tag, this cookie */
		post(q, rnd_tag(q, r), cookie, 0);
		post(q, tag, cookie, 0);
		break;
	case 5: /* a stale one from history */
		if (q->nhist) {
			unsigned i = below(r, q->nhist < 64 ? q->nhist : 64);

			post(q, q->hist[i].tag, q->hist[i].cookie, rand_status(r));
		}
		post(q, tag, cookie, 0);
		break;
	case 6: /* never: let it time out */
		remember(q, tag, cookie);
		break;
	case 7: /* late: complete it only after a later SYNC */
		remember(q, tag, cookie);
		break;
	default:
		post(q, tag, cookie, rand_status(r));
		break;
	}
}

static int pick_mix(struct rng *r)
{
	static const int mixable[] = {
		B_POLITE, B_EIO, B_SILENT, B_RANDSTATUS, B_GARBAGE, B_CQTAIL,
		B_SCRIBBLE, B_NOSQHEAD, B_SYNCFLAGS,
	};

	return PICK(r, mixable);
}

/* Attach queue Q (again), map and check it; false on failure. */
static bool queue_attach(struct hq *q, struct rng *r, uint64_t *cpus,
			 bool quiet)
{
	struct hdev *d = q->d;
	int e = ctl_attach(d->id, q->qid, &q->a);

	if (e) {
		CHECK(quiet, "buse%u: ATTACH q%u: %s", d->id, q->qid,
		      errname(e));
		tally("attach", e);
		return false;
	}
	q->fd = q->a.fd;
	if (!check_layout(&d->p, &q->a, cpus)) {
		close(q->fd);
		q->fd = -1;
		return false;
	}
	q->map_len = q->a.region_size;
	q->map = mmap(NULL, q->map_len, PROT_READ | PROT_WRITE, MAP_SHARED,
		      q->fd, 0);
	if (q->map == MAP_FAILED) {
		FAIL("buse%u: mmap q%u: %s", d->id, q->qid, errname(errno));
		q->map = NULL;
		close(q->fd);
		q->fd = -1;
		return false;
	}
	q->sq_head = q->cq_tail = q->committed = 0;
	atomic_store(&q->tainted, 0);
	atomic_store(&q->closed, 0);
	q->nhist = 0;
	if (r)
		check_region_zero(&q->a, q->map, r);
	return true;
}

static void queue_close(struct hq *q, bool fd_first)
{
	int fd = q->fd;
	char *map = q->map;

	q->fd = -1;
	q->map = NULL;
	if (fd_first && fd >= 0)
		WD("close(queue)", close(fd));
	if (map)
		munmap(map, q->map_len);
	if (!fd_first && fd >= 0)
		WD("close(queue)", close(fd));
}

/* The daemon's own self-harm at q->action_at; true: stop serving. */
static bool daemon_action(struct hq *q, struct rng *r)
{
	struct hdev *d = q->d;

	switch (q->action) {
	case V_SELFUNMAP:
		/* Either order: the release comes with the last of the two. */
		queue_close(q, q->qid & 1);
		tally("daemon-unmap-close", 0);
		q->action = 0;
		if (!q->reattach)
			return true;
		/* A recoverable device: a new daemon takes over. */
		usleep(below(r, 300000));
		if (!queue_attach(q, NULL, NULL, true)) {
			CHECK(atomic_load(&d->del_started),
			      "buse%u: re-ATTACH of orphaned q%u failed", d->id,
			      q->qid);
			return true;
		}
		tally("daemon-reattached", 0);
		return false;
	case V_UNMAPONLY:
		munmap(q->map, q->map_len);
		q->map = NULL;
		tally("daemon-unmap-only", 0);
		return true;
	}
	return false;
}

static void *daemon_thread(void *arg)
{
	struct hq *q = arg;
	struct hdev *d = q->d;
	struct rng r;

	rng_init(&r);
	wd_enter();
	while (!atomic_load(&d->stop_daemon)) {
		int b = atomic_load(&d->behaviour);
		uint32_t mask = q->a.sq_entries - 1;
		unsigned long flags = BUSE_SYNC_WAIT;
		bool weird = false;
		uint32_t tail, avail, i;
		long n;

		if (b == B_MIX)
			b = pick_mix(&r);
		if (q->action && now() >= q->action_at && daemon_action(q, &r))
			break;
		if (b == B_SYNCFLAGS && chance(&r, 40))
			flags = chance(&r, 50) ? (unsigned long)rnd(&r) :
				1UL << below(&r, 64);
		if (b == B_CQTAIL && chance(&r, 30)) {
			static const uint32_t far[] = {
				1, 2, 0x7fffffffU, 0x80000000U, 0xfffffffeU,
				0xffffffffU,
			};
			uint32_t w;

			switch (below(&r, 3)) {
			case 0:
				w = q->committed + q->a.cq_entries + 1 +
				    (uint32_t)below(&r, 1000);
				break;
			case 1:
				w = q->committed - 1 - (uint32_t)below(&r, 1000);
				break;
			default:
				w = q->committed + q->a.cq_entries + PICK(&r, far);
				if (w - q->committed <= q->a.cq_entries)
					w = q->committed - 1;
				break;
			}
			__atomic_store_n(&HDR(q)->cq_tail, w, __ATOMIC_RELEASE);
			weird = true;
		} else {
			publish(q);
		}
		n = WD("BUSE_IOC_SYNC", ioctl(q->fd, BUSE_IOC_SYNC, flags));
		__atomic_fetch_add(&d->syncs, 1, __ATOMIC_RELAXED);
		if (n < 0) {
			int e = errno;

			/* ETIMEDOUT: the kernel failed the queue after a
			 * request timed out. */
			if (e == ENODEV || e == ETIMEDOUT)
				break;
			if (e == EINTR)
				continue;
			if ((e == EBADF || e == ENOTTY) && atomic_load(&q->closed))
				break;
			if (e == EINVAL && ((flags & ~(unsigned long)BUSE_SYNC_WAIT) ||
					    weird)) {
				tally(weird ? "sync-bad-cq-tail" : "sync-bad-flags",
				      e);
				continue;
			}
			/* I/O into the region itself may overwrite cq_tail. */
			if (e == EINVAL && atomic_load(&q->tainted)) {
				tally("sync-tainted-ring", e);
				q->cq_tail = q->committed;
				continue;
			}
			FAIL("buse%u q%u: SYNC flags %#lx: unexpected %s", d->id,
			     q->qid, flags, errname(e));
			break;
		}
		CHECK(!(flags & ~(unsigned long)BUSE_SYNC_WAIT),
		      "buse%u: SYNC accepted flags %#lx", d->id, flags);
		CHECK(!weird, "buse%u: SYNC accepted cq_tail %u with %u consumed "
		      "(%u entries)", d->id, HDR(q)->cq_tail, q->committed,
		      q->a.cq_entries);
		if (weird) /* the kernel took garbage up to there: follow it */
			q->cq_tail = HDR(q)->cq_tail;
		q->committed = q->cq_tail;
		CHECK((unsigned long)n <= q->a.sq_entries,
		      "buse%u: SYNC returned %ld > %u entries", d->id, n,
		      q->a.sq_entries);
		/* The behaviour may have changed while we slept. */
		if (atomic_load(&d->behaviour) != B_MIX)
			b = atomic_load(&d->behaviour);

		/* Stale completions from earlier, now. */
		if (b == B_GARBAGE && q->nhist && chance(&r, 30)) {
			unsigned k = below(&r, q->nhist < 64 ? q->nhist : 64);

			post(q, q->hist[k].tag, q->hist[k].cookie, 0);
		}

		tail = __atomic_load_n(&HDR(q)->sq_tail, __ATOMIC_ACQUIRE);
		avail = tail - q->sq_head;
		if (avail > q->a.sq_entries) {
			if (!atomic_load(&q->tainted))
				tally("sq-overrun", 0);
			q->sq_head = tail - q->a.sq_entries;
			avail = q->a.sq_entries;
		}
		for (i = 0; i < avail; i++) {
			struct buse_sqe e;
			bool logged;

			memcpy(&e, (const void *)&SQ(q)[q->sq_head & mask],
			       sizeof(e));
			q->sq_head++;
			__atomic_fetch_add(&d->sqes, 1, __ATOMIC_RELAXED);
			if (!atomic_load(&q->tainted))
				check_sqe(q, &e);
			logged = e.flags & BUSE_SQE_LOGGED;
			if (logged)
				__atomic_fetch_add(&d->logged, 1, __ATOMIC_RELAXED);
			if (e.op == BUSE_OP_WRITE)
				atomic_fetch_add(&q->writes, 1);
			/* Logged writes: acknowledged by all but "noack". */
			if (logged && b == B_NOACK)
				continue;
			if (logged && (b == B_SILENT || b == B_POLITE ||
				       b == B_NOSQHEAD || b == B_SYNCFLAGS)) {
				post(q, e.tag, e.cookie, 0);
				continue;
			}
			switch (b) {
			case B_SILENT:
				remember(q, e.tag, e.cookie);
				break;
			case B_EIO:
				post(q, e.tag, e.cookie, -EIO);
				break;
			case B_RANDSTATUS:
				post(q, e.tag, e.cookie, rand_status(&r));
				break;
			case B_GARBAGE:
				respond_garbage(q, &r, e.tag, e.cookie);
				if (logged) /* eventually */
					post(q, e.tag, e.cookie, 0);
				break;
			default:
				if (e.op == BUSE_OP_READ && e.tag < q->a.depth &&
				    chance(&r, 20))
					memset(q->map + q->a.data_off +
					       (uint64_t)e.tag * q->a.slot_size,
					       (int)e.tag, q->a.slot_size);
				post(q, e.tag, e.cookie, 0);
				break;
			}
		}
		if (b != B_NOSQHEAD)
			__atomic_store_n(&HDR(q)->sq_head, q->sq_head,
					 __ATOMIC_RELEASE);
		if (b == B_GARBAGE && chance(&r, 15))
			garbage_burst(q, &r);
		if (b == B_SCRIBBLE)
			scribble(q, &r);
		if (b == B_SILENT && chance(&r, 5))
			usleep(10000);
	}
	wd_leave();
	return NULL;
}

static void *storm_thread(void *arg)
{
	struct hq *q = arg;
	struct hdev *d = q->d;
	int fd = q->fd;
	struct rng r;

	rng_init(&r);
	wd_enter();
	while (!atomic_load(&d->stop_daemon)) {
		unsigned long flags = chance(&r, 50) ? BUSE_SYNC_WAIT : 0;
		long n;

		if (chance(&r, 3))
			flags = 1UL << below(&r, 64);
		n = WD("SYNC(storm)", ioctl(fd, BUSE_IOC_SYNC, flags));
		if (n < 0 && (errno == ENODEV || errno == EBADF ||
			      errno == ENOTTY || errno == ETIMEDOUT))
			break;
		if (n < 0 && (errno == EINVAL || errno == EINTR))
			continue;
		CHECK(n >= 0 && (unsigned long)n <= q->a.sq_entries,
		      "storm SYNC: %ld %s", n, errname(n < 0 ? errno : 0));
		if (n < 0)
			break;
	}
	wd_leave();
	return NULL;
}

static const int io_ok[] = {
	EIO, ETIMEDOUT, ENOSPC, ENOLINK, EREMOTEIO, EBADE, ENODATA, EILSEQ,
	ENOMEM, EBUSY, EAGAIN, ENODEV, ENXIO, EREMCHG, ETOOMANYREFS, EOVERFLOW,
	EOPNOTSUPP,
};

static bool io_err_ok(int e)
{
	size_t i;

	for (i = 0; i < sizeof(io_ok) / sizeof(io_ok[0]); i++)
		if (io_ok[i] == e)
			return true;
	return false;
}

static void io_result(struct hdev *d, const char *what, long r, long want,
		      int e, bool writes)
{
	bool deleting = atomic_load(&d->del_started);

	if (r >= 0) {
		/* del_gendisk() sets the capacity to 0: EOF. */
		if (r == 0 && want > 0 && deleting) {
			tally("eof-after-del", 0);
			return;
		}
		CHECK(r == want, "buse%u: %s: %ld of %ld bytes", d->id, what,
		      r, want);
		tally(what, 0);
		return;
	}
	tally(what, e);
	if (io_err_ok(e))
		return;
	/* Ranges beyond the (now zero) capacity. */
	if (deleting && (e == EINVAL || e == ENOSPC))
		return;
	if (writes && d->ro && (e == EPERM || e == EROFS || e == EBADF))
		return;
	/* I/O into the region after the rescue unmapped it. */
	if (e == EFAULT && atomic_load(&d->rescued))
		return;
	FAIL("buse%u: %s: unexpected %s", d->id, what, errname(e));
}

static int open_node(struct hdev *d, int flags)
{
	int fd = WD("open(disk)", open(d->node, flags));

	if (fd < 0 && (errno == EROFS || errno == EACCES) && d->ro) {
		flags = (flags & ~O_ACCMODE) | O_RDONLY;
		fd = WD("open(disk)", open(d->node, flags));
	}
	if (fd < 0) {
		tally("open-disk", errno);
		CHECK(errno == ENXIO || errno == ENODEV || errno == ENOENT ||
		      errno == EIO || errno == ENOMEM,
		      "open %s: %s", d->node, errname(errno));
	}
	return fd;
}

struct iot {
	struct hdev *d;
	void *buf;		/* NULL: own buffer; else inside a region */
	size_t buflen;
	pthread_t t;
};

static void *io_thread(void *arg)
{
	struct iot *t = arg;
	struct hdev *d = t->d;
	uint64_t lbs = d->p.logical_block_size;
	uint64_t nblk = d->p.size / lbs;
	size_t maxlen = 2 * (size_t)d->p.max_io_bytes;
	int fd = -1, bfd = -1;
	char *buf;
	struct rng r;

	rng_init(&r);
	wd_enter();
	if (maxlen > (512 << 10))
		maxlen = 512 << 10;
	if (t->buf) {
		buf = t->buf;
		maxlen = t->buflen;
	} else {
		buf = aligned_alloc(4096, maxlen);
		memset(buf, 0xa5, maxlen);
	}
	while (!atomic_load(&d->stop_io)) {
		uint64_t blk, nb, off, len;
		unsigned op = below(&r, 100);
		long res;

		if (atomic_load(&d->deleted))
			usleep(10000);	/* nothing left to race with */
		if (t->buf && atomic_load(&d->rescued))
			break;
		if (fd < 0) {
			fd = open_node(d, O_RDWR | O_DIRECT);
			if (fd < 0) {
				usleep(20000);
				continue;
			}
		}
		blk = below(&r, nblk);
		nb = 1 + below(&r, (maxlen / lbs < nblk - blk) ? maxlen / lbs :
				    nblk - blk);
		off = blk * lbs;
		len = nb * lbs;
		if (op < 45) {
			res = WD("pread", pread(fd, buf, len, off));
			io_result(d, "pread", res, len, errno, false);
		} else if (op < 85) {
			res = WD("pwrite", pwrite(fd, buf, len, off));
			io_result(d, "pwrite", res, len, errno, true);
		} else if (op < 89) {
			res = WD("fdatasync", fdatasync(fd));
			io_result(d, "fdatasync", res, 0, errno, true);
		} else if (op < 93) {
			uint64_t range[2] = { off, len };

			res = WD("BLKDISCARD", ioctl(fd, BLKDISCARD, range));
			io_result(d, "blkdiscard", res, 0, errno, true);
		} else if (op < 96) {
			uint64_t range[2] = { off, len };

			res = WD("BLKZEROOUT", ioctl(fd, BLKZEROOUT, range));
			io_result(d, "blkzeroout", res, 0, errno, true);
		} else if (op < 99) {
			char small[4096];

			if (bfd < 0)
				bfd = open_node(d, O_RDONLY);
			if (bfd >= 0) {
				off &= ~4095ULL;
				len = d->p.size - off < 4096 ? d->p.size - off : 4096;
				res = WD("pread(buffered)",
					 pread(bfd, small, len, off));
				io_result(d, "pread-buffered", res, len, errno,
					  false);
			}
		} else if (d->allow_rrpart) {
			res = WD("BLKRRPART", ioctl(fd, BLKRRPART, 0));
			tally("blkrrpart", res < 0 ? errno : 0);
			res = WD("BLKFLSBUF", ioctl(fd, BLKFLSBUF, 0));
			tally("blkflsbuf", res < 0 ? errno : 0);
		}
	}
	if (fd >= 0)
		WD("close(disk)", close(fd));
	if (bfd >= 0)
		WD("close(disk)", close(bfd));
	if (!t->buf)
		free(buf);
	wd_leave();
	return NULL;
}

/* Attach every queue, check and map it, start its daemon thread. */
static bool daemon_setup(struct hdev *d, struct rng *r, int behaviour,
			 bool fresh)
{
	uint64_t cpus[BUSE_MAX_CPU_WORDS] = { 0 };
	unsigned i;

	atomic_store(&d->behaviour, behaviour);
	atomic_store(&d->stop_daemon, 0);
	d->owner = getpid();
	/* A new daemon's ATTACH may lose to a racing DEL: the parent judges
	 * that (proc_daemon() checks del_started). */
	for (i = 0; i < d->nq; i++)
		if (!queue_attach(&d->q[i], fresh ? r : NULL, cpus, !fresh))
			return false;
	for (i = 0; i < d->nq; i++)
		pthread_create(&d->q[i].thr, NULL, daemon_thread, &d->q[i]);
	return true;
}

static bool join_within(pthread_t t, double secs)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += (time_t)secs;
	ts.tv_nsec += (long)((secs - (time_t)secs) * 1e9);
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	return pthread_timedjoin_np(t, NULL, &ts) == 0;
}

/* Join a daemon-side thread, poking it out of SYNC WAIT if need be. */
static void join_poked(pthread_t t)
{
	int i;

	for (i = 0; !join_within(t, 0.5); i++) {
		pthread_kill(t, SIGUSR1);
		if (i == 120) {
			WD("join daemon thread", pthread_join(t, NULL));
			return;
		}
	}
}

/* Stop the daemon threads and let go of the queues. */
static void daemon_teardown(struct hdev *d)
{
	unsigned i;
	int k;

	atomic_store(&d->stop_daemon, 1);
	/* A child process's queues are its own business. */
	if (d->owner && d->owner != getpid())
		return;
	for (i = 0; i < d->nq; i++) {
		struct hq *q = &d->q[i];

		if (q->thr)
			join_poked(q->thr);
		for (k = 0; k < q->nstorm; k++)
			join_poked(q->storm[k]);
		q->thr = 0;
		q->nstorm = 0;
	}
	for (i = 0; i < d->nq; i++)
		queue_close(&d->q[i], true);
}

/*
 * Something the kernel should have finished is stuck: report it, then kill
 * our daemon (its queues are released, the requests fail) to unblock it.
 */
static void rescue(struct hdev *d, const char *what, double waited)
{
	if (atomic_exchange(&d->rescued, 1))
		return;
	FAIL("buse%u (%s%s%s): %s did not return within %.0f s; killing the "
	     "daemon to unblock it", d->id, d->wb ? "write-back " : "",
	     d->recoverable ? "recoverable " : "", behave_name[atomic_load(&d->behaviour)],
	     what, waited);
	if (getenv("BUSE_HOSTILE_DEBUG")) {
		char cmd[256];

		snprintf(cmd, sizeof(cmd), "cd /sys/kernel/debug/block/" BUSE_DISK_NAME "%u && grep -r . hctx*/busy hctx*/dispatch hctx*/state hctx*/sched_tags hctx*/tags sched 2>&1 | head -80", d->id);
		(void)!system(cmd);
	}
	if (d->child > 0)
		kill(d->child, SIGKILL);
	else
		daemon_teardown(d);
}

struct delcall {
	struct hdev *d;
	double delay;
	int err;
	double took;
};

static void *del_thread(void *arg)
{
	struct delcall *x = arg;
	double t0;

	wd_enter();
	if (x->delay > 0)
		usleep((useconds_t)(x->delay * 1e6));
	t0 = now();
	atomic_store(&x->d->del_started, 1);
	x->err = ctl_del(x->d->id);
	x->took = now() - t0;
	/* EIO: logged writes were lost, and the device is gone all the same. */
	if (!x->err || x->err == EIO)
		atomic_store(&x->d->deleted, 1);
	wd_leave();
	return NULL;
}

/* Join a DEL thread; rescue if it takes longer than LIMIT from now. */
static void join_del(pthread_t t, struct delcall *x, double limit,
		     const char *what)
{
	if (!join_within(t, limit)) {
		rescue(x->d, what, limit);
		WD("join DEL", pthread_join(t, NULL));
	}
	tally(what, x->err);
	/*
	 * A write-back device whose (hostile) daemon dropped logged writes is
	 * deleted all the same, and DEL says EIO (docs/failure-model.md).
	 */
	CHECK(!x->err || (x->err == EIO && x->d->wb), "buse%u: %s: %s",
	      x->d->id, what, errname(x->err));
}

static int new_device(struct hdev **dp, struct rng *r, uint32_t want_id,
		      const struct buse_dev_params *like)
{
	struct buse_dev_params p;
	struct buse_dev_info info;
	struct hdev *d;
	int e;

	if (like) {
		p = *like;
		p.dev_id = want_id;
	} else {
		static const uint32_t lbss[] = { 512, 512, 4096, 1024, 2048 };

		memset(&p, 0, sizeof(p));
		p.dev_id = want_id;
		set_name(&p, "daemon");
		p.logical_block_size = PICK(r, lbss);
		p.size = (1 + below(r, 32)) << 20;
		p.nr_queues = chance(r, 50) ? 0 : 1;
		p.queue_depth = chance(r, 10) ? 1 : 1 + below(r, 48);
		p.max_io_bytes = 4096 * (1 + below(r, 16));
		p.timeout_ms = 1000;
		p.flags = (uint32_t)rnd(r) & (BUSE_F_ROTATIONAL | BUSE_F_FLUSH |
					      BUSE_F_FUA | BUSE_F_DISCARD |
					      BUSE_F_WRITE_ZEROES);
		if (chance(r, 10))
			p.flags |= BUSE_F_READ_ONLY;
		if (chance(r, 30)) {
			p.flags |= BUSE_F_WRITE_BACK;
			/* Small logs: full logs and rerun paths get used. */
			p.log_bytes = (uint64_t)p.max_io_bytes * (1 + below(r, 8));
		}
		if (chance(r, 25)) {
			p.flags |= BUSE_F_RECOVERABLE;
			p.recovery_timeout_ms = 300 + below(r, 1700);
		}
	}
	e = ctl_add(&p);
	CHECK(!e, "daemon: ADD: %s", errname(e));
	if (e)
		return e;
	d = hdev_alloc(p.nr_queues);
	d->p = p;
	d->id = p.dev_id;
	d->ro = p.flags & BUSE_F_READ_ONLY;
	d->wb = p.flags & BUSE_F_WRITE_BACK;
	d->recoverable = p.flags & BUSE_F_RECOVERABLE;
	e = ctl_info(d->id, 0, &info);
	CHECK(!e, "daemon: GET_INFO: %s", errname(e));
	d->major = info.major;
	d->minor = info.minor;
	snprintf(d->node, sizeof(d->node), "%s/" BUSE_DISK_NAME "%u",
		 g_nodedir, d->id);
	unlink(d->node);
	if (mknod(d->node, S_IFBLK | 0600, makedev(d->major, d->minor))) {
		FAIL("mknod %s: %s", d->node, errname(errno));
		ctl_del(d->id);
		hdev_free(d);
		return EIO;
	}
	*dp = d;
	return 0;
}

static void finish_device(struct hdev *d, const char *ctx)
{
	int e;

	if (!atomic_load(&d->deleted)) {
		struct delcall x = { .d = d };
		pthread_t t;

		pthread_create(&t, NULL, del_thread, &x);
		join_del(t, &x, RESCUE_S, "del-final");
		if (x.took > 10)
			printf("buse-hostile: %s: DEL took %.1f s\n", ctx, x.took);
	}
	e = ctl_del(d->id);
	CHECK(e == ENOENT, "%s: DEL twice: %s", ctx, errname(e));
	daemon_teardown(d);
	if (d->child > 0) {
		int status;

		WD("waitpid(daemon)", waitpid(d->child, &status, 0));
		CHECK(WIFSIGNALED(status) ||
		      (WIFEXITED(status) && !WEXITSTATUS(status)),
		      "daemon child: status %#x", status);
		d->child = -1;
	}
	expect_gone(d->id, ctx);
	unlink(d->node);
}

struct closer {
	struct hq *q;
	double delay;
};

static void *closer_thread(void *arg)
{
	struct closer *c = arg;
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);

	wd_enter();
	usleep((useconds_t)(c->delay * 1e6));
	/* Replace, not close: the daemon's next SYNC hits /dev/null instead
	 * of whatever might reuse the number. */
	atomic_store(&c->q->closed, 1);
	WD("dup2(queue)", dup2(null, c->q->fd));
	close(null);
	tally("close-queue-fd-mid-io", 0);
	wd_leave();
	return NULL;
}

static void sleep_s(double s)
{
	if (s > 0)
		usleep((useconds_t)(s * 1e6));
}

/* A child process attaches and serves; the parent may kill it. */
static pid_t proc_daemon(struct hdev *d, struct rng *r, int behaviour,
			 bool fresh)
{
	int pfd[2];
	pid_t pid;
	char c = 0;

	if (pipe(pfd))
		return -1;
	pid = fork();
	if (pid == 0) {
		close(pfd[0]);
		if (!daemon_setup(d, r, behaviour, fresh))
			_exit(1);
		(void)!write(pfd[1], &c, 1);
		while (!atomic_load(&d->stop_daemon))
			usleep(20000);
		daemon_teardown(d);
		_exit(0);
	}
	close(pfd[1]);
	if (pid < 0 || WD("read(pipe)", read(pfd[0], &c, 1)) != 1) {
		CHECK(atomic_load(&d->del_started), "daemon child did not come up");
		close(pfd[0]);
		if (pid > 0)
			WD("waitpid", waitpid(pid, NULL, 0));
		return -1;
	}
	close(pfd[0]);
	return pid;
}

static void stale_round(struct rng *r)
{
	struct hdev *d, *d2;
	char buf[4096] __attribute__((aligned(4096)));
	unsigned long w0, w1;
	unsigned i;
	int fd, e;
	long n;

	if (new_device(&d, r, BUSE_DEV_ID_ANY, NULL))
		return;
	if (d->ro || !daemon_setup(d, r, B_POLITE, true)) {
		finish_device(d, "stale");
		hdev_free(d);
		return;
	}
	e = ctl_start(d->id);
	CHECK(!e, "stale: START: %s", errname(e));
	fd = open_node(d, O_RDWR | O_DIRECT);
	if (fd >= 0) {
		memset(buf, 0x11, sizeof(buf));
		n = WD("pwrite", pwrite(fd, buf, 4096, 0));
		CHECK(n == 4096, "stale: first write: %ld %s", n,
		      errname(n < 0 ? errno : 0));
	}
	finish_device(d, "stale");
	if (fd < 0) {
		hdev_free(d);
		return;
	}
	/* Same id again, while the old disk's fd is open. */
	e = new_device(&d2, r, d->id, &d->p);
	CHECK(!e, "stale: re-ADD of id %u with the old disk open: %s", d->id,
	      errname(e));
	if (!e) {
		if (daemon_setup(d2, r, B_POLITE, true)) {
			e = ctl_start(d2->id);
			CHECK(!e, "stale: START again: %s", errname(e));
			w0 = 0;
			for (i = 0; i < d2->nq; i++)
				w0 += atomic_load(&d2->q[i].writes);
			n = WD("pwrite(stale)", pwrite(fd, buf, 4096, 0));
			tally("stale-fd-write", n < 0 ? errno : 0);
			CHECK(n < 0, "a write through an fd of the deleted buse%u "
			      "succeeded after the id was reused", d->id);
			n = WD("pread(stale)", pread(fd, buf, 4096, 0));
			tally("stale-fd-read", n < 0 ? errno : 0);
			CHECK(n <= 0, "a read through an fd of the deleted buse%u "
			      "returned data after the id was reused", d->id);
			usleep(100000);
			w1 = 0;
			for (i = 0; i < d2->nq; i++)
				w1 += atomic_load(&d2->q[i].writes);
			CHECK(w1 == w0, "a write through a stale fd reached the "
			      "new buse%u", d->id);
		}
		finish_device(d2, "stale2");
		hdev_free(d2);
	}
	WD("close(stale)", close(fd));
	hdev_free(d);
}

static void daemon_round(struct rng *r, unsigned long it)
{
	struct delcall dr = { 0 };
	struct closer cl = { 0 };
	pthread_t drt = 0, clt = 0;
	struct iot io[6];
	struct hdev *d;
	unsigned nio, i, variants = 0;
	int b, start_b, e;
	double len, t_end, deadline;

	if (it % 13 == 12) {
		stale_round(r);
		return;
	}
	if (new_device(&d, r, BUSE_DEV_ID_ANY, NULL))
		return;
	b = it < NR_BEHAVE ? (int)it : (int)below(r, NR_BEHAVE);
	if (chance(r, 35))
		variants |= V_DELRACE;
	switch (below(r, d->recoverable ? 7 : 12)) {
	case 0: variants |= V_CLOSEFD; break;
	case 1: variants |= V_SELFUNMAP; break;
	case 2: variants |= V_UNMAPONLY; break;
	case 3: variants |= V_PROC; break;
	case 4: variants |= V_STARTRACE; break;
	case 5: variants |= V_SELFUNMAP | V_REATTACH; break;
	case 6: variants |= V_PROC | V_REATTACH; break;
	default: break;
	}
	if (!d->recoverable)
		variants &= ~(unsigned)V_REATTACH;
	if (b == B_SELFIO || b == B_STORM)
		variants &= ~(unsigned)(V_SELFUNMAP | V_UNMAPONLY | V_PROC |
					V_CLOSEFD | V_REATTACH);
	if (variants & V_PROC)
		b = chance(r, 50) ? B_POLITE : B_RANDSTATUS;
	/* Not with a daemon that stops answering but keeps its fd: a
	 * partition scan reads sector after sector, each waiting for its
	 * timeout, and legitimately outlasts the hang limit. */
	d->allow_rrpart = (b == B_POLITE || b == B_EIO || b == B_NOSQHEAD ||
			   b == B_SYNCFLAGS || b == B_STORM) &&
			  !(variants & V_UNMAPONLY);
	len = 0.3 + below(r, 900) / 1000.0;
	start_b = chance(r, 75) ? B_POLITE : B_EIO;
	vlog("daemon round %lu: buse%u %s variants %#x queues %u depth %u "
	     "max_io %u lbs %u flags %#x log %llu", it, d->id, behave_name[b],
	     variants, d->nq, d->p.queue_depth, d->p.max_io_bytes,
	     d->p.logical_block_size, d->p.flags,
	     (unsigned long long)d->p.log_bytes);
	tally(behave_name[b], 0);
	if (d->wb)
		tally("write-back-device", 0);
	if (d->recoverable)
		tally("recoverable-device", 0);

	if (variants & V_PROC) {
		d->child = proc_daemon(d, r, start_b, true);
		if (d->child < 0) {
			finish_device(d, "proc");
			hdev_free(d);
			return;
		}
	} else if (!daemon_setup(d, r, start_b, true)) {
		finish_device(d, "setup");
		hdev_free(d);
		return;
	}

	if (variants & V_STARTRACE) {
		dr.d = d;
		dr.delay = below(r, 30) / 1000.0;
		pthread_create(&drt, NULL, del_thread, &dr);
		e = ctl_start(d->id);
		tally("start-racing-del", e);
		CHECK(!e || e == ENODEV || e == ENOENT,
		      "START racing with DEL: %s", errname(e));
		join_del(drt, &dr, RESCUE_S, "del-racing-start");
		drt = 0;
	} else {
		e = ctl_start(d->id);
		CHECK(!e, "buse%u: START: %s", d->id, errname(e));
		if (!e) {
			e = ctl_start(d->id);
			CHECK(e == EALREADY, "START twice: %s, want EALREADY",
			      errname(e));
		}
	}
	atomic_store(&d->behaviour, b);
	if (b == B_STORM) {
		for (i = 0; i < d->nq; i++) {
			struct hq *q = &d->q[i];

			for (q->nstorm = 0; q->nstorm < 3; q->nstorm++)
				pthread_create(&q->storm[q->nstorm], NULL,
					       storm_thread, q);
		}
	}
	t_end = now() + len;
	nio = 2 + below(r, 3);
	memset(io, 0, sizeof(io));
	for (i = 0; i < nio; i++) {
		io[i].d = d;
		pthread_create(&io[i].t, NULL, io_thread, &io[i]);
	}
	if (b == B_SELFIO) {
		/* I/O whose buffer is the queue region itself. */
		struct hq *q = &d->q[0];

		atomic_store(&q->tainted, 1);
		io[nio].d = d;
		io[nio].buf = q->map + (below(r, 3) == 0 ? 0 : q->a.data_off);
		io[nio].buflen = q->a.region_size -
				 ((char *)io[nio].buf - q->map);
		if (io[nio].buflen > (size_t)d->p.max_io_bytes)
			io[nio].buflen = d->p.max_io_bytes;
		io[nio].buflen &= ~(size_t)(d->p.logical_block_size - 1);
		if (io[nio].buflen) {
			pthread_create(&io[nio].t, NULL, io_thread, &io[nio]);
			nio++;
		}
	}
	if ((variants & V_DELRACE) && !atomic_load(&d->deleted)) {
		dr.d = d;
		dr.delay = below(r, (uint64_t)(len * 1000)) / 1000.0;
		pthread_create(&drt, NULL, del_thread, &dr);
	}
	if ((variants & V_CLOSEFD) && d->child < 0) {
		cl.q = &d->q[below(r, d->nq)];
		cl.delay = below(r, (uint64_t)(len * 1000)) / 1000.0;
		pthread_create(&clt, NULL, closer_thread, &cl);
	}
	if ((variants & (V_SELFUNMAP | V_UNMAPONLY)) && d->child < 0) {
		struct hq *q = &d->q[below(r, d->nq)];

		q->action = variants & (V_SELFUNMAP | V_UNMAPONLY);
		q->reattach = variants & V_REATTACH;
		q->action_at = now() + below(r, (uint64_t)(len * 1000)) / 1000.0;
	}
	if (d->child > 0) {
		int status;

		sleep_s(below(r, (uint64_t)(len * 1000)) / 1000.0);
		kill(d->child, SIGKILL);
		WD("waitpid(daemon)", waitpid(d->child, &status, 0));
		d->child = -1;
		tally("daemon-killed", 0);
		if (variants & V_REATTACH) {
			/* The next daemon gets the requests the old one had. */
			sleep_s(below(r, 300) / 1000.0);
			d->child = proc_daemon(d, r, B_POLITE, false);
			tally("daemon-restarted", d->child > 0 ? 0 : ENODEV);
		}
	}
	sleep_s(t_end - now());

	atomic_store(&d->stop_io, 1);
	deadline = now() + RESCUE_S;
	for (i = 0; i < nio; i++) {
		if (!join_within(io[i].t, deadline - now() > 0 ?
					  deadline - now() : 0)) {
			rescue(d, "I/O", RESCUE_S);
			WD("join io", pthread_join(io[i].t, NULL));
		}
	}
	if (drt) {
		join_del(drt, &dr, deadline - now() > 0 ? deadline - now() : 0,
			 "del-race");
		if (dr.took > 10)
			printf("buse-hostile: racing DEL took %.1f s\n", dr.took);
	}
	if (clt)
		WD("join closer", pthread_join(clt, NULL));
	finish_device(d, behave_name[b]);
	vlog("  %lu sqes (%lu logged), %lu cqes, %lu syncs",
	     atomic_load(&d->sqes), atomic_load(&d->logged),
	     atomic_load(&d->cqes), atomic_load(&d->syncs));
	hdev_free(d);
}

static void mode_daemon(double until)
{
	unsigned long it;
	struct rng r;

	rng_init(&r);
	for (it = 0; it < g_iters && now() < until; it++)
		daemon_round(&r, it);
	vlog("daemon: %lu rounds", it);
}

/* ------------------------------------------------------------------------ */
/* Mode wbstall: write-back, a full log and a daemon that stops acking */

struct one_io {
	struct hdev *d;
	int fd;
	off_t off;
	long res;
	int err;
	double took;
};

static void *one_write(void *arg)
{
	struct one_io *x = arg;
	char *buf = aligned_alloc(4096, 4096);
	double t0 = now();

	wd_enter();
	memset(buf, 0x77, 4096);
	x->res = WD("pwrite(wbstall)", pwrite(x->fd, buf, 4096, x->off));
	x->err = x->res < 0 ? errno : 0;
	x->took = now() - t0;
	free(buf);
	wd_leave();
	return NULL;
}

static void mode_wbstall(double until)
{
	struct buse_dev_params p;
	struct delcall x = { 0 };
	struct one_io w[3];
	pthread_t wt[3], dt;
	struct hdev *d;
	struct rng r;
	int fd, e, i;

	(void)until;
	rng_init(&r);
	memset(&p, 0, sizeof(p));
	p.dev_id = BUSE_DEV_ID_ANY;
	set_name(&p, "wbstall");
	p.size = 1 << 20;
	p.nr_queues = 1;
	p.queue_depth = 4;
	p.max_io_bytes = 4096;
	p.log_bytes = 8192;		/* two 4 KiB writes */
	p.timeout_ms = 1000;
	p.flags = BUSE_F_WRITE_BACK;
	if (new_device(&d, &r, BUSE_DEV_ID_ANY, &p))
		return;
	if (!daemon_setup(d, &r, B_NOACK, true)) {
		finish_device(d, "wbstall");
		hdev_free(d);
		return;
	}
	e = ctl_start(d->id);
	CHECK(!e, "wbstall: START: %s", errname(e));
	fd = open_node(d, O_RDWR | O_DIRECT);
	if (fd < 0) {
		finish_device(d, "wbstall");
		hdev_free(d);
		return;
	}
	/* Two writes fill the log; the third waits for space that only an
	 * acknowledgement (never coming) or the request timeout can give. */
	for (i = 0; i < 3; i++) {
		w[i] = (struct one_io){ .d = d, .fd = fd, .off = 4096 * i };
		pthread_create(&wt[i], NULL, one_write, &w[i]);
		if (i < 2)
			WD("join write", pthread_join(wt[i], NULL));
	}
	for (i = 0; i < 2; i++)
		CHECK(w[i].res == 4096, "wbstall: logged write %d: %s", i,
		      errname(w[i].err));
	if (!join_within(wt[2], 4.0 * p.timeout_ms / 1000 + 5)) {
		FAIL("wbstall: a write waiting for write-back log space did not "
		     "complete in %.0f s although the daemon stopped "
		     "acknowledging (it is never started, so the %u ms request "
		     "timeout cannot fire)", 4.0 * p.timeout_ms / 1000 + 5,
		     p.timeout_ms);
		/* Now DEL: it must not wait for that write forever either. */
		x.d = d;
		pthread_create(&dt, NULL, del_thread, &x);
		if (!join_within(dt, 10)) {
			FAIL("wbstall: DEL of a write-back device whose daemon "
			     "stopped acknowledging hung for 10 s (del_gendisk() "
			     "waits for the write, log space is freed only by "
			     "buse_queue_shutdown() after it)");
			atomic_store(&d->rescued, 1);
			daemon_teardown(d);
			WD("join DEL", pthread_join(dt, NULL));
		}
		tally("wbstall-del", x.err);
		WD("join write", pthread_join(wt[2], NULL));
	}
	tally("wbstall-third-write", w[2].err);
	printf("buse-hostile: wbstall: third write: %s after %.1f s\n",
	       errname(w[2].err), w[2].took);
	WD("close(disk)", close(fd));
	finish_device(d, "wbstall");
	hdev_free(d);
}

/* ------------------------------------------------------------------------ */
/* Mode wbrace: write-back rerun after a full log, with a healthy daemon */

struct wbrace {
	struct hdev *d;
	int fd;
	double until;
	atomic_int writing;	/* a write is in progress */
	_Atomic double started;	/* when it began */
	unsigned long writes;
	double worst;
	int err;
};

static void *wbrace_writer(void *arg)
{
	struct wbrace *w = arg;
	char *buf = aligned_alloc(4096, 4096);
	struct rng r;

	rng_init(&r);
	wd_enter();
	memset(buf, 0x3c, 4096);
	while (now() < w->until) {
		off_t off = 4096 * (off_t)below(&r, w->d->p.size / 4096);
		double t0 = now(), dt;
		long n;

		atomic_store(&w->started, t0);
		atomic_store(&w->writing, 1);
		n = WD("pwrite(wbrace)", pwrite(w->fd, buf, 4096, off));
		atomic_store(&w->writing, 0);
		dt = now() - t0;
		if (dt > w->worst)
			w->worst = dt;
		if (n != 4096) {
			w->err = n < 0 ? errno : EIO;
			break;
		}
		w->writes++;
	}
	free(buf);
	wd_leave();
	return NULL;
}

static void mode_wbrace(double until)
{
	struct buse_dev_params p;
	struct wbrace w = { 0 };
	pthread_t t;
	struct hdev *d;
	struct rng r;
	double budget = until - now();
	unsigned stalls = 0;
	int e;

	rng_init(&r);
	memset(&p, 0, sizeof(p));
	p.dev_id = BUSE_DEV_ID_ANY;
	set_name(&p, "wbrace");
	p.size = 4 << 20;
	p.nr_queues = 1;
	p.queue_depth = 2;
	p.max_io_bytes = 4096;
	p.log_bytes = 4096;		/* one logged write at a time */
	p.timeout_ms = 5000;
	p.flags = BUSE_F_WRITE_BACK;
	if (new_device(&d, &r, BUSE_DEV_ID_ANY, &p))
		return;
	if (!daemon_setup(d, &r, B_POLITE, true)) {
		finish_device(d, "wbrace");
		hdev_free(d);
		return;
	}
	e = ctl_start(d->id);
	CHECK(!e, "wbrace: START: %s", errname(e));
	w.d = d;
	w.fd = open_node(d, O_RDWR | O_DIRECT);
	if (w.fd < 0) {
		finish_device(d, "wbrace");
		hdev_free(d);
		return;
	}
	/* Every write finds the log full until the daemon acknowledged the
	 * previous one: each is a BLK_STS_DEV_RESOURCE and a rerun. */
	w.until = now() + (budget > 5 ? budget - 4 : 1);
	pthread_create(&t, NULL, wbrace_writer, &w);
	while (!join_within(t, 0.25)) {
		char *buf;
		double stuck;

		if (!atomic_load(&w.writing))
			continue;
		stuck = now() - atomic_load(&w.started);
		if (stuck < 3)
			continue;
		/* The daemon acknowledged everything long ago (it is polite):
		 * the write was never run again.  Any new request on the
		 * queue runs it: prove that, then carry on. */
		stalls++;
		buf = aligned_alloc(4096, 4096);
		{
			long n = WD("pread(nudge)", pread(w.fd, buf, 4096, 0));

			CHECK(n == 4096, "wbrace: nudging read: %s",
			      errname(n < 0 ? errno : 0));
		}
		free(buf);
		usleep(500000);
		FAIL("wbrace: a write to a write-back device waited %.1f s for "
		     "log space although the daemon had acknowledged every "
		     "logged write; %s after an unrelated read ran the queue "
		     "(lost wakeup: BLK_STS_DEV_RESOURCE with need_rerun "
		     "consumed by an acknowledgement before blk-mq put the "
		     "request back on the dispatch list)", stuck,
		     atomic_load(&w.writing) ? "still stuck" : "it completed");
	}
	printf("buse-hostile: wbrace: %lu writes, worst %.3f s, %u stalls, %s\n",
	       w.writes, w.worst, stalls, errname(w.err));
	CHECK(!w.err, "wbrace: write failed: %s", errname(w.err));
	tally("wbrace-stall", stalls ? EAGAIN : 0);
	WD("close(disk)", close(w.fd));
	finish_device(d, "wbrace");
	hdev_free(d);
}

/* ------------------------------------------------------------------------ */
/* Mode recoverdel: a recoverable device's daemon exits while DEL runs */

static void *one_read(void *arg)
{
	struct one_io *x = arg;
	char *buf = aligned_alloc(4096, 4096);
	double t0 = now();

	wd_enter();
	x->res = WD("pread(recoverdel)", pread(x->fd, buf, 4096, x->off));
	x->err = x->res < 0 ? errno : 0;
	x->took = now() - t0;
	free(buf);
	wd_leave();
	return NULL;
}

static void mode_recoverdel(double until)
{
	struct buse_dev_params p;
	struct delcall x = { 0 };
	struct one_io rd;
	pthread_t rt, dt;
	struct hdev *d;
	struct rng r;
	int fd, e;
	double limit;

	(void)until;
	rng_init(&r);
	memset(&p, 0, sizeof(p));
	p.dev_id = BUSE_DEV_ID_ANY;
	set_name(&p, "recoverdel");
	p.size = 1 << 20;
	p.nr_queues = 1;
	p.queue_depth = 4;
	p.max_io_bytes = 4096;
	p.timeout_ms = 1000;
	p.flags = BUSE_F_RECOVERABLE;
	p.recovery_timeout_ms = 20000;
	if (new_device(&d, &r, BUSE_DEV_ID_ANY, &p))
		return;
	if (!daemon_setup(d, &r, B_POLITE, true)) {
		finish_device(d, "recoverdel");
		hdev_free(d);
		return;
	}
	e = ctl_start(d->id);
	CHECK(!e, "recoverdel: START: %s", errname(e));
	fd = open_node(d, O_RDWR | O_DIRECT);
	if (fd < 0) {
		finish_device(d, "recoverdel");
		hdev_free(d);
		return;
	}
	/* A read the daemon holds; DEL waits for it in del_gendisk(). */
	atomic_store(&d->behaviour, B_SILENT);
	rd = (struct one_io){ .d = d, .fd = fd, .off = 0 };
	pthread_create(&rt, NULL, one_read, &rd);
	usleep(300000);
	x.d = d;
	pthread_create(&dt, NULL, del_thread, &x);
	usleep(200000);
	/* The daemon exits now: nobody can attach any more (DEL runs), so
	 * the read must fail at once or by its timeout, not wait for a
	 * daemon for recovery_timeout_ms.  (Its close() itself waits for
	 * DEL: buse_queue_release() takes dev->lock.) */
	daemon_teardown(d);
	WD("join DEL", pthread_join(dt, NULL));
	limit = 3.0 * p.timeout_ms / 1000 + 4;
	if (x.took > limit)
		FAIL("recoverdel: DEL took %.1f s (more than %.0f s) because the "
		     "daemon of a recoverable device exited during it: the queue "
		     "was orphaned (buse_queue_release() checks q->shutdown, "
		     "which buse_dev_del() sets only after del_gendisk()) and "
		     "the request waited for the %u ms recovery timeout although "
		     "no daemon can attach to a device being deleted", x.took,
		     limit, p.recovery_timeout_ms);
	printf("buse-hostile: recoverdel: DEL %s after %.1f s, read %s after %.1f s\n",
	       errname(x.err), x.took, errname(rd.err),
	       (WD("join read", pthread_join(rt, NULL)), rd.took));
	CHECK(!x.err, "recoverdel: DEL: %s", errname(x.err));
	tally("recoverdel-read", rd.err);
	WD("close(disk)", close(fd));
	finish_device(d, "recoverdel");
	hdev_free(d);
}

/* ------------------------------------------------------------------------ */
/* Mode bigmem */

/* Write the module's pinned_limit_mb; false when it cannot be set. */
static bool set_pinned_limit(unsigned mb)
{
	FILE *f = fopen("/sys/module/buse/parameters/pinned_limit_mb", "w");
	bool ok;

	if (!f)
		return false;
	ok = fprintf(f, "%u\n", mb) > 0;
	return fclose(f) == 0 && ok;
}

/* ADD a one-queue device pinning @depth * @io bytes; its id in @id. */
static int bigmem_add(uint32_t depth, uint32_t io, uint32_t *id)
{
	struct buse_dev_params p;
	int e;

	memset(&p, 0, sizeof(p));
	p.dev_id = BUSE_DEV_ID_ANY;
	set_name(&p, "big");
	p.size = 1ULL << 30;
	p.nr_queues = 1;
	p.queue_depth = depth;
	p.max_io_bytes = io;
	e = ctl_add(&p);
	tally("bigmem-add", e);
	if (!e)
		*id = p.dev_id;
	return e;
}

static void bigmem_del(const uint32_t *ids, unsigned n)
{
	unsigned i;

	for (i = 0; i < n; i++) {
		int e = ctl_del(ids[i]);

		CHECK(!e, "bigmem: DEL: %s", errname(e));
	}
}

static void mode_bigmem(double until)
{
	const uint32_t depth = BUSE_MAX_QUEUE_DATA / BUSE_MAX_IO_BYTES;
	uint32_t ids[16], id;
	unsigned n = 0;
	int e = 0;

	(void)until;
	/* If the OOM killer runs anyway, it should pick us, not the harness. */
	{
		int fd = open("/proc/self/oom_score_adj", O_WRONLY);

		if (fd >= 0) {
			(void)!write(fd, "1000", 4);
			close(fd);
		}
	}
	/*
	 * 1 GiB devices until the kernel refuses: all devices together may
	 * pin half of RAM, so it refuses before memory runs out.
	 */
	while (n < 16) {
		e = bigmem_add(depth, BUSE_MAX_IO_BYTES, &ids[n]);
		if (e)
			break;
		vlog("bigmem: buse%u with 1 x %llu MiB", ids[n],
		     (unsigned long long)(BUSE_MAX_QUEUE_DATA >> 20));
		n++;
	}
	printf("buse-hostile: bigmem: %u devices of 1 GiB, then %s\n", n,
	       errname(e));
	CHECK(e == ENOMEM, "bigmem: ADD beyond memory: %s, want ENOMEM",
	      errname(e));
	bigmem_del(ids, n);
	/* Deleted devices give their memory back to the budget. */
	e = bigmem_add(depth, BUSE_MAX_IO_BYTES, &id);
	CHECK(!e, "bigmem: ADD after the DELs: %s, want success", errname(e));
	if (!e)
		bigmem_del(&id, 1);

	/* An operator's budget: 64 MiB holds two 32 MiB devices, no more. */
	if (!set_pinned_limit(64)) {
		vlog("bigmem: pinned_limit_mb not writable, skipped");
		return;
	}
	e = bigmem_add(128, 1 << 20, &id);
	CHECK(e == ENOMEM, "bigmem: 128 MiB under a 64 MiB limit: %s",
	      errname(e));
	if (!e)
		bigmem_del(&id, 1);
	for (n = 0; n < 3; n++) {
		e = bigmem_add(32, 1 << 20, &ids[n]);
		if (e)
			break;
	}
	CHECK(n == 2 && e == ENOMEM,
	      "bigmem: 32 MiB devices under a 64 MiB limit: %u, then %s", n,
	      errname(e));
	bigmem_del(ids, n);
	CHECK(set_pinned_limit(0), "bigmem: restoring pinned_limit_mb");
	printf("buse-hostile: bigmem: a 64 MiB limit held two 32 MiB devices\n");
}

/* ------------------------------------------------------------------------ */
/* Main */

static int try_open(const char *path, bool drop)
{
	struct buse_dev_info info;
	int fd = open(path, O_RDWR | O_CLOEXEC);
	int e;

	if (fd < 0) {
		printf("open=%s\n", errname(errno));
		return 0;
	}
	if (drop) {
		if (setgroups(0, NULL) || setresgid(65534, 65534, 65534) ||
		    setresuid(65534, 65534, 65534)) {
			perror("dropping privileges");
			return 2;
		}
	}
	memset(&info, 0, sizeof(info));
	info.flags = BUSE_INFO_NEXT;
	e = ioctl(fd, BUSE_CTL_GET_INFO, &info) ? errno : 0;
	printf("open=ok ioctl=%s", errname(e));
	memset(&info, 0, sizeof(info));
	e = ioctl(fd, BUSE_CTL_DEL, 0xfffffffeUL) ? errno : 0;
	printf(" del=%s\n", errname(e));
	close(fd);
	return 0;
}

static void final_sweep(void)
{
	struct buse_dev_info info;
	uint32_t id;

	for (id = 0; id < MAX_IDS; id++) {
		if (!g_mine[id])
			continue;
		if (!ctl_info(id, 0, &info)) {
			FAIL("buse%u (created here) is still there, state %u",
			     id, info.state);
			ctl_del(id);
		}
	}
	id = 0;
	while (!ctl_info(id, BUSE_INFO_NEXT, &info)) {
		if (name_is_ours(info.params.name)) {
			FAIL("leftover device buse%u '%.32s'", info.dev_id,
			     info.params.name);
			ctl_del(info.dev_id);
		}
		id = info.dev_id + 1;
	}
	for (id = 0; id < MAX_IDS; id++)
		if (g_mine[id] && sysfs_present(id))
			FAIL("/sys/block/buse%u left behind", id);
	{
		int fds[16];
		size_t n = leaked_queue_fds(fds, 16);

		CHECK(n == 0, "%zu queue fds still open at the end", n);
	}
}

static void usage(int status)
{
	fprintf(status ? stderr : stdout,
		"usage: buse-hostile [--seed N] [--iters N] [--time SECONDS] [--hang SECONDS]\n"
		"                    [--mode all|params|ioctl|mmap|daemon|addrace|wbstall|wbrace|recoverdel|bigmem[,...]]\n"
		"                    [--verbose]\n"
		"       buse-hostile --try-open PATH [--drop-privs]\n");
	exit(status);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "seed", required_argument, NULL, 's' },
		{ "iters", required_argument, NULL, 'i' },
		{ "time", required_argument, NULL, 't' },
		{ "hang", required_argument, NULL, 'H' },
		{ "mode", required_argument, NULL, 'm' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "try-open", required_argument, NULL, 'o' },
		{ "drop-privs", no_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static const struct {
		const char *name;
		void (*fn)(double until);
		double share;
		bool in_all;
	} modes[] = {
		{ "params", mode_params, 0.12, true },
		{ "ioctl", mode_ioctl, 0.15, true },
		{ "mmap", mode_mmap, 0.08, true },
		{ "daemon", mode_daemon, 0.65, true },
		{ "addrace", mode_addrace, 0.0, false },
		{ "wbstall", mode_wbstall, 0.0, false },
		{ "wbrace", mode_wbrace, 0.0, false },
		{ "recoverdel", mode_recoverdel, 0.0, false },
		{ "bigmem", mode_bigmem, 0.0, false },
	};
	const size_t nmodes = sizeof(modes) / sizeof(modes[0]);
	bool want[sizeof(modes) / sizeof(modes[0])] = { false };
	const char *mode_arg = "all", *try_path = NULL;
	bool drop = false, seeded = false;
	double t0, share_sum = 0, spent;
	size_t m;
	int c;

	while ((c = getopt_long(argc, argv, "s:i:t:H:m:vo:dh", opts, NULL)) != -1) {
		switch (c) {
		case 's': g_seed = strtoull(optarg, NULL, 0); seeded = true; break;
		case 'i': g_iters = strtoul(optarg, NULL, 0); break;
		case 't': g_time = strtod(optarg, NULL); break;
		case 'H': g_hang = strtod(optarg, NULL); break;
		case 'm': mode_arg = optarg; break;
		case 'v': g_verbose = 1; break;
		case 'o': try_path = optarg; break;
		case 'd': drop = true; break;
		case 'h': usage(0); break;
		default: usage(2);
		}
	}
	if (optind != argc || g_time <= 0 || g_hang <= 0)
		usage(2);
	if (try_path)
		return try_open(try_path, drop);

	{
		char *s = strdup(mode_arg), *tok, *save = NULL;

		for (tok = strtok_r(s, ",", &save); tok;
		     tok = strtok_r(NULL, ",", &save)) {
			bool hit = false;

			for (m = 0; m < nmodes; m++)
				if (!strcmp(tok, modes[m].name) ||
				    (!strcmp(tok, "all") && modes[m].in_all)) {
					want[m] = true;
					hit = true;
				}
			if (!hit) {
				fprintf(stderr, "buse-hostile: unknown mode %s\n",
					tok);
				usage(2);
			}
		}
		free(s);
	}
	if (!seeded)
		g_seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
	g_page = sysconf(_SC_PAGESIZE);
	g_main_pid = getpid();
	g_failures = shared_alloc((FAIL_LINES + 16) * sizeof(atomic_int));
	g_hung = g_failures + 1;
	g_fail_at = g_failures + 16;
	signal(SIGPIPE, SIG_IGN);
	{
		struct sigaction sa = { .sa_handler = on_sigusr1 };

		sigemptyset(&sa.sa_mask);	/* no SA_RESTART: EINTR */
		sigaction(SIGUSR1, &sa, NULL);
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	read_possible_cpus();
	g_ctl = open(CTL_PATH, O_RDWR | O_CLOEXEC);
	if (g_ctl < 0) {
		fprintf(stderr, "buse-hostile: %s: %s\n", CTL_PATH,
			strerror(errno));
		return 2;
	}
	/* Under /dev: other places may be mounted nodev. */
	snprintf(g_nodedir, sizeof(g_nodedir), "/dev/.buse-hostile.XXXXXX");
	if (!mkdtemp(g_nodedir)) {
		perror("mkdtemp");
		return 2;
	}
	printf("buse-hostile: seed %" PRIu64 ", %.0f s, modes %s, %u CPUs\n",
	       g_seed, g_time, mode_arg, g_ncpu);
	t0 = now();
	g_deadline = t0 + g_time + 4 * g_hang;
	start_monitor();
	wd_enter();

	for (m = 0; m < nmodes; m++)
		if (want[m])
			share_sum += modes[m].share;
	spent = 0;
	for (m = 0; m < nmodes; m++) {
		double until, m0;
		int before;

		if (!want[m])
			continue;
		m0 = now();
		until = share_sum > 0 ?
			m0 + (t0 + g_time - m0) * modes[m].share /
				(share_sum - spent) :
			m0 + g_time;
		if (modes[m].share == 0)	/* reproducers: --time each */
			until = m0 + g_time;
		before = atomic_load(g_failures);
		modes[m].fn(until);
		spent += modes[m].share;
		printf("buse-hostile: mode %s: %.1f s, %d failures\n",
		       modes[m].name, now() - m0,
		       atomic_load(g_failures) - before);
	}
	final_sweep();
	print_tallies();
	rmdir(g_nodedir);
	wd_leave();
	if (atomic_load(g_failures)) {
		int l;

		printf("buse-hostile: failed checks by source line:");
		for (l = 0; l < FAIL_LINES; l++)
			if (atomic_load(&g_fail_at[l]))
				printf(" %d:%d", l, atomic_load(&g_fail_at[l]));
		printf("\n");
		printf("buse-hostile: FAILED: %d checks failed (seed %" PRIu64 ")\n",
		       atomic_load(g_failures), g_seed);
		return 1;
	}
	printf("buse-hostile: PASS (seed %" PRIu64 ", %.1f s)\n", g_seed,
	       now() - t0);
	return 0;
}
