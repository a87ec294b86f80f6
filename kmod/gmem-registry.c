// SPDX-License-Identifier: GPL-2.0
/*
 * /dev/gmem and the registry of live regions.
 *
 * The registry is what makes a region outlive its fds: it holds one
 * reference to every region from GMEM_CREATE_REGION until
 * GMEM_REGION_DESTROY, and finds regions by id (an xarray) and by name (a
 * hash table), so that an opener of /dev/gmem (the device node is root:gmem
 * 0660; being able to open it is the privilege) can list regions and get a
 * new handle of one it created (or, with CAP_SYS_ADMIN, of any) after a
 * restart. Ids count up from 1 and are not reused
 * while the module is loaded.
 *
 * gmem_registry_lock is never held together with a region's lock.
 */
#include <linux/mm.h>
#include <linux/file.h>
#include <linux/capability.h>
#include <linux/cred.h>
#include <linux/fs.h>
#include <linux/hashtable.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/slab.h>
#include <linux/stringhash.h>
#include <linux/uaccess.h>
#include <linux/xarray.h>

#include "gmem-internal.h"

/* Bound on the entries one GMEM_LIST_REGIONS call fills. */
#define GMEM_MAX_LIST	256

static DEFINE_MUTEX(gmem_registry_lock);
static DEFINE_XARRAY(gmem_regions);		/* id -> region */
static DEFINE_HASHTABLE(gmem_names, 7);		/* name -> region */
static u64 gmem_next_id = 1;

/* ASCII only: the kernel's isalnum() also takes Latin-1 letters. */
static bool gmem_name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
}

static u32 gmem_name_hash(const char *name)
{
	return full_name_hash(NULL, name, strlen(name));
}

/*
 * Check a user-supplied name buffer: [A-Za-z0-9_.-]{0,64}, NUL-terminated,
 * every byte after the NUL zero. Length 0 means "no name".
 */
static int gmem_name_check(const char *buf, size_t *ret_len)
{
	size_t i, len = strnlen(buf, GMEM_NAME_SIZE);

	if (len > GMEM_NAME_MAX)
		return -EINVAL;
	if (memchr_inv(buf + len, 0, GMEM_NAME_SIZE - len))
		return -EINVAL;
	for (i = 0; i < len; i++)
		if (!gmem_name_char(buf[i]))
			return -EINVAL;
	*ret_len = len;
	return 0;
}

/* Under gmem_registry_lock. */
static struct gmem_region *gmem_find_name(const char *name)
{
	struct gmem_region *region;

	hash_for_each_possible(gmem_names, region, name_node,
			       gmem_name_hash(name))
		if (!strcmp(region->name, name))
			return region;
	return NULL;
}

/*
 * Enter @region into the registry, which takes a reference. Its name and id
 * are taken from here on, but it cannot be opened or listed until
 * gmem_registry_publish().
 */
static int gmem_registry_link(struct gmem_region *region)
{
	int r;

	mutex_lock(&gmem_registry_lock);
	if (region->name[0] && gmem_find_name(region->name)) {
		r = -EEXIST;
		goto out_unlock;
	}
	r = xa_insert(&gmem_regions, region->id, region, GFP_KERNEL);
	if (r)
		goto out_unlock;
	if (region->name[0])
		hash_add(gmem_names, &region->name_node,
			 gmem_name_hash(region->name));
	region->linked = true;
	kref_get(&region->ref);
out_unlock:
	mutex_unlock(&gmem_registry_lock);
	return r;
}

/* Let GMEM_OPEN_REGION and GMEM_LIST_REGIONS see a linked region. */
static void gmem_registry_publish(struct gmem_region *region)
{
	mutex_lock(&gmem_registry_lock);
	region->published = true;
	mutex_unlock(&gmem_registry_lock);
}

/* Take @region out of the registry and drop the registry's reference. */
void gmem_registry_unlink(struct gmem_region *region)
{
	bool was_linked;

	mutex_lock(&gmem_registry_lock);
	was_linked = region->linked;
	if (was_linked) {
		xa_erase(&gmem_regions, region->id);
		if (region->name[0])
			hash_del(&region->name_node);
		region->linked = false;
	}
	mutex_unlock(&gmem_registry_lock);
	if (was_linked)
		gmem_region_put(region);
}

/* ---- ioctls ------------------------------------------------------------- */

static long gmem_ioctl_features(void __user *argp)
{
	struct gmem_features f = {
		.api_version	= GMEM_API_VERSION,
		.region_flags	= GMEM_REGION_FLAGS_ALL,
		.view_flags	= GMEM_VIEW_FLAGS_ALL,
		.attributes	= GMEM_ATTRS_ALL,
		.page_size	= PAGE_SIZE,
		.max_size	= MAX_LFS_FILESIZE & PAGE_MASK,
		.name_max	= GMEM_NAME_MAX,
	};

	return copy_to_user(argp, &f, sizeof(f)) ? -EFAULT : 0;
}

/*
 * Install a new handle of @region as an fd, the fd installed last. With
 * @ret_id, @region is new: it enters the registry (EEXIST for a taken name),
 * its id is copied out, and only then can others open or list it.
 */
static long gmem_install_handle(struct gmem_region *region,
				u64 __user *ret_id)
{
	struct file *file;
	int fd, r;

	fd = get_unused_fd_flags(O_CLOEXEC);
	if (fd < 0)
		return fd;
	file = gmem_region_handle(region);
	if (IS_ERR(file)) {
		r = PTR_ERR(file);
		goto err_put_fd;
	}
	if (ret_id) {
		r = gmem_registry_link(region);
		if (r)
			goto err_fput;
		if (put_user(region->id, ret_id)) {
			r = -EFAULT;
			goto err_unlink;
		}
		gmem_registry_publish(region);
	}
	fd_install(fd, file);
	return fd;

err_unlink:
	gmem_registry_unlink(region);	/* nobody could have opened it */
err_fput:
	fput(file);
err_put_fd:
	put_unused_fd(fd);
	return r;
}

static long gmem_ioctl_create(struct file *dev, void __user *argp)
{
	struct gmem_create_region __user *uargs = argp;
	struct gmem_create_region args;
	struct gmem_region *region;
	size_t name_len;
	u64 id;
	long r;

	if (!(dev->f_mode & FMODE_WRITE))
		return -EBADF;
	if (copy_from_user(&args, argp, sizeof(args)))
		return -EFAULT;
	if (args.flags & ~GMEM_REGION_FLAGS_ALL)
		return -EINVAL;
	if (memchr_inv(args.reserved, 0, sizeof(args.reserved)))
		return -EINVAL;
	if (!args.size || !PAGE_ALIGNED(args.size) ||
	    args.size > (MAX_LFS_FILESIZE & PAGE_MASK))
		return -EINVAL;
	r = gmem_name_check(args.name, &name_len);
	if (r)
		return r;

	mutex_lock(&gmem_registry_lock);
	id = gmem_next_id++;
	mutex_unlock(&gmem_registry_lock);

	region = gmem_region_new(id, args.size, args.flags, args.name);
	if (IS_ERR(region))
		return PTR_ERR(region);
	r = gmem_install_handle(region, &uargs->id);
	gmem_region_put(region);	/* the handle and registry hold it now */
	return r;
}

static long gmem_ioctl_open(struct file *dev, void __user *argp)
{
	struct gmem_region *region;
	struct gmem_open_region args;
	size_t name_len;
	long r;

	if (!(dev->f_mode & FMODE_WRITE))
		return -EBADF;
	if (copy_from_user(&args, argp, sizeof(args)))
		return -EFAULT;
	if (args.flags || memchr_inv(args.reserved, 0, sizeof(args.reserved)))
		return -EINVAL;
	r = gmem_name_check(args.name, &name_len);
	if (r)
		return r;
	if (!args.id == !name_len)
		return -EINVAL;		/* exactly one of id and name */

	mutex_lock(&gmem_registry_lock);
	if (name_len)
		region = gmem_find_name(args.name);
	else
		region = xa_load(&gmem_regions, args.id);
	if (region && !region->published)
		region = NULL;		/* still being created */
	if (region)
		kref_get(&region->ref);
	mutex_unlock(&gmem_registry_lock);
	if (!region)
		return -ENOENT;
	/* A handle is ownership: its creator's, or the administrator's. */
	if (!uid_eq(region->creator, current_euid()) &&
	    !ns_capable_noaudit(&init_user_ns, CAP_SYS_ADMIN)) {
		gmem_region_put(region);
		return -EACCES;
	}

	r = gmem_install_handle(region, NULL);
	gmem_region_put(region);
	return r;
}

static long gmem_ioctl_list(void __user *argp)
{
	struct gmem_list_regions args;
	struct gmem_region_entry *entries;
	struct gmem_region *region;
	unsigned long index;
	u64 n = 0, max;
	long r = 0;

	if (copy_from_user(&args, argp, sizeof(args)))
		return -EFAULT;
	if (args.flags || memchr_inv(args.reserved, 0, sizeof(args.reserved)))
		return -EINVAL;
	if (args.nr_entries && !args.entries)
		return -EINVAL;
	max = min_t(u64, args.nr_entries, GMEM_MAX_LIST);

	entries = kvcalloc(max ?: 1, sizeof(*entries), GFP_KERNEL);
	if (!entries)
		return -ENOMEM;

	args.next_id = 0;
	mutex_lock(&gmem_registry_lock);
	xa_for_each_start(&gmem_regions, index, region, args.start_id) {
		if (!region->published)
			continue;
		if (n == max) {
			args.next_id = region->id;
			break;
		}
		gmem_region_entry(region, &entries[n++]);
	}
	mutex_unlock(&gmem_registry_lock);

	args.nr_entries = n;
	if (n && copy_to_user(u64_to_user_ptr(args.entries), entries,
			      n * sizeof(*entries)))
		r = -EFAULT;
	else if (copy_to_user(argp, &args, sizeof(args)))
		r = -EFAULT;
	kvfree(entries);
	return r;
}

static long gmem_dev_ioctl(struct file *file, unsigned int cmd,
			   unsigned long arg)
{
	void __user *argp = (void __user *)arg;

	switch (cmd) {
	case GMEM_GET_FEATURES:
		return gmem_ioctl_features(argp);
	case GMEM_CREATE_REGION:
		return gmem_ioctl_create(file, argp);
	case GMEM_OPEN_REGION:
		return gmem_ioctl_open(file, argp);
	case GMEM_LIST_REGIONS:
		return gmem_ioctl_list(argp);
	default:
		return -ENOTTY;
	}
}

static const struct file_operations gmem_dev_fops = {
	.owner		= THIS_MODULE,
	.unlocked_ioctl	= gmem_dev_ioctl,
	.compat_ioctl	= compat_ptr_ioctl,
	.llseek		= noop_llseek,
};

static struct miscdevice gmem_misc = {
	.minor	= MISC_DYNAMIC_MINOR,
	.name	= "gmem",
	.fops	= &gmem_dev_fops,
	.mode	= 0660,
};

/* ---- module ------------------------------------------------------------- */

static int __init gmem_init(void)
{
	int r;

	r = gmem_fs_init();
	if (r)
		return r;
	r = misc_register(&gmem_misc);
	if (r)
		goto err_fs_exit;
	return 0;

err_fs_exit:
	gmem_fs_exit();
	return r;
}

static void __exit gmem_exit(void)
{
	misc_deregister(&gmem_misc);
	gmem_fs_exit();
	WARN_ON(!xa_empty(&gmem_regions));
}

module_init(gmem_init);
module_exit(gmem_exit);

MODULE_DESCRIPTION("Guest-memory regions with per-file views (/dev/gmem)");
MODULE_AUTHOR("The gmemd authors");
MODULE_LICENSE("GPL");
