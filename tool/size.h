/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Parsing and printing of sizes and numbers for the buse tool. */
#ifndef BUSE_TOOL_SIZE_H
#define BUSE_TOOL_SIZE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * "4096", "64K", "1M", "2GiB", "1t": bytes with an optional binary suffix
 * (K, M, G, T, P; powers of 1024; optional "iB").  Zero is rejected.
 * Returns 0, -EINVAL (not a size, or zero) or -ERANGE (too large).
 */
int parse_size(const char *s, uint64_t *bytes);

/* A plain decimal number in [min, max].  Returns 0, -EINVAL or -ERANGE. */
int parse_u32(const char *s, uint32_t min, uint32_t max, uint32_t *val);

/* "N", "buseN" or "/dev/buseN".  Returns 0 or -EINVAL. */
int parse_dev_id(const char *s, uint32_t *id);
/*
 * A name `buse add --name` accepts: what the kernel takes as a serial, and
 * not a number or buseN, which would read as a device id.
 */
bool valid_dev_name(const char *s);

/* Human form, like lsblk: "512B", "64M", "1.5G".  Returns buf. */
char *format_size(uint64_t bytes, char *buf, size_t len);

#endif /* BUSE_TOOL_SIZE_H */
