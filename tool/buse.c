// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * buse: create, list, inspect and delete BUSE block devices, in the style
 * of losetup, nbd-client and ublk.  `add` lives in add.c.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "bs3_tool.h"
#include "drivers.h"
#include "json.h"
#include "size.h"
#include "tool.h"

#define DEL_TIMEOUT_MS 10000

static const struct {
	uint32_t bit;
	const char *name;
} flag_names[] = {
	{BUSE_F_READ_ONLY, "read-only"},
	{BUSE_F_ROTATIONAL, "rotational"},
	{BUSE_F_FLUSH, "flush"},
	{BUSE_F_FUA, "fua"},
	{BUSE_F_DISCARD, "discard"},
	{BUSE_F_WRITE_ZEROES, "write-zeroes"},
	{BUSE_F_WRITE_BACK, "write-back"},
	{BUSE_F_RECOVERABLE, "recoverable"},
};

#define N_FLAG_NAMES (sizeof(flag_names) / sizeof(flag_names[0]))

int check_control(void)
{
	int ret;

	/* The kernel wants CAP_SYS_ADMIN; say so rather than a bare EACCES. */
	if (geteuid() && access(BUSE_CONTROL_PATH, R_OK | W_OK)) {
		fprintf(stderr, "buse: root only (%s needs CAP_SYS_ADMIN)\n",
			BUSE_CONTROL_PATH);
		return -EACCES;
	}
	if (!access(BUSE_CONTROL_PATH, F_OK))
		return 0;
	ret = -errno;
	if (ret == -ENOENT)
		fprintf(stderr,
			"buse: %s is missing: is the buse module loaded?\n",
			BUSE_CONTROL_PATH);
	else
		fprintf(stderr, "buse: %s: %s\n", BUSE_CONTROL_PATH,
			strerror(-ret));
	return ret;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: buse add DRIVER [options] [driver options]\n"
		"       buse recover DEV DRIVER [driver options]\n"
		"       buse list [--json]\n"
		"       buse info DEV [--json]\n"
		"       buse del DEV [--force]\n"
		"       buse bs3 create|info|check|delete s3://BUCKET/VOLUME "
		"[options]\n"
		"       buse help [add|DRIVER]\n"
		"       buse --version\n"
		"\n"
		"  add    create a device served by DRIVER, print /dev/buseN\n"
		"  recover  serve a recoverable device whose daemon died\n"
		"  list   list the devices\n"
		"  info   show every parameter of one device\n"
		"  del    delete a device and wait for its daemon to exit;\n"
		"         refused while it is mounted or held, unless --force\n"
		"  bs3    make, inspect, check, delete BS3 volumes (buse bs3 "
		"--help);\n"
		"         attach one with buse add bs3 s3://BUCKET/VOLUME\n"
		"\n"
		"DEV is N, buseN or /dev/buseN.  Drivers:");
	for (const struct buse_driver *const *d = buse_drivers; *d; d++)
		fprintf(f, " %s", (*d)->name);
	fprintf(f, ".\n"
		   "Exit status: 0 done, 1 failed, 2 wrong command line.\n");
}

int resolve_dev(const char *s, uint32_t *id)
{
	struct buse_dev_info in;
	char real[PATH_MAX];
	uint32_t next = 0;

	if (!parse_dev_id(s, id))
		return 0;
	/* A link to the node, e.g. /dev/disk/by-id/buse-NAME. */
	if (strchr(s, '/'))
		return realpath(s, real) && !parse_dev_id(real, id) ? 0
								    : -EINVAL;
	if (!valid_dev_name(s))
		return -EINVAL;
	while (!buse_info_next(next, &in)) {
		if (!strncmp(in.params.serial, s, sizeof(in.params.serial))) {
			*id = in.dev_id;
			return 0;
		}
		next = in.dev_id + 1;
	}
	return -ENOENT;
}

/* A dead or orphaned device's daemon_pid is the daemon that went away. */
static int live_pid(const struct buse_dev_info *in)
{
	return in->state == BUSE_STATE_DEAD || in->state == BUSE_STATE_ORPHANED
		       ? 0
		       : in->daemon_pid;
}

static const char *state_name(uint32_t state)
{
	const char *name = buse_state_name(state);

	return name ? name : "unknown";
}

/* The driver's name, safe for a terminal: a daemon chose it. */
static const char *driver_name(const struct buse_dev_params *p, char *buf)
{
	size_t i;

	/* The kernel NUL-terminates it; do not count on that. */
	for (i = 0; i < sizeof(p->name) && p->name[i]; i++)
		buf[i] = (unsigned char)p->name[i] < 0x20 || p->name[i] == 0x7f
				 ? '?'
				 : p->name[i];
	buf[i] = 0;
	return buf;
}

/* The device's name (its serial), or none_text; buf holds both. */
static const char *dev_name(const struct buse_dev_params *p, char *buf,
			    const char *none_text)
{
	size_t n = strnlen(p->serial, sizeof(p->serial));

	if (!n)
		return none_text;
	/* The kernel checked the alphabet; terminate it all the same. */
	memcpy(buf, p->serial, n);
	buf[n] = 0;
	return buf;
}

/* Space-separated flag words; bits we do not know as hex. */
static void print_flags(FILE *f, uint32_t flags)
{
	const char *sep = "";
	size_t i;

	for (i = 0; i < N_FLAG_NAMES; i++) {
		if (flags & flag_names[i].bit) {
			fprintf(f, "%s%s", sep, flag_names[i].name);
			flags &= ~flag_names[i].bit;
			sep = " ";
		}
	}
	if (flags)
		fprintf(f, "%s0x%x", sep, flags);
	if (!*sep)
		fprintf(f, "none");
}

static void print_json(FILE *f, const struct buse_dev_info *in)
{
	const struct buse_dev_params *p = &in->params;
	uint32_t flags = p->flags;
	char path[64], back[PATH_MAX];
	size_t i;

	snprintf(path, sizeof(path), "/dev/%s%u", BUSE_DISK_NAME, in->dev_id);
	fprintf(f, "{\"dev_id\": %u, \"path\": ", in->dev_id);
	json_string(f, path, sizeof(path));
	fprintf(f, ", \"name\": ");
	if (p->serial[0])
		json_string(f, p->serial, sizeof(p->serial));
	else
		fprintf(f, "null");
	fprintf(f, ", \"state\": ");
	json_string(f, state_name(in->state), SIZE_MAX);
	fprintf(f,
		", \"daemon_pid\": %d, \"last_daemon_pid\": %d, "
		"\"nr_attached\": %u, \"major\": %u, \"minor\": %u, "
		"\"read_only\": %s, \"backing\": ",
		live_pid(in), in->daemon_pid, in->nr_attached, in->major,
		in->minor, flags & BUSE_F_READ_ONLY ? "true" : "false");
	if (backing_note_read(in->dev_id, live_pid(in), back, sizeof(back)))
		json_string(f, back, sizeof(back));
	else
		fprintf(f, "null");
	fprintf(f, ", ");
	/* Write-back log usage, all queues together (zeros otherwise). */
	fprintf(f,
		"\"log_size\": %llu, \"log_recs\": %u, \"log_free\": %llu, "
		"\"unapplied_bytes\": %llu, \"unapplied_recs\": %u, "
		"\"retained_bytes\": %llu, \"retained_recs\": %u, "
		"\"params\": {",
		(unsigned long long)in->log_size, in->log_recs,
		(unsigned long long)in->log_free,
		(unsigned long long)in->unapplied_bytes, in->unapplied_recs,
		(unsigned long long)in->retained_bytes, in->retained_recs);
	fprintf(f,
		"\"size\": %llu, \"logical_block_size\": %u, "
		"\"physical_block_size\": %u, ",
		(unsigned long long)p->size, p->logical_block_size,
		p->physical_block_size);
	fprintf(f,
		"\"nr_queues\": %u, \"queue_depth\": %u, \"max_io_bytes\": %u, "
		"\"max_discard_bytes\": %u, ",
		p->nr_queues, p->queue_depth, p->max_io_bytes,
		p->max_discard_bytes);
	fprintf(f,
		"\"timeout_ms\": %u, \"recovery_timeout_ms\": %u, "
		"\"log_bytes\": %llu, \"name\": ",
		p->timeout_ms, p->recovery_timeout_ms,
		(unsigned long long)p->log_bytes);
	json_string(f, p->name, sizeof(p->name));
	fprintf(f, ", \"flags\": %u, \"flag_names\": [", flags);
	for (i = 0; i < N_FLAG_NAMES; i++) {
		if (flags & flag_names[i].bit) {
			flags &= ~flag_names[i].bit;
			json_string(f, flag_names[i].name, SIZE_MAX);
			if (flags)
				fprintf(f, ", ");
		}
	}
	if (flags)
		fprintf(f, "\"0x%x\"", flags);
	fprintf(f, "]}}");
}

static void print_info(const struct buse_dev_info *in)
{
	const struct buse_dev_params *p = &in->params;
	char s1[32], s2[32], name[BUSE_NAME_LEN + 1], back[PATH_MAX];
	char serial[BUSE_SERIAL_LEN + 1];

	printf("device:          /dev/%s%u (%u:%u)\n", BUSE_DISK_NAME,
	       in->dev_id, in->major, in->minor);
	printf("driver:          %s\n", driver_name(p, name));
	if (p->serial[0])
		printf("name:            %s (/dev/disk/by-id/buse-%s)\n",
		       dev_name(p, serial, ""), serial);
	if (backing_note_read(in->dev_id, live_pid(in), back, sizeof(back)))
		printf("backing:         %s\n", back);
	printf("state:           %s\n", state_name(in->state));
	if (live_pid(in) > 0)
		printf("daemon pid:      %d\n", in->daemon_pid);
	else if (in->daemon_pid > 0)
		printf("daemon pid:      none (was %d)\n", in->daemon_pid);
	else
		printf("daemon pid:      none\n");
	printf("size:            %s (%llu bytes)\n",
	       format_size(p->size, s1, sizeof(s1)),
	       (unsigned long long)p->size);
	printf("block size:      %u logical, %u physical\n",
	       p->logical_block_size, p->physical_block_size);
	printf("queues:          %u (%u attached)\n", p->nr_queues,
	       in->nr_attached);
	printf("queue depth:     %u\n", p->queue_depth);
	printf("max I/O:         %s\n",
	       format_size(p->max_io_bytes, s1, sizeof(s1)));
	printf("max discard:     %s\n",
	       p->max_discard_bytes
		       ? format_size(p->max_discard_bytes, s2, sizeof(s2))
		       : "none");
	if (p->timeout_ms % 1000)
		printf("timeout:         %u ms\n", p->timeout_ms);
	else
		printf("timeout:         %u s\n", p->timeout_ms / 1000);
	if (p->flags & BUSE_F_RECOVERABLE)
		printf("recovery limit:  %u ms\n", p->recovery_timeout_ms);
	printf("flags:           ");
	print_flags(stdout, p->flags);
	printf("\n");
	if (p->flags & BUSE_F_WRITE_BACK) {
		printf("write log:       %s per queue; %s in %u records "
		       "(all queues)\n",
		       format_size(p->log_bytes, s2, sizeof(s2)),
		       format_size(in->log_size, s1, sizeof(s1)), in->log_recs);
		printf("  unapplied:     %s in %u records\n",
		       format_size(in->unapplied_bytes, s1, sizeof(s1)),
		       in->unapplied_recs);
		printf("  retained:      %s in %u records\n",
		       format_size(in->retained_bytes, s1, sizeof(s1)),
		       in->retained_recs);
		printf("  free:          %s\n",
		       format_size(in->log_free, s1, sizeof(s1)));
	}
}

/* Only "--json" is ever allowed; returns -1 on anything else. */
static int parse_json_flag(int argc, char **argv, int first, bool *json)
{
	int i;

	*json = false;
	for (i = first; i < argc; i++) {
		if (strcmp(argv[i], "--json")) {
			fprintf(stderr, "buse: %s: unexpected argument '%s'\n",
				argv[0], argv[i]);
			return -1;
		}
		*json = true;
	}
	return 0;
}

static int cmd_list(int argc, char **argv)
{
	struct buse_dev_info in;
	uint32_t id = 0;
	bool json;
	int n = 0, ret;
	char size[32], path[32], pid[16], name[BUSE_NAME_LEN + 1];
	char serial[BUSE_SERIAL_LEN + 1], back[PATH_MAX];

	if (parse_json_flag(argc, argv, 1, &json))
		return EXIT_USAGE;
	if (check_control())
		return EXIT_FAILED;
	for (;;) {
		ret = buse_info_next(id, &in);
		if (ret == -ENOENT)
			break;
		if (ret < 0) {
			fprintf(stderr, "buse: list: %s\n", strerror(-ret));
			return 1;
		}
		if (json) {
			printf("%s\n  ", n ? "," : "[");
			print_json(stdout, &in);
		} else {
			if (!n)
				printf("%-4s %-12s %8s %-8s %-9s %2s %6s %8s "
				       "%-12s %s\n",
				       "ID", "DEVICE", "SIZE", "DRIVER",
				       "STATE", "RO", "QUEUES", "PID", "NAME",
				       "BACKING");
			snprintf(path, sizeof(path), "/dev/%s%u",
				 BUSE_DISK_NAME, in.dev_id);
			snprintf(pid, sizeof(pid), "%d", live_pid(&in));
			if (!backing_note_read(in.dev_id, live_pid(&in), back,
					       sizeof(back)))
				strcpy(back, "-");
			printf("%-4u %-12s %8s %-8s %-9s %2d %6u %8s %-12s "
			       "%s\n",
			       in.dev_id, path,
			       format_size(in.params.size, size, sizeof(size)),
			       driver_name(&in.params, name),
			       state_name(in.state),
			       !!(in.params.flags & BUSE_F_READ_ONLY),
			       in.params.nr_queues,
			       live_pid(&in) > 0 ? pid : "-",
			       dev_name(&in.params, serial, "-"), back);
		}
		n++;
		/* The last possible id, or a kernel that went backwards. */
		if (in.dev_id < id || in.dev_id >= BUSE_DEV_ID_ANY - 1)
			break;
		id = in.dev_id + 1;
	}
	if (json)
		printf(n ? "\n]\n" : "[]\n");
	return 0;
}

/*
 * `buse info DEV [--json]` and `buse del DEV [--force]` take a device and
 * one optional flag, and look the device up.  Returns 0, or the exit status.
 */
static int get_dev(int argc, char **argv, const char *flag,
		   struct buse_dev_info *in, bool *flag_set)
{
	uint32_t id;
	int i, ret;

	*flag_set = false;
	for (i = 2; i < argc; i++) {
		if (strcmp(argv[i], flag)) {
			fprintf(stderr, "buse: %s: unexpected argument '%s'\n",
				argv[0], argv[i]);
			return EXIT_USAGE;
		}
		*flag_set = true;
	}
	if (argc < 2) {
		fprintf(stderr, "usage: buse %s DEV [%s]\n", argv[0], flag);
		return EXIT_USAGE;
	}
	ret = resolve_dev(argv[1], &id);
	if (ret == -EINVAL) {
		fprintf(stderr,
			"buse: %s: not N, buseN, /dev/buseN or a name: '%s'\n",
			argv[0], argv[1]);
		return EXIT_USAGE;
	}
	if (check_control())
		return EXIT_FAILED;
	if (ret == -ENOENT) {
		fprintf(stderr, "buse: %s: no device is named '%s'\n", argv[0],
			argv[1]);
		return EXIT_FAILED;
	}
	ret = buse_info(id, in);
	if (ret == -ENOENT)
		fprintf(stderr, "buse: %s: no such device: %s%u\n", argv[0],
			BUSE_DISK_NAME, id);
	else if (ret < 0)
		fprintf(stderr, "buse: %s: %s%u: %s\n", argv[0], BUSE_DISK_NAME,
			id, strerror(-ret));
	return ret ? EXIT_FAILED : 0;
}

static int cmd_info(int argc, char **argv)
{
	struct buse_dev_info in;
	bool json;
	int ret;

	ret = get_dev(argc, argv, "--json", &in, &json);
	if (ret)
		return ret;
	if (json) {
		char *buf = NULL;
		size_t len = 0;
		FILE *m = open_memstream(&buf, &len);

		/* A BS3 daemon's stats go inside the object: before its '}'. */
		if (!m)
			return EXIT_FAILED;
		print_json(m, &in);
		fclose(m);
		if (len && buf[len - 1] == '}')
			buf[--len] = 0;
		fputs(buf, stdout);
		free(buf);
		bs3_info_json(stdout, in.dev_id, live_pid(&in));
		printf("}\n");
	} else {
		print_info(&in);
		bs3_info_text(stdout, in.dev_id, live_pid(&in));
	}
	return 0;
}

/*
 * Who holds the disk open exclusively: a mounted file system, a device
 * mapper or md device on top (sysfs holders), active swap.  One line into
 * why; false if nobody does.
 */
static bool dev_in_use(const struct buse_dev_info *in, char *why, size_t len)
{
	char path[PATH_MAX], line[4096], mm[32], mnt[PATH_MAX];
	struct dirent *e;
	bool busy = false;
	DIR *d;
	FILE *f;

	snprintf(mm, sizeof(mm), "%u:%u", in->major, in->minor);
	f = fopen("/proc/self/mountinfo", "r");
	while (f && fgets(line, sizeof(line), f)) {
		/* ID PARENT MAJ:MIN ROOT MOUNTPOINT ... */
		char dev[32];

		if (sscanf(line, "%*s %*s %31s %*s %4095s", dev, mnt) == 2 &&
		    !strcmp(dev, mm)) {
			snprintf(why, len, "mounted on %s", mnt);
			busy = true;
			break;
		}
	}
	if (f)
		fclose(f);
	if (busy)
		return true;
	snprintf(path, sizeof(path), "/sys/block/%s%u/holders", BUSE_DISK_NAME,
		 in->dev_id);
	d = opendir(path);
	while (d && (e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(why, len, "held by %s", e->d_name);
		busy = true;
		break;
	}
	if (d)
		closedir(d);
	if (busy)
		return true;
	snprintf(path, sizeof(path), "/dev/%s%u", BUSE_DISK_NAME, in->dev_id);
	f = fopen("/proc/swaps", "r");
	while (f && fgets(line, sizeof(line), f)) {
		if (sscanf(line, "%4095s", mnt) == 1 && !strcmp(mnt, path)) {
			snprintf(why, len, "in use as swap");
			busy = true;
			break;
		}
	}
	if (f)
		fclose(f);
	return busy;
}

/* Wait until the process is gone; true if it is. */
static bool wait_exit(int pidfd, pid_t pid, int timeout_ms)
{
	struct pollfd pfd = {.fd = pidfd, .events = POLLIN};
	int waited;

	/* A pidfd also sees a zombie nobody reaps, which kill(0) does not. */
	if (pidfd >= 0)
		return poll(&pfd, 1, timeout_ms) > 0;
	for (waited = 0; waited < timeout_ms; waited += 10) {
		if (kill(pid, 0) < 0 && errno == ESRCH)
			return true;
		usleep(10000);
	}
	return false;
}

static int cmd_del(int argc, char **argv)
{
	struct buse_dev_info in;
	char why[PATH_MAX + 32];
	bool force;
	pid_t pid;
	int pidfd = -1, ret;

	ret = get_dev(argc, argv, "--force", &in, &force);
	if (ret)
		return ret;
	/* As losetup -d: the file system above would fail with EIO. */
	if (!force && dev_in_use(&in, why, sizeof(why))) {
		fprintf(stderr,
			"buse: del: %s%u is %s: unmount or release it first, "
			"or --force\n",
			BUSE_DISK_NAME, in.dev_id, why);
		return EXIT_FAILED;
	}
	pid = in.daemon_pid;
	/* Before the delete, so the pid cannot be reused under us. */
	if (pid > 0) {
		pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
		if (pidfd < 0 && errno == ESRCH)
			pid = 0; /* already gone */
	}
	ret = buse_delete(in.dev_id);
	if (ret < 0) {
		fprintf(stderr, "buse: del: %s%u: %s\n", BUSE_DISK_NAME,
			in.dev_id, strerror(-ret));
		return EXIT_FAILED;
	}
	if (pid > 0 && !wait_exit(pidfd, pid, DEL_TIMEOUT_MS)) {
		fprintf(stderr,
			"buse: del: daemon %d is still running after %d s\n",
			pid, DEL_TIMEOUT_MS / 1000);
		return EXIT_FAILED;
	}
	return 0;
}

static int cmd_help(int argc, char **argv)
{
	if (argc < 2) {
		usage(stdout);
	} else if (!strcmp(argv[1], "add")) {
		usage_add(stdout);
	} else if (buse_driver_find(argv[1])) {
		usage_driver(stdout, argv[1]);
	} else {
		fprintf(stderr, "buse: help: no such command or driver '%s'\n",
			argv[1]);
		return EXIT_USAGE;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*fn)(int argc, char **argv);
	} cmds[] = {
		{"add", cmd_add},    {"recover", cmd_recover},
		{"list", cmd_list},  {"ls", cmd_list},
		{"info", cmd_info},  {"del", cmd_del},
		{"delete", cmd_del}, {"help", cmd_help},
		{"bs3", cmd_bs3},
	};
	size_t i;

	if (argc < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V")) {
		printf("buse %s (ABI %d)\n", BUSE_TOOL_VERSION,
		       BUSE_ABI_VERSION);
		return 0;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))
		return cmd_help(1, argv + 1);
	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		if (strcmp(argv[1], cmds[i].name))
			continue;
		/* `add` has its own, per driver. */
		if (cmds[i].fn != cmd_add && cmds[i].fn != cmd_bs3 &&
		    argc > 2 &&
		    (!strcmp(argv[2], "--help") || !strcmp(argv[2], "-h"))) {
			usage(stdout);
			return 0;
		}
		return cmds[i].fn(argc - 1, argv + 1);
	}
	/* `buse ram --help`: the driver's usage. */
	if (buse_driver_find(argv[1]) && argc == 3 &&
	    (!strcmp(argv[2], "--help") || !strcmp(argv[2], "-h")))
		return cmd_help(2, argv);
	fprintf(stderr, "buse: unknown command '%s' (see buse help)\n",
		argv[1]);
	return EXIT_USAGE;
}
