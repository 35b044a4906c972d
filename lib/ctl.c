// SPDX-License-Identifier: LGPL-2.1-or-later
/* Parameters and the control-plane helpers for tools. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"
#include "sys.h"

BUSE_EXPORT void buse_params_init(struct buse_params *p)
{
	memset(p, 0, sizeof(*p));
	p->logical_block_size = 512;
	p->dev_id = BUSE_DEV_ID_ANY;
	p->handle_signals = true;
	p->pin_threads = true;
}

void buse_make_dev_params(struct buse_dev_params *kp,
			  const struct buse_params *p,
			  const struct buse_ops *ops)
{
	memset(kp, 0, sizeof(*kp));
	kp->dev_id = p->dev_id;
	kp->size = p->size;
	kp->logical_block_size = p->logical_block_size;
	kp->physical_block_size = p->physical_block_size;
	kp->nr_queues = p->nr_queues;
	kp->queue_depth = p->queue_depth;
	kp->max_io_bytes = p->max_io_bytes;
	kp->max_discard_bytes = p->max_discard_bytes;
	kp->timeout_ms = p->timeout_ms;
	kp->recovery_timeout_ms = p->recovery_timeout_ms;
	if (p->recoverable)
		kp->flags |= BUSE_F_RECOVERABLE;
	if (p->write_back) {
		kp->flags |= BUSE_F_WRITE_BACK;
		kp->log_bytes = p->log_bytes;
	}
	/* The kernel only sends what the driver can handle. */
	if (p->read_only || !ops->write)
		kp->flags |= BUSE_F_READ_ONLY;
	if (p->rotational)
		kp->flags |= BUSE_F_ROTATIONAL;
	if (ops->flush)
		kp->flags |= BUSE_F_FLUSH | BUSE_F_FUA;
	if (ops->discard)
		kp->flags |= BUSE_F_DISCARD;
	if (ops->write_zeroes)
		kp->flags |= BUSE_F_WRITE_ZEROES;
	if (p->name)
		strncpy(kp->name, p->name, sizeof(kp->name) - 1);
	/* One too long stays unterminated, which the kernel refuses. */
	if (p->serial)
		memcpy(kp->serial, p->serial,
		       strnlen(p->serial, sizeof(kp->serial)));
}

/* One control ioctl on a control fd of its own. */
static int ctl_call(unsigned long req, unsigned long arg)
{
	int fd, ret, err = 0;

	fd = buse_sys.open(BUSE_CONTROL_PATH, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ret = buse_sys_ioctl(fd, req, arg);
	if (ret < 0)
		err = -errno;
	buse_sys.close(fd);
	return err;
}

static int get_info(uint32_t dev_id, uint32_t flags, struct buse_dev_info *info)
{
	memset(info, 0, sizeof(*info));
	info->dev_id = dev_id;
	info->flags = flags;
	return ctl_call(BUSE_CTL_GET_INFO, (unsigned long)(uintptr_t)info);
}

BUSE_EXPORT int buse_info(uint32_t dev_id, struct buse_dev_info *info)
{
	return get_info(dev_id, 0, info);
}

BUSE_EXPORT int buse_info_next(uint32_t dev_id, struct buse_dev_info *info)
{
	return get_info(dev_id, BUSE_INFO_NEXT, info);
}

BUSE_EXPORT int buse_delete(uint32_t dev_id)
{
	return ctl_call(BUSE_CTL_DEL, dev_id);
}

BUSE_EXPORT const char *buse_state_name(uint32_t state)
{
	static const char *const names[] = {
		[BUSE_STATE_CREATED] = "created",
		[BUSE_STATE_READY] = "ready",
		[BUSE_STATE_LIVE] = "live",
		[BUSE_STATE_DEAD] = "dead",
		[BUSE_STATE_DELETING] = "deleting",
		[BUSE_STATE_ORPHANED] = "orphaned",
	};

	if (state >= sizeof(names) / sizeof(names[0]))
		return "unknown";
	return names[state];
}
