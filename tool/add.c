// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * `buse add DRIVER [options] [driver options]`: create a device served by a
 * bundled driver, in a daemon (default) or in this process (--foreground),
 * and print its /dev path once the disk is live.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "drivers.h"
#include "size.h"
#include "tool.h"

#define NODE_TIMEOUT_MS 5000

enum add_opt_id {
	OPT_SIZE,
	OPT_BLOCK_SIZE,
	OPT_PHYS_BLOCK_SIZE,
	OPT_QUEUES,
	OPT_DEPTH,
	OPT_MAX_IO,
	OPT_TIMEOUT,
	OPT_ID,
	OPT_NAME,
	OPT_READ_ONLY,
	OPT_ROTATIONAL,
	OPT_FOREGROUND,
	OPT_LOG,
	OPT_RECOVERABLE,
	OPT_RECOVERY_TIMEOUT,
	OPT_RECOVER,
	OPT_SUPERVISE,
	OPT_WRITE_BACK,
	OPT_LOG_SIZE,
	OPT_POLL,
	OPT_CPUS,
	OPT_SCHED,
};

static const struct add_opt {
	const char *name;
	const char *arg; /* its value's name; NULL: takes none */
	enum add_opt_id id;
	const char *help;
	const char *want; /* what a valid value looks like */
} add_opts[] = {
	{"size", "SIZE", OPT_SIZE,
	 "disk size: bytes or K, M, G, T (powers of 1024)",
	 "a non-zero number of bytes, with an optional K, M, G or T suffix"},
	{"block-size", "N", OPT_BLOCK_SIZE,
	 "logical block size: 512 (default), 1024, 2048, 4096",
	 "512, 1024, 2048 or 4096"},
	{"physical-block-size", "N", OPT_PHYS_BLOCK_SIZE,
	 "default: the logical block size", "a power of two from 512 to 1M"},
	{"queues", "N", OPT_QUEUES, "hardware queues (default: one per CPU)",
	 "1 to 256"},
	{"depth", "N", OPT_DEPTH, "requests in flight per queue (default 128)",
	 "1 to 4096"},
	{"max-io", "BYTES", OPT_MAX_IO,
	 "largest request, a multiple of 4K (default 256K)",
	 "a multiple of 4K up to 4M"},
	{"timeout", "SECONDS", OPT_TIMEOUT, "per request (default 30)",
	 "1 to 3600 seconds"},
	{"id", "N", OPT_ID, "create /dev/buseN (default: the first free N)",
	 "N, buseN or /dev/buseN"},
	{"name", "NAME", OPT_NAME,
	 "a stable name: /dev/disk/by-id/buse-NAME, and DEV for other commands",
	 "1 to 31 of A-Z a-z 0-9 . _ -, not starting with . or -, not a "
	 "number"},
	{"read-only", NULL, OPT_READ_ONLY, "refuse writes", NULL},
	{"rotational", NULL, OPT_ROTATIONAL,
	 "tell the kernel it is a spinning disk", NULL},
	{"write-back", NULL, OPT_WRITE_BACK,
	 "complete writes once in the kernel's write log", NULL},
	{"log-size", "BYTES", OPT_LOG_SIZE,
	 "write-back log per queue, a multiple of 4K (default 16M)",
	 "a multiple of 4K up to 1G"},
	{"poll", "USEC", OPT_POLL,
	 "busy-poll for new requests before sleeping (default 0: off)",
	 "0 to 1000000 microseconds"},
	{"cpus", "LIST", OPT_CPUS,
	 "run the queue threads on these CPUs, one each, round robin; with "
	 "a large --poll on CPUs that submit no I/O: lowest latency",
	 "a CPU list such as 1 or 2-3,6"},
	{"sched", "POLICY", OPT_SCHED,
	 "queue threads: adaptive (default), latency or throughput",
	 "adaptive, latency or throughput"},
	{"recoverable", NULL, OPT_RECOVERABLE,
	 "if the daemon dies, I/O waits for `buse recover`", NULL},
	{"recovery-timeout", "SECONDS", OPT_RECOVERY_TIMEOUT,
	 "how long I/O waits for a new daemon (default 30)",
	 "1 to 3600 seconds"},
	{"recover", "N", OPT_RECOVER,
	 "serve the orphaned recoverable device N (as `buse recover`)",
	 "N, buseN, /dev/buseN or a device's name"},
	{"supervise", NULL, OPT_SUPERVISE,
	 "when the daemon dies, start another in recover mode (implies "
	 "--recoverable)",
	 NULL},
	{"foreground", NULL, OPT_FOREGROUND,
	 "serve from this process until deleted or SIGINT/SIGTERM", NULL},
	{"log", "FILE", OPT_LOG,
	 "the daemon's stdout and stderr (default /dev/null)", NULL},
};

/* How to serve: the options that are the tool's, not the device's. */
struct add_how {
	bool foreground;
	bool supervise;
	const char *log;
};

/* The started hook only gets the driver's priv, so it finds these here. */
static const struct buse_driver *add_drv;
static int add_notify_fd = -1; /* daemon: pipe to the parent */
static bool add_was_started;
static uint32_t add_dev_id = BUSE_DEV_ID_ANY; /* has a backing note */
/* libbuse's first message before the device started: why it did not. */
static char add_lib_why[240];

/* libbuse's messages: into the daemon's log, and the first one kept. */
static void add_log_line(void *arg, const char *line)
{
	(void)arg;
	fprintf(stderr, "libbuse: %s\n", line);
	if (!add_was_started && !add_lib_why[0])
		snprintf(add_lib_why, sizeof(add_lib_why), "%s", line);
}

void usage_driver(FILE *f, const char *name)
{
	const struct buse_driver *drv = buse_driver_find(name);
	const char *line, *end;

	if (!drv)
		return;
	fprintf(f, "usage: buse add %s [options]%s\n%s: %s\n", drv->name,
		drv->usage ? " [driver options]" : "", drv->name, drv->summary);
	if (!drv->usage)
		return;
	fprintf(f, "\ndriver options:\n");
	for (line = drv->usage; *line; line = end) {
		end = strchrnul(line, '\n');
		fprintf(f, "  %.*s\n", (int)(end - line), line);
		if (*end)
			end++;
	}
}

void usage_add(FILE *f)
{
	const struct buse_driver *const *d;
	size_t i;

	fprintf(f, "usage: buse add DRIVER [options] [driver options]\n"
		   "Create a device and print its path, /dev/buseN.\n\n"
		   "options:\n");
	for (i = 0; i < sizeof(add_opts) / sizeof(add_opts[0]); i++) {
		const struct add_opt *o = &add_opts[i];
		char opt[64];

		snprintf(opt, sizeof(opt), "--%s %s", o->name,
			 o->arg ? o->arg : "");
		fprintf(f, "  %-28s %s\n", opt, o->help);
	}
	fprintf(f, "\ndrivers (buse help DRIVER for their options):\n");
	for (d = buse_drivers; *d; d++)
		fprintf(f, "  %-6s %s\n", (*d)->name, (*d)->summary);
}

/* udev may create the node a moment after the disk went live. */
static bool wait_for_node(uint32_t id, int timeout_ms)
{
	char path[64];
	struct stat st;
	int waited;

	snprintf(path, sizeof(path), "/dev/%s%u", BUSE_DISK_NAME, id);
	for (waited = 0;; waited += 10) {
		if (!stat(path, &st) && S_ISBLK(st.st_mode))
			return true;
		if (waited >= timeout_ms)
			return false;
		usleep(10000);
	}
}

void print_dev_path(uint32_t id)
{
	if (!wait_for_node(id, NODE_TIMEOUT_MS))
		fprintf(stderr, "buse: warning: /dev/%s%u did not appear\n",
			BUSE_DISK_NAME, id);
	printf("/dev/%s%u\n", BUSE_DISK_NAME, id);
	fflush(stdout);
}

static void add_started(void *priv, uint32_t dev_id)
{
	struct serve_msg msg = {.err = 0, .dev_id = dev_id};

	if (add_drv->ops->started)
		add_drv->ops->started(priv, dev_id);
	if (add_drv->backing) {
		int err = backing_note_write(dev_id, add_drv->backing(priv));

		if (err)
			fprintf(stderr, "buse: note in %s: %s\n",
				buse_run_dir(), strerror(-err));
		add_dev_id = dev_id;
	}
	add_was_started = true;
	if (add_notify_fd < 0) {
		print_dev_path(dev_id);
		return;
	}
	/* Atomic, as it is smaller than PIPE_BUF; EPIPE if the parent died. */
	if (write(add_notify_fd, &msg, sizeof(msg)) < 0)
		fprintf(stderr, "buse: notify: %s\n", strerror(errno));
	close(add_notify_fd);
	add_notify_fd = -1;
}

/* Parse the value of a common option into *p and friends. */
static int add_set(const struct add_opt *o, const char *val,
		   struct buse_params *p, struct add_how *how)
{
	uint32_t v = 0;
	uint64_t bytes;
	int ret = 0;

	switch (o->id) {
	case OPT_SIZE:
		ret = parse_size(val, &bytes);
		if (!ret)
			p->size = bytes;
		break;
	case OPT_BLOCK_SIZE:
	case OPT_PHYS_BLOCK_SIZE:
		ret = parse_u32(val, BUSE_MIN_BLOCK_SIZE,
				o->id == OPT_BLOCK_SIZE ? BUSE_MAX_BLOCK_SIZE
							: 1U << 20,
				&v);
		if (!ret && (v & (v - 1)))
			ret = -EINVAL;
		if (o->id == OPT_BLOCK_SIZE)
			p->logical_block_size = v;
		else
			p->physical_block_size = v;
		break;
	case OPT_QUEUES:
		ret = parse_u32(val, 1, BUSE_MAX_QUEUES, &p->nr_queues);
		break;
	case OPT_DEPTH:
		ret = parse_u32(val, 1, BUSE_MAX_DEPTH, &p->queue_depth);
		break;
	case OPT_MAX_IO:
		ret = parse_size(val, &bytes);
		if (!ret && (bytes > BUSE_MAX_IO_BYTES || bytes % 4096))
			ret = -ERANGE;
		p->max_io_bytes = (uint32_t)bytes;
		break;
	case OPT_TIMEOUT:
		ret = parse_u32(val, 1, BUSE_MAX_TIMEOUT_MS / 1000, &v);
		p->timeout_ms = v * 1000;
		break;
	case OPT_ID:
		ret = parse_dev_id(val, &p->dev_id);
		break;
	case OPT_NAME:
		ret = valid_dev_name(val) ? 0 : -EINVAL;
		p->serial = val;
		break;
	case OPT_READ_ONLY:
		p->read_only = true;
		break;
	case OPT_ROTATIONAL:
		p->rotational = true;
		break;
	case OPT_RECOVERABLE:
		p->recoverable = true;
		break;
	case OPT_POLL:
		ret = parse_u32(val, 0, 1000000, &p->poll_us);
		break;
	case OPT_CPUS: /* libbuse checks it, against this process's CPUs */
		p->cpus = val;
		break;
	case OPT_SCHED:
		if (!strcmp(val, "adaptive"))
			p->sched = BUSE_SCHED_ADAPTIVE;
		else if (!strcmp(val, "latency"))
			p->sched = BUSE_SCHED_LATENCY;
		else if (!strcmp(val, "throughput"))
			p->sched = BUSE_SCHED_THROUGHPUT;
		else
			ret = -EINVAL;
		break;
	case OPT_WRITE_BACK:
		p->write_back = true;
		break;
	case OPT_LOG_SIZE:
		ret = parse_size(val, &bytes);
		if (!ret && (bytes > BUSE_MAX_LOG_BYTES || bytes % 4096))
			ret = -ERANGE;
		p->log_bytes = bytes;
		p->write_back = true;
		break;
	case OPT_RECOVERY_TIMEOUT:
		ret = parse_u32(val, 1, BUSE_MAX_TIMEOUT_MS / 1000, &v);
		p->recovery_timeout_ms = v * 1000;
		p->recoverable = true;
		break;
	case OPT_RECOVER:
		ret = resolve_dev(val, &p->dev_id);
		if (ret == -ENOENT) {
			fprintf(stderr, "buse: recover: no device is named "
					"'%s'\n",
				val);
			return ret;
		}
		p->recover = true;
		break;
	case OPT_SUPERVISE:
		how->supervise = true;
		p->recoverable = true;
		break;
	case OPT_FOREGROUND:
		how->foreground = true;
		break;
	case OPT_LOG:
		how->log = val;
		break;
	}
	if (ret == -ERANGE && o->id == OPT_SIZE)
		fprintf(stderr,
			"buse: --%s %s: too large (the limit is 2^64 "
			"bytes)\n",
			o->name, val);
	else if (ret == -ERANGE)
		fprintf(stderr, "buse: --%s %s: out of range: want %s\n",
			o->name, val, o->want);
	else if (ret)
		fprintf(stderr, "buse: --%s: invalid value '%s': want %s\n",
			o->name, val, o->want);
	return ret;
}

/*
 * Take out the common options, wherever they are; everything else, in
 * order, is the driver's (dargv[0] is the driver's name).  After "--",
 * everything is the driver's.
 */
static int add_parse(int argc, char **argv, struct buse_params *p,
		     struct add_how *how, int *dargc, char **dargv)
{
	const struct add_opt *o;
	const char *arg, *val;
	size_t i, nlen;
	int a, ret;

	*dargc = 1;
	dargv[0] = argv[0];
	for (a = 1; a < argc; a++) {
		arg = argv[a];
		if (!strcmp(arg, "--")) {
			while (++a < argc)
				dargv[(*dargc)++] = argv[a];
			break;
		}
		o = NULL;
		if (!strncmp(arg, "--", 2)) {
			nlen = strcspn(arg + 2, "=");
			for (i = 0; i < sizeof(add_opts) / sizeof(*add_opts);
			     i++)
				if (strlen(add_opts[i].name) == nlen &&
				    !strncmp(arg + 2, add_opts[i].name, nlen))
					o = &add_opts[i];
		}
		if (!o) {
			dargv[(*dargc)++] = argv[a];
			continue;
		}
		val = arg[2 + nlen] == '=' ? arg + 3 + nlen : NULL;
		if (o->arg && !val) {
			if (a + 1 >= argc) {
				fprintf(stderr, "buse: --%s needs a value\n",
					o->name);
				return -EINVAL;
			}
			val = argv[++a];
		} else if (!o->arg && val) {
			fprintf(stderr, "buse: --%s takes no value\n", o->name);
			return -EINVAL;
		}
		ret = add_set(o, val, p, how);
		if (ret)
			return ret;
	}
	dargv[*dargc] = NULL;
	return 0;
}

static int check_size(const struct buse_params *p)
{
	if (p->size % p->logical_block_size) {
		fprintf(stderr, "buse: size %llu is not a multiple of %u\n",
			(unsigned long long)p->size, p->logical_block_size);
		return -EINVAL;
	}
	return 0;
}

/*
 * The kernel's limits on combinations of options, checked here so that a
 * refusal names the limit it hit instead of a bare EINVAL or ENOMEM.
 */
static int check_limits(const struct buse_params *p)
{
	uint64_t depth = p->queue_depth ? p->queue_depth : BUSE_DEF_DEPTH;
	uint64_t io = p->max_io_bytes ? p->max_io_bytes : BUSE_DEF_IO_BYTES;
	uint64_t log = !p->write_back ? 0
		       : p->log_bytes ? p->log_bytes
				      : BUSE_DEF_LOG_BYTES;
	long cpus = sysconf(_SC_NPROCESSORS_CONF);
	uint64_t queues = p->nr_queues ? p->nr_queues : (uint64_t)cpus;
	long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
	uint64_t pinned, half_ram;
	char s1[32], s2[32], s3[32];

	if (depth * io > BUSE_MAX_QUEUE_DATA) {
		fprintf(stderr,
			"buse: --depth %llu x --max-io %s = %s per queue: the "
			"limit is %s per queue (depth x max-io); lower one\n",
			(unsigned long long)depth,
			format_size(io, s1, sizeof(s1)),
			format_size(depth * io, s2, sizeof(s2)),
			format_size(BUSE_MAX_QUEUE_DATA, s3, sizeof(s3)));
		return -EINVAL;
	}
	if (log && log < io) {
		fprintf(stderr,
			"buse: --log-size %s is smaller than --max-io %s: the "
			"write-back log must hold the largest request\n",
			format_size(log, s1, sizeof(s1)),
			format_size(io, s2, sizeof(s2)));
		return -EINVAL;
	}
	if (cpus <= 0 || pages <= 0 || psz <= 0)
		return 0;
	/* Data slots and logs are pinned: the kernel allows half of RAM. */
	pinned = queues * (depth * io + log);
	half_ram = (uint64_t)pages * (uint64_t)psz / 2;
	if (pinned > half_ram) {
		fprintf(stderr,
			"buse: %llu queues x (depth x max-io + log) = %s of "
			"pinned memory: the limit is half of RAM, %s; use "
			"fewer --queues, a smaller --depth, --max-io or "
			"--log-size\n",
			(unsigned long long)queues,
			format_size(pinned, s1, sizeof(s1)),
			format_size(half_ram, s2, sizeof(s2)));
		return -ENOMEM;
	}
	return 0;
}

/* A new daemon for an orphaned device: the device keeps its geometry. */
static int recover_geometry(struct buse_params *p)
{
	struct buse_dev_info info;
	int ret = buse_info(p->dev_id, &info);

	if (ret == -ENOENT)
		fprintf(stderr, "buse: recover: no such device: %s%u\n",
			BUSE_DISK_NAME, p->dev_id);
	else if (ret)
		fprintf(stderr, "buse: recover: %s%u: %s\n", BUSE_DISK_NAME,
			p->dev_id, strerror(-ret));
	if (ret)
		return ret;
	if (!(info.params.flags & BUSE_F_RECOVERABLE)) {
		fprintf(stderr, "buse: recover: %s%u is not recoverable\n",
			BUSE_DISK_NAME, p->dev_id);
		return -EINVAL;
	}
	p->size = info.params.size;
	p->logical_block_size = info.params.logical_block_size;
	p->physical_block_size = info.params.physical_block_size;
	return 0;
}

/* buse recover N DRIVER [driver options]: buse add DRIVER --recover N ... */
int cmd_recover(int argc, char **argv)
{
	char **av;
	int i, ret;

	if (argc < 3) {
		fprintf(stderr,
			"usage: buse recover N DRIVER [driver options]\n");
		return EXIT_USAGE;
	}
	av = calloc(argc + 2, sizeof(*av));
	if (!av) {
		fprintf(stderr, "buse: %s\n", strerror(ENOMEM));
		return 1;
	}
	av[0] = "add";
	av[1] = argv[2];
	av[2] = "--recover";
	av[3] = argv[1];
	for (i = 3; i < argc; i++)
		av[i + 1] = argv[i];
	ret = cmd_add(argc + 1, av);
	free(av);
	return ret;
}

/* What add_serve() needs besides the parameters. */
struct add_serve_arg {
	const struct buse_ops *ops;
	void *priv;
};

/* A serve_fn: the driver's serve_init(), then buse_run(). */
static int add_serve(const struct buse_params *p, int notify_fd, void *arg)
{
	const struct add_serve_arg *a = arg;
	struct serve_msg msg;
	int ret;

	add_notify_fd = notify_fd;
	add_was_started = false;
	add_lib_why[0] = 0;
	memset(&msg, 0, sizeof(msg));
	ret = add_drv->serve_init ? add_drv->serve_init(a->priv, msg.why,
							sizeof(msg.why))
				  : 0;
	if (ret < 0)
		fprintf(stderr, "buse: %s: %s\n", add_drv->name, msg.why);
	else
		ret = buse_run(p, a->ops, a->priv);
	if (ret < 0 && !msg.why[0])
		fprintf(stderr, "buse: %s: %s\n", add_drv->name,
			strerror(-ret));
	if (!add_was_started && add_notify_fd >= 0) {
		msg.err = ret < 0 ? ret : -ECANCELED;
		msg.dev_id = 0;
		if (!msg.why[0] && add_lib_why[0])
			snprintf(msg.why, sizeof(msg.why), "%s", add_lib_why);
		msg.why[sizeof(msg.why) - 1] = 0;
		if (write(add_notify_fd, &msg, sizeof(msg)) < 0)
			ret = -errno;
	}
	if (add_notify_fd >= 0)
		close(add_notify_fd);
	add_notify_fd = -1;
	if (add_dev_id != BUSE_DEV_ID_ANY)
		backing_note_remove(add_dev_id);
	return ret;
}

/* A supervisor's worker: serve, then undo the driver's parse(). */
static int add_worker(const struct buse_params *p, int notify_fd, void *arg)
{
	const struct add_serve_arg *a = arg;
	int ret = add_serve(p, notify_fd, arg);

	if (add_drv->cleanup)
		add_drv->cleanup(a->priv);
	return ret;
}

/* Serve from a daemon; the parent prints the path or the error. */
static int add_daemon(const struct buse_params *p, struct add_serve_arg *sa,
		      const struct add_how *how)
{
	int pfd[2], nullfd, logfd, ret, status;
	struct serve_msg msg;
	ssize_t n;
	pid_t pid;

	nullfd = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (nullfd < 0) {
		ret = -errno;
		fprintf(stderr, "buse: /dev/null: %s\n", strerror(-ret));
		return ret;
	}
	logfd = nullfd;
	if (how->log) {
		logfd = open(how->log,
			     O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		if (logfd < 0) {
			ret = -errno;
			fprintf(stderr, "buse: %s: %s\n", how->log,
				strerror(-ret));
			return ret;
		}
	}
	if (pipe2(pfd, O_CLOEXEC) < 0) {
		ret = -errno;
		fprintf(stderr, "buse: pipe: %s\n", strerror(-ret));
		return ret;
	}
	fflush(NULL); /* or the child writes our buffers again */
	pid = fork();
	if (pid < 0) {
		ret = -errno;
		fprintf(stderr, "buse: fork: %s\n", strerror(-ret));
		return ret;
	}
	if (!pid) {
		close(pfd[0]);
		/* Away from the terminal, its signals and its directory. */
		setsid();
		dup2(nullfd, STDIN_FILENO);
		dup2(logfd, STDOUT_FILENO);
		dup2(logfd, STDERR_FILENO);
		if (chdir("/") < 0)
			fprintf(stderr, "buse: chdir /: %s\n", strerror(errno));
		signal(SIGPIPE, SIG_IGN);
		buse_set_log(add_log_line, NULL);
		if (how->supervise)
			exit(supervise(p, add_worker, sa, pfd[1]));
		ret = add_worker(p, pfd[1], sa);
		exit(ret < 0);
	}

	close(pfd[1]);
	if (logfd != nullfd)
		close(logfd);
	close(nullfd);
	do
		n = read(pfd[0], &msg, sizeof(msg));
	while (n < 0 && errno == EINTR);
	close(pfd[0]);
	if (n == sizeof(msg) && !msg.err) {
		print_dev_path(msg.dev_id);
		return 0;
	}
	if (n == sizeof(msg) && msg.why[0]) {
		msg.why[sizeof(msg.why) - 1] = 0;
		fprintf(stderr, "buse: %s: %s\n", add_drv->name, msg.why);
		waitpid(pid, NULL, 0);
		return msg.err;
	}
	if (n == sizeof(msg)) {
		fprintf(stderr, "buse: %s: cannot start the device: %s%s%s%s\n",
			add_drv->name, strerror(-msg.err),
			how->log ? " (the daemon's messages are in " : "",
			how->log ? how->log : "", how->log ? ")" : "");
		waitpid(pid, NULL, 0);
		return msg.err;
	}
	/* The daemon died without a word. */
	if (waitpid(pid, &status, 0) == pid && WIFSIGNALED(status))
		fprintf(stderr, "buse: the daemon was killed by signal %d\n",
			WTERMSIG(status));
	else
		fprintf(stderr,
			"buse: the daemon exited before the device started\n");
	return -EIO;
}

int cmd_add(int argc, char **argv)
{
	const struct buse_driver *drv;
	struct buse_params p;
	struct add_serve_arg sa;
	struct add_how how = {0};
	struct buse_ops ops;
	uint64_t given_size;
	char **dargv;
	void *priv = NULL;
	int dargc, i, ret;

	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		usage_add(argc < 2 ? stderr : stdout);
		return argc < 2 ? EXIT_USAGE : 0;
	}
	drv = buse_driver_find(argv[1]);
	if (!drv) {
		fprintf(stderr, "buse: add: %s '%s' (see buse help add)\n",
			argv[1][0] == '-' ? "the driver comes first, not"
					  : "unknown driver",
			argv[1]);
		return EXIT_USAGE;
	}

	buse_params_init(&p);
	dargv = calloc(argc, sizeof(*dargv));
	if (!dargv) {
		fprintf(stderr, "buse: %s\n", strerror(ENOMEM));
		return 1;
	}
	ret = add_parse(argc - 1, argv + 1, &p, &how, &dargc, dargv);
	if (ret) {
		ret = BUSE_DRV_USAGE;
		goto out;
	}
	for (i = 1; i < dargc; i++) {
		if (!strcmp(dargv[i], "--help") || !strcmp(dargv[i], "-h")) {
			usage_driver(stdout, drv->name);
			goto out;
		}
	}
	ret = BUSE_DRV_USAGE;
	if (how.supervise && drv->data_in_daemon) {
		fprintf(stderr,
			"buse: --supervise: %s keeps the data in its daemon, "
			"so a new daemon would serve a different disk\n",
			drv->name);
		goto out;
	}
	if (p.physical_block_size &&
	    p.physical_block_size < p.logical_block_size) {
		fprintf(stderr, "buse: physical block size < block size\n");
		goto out;
	}
	if (p.recover) {
		ret = check_control();
		if (!ret)
			ret = recover_geometry(&p);
		if (ret)
			goto out;
	}
	/* Before the driver acts on it, e.g. extends a file to it. */
	if (check_size(&p) || check_limits(&p)) {
		ret = BUSE_DRV_USAGE;
		goto out;
	}
	ret = check_control();
	if (ret)
		goto out;

	given_size = p.size;
	optind = 0; /* getopt_long() starts afresh on the driver's argv */
	ret = drv->parse(dargc, dargv, &p, &priv);
	if (ret)
		goto out;
	if (!p.size) {
		fprintf(stderr, "buse: the size must not be zero\n");
		ret = BUSE_DRV_USAGE;
	} else if ((p.size != given_size && check_size(&p)) ||
		   check_limits(&p)) {
		ret = BUSE_DRV_USAGE; /* what the driver chose, e.g. bs3 */
	}
	if (ret)
		goto cleanup;

	p.name = drv->name;
	ops = *drv->ops;
	ops.started = add_started;
	add_drv = drv;
	sa.ops = &ops;
	sa.priv = priv;
	if (how.foreground && how.supervise) {
		ret = supervise(&p, add_worker, &sa, -1);
		ret = ret ? -EIO : 0;
	} else if (how.foreground) {
		ret = add_serve(&p, -1, &sa);
	} else {
		ret = add_daemon(&p, &sa, &how);
	}
cleanup:
	if (drv->cleanup)
		drv->cleanup(priv);
out:
	free(dargv);
	return !ret ? 0 : ret > 0 ? EXIT_USAGE : EXIT_FAILED;
}
