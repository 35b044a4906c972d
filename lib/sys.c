// SPDX-License-Identifier: LGPL-2.1-or-later
#include <errno.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <linux/buse.h>

#include "sys.h"

static int real_open(const char *path, int flags)
{
	return open(path, flags);
}

static int real_ioctl(int fd, unsigned long req, unsigned long arg)
{
	return ioctl(fd, req, arg);
}

struct buse_sys_ops buse_sys = {
	.open = real_open,
	.close = close,
	.ioctl = real_ioctl,
	.mmap = mmap,
	.munmap = munmap,
};

int buse_sys_ioctl(int fd, unsigned long req, unsigned long arg)
{
	int ret;

	do
		ret = buse_sys.ioctl(fd, req, arg);
	while (ret < 0 && errno == EINTR);
	return ret;
}
