/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Shared by the buse tool's commands. */
#ifndef BUSE_TOOL_TOOL_H
#define BUSE_TOOL_TOOL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <buse/buse.h>

#define BUSE_TOOL_VERSION "0.1.0"
#define BUSE_CONTROL_PATH "/dev/" BUSE_CONTROL_NAME

/*
 * Exit statuses of every command (documented in `buse help` and README):
 * 0 done, 1 it failed (the kernel, a driver, the storage said no),
 * 2 the command line is wrong (nothing was tried).
 */
#define EXIT_FAILED 1
#define EXIT_USAGE  2

/*
 * The run directory, where daemons leave notes for `buse info`
 * (/run/buse; $BUSE_RUN_DIR overrides it, for tests).  In backing.c.
 */
#define BUSE_RUN_DIR "/run/buse"
const char *buse_run_dir(void);
/*
 * A file in the run directory replaced whole: write to what
 * run_file_create() opens (path + ".tmp", in tmp), then run_file_commit()
 * renames it over path (0, or -errno and the temporary removed).
 */
FILE *run_file_create(const char *path, char *tmp, size_t len);
int run_file_commit(FILE *f, const char *path, const char *tmp);
/* The daemon's note of what device dev_id serves (a path, a URL). */
int backing_note_write(uint32_t dev_id, const char *what);
void backing_note_remove(uint32_t dev_id); /* if it is this process's */
/* The note, if daemon_pid (the device's live daemon) wrote it. */
bool backing_note_read(uint32_t dev_id, int daemon_pid, char *buf, size_t len);

/* What a serving daemon tells the process waiting for it, once. */
struct serve_msg {
	int32_t err; /* 0: started; else buse_run()'s negative errno */
	uint32_t dev_id;
	char why[240]; /* the driver's or libbuse's reason, or "" */
};

/*
 * Serve the device p describes in this process until it is deleted; report
 * on notify_fd (if >= 0) once: a serve_msg when it started or failed to.
 * Returns buse_run()'s result.
 */
typedef int serve_fn(const struct buse_params *p, int notify_fd, void *arg);

/*
 * `buse add --supervise`, in supervise.c: serve() in a child, and again in
 * recover mode whenever it dies leaving the device orphaned.  The first
 * child's serve_msg goes to report_fd, or with report_fd < 0 the path is
 * printed.  Returns the process's exit status.
 */
int supervise(const struct buse_params *p, serve_fn *serve, void *arg,
	      int report_fd);

/* Print /dev/buseN once the node exists (warn if it does not appear). */
void print_dev_path(uint32_t id);

/*
 * In buse.c: DEV as the commands take it: N, buseN, /dev/buseN, a path
 * that resolves to one (/dev/disk/by-id/buse-NAME), or a device's name.
 * 0, -EINVAL if it is none of these, -ENOENT if no device has that name.
 */
int resolve_dev(const char *s, uint32_t *id);

/* `buse add`, in add.c. */
int cmd_add(int argc, char **argv);
int cmd_recover(int argc, char **argv);
void usage_add(FILE *f);
void usage_driver(FILE *f, const char *name);

/*
 * In buse.c: 0, or says why /dev/buse-control is unusable ("root only",
 * "is the buse module loaded?"); -errno.
 */
int check_control(void);

#endif /* BUSE_TOOL_TOOL_H */
