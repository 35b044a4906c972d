/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * memdisk: a disk in one malloc'd buffer, served with blocking callbacks on
 * libbuse's worker pool.  The example of docs/drivers.md, "A driver outside
 * the repository": the driver is this file's functions, main.c runs it and
 * test_memdisk.c tests it against the fake kernel (libbuse-fake).
 */
#ifndef MEMDISK_H
#define MEMDISK_H

#include <pthread.h>
#include <stdint.h>

#include <buse/buse.h>

struct memdisk {
	pthread_mutex_t lock;  /* the pool runs callbacks concurrently */
	uint64_t size;
	unsigned char *data;
	unsigned long flushes;
};

/* 0, or -ENOMEM. */
int memdisk_init(struct memdisk *md, uint64_t size);
void memdisk_free(struct memdisk *md);

extern const struct buse_ops memdisk_ops;

#endif
