// SPDX-License-Identifier: GPL-2.0
/*
 * BUSE: block device in userspace.  Module entry and the control node,
 * /dev/buse-control, through which a daemon creates, starts, inspects and
 * deletes devices and attaches to their queues.
 */
#include <linux/capability.h>
#include <linux/fs.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/uaccess.h>

#include "buse.h"

static long buse_ctl_add(void __user *argp)
{
	struct buse_dev_params p;
	struct buse_dev *dev;
	int ret;

	if (copy_from_user(&p, argp, sizeof(p)))
		return -EFAULT;
	ret = buse_dev_add(&p, &dev);
	if (ret)
		return ret;
	if (copy_to_user(argp, &p, sizeof(p))) {
		/*
		 * Nobody will learn the id: do not leave the device behind.
		 * By pointer: the id may have been deleted and taken again.
		 */
		buse_dev_remove(dev);
		ret = -EFAULT;
	}
	buse_dev_put(dev);
	return ret;
}

static long buse_ctl_attach(void __user *argp)
{
	struct buse_queue_attach in, out;
	unsigned int i;

	if (copy_from_user(&in, argp, sizeof(in)))
		return -EFAULT;
	if (in.reserved0 || in.reserved1)
		return -EINVAL;
	for (i = 0; i < ARRAY_SIZE(in.reserved); i++)
		if (in.reserved[i])
			return -EINVAL;
	memset(&out, 0, sizeof(out));
	out.dev_id = in.dev_id;
	out.qid = in.qid;
	/* Copies out itself, before the fd is installed. */
	return buse_dev_attach(&out, argp);
}

static long buse_ctl_info(void __user *argp)
{
	struct buse_dev_info info;
	unsigned int i;
	int ret;

	if (copy_from_user(&info, argp, sizeof(info)))
		return -EFAULT;
	for (i = 0; i < ARRAY_SIZE(info.reserved); i++)
		if (info.reserved[i])
			return -EINVAL;
	for (i = 0; i < ARRAY_SIZE(info.params.reserved); i++)
		if (info.params.reserved[i])
			return -EINVAL;
	ret = buse_dev_info(&info);
	if (ret)
		return ret;
	if (copy_to_user(argp, &info, sizeof(info)))
		return -EFAULT;
	return 0;
}

static long buse_ctl_ioctl(struct file *file, unsigned int cmd,
			   unsigned long arg)
{
	void __user *argp = (void __user *)arg;

	/* The node is root-only; check again in case its mode was changed. */
	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;

	switch (cmd) {
	case BUSE_CTL_ADD:
		return buse_ctl_add(argp);
	case BUSE_CTL_ATTACH_QUEUE:
		return buse_ctl_attach(argp);
	case BUSE_CTL_START:
		if (arg > U32_MAX)
			return -EINVAL;
		return buse_dev_start(arg);
	case BUSE_CTL_DEL:
		if (arg > U32_MAX)
			return -EINVAL;
		return buse_dev_del(arg);
	case BUSE_CTL_GET_INFO:
		return buse_ctl_info(argp);
	default:
		return -ENOTTY;
	}
}

static int buse_ctl_open(struct inode *inode, struct file *file)
{
	if (!capable(CAP_SYS_ADMIN))
		return -EPERM;
	return nonseekable_open(inode, file);
}

static const struct file_operations buse_ctl_fops = {
	.owner		= THIS_MODULE,
	.open		= buse_ctl_open,
	.unlocked_ioctl	= buse_ctl_ioctl,
	.compat_ioctl	= compat_ptr_ioctl,
	.llseek		= noop_llseek,
};

static struct miscdevice buse_misc = {
	.minor	= MISC_DYNAMIC_MINOR,
	.name	= BUSE_CONTROL_NAME,
	.fops	= &buse_ctl_fops,
	.mode	= 0600,
};

static int __init buse_init(void)
{
	int ret;

	ret = buse_blk_init();
	if (ret)
		return ret;
	ret = misc_register(&buse_misc);
	if (ret) {
		buse_blk_exit();
		return ret;
	}
	return 0;
}

static void __exit buse_exit(void)
{
	misc_deregister(&buse_misc);
	buse_blk_exit();
}

module_init(buse_init);
module_exit(buse_exit);

MODULE_DESCRIPTION("BUSE: block devices in userspace");
MODULE_AUTHOR("BUSE developers");
MODULE_LICENSE("GPL");
