// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * What a device's daemon serves (a file's path, a volume's URL), noted in
 * the run directory for `buse info` and `buse list`: the kernel knows only
 * the driver's name.  A note counts only while the daemon that wrote it
 * serves the device, so a stale one (a killed daemon) is never shown.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tool.h"

const char *buse_run_dir(void)
{
	const char *dir = getenv("BUSE_RUN_DIR");

	return dir && *dir ? dir : BUSE_RUN_DIR;
}

FILE *run_file_create(const char *path, char *tmp, size_t len)
{
	snprintf(tmp, len, "%s.tmp", path);
	/* /run/buse is ours: made if missing (fopen tells what went wrong). */
	if (!getenv("BUSE_RUN_DIR"))
		mkdir(BUSE_RUN_DIR, 0755);
	return fopen(tmp, "w");
}

int run_file_commit(FILE *f, const char *path, const char *tmp)
{
	int ret = ferror(f) ? -EIO : 0;

	if (fclose(f) && !ret)
		ret = -errno;
	/* Whole or not at all, for a reader at any moment. */
	if (!ret && rename(tmp, path))
		ret = -errno;
	if (ret)
		unlink(tmp);
	return ret;
}

static void note_path(uint32_t dev_id, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s%u.backing", buse_run_dir(), BUSE_DISK_NAME,
		 dev_id);
}

int backing_note_write(uint32_t dev_id, const char *what)
{
	char path[256], tmp[272];
	FILE *f;

	note_path(dev_id, path, sizeof(path));
	f = run_file_create(path, tmp, sizeof(tmp));
	if (!f)
		return -errno;
	fprintf(f, "%d\n%s\n", (int)getpid(), what);
	return run_file_commit(f, path, tmp);
}

void backing_note_remove(uint32_t dev_id)
{
	char path[256], line[32];
	FILE *f;

	note_path(dev_id, path, sizeof(path));
	f = fopen(path, "r");
	if (!f)
		return;
	/* Only our own: a new daemon may have taken the device over. */
	if (fgets(line, sizeof(line), f) && atoi(line) == (int)getpid())
		unlink(path);
	fclose(f);
}

bool backing_note_read(uint32_t dev_id, int daemon_pid, char *buf, size_t len)
{
	char path[256], line[32];
	bool ok = false;
	size_t n;
	FILE *f;

	if (daemon_pid <= 0 || !len)
		return false;
	note_path(dev_id, path, sizeof(path));
	f = fopen(path, "r");
	if (!f)
		return false;
	if (fgets(line, sizeof(line), f) && atoi(line) == daemon_pid &&
	    fgets(buf, (int)len, f)) {
		n = strcspn(buf, "\n");
		buf[n] = 0;
		/* A daemon wrote it: keep a terminal safe from it. */
		for (char *c = buf; *c; c++)
			if ((unsigned char)*c < 0x20 || *c == 0x7f)
				*c = '?';
		ok = n > 0;
	}
	fclose(f);
	return ok;
}
