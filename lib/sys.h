/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Every system call that talks to buse.ko goes through this table, so the
 * unit tests can put a fake kernel behind it.
 */
#ifndef BUSE_LIB_SYS_H
#define BUSE_LIB_SYS_H

#include <stddef.h>
#include <sys/types.h>

#define BUSE_CONTROL_PATH "/dev/" BUSE_CONTROL_NAME

struct buse_sys_ops {
	int (*open)(const char *path, int flags);
	int (*close)(int fd);
	/* Pointers are passed as (unsigned long)(uintptr_t)ptr. */
	int (*ioctl)(int fd, unsigned long req, unsigned long arg);
	void *(*mmap)(void *addr, size_t len, int prot, int flags, int fd,
		      off_t off);
	int (*munmap)(void *addr, size_t len);
};

extern struct buse_sys_ops buse_sys;

/* ioctl through the table, restarted on EINTR; returns -1 and errno. */
int buse_sys_ioctl(int fd, unsigned long req, unsigned long arg);

#endif /* BUSE_LIB_SYS_H */
