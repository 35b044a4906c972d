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

/* `buse add`, in add.c. */
int cmd_add(int argc, char **argv);
int cmd_recover(int argc, char **argv);
void usage_add(FILE *f);
void usage_driver(FILE *f, const char *name);

/* In buse.c: 0, or says why /dev/buse-control is unusable; -errno. */
int check_control(void);

#endif /* BUSE_TOOL_TOOL_H */
