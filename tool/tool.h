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
/* The daemon's note of what device dev_id serves (a path, a URL). */
int backing_note_write(uint32_t dev_id, const char *what);
void backing_note_remove(uint32_t dev_id); /* if it is this process's */
/* The note, if daemon_pid (the device's live daemon) wrote it. */
bool backing_note_read(uint32_t dev_id, int daemon_pid, char *buf, size_t len);

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
