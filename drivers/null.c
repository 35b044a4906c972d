// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * null: completes every request at once, so it measures the framework's own
 * speed limit.  Like null_blk it never touches the data buffer: writes are
 * dropped and a read returns whatever the shared buffer held before (not
 * zeros, and possibly data of an earlier request on the same device).
 */
#include <errno.h>
#include <stdio.h>

#include "../tool/drivers.h"

#define NULL_DEFAULT_SIZE (250ULL << 30) /* null_blk's and ublk's default */

static int null_read(void *priv, struct buse_req *req, void *buf, uint32_t len,
		     uint64_t off)
{
	return 0;
}

static int null_write(void *priv, struct buse_req *req, const void *buf,
		      uint32_t len, uint64_t off, unsigned flags)
{
	return 0;
}

static int null_flush(void *priv, struct buse_req *req)
{
	return 0;
}

static int null_discard(void *priv, struct buse_req *req, uint32_t len,
			uint64_t off)
{
	return 0;
}

static int null_write_zeroes(void *priv, struct buse_req *req, uint32_t len,
			     uint64_t off, unsigned flags)
{
	return 0;
}

static int null_parse(int argc, char **argv, struct buse_params *p, void **priv)
{
	if (argc > 1) {
		fprintf(stderr, "null: unknown option '%s'\n", argv[1]);
		return BUSE_DRV_USAGE;
	}
	if (!p->size)
		p->size = NULL_DEFAULT_SIZE;
	*priv = NULL;
	return 0;
}

static const struct buse_ops null_ops = {
	.read = null_read,
	.write = null_write,
	.flush = null_flush,
	.discard = null_discard,
	.write_zeroes = null_write_zeroes,
};

const struct buse_driver null_driver = {
	.name = "null",
	.summary = "discards writes, completes everything at once (250G)",
	.parse = null_parse,
	.ops = &null_ops,
};
