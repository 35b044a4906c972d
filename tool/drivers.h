/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The drivers bundled with the buse tool.  A driver is one file in drivers/
 * defining a struct buse_driver, plus one line in tool/drivers.c.
 */
#ifndef BUSE_TOOL_DRIVERS_H
#define BUSE_TOOL_DRIVERS_H

#include <stddef.h>

#include <buse/buse.h>

/* parse(): the driver's options are wrong; it said why. */
#define BUSE_DRV_USAGE 1

struct buse_driver {
	const char *name;
	const char *summary; /* one line for `buse help` */
	const char *usage;   /* its options, one per line; NULL if none */
	/*
	 * Parse the driver's own options: argv[0] is the driver's name and
	 * getopt_long() is reset, so it can be used directly.  *p holds the
	 * common options (p->size is 0 if --size was not given): complete or
	 * check them, open what must be opened and set *priv, which every
	 * callback receives.  Runs in the tool before it becomes a daemon,
	 * so this is where errors reach the user: print one line to stderr
	 * and return BUSE_DRV_USAGE if the options are wrong (the tool exits
	 * 2), or a negative errno if acting on them failed (exit 1).
	 */
	int (*parse)(int argc, char **argv, struct buse_params *p, void **priv);
	/*
	 * Optional: runs in the process that serves (the daemon, after the
	 * fork; or this one with --foreground) just before buse_run(), to
	 * open what needs threads of its own, which a fork would not keep.
	 * On failure: one line into err (the waiting `buse add` prints it)
	 * and a negative errno.
	 */
	int (*serve_init)(void *priv, char *err, size_t errlen);
	/*
	 * Optional: what the device serves, for `buse info` and `buse list`
	 * (a file's absolute path, a volume's URL); valid until cleanup.
	 */
	const char *(*backing)(void *priv);
	/*
	 * The data lives in the daemon's memory (ram): a daemon that takes
	 * over after a crash would serve another disk, so no --supervise.
	 */
	bool data_in_daemon;
	/* Optional: undo parse() once buse_run() has returned. */
	void (*cleanup)(void *priv);
	const struct buse_ops *ops;
};

/* NULL-terminated. */
extern const struct buse_driver *const buse_drivers[];

const struct buse_driver *buse_driver_find(const char *name);

#endif /* BUSE_TOOL_DRIVERS_H */
