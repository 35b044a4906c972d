/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Just enough JSON output for `buse list --json` and `buse info --json`. */
#ifndef BUSE_TOOL_JSON_H
#define BUSE_TOOL_JSON_H

#include <stddef.h>
#include <stdio.h>

/*
 * Write the first len bytes of s (or up to a NUL) as a JSON string, quotes
 * included.  Bytes that are not valid UTF-8 become U+FFFD, so the output is
 * valid JSON whatever the kernel hands us.
 */
void json_string(FILE *f, const char *s, size_t len);

#endif /* BUSE_TOOL_JSON_H */
