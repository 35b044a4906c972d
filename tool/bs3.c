// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * `buse bs3 create|info|check|delete s3://BUCKET/VOLUME`: BS3 volumes
 * without a device, on the engine's offline calls (bs3/bs3.h); and the
 * stats file that a BS3 daemon (drivers/bs3.c) keeps for `buse info`.
 *
 * Exit status: 0 done, 1 it failed (one line says why), 2 bad usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bs3_tool.h"
#include "tool.h"
#include "json.h"
#include "size.h"

#define ERRLEN 512

void usage_bs3(FILE *f)
{
	fprintf(f,
		"usage: buse bs3 create s3://BUCKET/VOLUME --size SIZE "
		"[--block-size 4096]\n"
		"                      [--object-size 4M] [--create-bucket]\n"
		"       buse bs3 info s3://BUCKET/VOLUME [--json]\n"
		"       buse bs3 check s3://BUCKET/VOLUME\n"
		"       buse bs3 delete s3://BUCKET/VOLUME [--yes]\n"
		"\n"
		"  create  make a new, empty volume (refuses if one is there)\n"
		"  info    objects, bytes stored, live bytes, garbage, last "
		"checkpoint, writer epoch\n"
		"  check   read every object, verify checksums and the map "
		"(exit 1 on problems)\n"
		"  delete  remove every object of the volume (asks unless "
		"--yes)\n"
		"\n"
		"Every command also takes --endpoint URL (default "
		"$AWS_ENDPOINT_URL) and\n"
		"--ca-file FILE.  Region and credentials come from the "
		"environment as for\n"
		"AWS tools (AWS_REGION, AWS_ACCESS_KEY_ID, "
		"AWS_SECRET_ACCESS_KEY,\n"
		"AWS_SESSION_TOKEN) or the shared credentials file "
		"(AWS_SHARED_CREDENTIALS_FILE,\n"
		"AWS_PROFILE), never from the command line.  Attach a volume "
		"with\n"
		"`buse add bs3 s3://BUCKET/VOLUME` (buse help bs3).\n");
}

int bs3_target_init(struct bs3_target *t, struct bs3_opts *o, const char *url,
		    const char *endpoint, const char *ca_file, char *err,
		    size_t errlen)
{
	memset(t, 0, sizeof(*t));
	memset(o, 0, sizeof(*o));
	if (bs3_parse_url(url, &t->bucket, &t->volume, err, errlen))
		return -EINVAL;
	if (s3_config_load(&t->cfg, endpoint, err, errlen)) {
		bs3_target_free(t);
		return -ENOKEY;
	}
	t->cfg_loaded = true;
	if (ca_file) {
		if (access(ca_file, R_OK)) {
			snprintf(err, errlen, "--ca-file %s: %s", ca_file,
				 strerror(errno));
			bs3_target_free(t);
			return -ENOENT;
		}
		free(t->cfg.ca_file);
		t->cfg.ca_file = strdup(ca_file);
		if (!t->cfg.ca_file) {
			snprintf(err, errlen, "%s", strerror(ENOMEM));
			bs3_target_free(t);
			return -ENOMEM;
		}
	}
	o->bucket = t->bucket;
	o->volume = t->volume;
	o->s3 = &t->cfg;
	return 0;
}

void bs3_target_free(struct bs3_target *t)
{
	if (t->cfg_loaded)
		s3_config_free(&t->cfg);
	free(t->bucket);
	free(t->volume);
	memset(t, 0, sizeof(*t));
}

/* --- the commands ---------------------------------------------------------- */

struct bs3_args {
	const char *url;
	const char *endpoint;
	const char *ca_file;
	uint64_t size;
	uint32_t block_size;
	uint32_t object_size;
	bool json;
	bool yes;
	bool create_bucket;
};

enum { A_ENDPOINT = 1, A_CA, A_SIZE, A_BS, A_OS, A_JSON, A_YES, A_MKB };

/* Parse argv (argv[0] the subcommand) allowing the options in allowed. */
static int bs3_getopt(int argc, char **argv, const char *allowed,
		      struct bs3_args *a)
{
	static const struct option opts[] = {
		{"endpoint", required_argument, NULL, A_ENDPOINT},
		{"ca-file", required_argument, NULL, A_CA},
		{"size", required_argument, NULL, A_SIZE},
		{"block-size", required_argument, NULL, A_BS},
		{"object-size", required_argument, NULL, A_OS},
		{"json", no_argument, NULL, A_JSON},
		{"yes", no_argument, NULL, A_YES},
		{"create-bucket", no_argument, NULL, A_MKB},
		{0},
	};
	const char *cmd = argv[0];
	uint64_t v;
	int c, idx;

	memset(a, 0, sizeof(*a));
	a->block_size = 4096;
	a->object_size = 4U << 20;
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", opts, &idx)) != -1) {
		if (c == '?' || c == ':') {
			fprintf(stderr, "buse: bs3 %s: %s option '%s'\n", cmd,
				c == ':' ? "missing value for" : "unknown",
				argv[optind - 1]);
			return -EINVAL;
		}
		if (!strchr(allowed, c)) {
			fprintf(stderr,
				"buse: bs3 %s: --%s does not apply here\n", cmd,
				opts[idx].name);
			return -EINVAL;
		}
		switch (c) {
		case A_ENDPOINT:
			a->endpoint = optarg;
			break;
		case A_CA:
			a->ca_file = optarg;
			break;
		case A_SIZE:
			if (parse_size(optarg, &a->size)) {
				fprintf(stderr,
					"buse: bs3 %s: --size: invalid value "
					"'%s'\n",
					cmd, optarg);
				return -EINVAL;
			}
			break;
		case A_BS:
			if (parse_u32(optarg, 512, 4096, &a->block_size) ||
			    (a->block_size & (a->block_size - 1))) {
				fprintf(stderr,
					"buse: bs3 %s: --block-size: want "
					"512, 1024, 2048 or 4096\n",
					cmd);
				return -EINVAL;
			}
			break;
		case A_OS:
			if (parse_size(optarg, &v) || v > UINT32_MAX) {
				fprintf(stderr,
					"buse: bs3 %s: --object-size: invalid "
					"value '%s'\n",
					cmd, optarg);
				return -EINVAL;
			}
			a->object_size = (uint32_t)v;
			break;
		case A_JSON:
			a->json = true;
			break;
		case A_YES:
			a->yes = true;
			break;
		case A_MKB:
			a->create_bucket = true;
			break;
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "buse: bs3 %s: give the volume, s3://BUCKET/VOLUME\n",
			cmd);
		return -EINVAL;
	}
	a->url = argv[optind++];
	if (optind < argc) {
		fprintf(stderr, "buse: bs3 %s: unexpected argument '%s'\n", cmd,
			argv[optind]);
		return -EINVAL;
	}
	return 0;
}

/* Parse and set up; 0, or the exit status to return. */
static int bs3_prepare(int argc, char **argv, const char *allowed,
		       struct bs3_args *a, struct bs3_target *t,
		       struct bs3_opts *o)
{
	char err[ERRLEN];
	int ret;

	if (bs3_getopt(argc, argv, allowed, a))
		return 2;
	ret = bs3_target_init(t, o, a->url, a->endpoint, a->ca_file, err,
			      sizeof(err));
	if (ret) {
		fprintf(stderr, "buse: bs3 %s: %s\n", argv[0], err);
		if (ret == -EINVAL)
			return 2; /* not an s3:// URL */
		return 1;
	}
	return 0;
}

static int bs3_create_bucket(const struct bs3_opts *o, char *err,
			     size_t errlen)
{
	struct s3_client *c;
	int ret;

	ret = s3_client_new(o->s3, &c, err, errlen);
	if (ret)
		return ret < 0 ? ret : -EIO;
	ret = s3_head_bucket(c, o->bucket, err, errlen);
	if (ret == -ENXIO)
		ret = s3_create_bucket(c, o->bucket, err, errlen);
	s3_client_free(c);
	return ret;
}

static int bs3_cmd_create(int argc, char **argv)
{
	struct bs3_target t;
	struct bs3_opts o;
	struct bs3_args a;
	char err[ERRLEN] = "", sz[32];
	int ret;

	ret = bs3_prepare(argc, argv, (char[]){A_ENDPOINT, A_CA, A_SIZE, A_BS,
					       A_OS, A_MKB, 0},
			  &a, &t, &o);
	if (ret)
		return ret;
	if (!a.size) {
		fprintf(stderr, "buse: bs3 create: --size is required\n");
		bs3_target_free(&t);
		return 2;
	}
	if (a.size % a.block_size) {
		fprintf(stderr,
			"buse: bs3 create: size %" PRIu64
			" is not a multiple of the block size %u\n",
			a.size, a.block_size);
		bs3_target_free(&t);
		return 2;
	}
	ret = 0;
	if (a.create_bucket)
		ret = bs3_create_bucket(&o, err, sizeof(err));
	if (!ret)
		ret = bs3_create(&o, a.size, a.block_size, a.object_size, err,
				 sizeof(err));
	if (ret) {
		fprintf(stderr, "buse: bs3 create: %s\n",
			*err ? err : strerror(-ret));
	} else {
		printf("created %s: %s, block size %u, objects of %s\n", a.url,
		       format_size(a.size, sz, sizeof(sz)), a.block_size,
		       format_size(a.object_size, err, sizeof(err)));
	}
	bs3_target_free(&t);
	return ret ? 1 : 0;
}

static void uuid_str(const uint8_t *u, char *buf)
{
	static const char hex[] = "0123456789abcdef";
	int i, n = 0;

	for (i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			buf[n++] = '-';
		buf[n++] = hex[u[i] >> 4];
		buf[n++] = hex[u[i] & 15];
	}
	buf[n] = 0;
}

static void time_str(uint64_t t, char *buf, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (!t || !gmtime_r(&tt, &tm) ||
	    !strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(buf, len, "never");
}

static int bs3_cmd_info(int argc, char **argv)
{
	struct bs3_geometry g;
	struct bs3_stats st;
	struct bs3_target t;
	struct bs3_opts o;
	struct bs3_args a;
	char err[ERRLEN] = "", s1[32], s2[32], uuid[40], when[40];
	int ret;

	ret = bs3_prepare(argc, argv, (char[]){A_ENDPOINT, A_CA, A_JSON, 0},
			  &a, &t, &o);
	if (ret)
		return ret;
	memset(&g, 0, sizeof(g));
	memset(&st, 0, sizeof(st));
	ret = bs3_inspect(&o, &g, &st, err, sizeof(err));
	bs3_target_free(&t);
	if (ret) {
		fprintf(stderr, "buse: bs3 info: %s\n",
			*err ? err : strerror(-ret));
		return 1;
	}
	uuid_str(g.uuid, uuid);
	time_str(st.ckpt_time, when, sizeof(when));
	if (a.json) {
		printf("{\"volume\": ");
		json_string(stdout, a.url, SIZE_MAX);
		printf(", \"uuid\": \"%s\", \"version\": %u, \"size\": %" PRIu64
		       ", \"block_size\": %u, \"object_size\": %u, "
		       "\"objects\": %" PRIu64 ", \"bytes_stored\": %" PRIu64
		       ", \"live_bytes\": %" PRIu64 ", \"garbage_ratio\": %.4f"
		       ", \"checkpoints\": %" PRIu64 ", \"ckpt_seq\": %" PRIu64
		       ", \"ckpt_time\": %" PRIu64 ", \"epoch\": %" PRIu64
		       ", \"next_seq\": %" PRIu64 ", \"map_extents\": %" PRIu64
		       ", \"map_bytes\": %" PRIu64 "}\n",
		       uuid, g.version, g.size, g.block_size, g.object_size,
		       st.objects, st.bytes_stored, st.live_bytes,
		       st.garbage_ratio, st.checkpoints, st.ckpt_seq,
		       st.ckpt_time, st.epoch, st.next_seq, st.map_extents,
		       st.map_bytes);
		return 0;
	}
	printf("volume:          %s\n", a.url);
	printf("uuid:            %s (format version %u)\n", uuid, g.version);
	printf("size:            %s (%" PRIu64 " bytes)\n",
	       format_size(g.size, s1, sizeof(s1)), g.size);
	printf("block size:      %u\n", g.block_size);
	printf("object size:     %s\n",
	       format_size(g.object_size, s1, sizeof(s1)));
	printf("objects:         %" PRIu64 "\n", st.objects);
	printf("bytes stored:    %s (%" PRIu64 ")\n",
	       format_size(st.bytes_stored, s1, sizeof(s1)), st.bytes_stored);
	printf("live bytes:      %s (%" PRIu64 ")\n",
	       format_size(st.live_bytes, s2, sizeof(s2)), st.live_bytes);
	printf("garbage ratio:   %.1f%%\n", st.garbage_ratio * 100);
	printf("checkpoints:     %" PRIu64 "\n", st.checkpoints);
	printf("last checkpoint: object %" PRIu64 ", %s\n", st.ckpt_seq, when);
	printf("writer epoch:    %" PRIu64 "\n", st.epoch);
	printf("next object:     %" PRIu64 "\n", st.next_seq);
	printf("map:             %" PRIu64 " extents, %s\n", st.map_extents,
	       format_size(st.map_bytes, s1, sizeof(s1)));
	return 0;
}

static int bs3_cmd_check(int argc, char **argv)
{
	struct bs3_target t;
	struct bs3_opts o;
	struct bs3_args a;
	char err[ERRLEN] = "";
	int ret;

	ret = bs3_prepare(argc, argv, (char[]){A_ENDPOINT, A_CA, 0}, &a, &t,
			  &o);
	if (ret)
		return ret;
	ret = bs3_check(&o, stdout, err, sizeof(err));
	bs3_target_free(&t);
	fflush(stdout);
	if (ret == -EBADMSG) {
		fprintf(stderr, "buse: bs3 check: %s: problems found%s%s\n",
			a.url, *err ? ": " : "", err);
		return 1;
	}
	if (ret) {
		fprintf(stderr, "buse: bs3 check: cannot check %s: %s\n", a.url,
			*err ? err : strerror(-ret));
		return 1;
	}
	printf("%s: clean\n", a.url);
	return 0;
}

/* True if the user, on a terminal, says yes. */
static bool confirm(const char *url)
{
	char line[16];

	fprintf(stderr, "buse: delete the volume %s and all its data? [y/N] ",
		url);
	fflush(stderr);
	if (!fgets(line, sizeof(line), stdin))
		return false;
	return line[0] == 'y' || line[0] == 'Y';
}

static int bs3_cmd_delete(int argc, char **argv)
{
	struct bs3_geometry g;
	struct bs3_stats st;
	struct bs3_target t;
	struct bs3_opts o;
	struct bs3_args a;
	char err[ERRLEN] = "";
	int ret;

	ret = bs3_prepare(argc, argv, (char[]){A_ENDPOINT, A_CA, A_YES, 0}, &a,
			  &t, &o);
	if (ret)
		return ret;
	if (!a.yes && !isatty(STDIN_FILENO)) {
		fprintf(stderr, "buse: bs3 delete: not on a terminal: give "
				"--yes to delete %s\n",
			a.url);
		bs3_target_free(&t);
		return 2;
	}
	/*
	 * Only a volume is deleted: a typo must not empty a bucket prefix.  A
	 * volume whose superblock is damaged can still be deleted.
	 */
	ret = bs3_inspect(&o, &g, &st, err, sizeof(err));
	if (ret && ret != -ENOENT && ret != -ENXIO && ret != -EACCES &&
	    ret != -ENOKEY && ret != -ETIMEDOUT && ret != -EIO) {
		fprintf(stderr, "buse: bs3 delete: warning: %s\n", err);
		ret = 0;
	}
	if (!ret && !a.yes && !confirm(a.url)) {
		fprintf(stderr, "buse: bs3 delete: not deleted\n");
		bs3_target_free(&t);
		return 1;
	}
	if (!ret)
		ret = bs3_destroy(&o, err, sizeof(err));
	bs3_target_free(&t);
	if (ret) {
		fprintf(stderr, "buse: bs3 delete: %s\n",
			*err ? err : strerror(-ret));
		return 1;
	}
	printf("deleted %s\n", a.url);
	return 0;
}

int cmd_bs3(int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*fn)(int argc, char **argv);
	} cmds[] = {
		{"create", bs3_cmd_create}, {"info", bs3_cmd_info},
		{"check", bs3_cmd_check},   {"delete", bs3_cmd_delete},
		{"del", bs3_cmd_delete},
	};
	size_t i;
	int a;

	if (argc < 2) {
		usage_bs3(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
	    !strcmp(argv[1], "help")) {
		usage_bs3(stdout);
		return 0;
	}
	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		if (strcmp(argv[1], cmds[i].name))
			continue;
		for (a = 2; a < argc; a++) {
			if (!strcmp(argv[a], "--help") ||
			    !strcmp(argv[a], "-h")) {
				usage_bs3(stdout);
				return 0;
			}
		}
		return cmds[i].fn(argc - 1, argv + 1);
	}
	fprintf(stderr, "buse: bs3: unknown command '%s' (see buse bs3 --help)\n",
		argv[1]);
	return 2;
}

/* --- the stats file -------------------------------------------------------- */

static void stats_path(uint32_t dev_id, char *buf, size_t len)
{
	snprintf(buf, len, "%s/bs3-%u.json", buse_run_dir(), dev_id);
}

int bs3_stats_write(uint32_t dev_id, const char *url,
		    const struct bs3_geometry *g, const struct bs3_stats *st)
{
	char path[256], tmp[272];
	uint64_t lookups = st->cache_hits + st->cache_misses;
	FILE *f;

	stats_path(dev_id, path, sizeof(path));
	f = run_file_create(path, tmp, sizeof(tmp));
	if (!f)
		return -errno;
	fprintf(f, "{\n\"pid\": %d,\n\"volume\": ", (int)getpid());
	json_string(f, url, SIZE_MAX);
	fprintf(f,
		",\n\"size\": %" PRIu64 ",\n\"block_size\": %u,\n"
		"\"object_size\": %u,\n\"epoch\": %" PRIu64 ",\n"
		"\"fenced\": %s,\n\"dirty_bytes\": %" PRIu64 ",\n"
		"\"uploads_in_flight\": %u,\n\"uploads\": %" PRIu64 ",\n"
		"\"upload_bytes\": %" PRIu64 ",\n"
		"\"retries\": %" PRIu64 ",\n\"reads_memory\": %" PRIu64 ",\n"
		"\"cache_hits\": %" PRIu64 ",\n\"cache_misses\": %" PRIu64 ",\n"
		"\"cache_hit_rate\": %.4f,\n\"objects\": %" PRIu64 ",\n"
		"\"bytes_stored\": %" PRIu64 ",\n\"live_bytes\": %" PRIu64 ",\n"
		"\"garbage_ratio\": %.4f,\n\"checkpoints\": %" PRIu64 ",\n"
		"\"ckpt_seq\": %" PRIu64 ",\n\"ckpt_time\": %" PRIu64 ",\n"
		"\"next_seq\": %" PRIu64 ",\n\"map_extents\": %" PRIu64 ",\n"
		"\"map_bytes\": %" PRIu64 ",\n\"gc_rewritten\": %" PRIu64 ",\n"
		"\"gc_deleted\": %" PRIu64 "\n}\n",
		g->size, g->block_size, g->object_size, st->epoch,
		st->fenced ? "true" : "false", st->dirty_bytes,
		st->uploads_in_flight, st->uploads, st->upload_bytes,
		st->retries, st->reads_memory, st->cache_hits, st->cache_misses,
		lookups ? (double)st->cache_hits / lookups : 0.0, st->objects,
		st->bytes_stored, st->live_bytes, st->garbage_ratio,
		st->checkpoints, st->ckpt_seq, st->ckpt_time, st->next_seq,
		st->map_extents, st->map_bytes, st->gc_rewritten,
		st->gc_deleted);
	return run_file_commit(f, path, tmp);
}

void bs3_stats_remove(uint32_t dev_id)
{
	char path[256];

	stats_path(dev_id, path, sizeof(path));
	unlink(path);
}

/*
 * The file's text if it belongs to the live daemon of the device, else
 * NULL.  The format is our own (bs3_stats_write()): one member a line.
 */
static char *stats_read(uint32_t dev_id, int daemon_pid)
{
	char path[256], *buf, *p;
	long pid;
	size_t n;
	FILE *f;

	stats_path(dev_id, path, sizeof(path));
	f = fopen(path, "r");
	if (!f)
		return NULL;
	buf = calloc(1, 8192);
	n = buf ? fread(buf, 1, 8191, f) : 0;
	fclose(f);
	if (!n) {
		free(buf);
		return NULL;
	}
	buf[n] = 0;
	p = strstr(buf, "\"pid\": ");
	pid = p ? strtol(p + 7, NULL, 10) : 0;
	/* A stale file from a dead daemon, or one whose pid was reused. */
	if (pid <= 0 || (kill((pid_t)pid, 0) && errno != EPERM) ||
	    (daemon_pid > 0 && pid != daemon_pid)) {
		free(buf);
		return NULL;
	}
	return buf;
}

void bs3_info_json(FILE *f, uint32_t dev_id, int daemon_pid)
{
	char *buf = stats_read(dev_id, daemon_pid), *line, *save = NULL;
	const char *sep = "";

	if (!buf)
		return;
	fprintf(f, ", \"bs3\": ");
	for (line = strtok_r(buf, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		fprintf(f, "%s%s", sep, line);
		sep = line[0] == '{' ? "" : " ";
	}
	free(buf);
}

void bs3_info_text(FILE *f, uint32_t dev_id, int daemon_pid)
{
	char *buf = stats_read(dev_id, daemon_pid), *line, *save = NULL;
	char *val, name[40];
	size_t len;

	if (!buf)
		return;
	fprintf(f, "bs3:\n");
	for (line = strtok_r(buf, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		if (line[0] != '"' || !(val = strstr(line, "\": ")))
			continue;
		len = (size_t)(val - line - 1);
		if (len >= sizeof(name))
			continue;
		memcpy(name, line + 1, len);
		name[len] = 0;
		for (char *c = name; *c; c++)
			if (*c == '_')
				*c = ' ';
		val += 3;
		len = strlen(val);
		if (len && val[len - 1] == ',')
			val[--len] = 0;
		fprintf(f, "  %-17s%s\n", strcat(name, ":"), val);
	}
	free(buf);
}
