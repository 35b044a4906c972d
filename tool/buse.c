// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * buse: create, list, inspect and delete BUSE block devices, in the style
 * of losetup, nbd-client and ublk.  `add` lives in add.c.
 */
#include <errno.h>
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
		"       buse del DEV\n"
		"       buse bs3 create|info|check|delete s3://BUCKET/VOLUME "
		"[options]\n"
		"       buse help [add|DRIVER]\n"
		"       buse --version\n"
		"\n"
		"  add    create a device served by DRIVER, print /dev/buseN\n"
		"  recover  serve a recoverable device whose daemon died\n"
		"  list   list the devices\n"
		"  info   show every parameter of one device\n"
		"  del    delete a device and wait for its daemon to exit\n"
		"  bs3    make, inspect, check, delete BS3 volumes (buse bs3 "
		"--help);\n"
		"         attach one with buse add bs3 s3://BUCKET/VOLUME\n"
		"\n"
		"DEV is N, buseN or /dev/buseN.  Drivers:");
	for (const struct buse_driver *const *d = buse_drivers; *d; d++)
		fprintf(f, " %s", (*d)->name);
	fprintf(f, ".\n");
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
	char path[64];
	size_t i;

	snprintf(path, sizeof(path), "/dev/%s%u", BUSE_DISK_NAME, in->dev_id);
	fprintf(f, "{\"dev_id\": %u, \"path\": ", in->dev_id);
	json_string(f, path, sizeof(path));
	fprintf(f, ", \"state\": ");
	json_string(f, state_name(in->state), SIZE_MAX);
	fprintf(f,
		", \"daemon_pid\": %d, \"nr_attached\": %u, \"major\": %u, "
		"\"minor\": %u, ",
		in->daemon_pid, in->nr_attached, in->major, in->minor);
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
	fprintf(f, "\"timeout_ms\": %u, \"name\": ", p->timeout_ms);
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
	char s1[32], s2[32], name[BUSE_NAME_LEN + 1];

	printf("device:          /dev/%s%u (%u:%u)\n", BUSE_DISK_NAME,
	       in->dev_id, in->major, in->minor);
	printf("driver:          %s\n", driver_name(p, name));
	printf("state:           %s\n", state_name(in->state));
	if (in->daemon_pid > 0)
		printf("daemon pid:      %d\n", in->daemon_pid);
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
	printf("flags:           ");
	print_flags(stdout, p->flags);
	printf("\n");
	if (p->flags & BUSE_F_WRITE_BACK) {
		printf("write log:       %s in %u records (all queues)\n",
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

	if (parse_json_flag(argc, argv, 1, &json) || check_control())
		return 1;
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
				printf("%-4s %-12s %8s %-8s %-9s %6s %8s\n",
				       "ID", "DEVICE", "SIZE", "DRIVER",
				       "STATE", "QUEUES", "PID");
			snprintf(path, sizeof(path), "/dev/%s%u",
				 BUSE_DISK_NAME, in.dev_id);
			snprintf(pid, sizeof(pid), "%d", in.daemon_pid);
			printf("%-4u %-12s %8s %-8s %-9s %6u %8s\n", in.dev_id,
			       path,
			       format_size(in.params.size, size, sizeof(size)),
			       driver_name(&in.params, name),
			       state_name(in.state), in.params.nr_queues,
			       in.daemon_pid > 0 ? pid : "-");
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

/* `buse info DEV` and `buse del DEV` take a device and look it up. */
static int get_dev(int argc, char **argv, int max_args,
		   struct buse_dev_info *in, bool *json)
{
	uint32_t id;
	int ret;

	if (argc < 2 || argc > max_args) {
		fprintf(stderr, "usage: buse %s DEV%s\n", argv[0],
			max_args > 2 ? " [--json]" : "");
		return -EINVAL;
	}
	if (parse_dev_id(argv[1], &id)) {
		fprintf(stderr, "buse: %s: not N, buseN or /dev/buseN: '%s'\n",
			argv[0], argv[1]);
		return -EINVAL;
	}
	if (json && parse_json_flag(argc, argv, 2, json))
		return -EINVAL;
	ret = check_control();
	if (ret)
		return ret;
	ret = buse_info(id, in);
	if (ret == -ENOENT)
		fprintf(stderr, "buse: %s: no such device: %s%u\n", argv[0],
			BUSE_DISK_NAME, id);
	else if (ret < 0)
		fprintf(stderr, "buse: %s: %s%u: %s\n", argv[0], BUSE_DISK_NAME,
			id, strerror(-ret));
	return ret;
}

static int cmd_info(int argc, char **argv)
{
	struct buse_dev_info in;
	bool json;

	if (get_dev(argc, argv, 3, &in, &json))
		return 1;
	if (json) {
		char *buf = NULL;
		size_t len = 0;
		FILE *m = open_memstream(&buf, &len);

		/* A BS3 daemon's stats go inside the object: before its '}'. */
		if (!m)
			return 1;
		print_json(m, &in);
		fclose(m);
		if (len && buf[len - 1] == '}')
			buf[--len] = 0;
		fputs(buf, stdout);
		free(buf);
		bs3_info_json(stdout, in.dev_id, in.daemon_pid);
		printf("}\n");
	} else {
		print_info(&in);
		bs3_info_text(stdout, in.dev_id, in.daemon_pid);
	}
	return 0;
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
	pid_t pid;
	int pidfd = -1, ret;

	if (get_dev(argc, argv, 2, &in, NULL))
		return 1;
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
		return 1;
	}
	if (pid > 0 && !wait_exit(pidfd, pid, DEL_TIMEOUT_MS)) {
		fprintf(stderr,
			"buse: del: daemon %d is still running after %d s\n",
			pid, DEL_TIMEOUT_MS / 1000);
		return 1;
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
		return 1;
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
		return 1;
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
	return 1;
}
