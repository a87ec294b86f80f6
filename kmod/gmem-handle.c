// SPDX-License-Identifier: GPL-2.0
/*
 * gmem: the region handle, the owner's fd of a region (see gmem-core.c for
 * the object model): new views, activate, revoke, re-open and label views,
 * memory attributes, info, destroy, and fallocate() over the whole region.
 * Each ioctl checks its arguments and calls the region's operations in
 * gmem-core.c, gmem-attr.c and gmem-view.c.
 */
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/uaccess.h>

#include "gmem-internal.h"

/* Bound on the views GMEM_REGION_INFO fills before copying out. */
#define GMEM_MAX_VIEW_INFO	1024

/* ---- views: lookup ------------------------------------------------------ */

static struct gmem_view *gmem_view_find(struct gmem_region *region, u64 id)
{
	struct gmem_view *view;

	list_for_each_entry(view, &region->views, node)
		if (view->id == id)
			return view;
	return NULL;
}

/* ---- region handle: file_operations ------------------------------------- */

static long gmem_ioctl_new_view(struct gmem_region *region, void __user *argp)
{
	struct gmem_new_view args;
	char *label = NULL;
	struct file *file;
	int fd, r;

	if (copy_from_user(&args, argp, sizeof(args)))
		return -EFAULT;
	if (args.flags & ~GMEM_VIEW_FLAGS_ALL)
		return -EINVAL;
	if (!(args.flags & GMEM_VIEW_READ))
		return -EINVAL;
	if ((args.flags & GMEM_VIEW_ALLOCATE) && !(args.flags & GMEM_VIEW_WRITE))
		return -EINVAL;
	if (memchr_inv(args.reserved, 0, sizeof(args.reserved)))
		return -EINVAL;
	if (!gmem_range_ok(args.offset, args.length, 0, region->size))
		return -EINVAL;
	if (args.label_len > GMEM_LABEL_MAX || (args.label_len && !args.label))
		return -EINVAL;

	if (args.label_len) {
		/* Charged: a kept view's label outlives the task that made it. */
		label = kmalloc(args.label_len, GFP_KERNEL_ACCOUNT);
		if (!label)
			return -ENOMEM;
		if (copy_from_user(label, u64_to_user_ptr(args.label),
				   args.label_len)) {
			kfree(label);
			return -EFAULT;
		}
	}
	fd = get_unused_fd_flags(O_CLOEXEC);
	if (fd < 0) {
		kfree(label);
		return fd;
	}
	file = gmem_view_create(region, &args, label);
	if (IS_ERR(file)) {
		r = PTR_ERR(file);
		goto err_put_fd;
	}
	if (copy_to_user(argp, &args, sizeof(args))) {
		r = -EFAULT;
		/* Nobody learns its id: the region must not keep it. */
		gmem_view_let_go(file->private_data);
		goto err_fput;
	}
	fd_install(fd, file);
	return fd;

err_fput:
	fput(file);
err_put_fd:
	put_unused_fd(fd);
	return r;
}

static long gmem_ioctl_view_op(struct gmem_region *region, unsigned int cmd,
			       void __user *argp)
{
	struct gmem_view *view = NULL;
	struct inode *let_go = NULL;
	struct file *file = NULL;
	struct gmem_view_op args;
	long r = 0;

	if (copy_from_user(&args, argp, sizeof(args)))
		return -EFAULT;
	if (args.flags & ~GMEM_VIEW_OP_FD)
		return -EINVAL;
	if (memchr_inv(args.reserved, 0, sizeof(args.reserved)))
		return -EINVAL;

	if (args.flags & GMEM_VIEW_OP_FD) {
		if (args.view > INT_MAX)
			return -EBADF;
		file = fget(args.view);
		if (!file)
			return -EBADF;
		/* Trust the fd only once it is known to be one of our views. */
		if (file->f_op != &gmem_view_fops) {
			r = -EINVAL;
			goto out_fput;
		}
		view = file->private_data;
		if (view->region != region) {
			r = -EINVAL;
			goto out_fput;
		}
	}

	down_write(&region->lock);
	if (!view)
		view = gmem_view_find(region, args.view);
	if (!view)
		r = -ENOENT;
	else if (region->dead)
		r = -EIO;
	else if (cmd == GMEM_REGION_REVOKE_VIEW) {
		r = gmem_revoke(region, view);
		/* Kept until its pins are detached: a retry finds it by id. */
		if (!r && view->kept) {
			/* The region's reference, dropped once unlocked. */
			view->kept = false;
			let_go = view->inode;
		}
	} else if (view->state == GMEM_VIEW_STATE_REVOKED)
		r = -EIO;
	else
		view->state = GMEM_VIEW_STATE_ACTIVE;
	up_write(&region->lock);
	if (let_go)
		iput(let_go);	/* may free the view: not touched after this */
out_fput:
	if (file)
		fput(file);
	return r;
}

/* Drops every kept view's reference (destroy); not under region->lock. */
static void gmem_let_go_all(struct gmem_region *region)
{
	struct gmem_view *view;
	struct inode *inode;

	do {
		inode = NULL;
		down_write(&region->lock);
		list_for_each_entry(view, &region->views, node)
			if (view->kept) {
				view->kept = false;
				inode = view->inode;
				break;
			}
		up_write(&region->lock);
		if (inode)
			iput(inode);
	} while (inode);
}

static long gmem_ioctl_open_view(struct gmem_region *region,
				 void __user *argp)
{
	struct inode *inode = NULL;
	struct gmem_view *view;
	struct gmem_view_op args;
	struct file *file;
	long r = 0;
	int fd;

	if (copy_from_user(&args, argp, sizeof(args)))
		return -EFAULT;
	if (args.flags || memchr_inv(args.reserved, 0, sizeof(args.reserved)))
		return -EINVAL;

	fd = get_unused_fd_flags(O_CLOEXEC);
	if (fd < 0)
		return fd;
	down_read(&region->lock);
	view = gmem_view_find(region, args.view);
	if (!view)
		r = -ENOENT;
	else if (region->dead || view->state == GMEM_VIEW_STATE_REVOKED)
		r = -EIO;
	else if (!igrab(view->inode))	/* its last file is going */
		r = -ENOENT;
	else
		inode = view->inode;
	up_read(&region->lock);
	if (r)
		goto err_put_fd;

	/* The reference we took keeps the view. */
	file = gmem_view_open_file(view);
	if (IS_ERR(file)) {
		r = PTR_ERR(file);
		iput(inode);
		goto err_put_fd;
	}
	fd_install(fd, file);
	return fd;

err_put_fd:
	put_unused_fd(fd);
	return r;
}

static long gmem_ioctl_view_label(struct gmem_region *region,
				  void __user *argp)
{
	struct gmem_view_label args;
	struct gmem_view *view;
	u32 len = 0;
	char *copy;
	long r = 0;

	if (copy_from_user(&args, argp, sizeof(args)))
		return -EFAULT;
	if (args.flags || memchr_inv(args.reserved, 0, sizeof(args.reserved)))
		return -EINVAL;

	copy = kmalloc(GMEM_LABEL_MAX, GFP_KERNEL);
	if (!copy)
		return -ENOMEM;
	down_read(&region->lock);
	view = gmem_view_find(region, args.id);
	if (view) {
		len = view->label_len;
		memcpy(copy, view->label, len);
	} else {
		r = -ENOENT;
	}
	up_read(&region->lock);
	if (r)
		goto out;

	if (args.label_len < len)
		r = -ERANGE;
	else if (len && copy_to_user(u64_to_user_ptr(args.label), copy, len))
		r = -EFAULT;
	args.label_len = len;
	if (r != -EFAULT && copy_to_user(argp, &args, sizeof(args)))
		r = -EFAULT;
out:
	kfree(copy);
	return r;
}

static long gmem_ioctl_set_attributes(struct gmem_region *region,
				      void __user *argp)
{
	struct gmem_attributes args;

	if (copy_from_user(&args, argp, sizeof(args)))
		return -EFAULT;
	if (args.flags || (args.attributes & ~GMEM_ATTRS_ALL) ||
	    memchr_inv(args.reserved, 0, sizeof(args.reserved)))
		return -EINVAL;
	if (!gmem_range_ok(args.offset, args.length, 0, region->size))
		return -EINVAL;
	return gmem_set_attributes(region, args.offset, args.length,
				   args.attributes);
}

static long gmem_ioctl_info(struct gmem_region *region, void __user *argp)
{
	struct gmem_region_info args;
	struct gmem_view_info *infos = NULL;
	struct gmem_view *view;
	u64 n = 0, max;
	long r = 0;

	if (copy_from_user(&args, argp, sizeof(args)))
		return -EFAULT;
	if (memchr_inv(args.reserved, 0, sizeof(args.reserved)))
		return -EINVAL;
	if (args.nr_views_max && !args.views)
		return -EINVAL;
	max = min_t(u64, args.nr_views_max, GMEM_MAX_VIEW_INFO);

	if (max) {
		infos = kvcalloc(max, sizeof(*infos), GFP_KERNEL);
		if (!infos)
			return -ENOMEM;
	}

	down_read(&region->lock);
	args.id = region->id;
	args.size = region->size;
	args.flags = region->flags;
	args.allocated = (u64)atomic_long_read(&region->nr_pages) << PAGE_SHIFT;
	args.nr_views = region->nr_views;
	args.creator_uid = from_kuid_munged(current_user_ns(), region->creator);
	args.state = region->dead ? GMEM_REGION_STATE_DESTROYED :
		GMEM_REGION_STATE_LIVE;
	list_for_each_entry(view, &region->views, node) {
		if (n == max)
			break;
		if (view->id >= args.start_view_id)
			gmem_view_info_fill(view, &infos[n++]);
	}
	up_read(&region->lock);

	args.nr_views_max = n;
	memset(args.name, 0, sizeof(args.name));
	strscpy(args.name, region->name, sizeof(args.name));
	if (n && copy_to_user(u64_to_user_ptr(args.views), infos,
			      n * sizeof(*infos)))
		r = -EFAULT;
	else if (copy_to_user(argp, &args, sizeof(args)))
		r = -EFAULT;
	kvfree(infos);
	return r;
}

static long gmem_ioctl_destroy(struct gmem_region *region, void __user *argp)
{
	struct gmem_destroy args;
	struct gmem_view *view;

	if (copy_from_user(&args, argp, sizeof(args)))
		return -EFAULT;
	if (args.flags || memchr_inv(args.reserved, 0, sizeof(args.reserved)))
		return -EINVAL;

	down_write(&region->lock);
	if (region->dead) {
		up_write(&region->lock);
		return -EIO;
	}
	region->dead = true;
	list_for_each_entry(view, &region->views, node)
		view->state = GMEM_VIEW_STATE_REVOKED;
	gmem_zap(region, 0, region->size);
	gmem_free_pages(region, 0, ULONG_MAX);
	up_write(&region->lock);

	gmem_let_go_all(region);
	gmem_registry_unlink(region);
	return 0;
}

static long gmem_region_ioctl(struct file *file, unsigned int cmd,
			      unsigned long arg)
{
	struct gmem_region *region = file->private_data;
	void __user *argp = (void __user *)arg;

	switch (cmd) {
	case GMEM_REGION_NEW_VIEW:
		return gmem_ioctl_new_view(region, argp);
	case GMEM_REGION_ACTIVATE_VIEW:
	case GMEM_REGION_REVOKE_VIEW:
		return gmem_ioctl_view_op(region, cmd, argp);
	case GMEM_REGION_SET_ATTRIBUTES:
		return gmem_ioctl_set_attributes(region, argp);
	case GMEM_REGION_GET_ATTRIBUTES:
		return gmem_ioctl_get_attributes(region, NULL, argp);
	case GMEM_REGION_INFO:
		return gmem_ioctl_info(region, argp);
	case GMEM_REGION_DESTROY:
		return gmem_ioctl_destroy(region, argp);
	case GMEM_REGION_OPEN_VIEW:
		return gmem_ioctl_open_view(region, argp);
	case GMEM_REGION_VIEW_LABEL:
		return gmem_ioctl_view_label(region, argp);
	default:
		return -ENOTTY;
	}
}

static long gmem_region_fallocate(struct file *file, int mode, loff_t offset,
				  loff_t len)
{
	return gmem_fallocate(file->private_data, NULL, mode, offset, len);
}

static int gmem_region_release(struct inode *inode, struct file *file)
{
	gmem_region_put(file->private_data);
	return 0;
}

/* A handle is handed out by ioctl only, never re-opened through /proc. */
static int gmem_region_open(struct inode *inode, struct file *file)
{
	return -ENXIO;
}

const struct file_operations gmem_region_fops = {
	.owner		= THIS_MODULE,
	.open		= gmem_region_open,
	.release	= gmem_region_release,
	.fallocate	= gmem_region_fallocate,
	.unlocked_ioctl	= gmem_region_ioctl,
	.compat_ioctl	= compat_ptr_ioctl,
};
