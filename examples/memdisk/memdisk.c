// SPDX-License-Identifier: GPL-2.0-or-later
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "memdisk.h"

int memdisk_init(struct memdisk *md, uint64_t size)
{
	md->data = calloc(1, size);
	if (!md->data)
		return -ENOMEM;
	md->size = size;
	md->flushes = 0;
	pthread_mutex_init(&md->lock, NULL);
	return 0;
}

void memdisk_free(struct memdisk *md)
{
	pthread_mutex_destroy(&md->lock);
	free(md->data);
	md->data = NULL;
}

/* off and len are block multiples inside the disk: the kernel checked. */
static int md_read(void *priv, struct buse_req *req, void *buf, uint32_t len,
		   uint64_t off)
{
	struct memdisk *md = priv;

	(void)req;
	pthread_mutex_lock(&md->lock);
	memcpy(buf, md->data + off, len);
	pthread_mutex_unlock(&md->lock);
	return 0;
}

static int md_write(void *priv, struct buse_req *req, const void *buf,
		    uint32_t len, uint64_t off, unsigned flags)
{
	struct memdisk *md = priv;

	(void)req;
	(void)flags; /* FUA: nothing is volatile here */
	pthread_mutex_lock(&md->lock);
	memcpy(md->data + off, buf, len);
	pthread_mutex_unlock(&md->lock);
	return 0;
}

static int md_flush(void *priv, struct buse_req *req)
{
	struct memdisk *md = priv;

	(void)req;
	pthread_mutex_lock(&md->lock);
	md->flushes++;
	pthread_mutex_unlock(&md->lock);
	return 0;
}

static int md_discard(void *priv, struct buse_req *req, uint32_t len,
		      uint64_t off)
{
	struct memdisk *md = priv;

	(void)req;
	pthread_mutex_lock(&md->lock);
	memset(md->data + off, 0, len);
	pthread_mutex_unlock(&md->lock);
	return 0;
}

const struct buse_ops memdisk_ops = {
	.read = md_read,
	.write = md_write,
	.flush = md_flush,
	.discard = md_discard,
};
