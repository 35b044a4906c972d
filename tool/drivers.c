// SPDX-License-Identifier: GPL-2.0-or-later
/* The table of bundled drivers: add yours here. */
#include <string.h>

#include "drivers.h"

extern const struct buse_driver null_driver, ram_driver, file_driver,
	bs3_driver;

const struct buse_driver *const buse_drivers[] = {
	&null_driver,
	&ram_driver,
	&file_driver,
	&bs3_driver,
	NULL,
};

const struct buse_driver *buse_driver_find(const char *name)
{
	const struct buse_driver *const *d;

	for (d = buse_drivers; *d; d++)
		if (!strcmp((*d)->name, name))
			return *d;
	return NULL;
}
