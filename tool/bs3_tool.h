/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * BS3 in the buse tool: the `buse bs3 ...` commands (tool/bs3.c) and the
 * stats file a BS3 daemon (drivers/bs3.c) keeps for `buse info`.
 */
#ifndef BUSE_TOOL_BS3_TOOL_H
#define BUSE_TOOL_BS3_TOOL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "../bs3/bs3.h"

/* `buse bs3 SUBCOMMAND ...`: argv[0] is "bs3".  Exit status: 0, 1, 2. */
int cmd_bs3(int argc, char **argv);
void usage_bs3(FILE *f);

/*
 * Endpoint and credentials as AWS tools take them (s3_config_load()), plus
 * --ca-file; the URL split into bucket and volume; *o filled to point at
 * them.  Returns 0, or -errno with one line in err (-EINVAL: the URL is not
 * s3://BUCKET/VOLUME; -ENOKEY: no endpoint or credentials).  Free with
 * bs3_target_free().
 */
struct bs3_target {
	struct s3_config cfg;
	char *bucket;
	char *volume;
	bool cfg_loaded;
};
int bs3_target_init(struct bs3_target *t, struct bs3_opts *o, const char *url,
		    const char *endpoint, const char *ca_file, char *err,
		    size_t errlen);
void bs3_target_free(struct bs3_target *t);

/*
 * The stats file of device dev_id: a flat JSON object, one member a line,
 * written whole to a temporary file and renamed over the old one, so a
 * reader never sees half of it.  Returns 0 or -errno.
 */
int bs3_stats_write(uint32_t dev_id, const char *url,
		    const struct bs3_geometry *g, const struct bs3_stats *st);
void bs3_stats_remove(uint32_t dev_id);

/*
 * For `buse info`: when device dev_id has a stats file written by a live
 * process that is its daemon (daemon_pid), print its fields: as text lines,
 * or as `, "bs3": {...}` for --json.  Prints nothing otherwise.
 */
void bs3_info_text(FILE *f, uint32_t dev_id, int daemon_pid);
void bs3_info_json(FILE *f, uint32_t dev_id, int daemon_pid);

#endif /* BUSE_TOOL_BS3_TOOL_H */
