/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What gmem-core.c (regions: storage, invalidation, revocation), gmem-attr.c
 * (memory attributes and their conversion), gmem-handle.c (the region
 * handle's ioctls), gmem-view.c (views: faults, mmap, read/write, re-open)
 * and gmem-registry.c (/dev/gmem, the table of live regions, module init)
 * share. See gmem-core.c for the object model.
 */
#ifndef GMEM_INTERNAL_H
#define GMEM_INTERNAL_H

#include <linux/fs.h>
#include <linux/errno.h>
#include <linux/gfp.h>
#include <linux/kref.h>
#include <linux/list.h>
#include <linux/maple_tree.h>
#include <linux/mutex.h>
#include <linux/rwsem.h>
#include <linux/spinlock.h>
#include <linux/types.h>
#include <linux/uidgid.h>
#include <linux/wait.h>
#include <linux/xarray.h>

#include <uapi/linux/gmem.h>

#define GMEM_MAGIC	0x676d656d	/* "gmem" */

/* In region->pages instead of a page that had a memory error. */
#define GMEM_POISONED	xa_mk_value(1)

/*
 * Added to the allocations of fallocate(), write() and
 * GMEM_REGION_SET_ATTRIBUTES, which report a failure to their caller
 * (ENOMEM): no allocation failure warning with a stack trace. (Every
 * allocation of ours is __GFP_RETRY_MAYFAIL: none calls the OOM killer.)
 */
#define GMEM_GFP_REPORTED	(__GFP_RETRY_MAYFAIL | __GFP_NOWARN)

struct page;
struct vm_fault;

struct gmem_region {
	struct kref ref;		/* registry link, handles, views */
	struct file *anchor;		/* holds the module, put last */
	u64 id;
	u64 size;
	u64 flags;
	char name[GMEM_NAME_MAX + 1];	/* "" if anonymous */
	kuid_t creator;			/* euid of the creating task */

	/* Owned by gmem-registry.c, under its mutex. */
	struct hlist_node name_node;
	bool linked;			/* in the registry: name and id taken */
	bool published;			/* and its creator has its id: openable */

	/* The storage inode: its size; handles are its files. */
	struct inode *inode;

	/*
	 * Readers: faults, read/write, allocation, a conversion to private
	 * (it has a protocol of its own, see gmem-attr.c). Writers: anything
	 * else that takes access away (revoke, punch, destroy) or changes
	 * the view list.
	 */
	struct rw_semaphore lock;
	bool dead;			/* destroyed */
	struct xarray pages;		/* index -> struct page *, one ref each,
					 * or GMEM_POISONED */
	struct maple_tree attrs;	/* private ranges of indexes */
	struct mutex attrs_lock;	/* writers of attrs */
	struct list_head conversions;	/* shared -> private in flight */
	spinlock_t conversions_lock;	/* conversions, conversion_seq */
	unsigned long conversion_seq;	/* + 1 when one ends */
	wait_queue_head_t conversion_wq;
	atomic_long_t nr_pages;
	bool zero_mapped;		/* a zero page was ever mapped */
	struct list_head views;
	u64 nr_views;
	u64 next_view_id;
};

/* A shared -> private conversion of [first, last] in flight. */
struct gmem_conversion {
	struct list_head node;		/* region->conversions */
	pgoff_t first, last;
};

struct gmem_view {
	struct gmem_region *region;	/* pinned */
	struct inode *inode;		/* owns the view; i_mapping: its VMAs */
	struct list_head node;		/* region->views, under region->lock */
	u64 id;
	u64 flags;			/* GMEM_VIEW_READ | _WRITE | _ALLOCATE */
	u64 offset;			/* window, bytes */
	u64 length;
	u32 state;			/* GMEM_VIEW_STATE_*, under region->lock */
	bool kept;			/* the region holds inode; under region->lock */
	u32 label_len;
	char *label;			/* label_len bytes, or NULL */
	bool detached;			/* revoked, pins detached; ditto */
};

/* 0 if the view may be used now; under region->lock. */
static inline int gmem_view_usable(struct gmem_view *view)
{
	if (view->region->dead || view->state == GMEM_VIEW_STATE_REVOKED)
		return -EIO;
	if (view->state == GMEM_VIEW_STATE_PENDING)
		return -EAGAIN;
	return 0;
}

/* 0 if @view, or without one the region's handle, may be used now; ditto. */
static inline int gmem_usable(struct gmem_region *region,
			      struct gmem_view *view)
{
	if (view)
		return gmem_view_usable(view);
	return region->dead ? -EIO : 0;
}

/* gmem-core.c */
void gmem_free_pages(struct gmem_region *region, pgoff_t first, pgoff_t last);
int gmem_revoke(struct gmem_region *region, struct gmem_view *view);
extern struct vfsmount *gmem_mnt;
extern const struct inode_operations gmem_iops;
bool gmem_range_ok(u64 offset, u64 length, u64 start, u64 end);
void gmem_zap(struct gmem_region *region, u64 offset, u64 length);
int gmem_find_page(struct gmem_region *region, pgoff_t index,
		   struct page **ret_page);
int gmem_get_page(struct gmem_region *region, pgoff_t index,
		  const struct vm_fault *vmf, struct page **ret_page);
long gmem_fallocate(struct gmem_region *region, struct gmem_view *view,
		    int mode, loff_t offset, loff_t len);
struct gmem_region *gmem_region_new(u64 id, u64 size, u64 flags,
				    const char *name);
void gmem_region_put(struct gmem_region *region);
struct file *gmem_region_handle(struct gmem_region *region);
void gmem_region_entry(struct gmem_region *region,
		       struct gmem_region_entry *entry);
int gmem_fs_init(void);
void gmem_fs_exit(void);

/* gmem-attr.c */
bool gmem_is_private(struct gmem_region *region, pgoff_t index);
bool gmem_converting(struct gmem_region *region, pgoff_t index,
		     unsigned long *ret_seq);
bool gmem_conversion_raced(struct gmem_region *region, pgoff_t index);
int gmem_wait_conversion(struct gmem_region *region, unsigned long seq);
int gmem_set_attributes(struct gmem_region *region, u64 offset, u64 length,
			u64 attributes);
long gmem_ioctl_get_attributes(struct gmem_region *region,
			       struct gmem_view *view, void __user *argp);

/* gmem-view.c */
extern const struct file_operations gmem_view_fops;
struct file *gmem_view_create(struct gmem_region *region,
			      struct gmem_new_view *args, char *label);
struct file *gmem_view_open_file(struct gmem_view *view);
void gmem_view_let_go(struct gmem_view *view);
void gmem_view_free(struct gmem_view *view);
void gmem_view_info_fill(struct gmem_view *view, struct gmem_view_info *info);

/* gmem-handle.c */
extern const struct file_operations gmem_region_fops;

/* gmem-registry.c */
void gmem_registry_unlink(struct gmem_region *region);

#endif /* GMEM_INTERNAL_H */
