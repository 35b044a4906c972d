// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * `buse add ... --supervise`: keep a recoverable device served across
 * daemon crashes.  The supervisor runs the driver in a child (the worker);
 * when the worker dies and leaves the device orphaned, it starts a new one
 * in recover mode with the same options, which takes over the requests the
 * dead one held.  A worker that dies before serving, or within
 * FAST_FAILURE_MS of it, is a fast failure: the next start waits longer
 * (back-off), and after GIVE_UP of them in a row the supervisor stops and
 * leaves the device orphaned for `buse recover` or its recovery timeout.
 *
 * The supervisor ends when the worker exits cleanly (the device was
 * deleted: `buse del`, or SIGTERM/SIGINT, which it passes on to the
 * worker), or when the device is gone or dead.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tool.h"

#define FAST_FAILURE_MS 1000
#define GIVE_UP 5
#define BACKOFF_FIRST_MS 250	/* doubled for each further fast failure */
#define ORPHAN_WAIT_MS 5000	/* for the kernel to see the worker gone */

static volatile sig_atomic_t sup_stop;
static volatile pid_t sup_worker;

/* Pass SIGTERM/SIGINT on: the worker deletes the device and exits 0. */
static void sup_signal(int sig)
{
	pid_t w = sup_worker;

	sup_stop = 1;
	if (w > 0)
		kill(w, sig);
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};

	/* A signal cuts it short; sup_stop then says why. */
	nanosleep(&ts, NULL);
}

static void say(uint32_t id, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void say(uint32_t id, const char *fmt, ...)
{
	va_list ap;

	if (id == BUSE_DEV_ID_ANY)
		fprintf(stderr, "buse: supervise: ");
	else
		fprintf(stderr, "buse: supervise: %s%u: ", BUSE_DISK_NAME, id);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	fflush(stderr);
}

static void describe_exit(char *buf, size_t len, int status)
{
	if (WIFSIGNALED(status))
		snprintf(buf, len, "killed by signal %d (%s)", WTERMSIG(status),
			 strsignal(WTERMSIG(status)));
	else
		snprintf(buf, len, "exited with status %d",
			 WEXITSTATUS(status));
}

/*
 * After a worker died: 1 if the device waits for a new daemon (and its
 * geometry is in *info), 0 if it is gone, -1 if it is in another state
 * (info->state, UINT32_MAX when even that is unknown).
 */
static int orphaned(uint32_t id, pid_t dead, struct buse_dev_info *info)
{
	int64_t until = now_ms() + ORPHAN_WAIT_MS;
	int ret;

	for (;;) {
		ret = buse_info(id, info);
		if (ret == -ENOENT)
			return 0;
		if (ret)
			info->state = UINT32_MAX; /* "unknown" */
		else if (info->state == BUSE_STATE_ORPHANED)
			return 1;
		/* The kernel may not have seen the worker's queues close. */
		if (now_ms() >= until ||
		    (!ret && info->state != BUSE_STATE_DELETING &&
		     (int)info->daemon_pid != dead))
			return -1;
		sleep_ms(20);
	}
}

/* Start one worker: its pid, and in *rfd the pipe it reports on. */
static pid_t start_worker(const struct buse_params *p, serve_fn *serve,
			  void *arg, int report_fd, int *rfd)
{
	int pfd[2];
	pid_t pid;

	if (pipe2(pfd, O_CLOEXEC) < 0)
		return -errno;
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		int e = -errno;

		close(pfd[0]);
		close(pfd[1]);
		return e;
	}
	if (!pid) {
		close(pfd[0]);
		if (report_fd >= 0)
			close(report_fd);
		signal(SIGTERM, SIG_DFL);
		signal(SIGINT, SIG_DFL);
		exit(serve(p, pfd[1], arg) < 0);
	}
	close(pfd[1]);
	*rfd = pfd[0];
	return pid;
}

static bool read_msg(int fd, struct serve_msg *msg)
{
	ssize_t n;

	do
		n = read(fd, msg, sizeof(*msg));
	while (n < 0 && errno == EINTR);
	close(fd);
	if (n != sizeof(*msg))
		return false;
	msg->why[sizeof(msg->why) - 1] = 0;
	return true;
}

static int wait_worker(pid_t pid)
{
	int status = 0;

	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	sup_worker = 0;
	return status;
}

int supervise(const struct buse_params *params, serve_fn *serve, void *arg,
	      int report_fd)
{
	struct buse_params p = *params;
	struct sigaction sa = {.sa_handler = sup_signal};
	uint32_t id = BUSE_DEV_ID_ANY;
	unsigned int fast = 0, restarts = 0;
	struct buse_dev_info info;
	struct serve_msg msg;
	char why[96];
	int64_t served_at;
	bool started;
	pid_t pid;
	int rfd = -1, status, ret;

	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGHUP, SIG_IGN);

	for (;;) {
		pid = start_worker(&p, serve, arg, report_fd, &rfd);
		if (pid < 0) {
			say(id, "fork: %s", strerror((int)-pid));
			if (report_fd >= 0) {
				memset(&msg, 0, sizeof(msg));
				msg.err = (int32_t)pid;
				(void)!write(report_fd, &msg, sizeof(msg));
			}
			return EXIT_FAILED;
		}
		sup_worker = pid;
		if (sup_stop)
			kill(pid, SIGTERM);
		started = read_msg(rfd, &msg) && !msg.err;
		served_at = now_ms();

		if (id == BUSE_DEV_ID_ANY) {
			/* The first worker: the waiting `buse add` learns of it. */
			if (report_fd >= 0) {
				if (!started && !msg.err)
					msg.err = -EIO;
				(void)!write(report_fd, &msg, sizeof(msg));
				close(report_fd);
				report_fd = -1;
			} else if (started) {
				print_dev_path(msg.dev_id);
			}
			if (!started) {
				status = wait_worker(pid);
				return EXIT_FAILED;
			}
			id = msg.dev_id;
			say(id, "daemon %d serves", (int)pid);
		} else if (started) {
			say(id, "daemon %d took over (restart %u)", (int)pid,
			    restarts);
		}

		status = wait_worker(pid);
		if (WIFEXITED(status) && !WEXITSTATUS(status)) {
			say(id, "deleted; the supervisor ends");
			return 0;
		}
		describe_exit(why, sizeof(why), status);
		if (sup_stop) {
			say(id, "daemon %d %s while stopping", (int)pid, why);
			return EXIT_FAILED;
		}
		ret = orphaned(id, pid, &info);
		if (ret == 0) {
			say(id, "daemon %d %s; the device is gone", (int)pid,
			    why);
			return 0;
		}
		if (ret < 0) {
			const char *state = buse_state_name(info.state);

			say(id, "daemon %d %s and the device is %s, not "
				"orphaned: not restarting",
			    (int)pid, why, state ? state : "unknown");
			return EXIT_FAILED;
		}
		if (!started || now_ms() - served_at < FAST_FAILURE_MS)
			fast++;
		else
			fast = 0;
		if (fast >= GIVE_UP) {
			say(id, "daemon %d %s: %u fast failures in a row, giving "
				"up; the device stays orphaned until `buse "
				"recover` or its recovery timeout",
			    (int)pid, why, fast);
			return EXIT_FAILED;
		}
		say(id, "daemon %d %s; starting another in recover mode",
		    (int)pid, why);
		if (fast)
			sleep_ms(BACKOFF_FIRST_MS << (fast - 1));
		if (sup_stop)
			return EXIT_FAILED;
		p.recover = true;
		p.dev_id = id;
		p.size = info.params.size;
		p.logical_block_size = info.params.logical_block_size;
		p.physical_block_size = info.params.physical_block_size;
		restarts++;
	}
}
