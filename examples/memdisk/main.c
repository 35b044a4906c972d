// SPDX-License-Identifier: GPL-2.0-or-later
/* memdisk MIB: serve a MIB MiB memory disk until deleted or SIGTERM. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "memdisk.h"

int main(int argc, char **argv)
{
	struct buse_params p;
	struct memdisk md;
	int ret;

	if (argc != 2 || atoi(argv[1]) <= 0) {
		fprintf(stderr, "usage: memdisk MIB\n");
		return 2;
	}
	if (memdisk_init(&md, (uint64_t)atoi(argv[1]) << 20)) {
		fprintf(stderr, "memdisk: out of memory\n");
		return 1;
	}
	buse_params_init(&p);
	p.size = md.size;
	p.name = "memdisk";
	p.workers = 4; /* blocking callbacks, four at a time */
	ret = buse_run(&p, &memdisk_ops, &md);
	if (ret < 0)
		fprintf(stderr, "memdisk: %s\n", strerror(-ret));
	memdisk_free(&md);
	return ret < 0;
}
