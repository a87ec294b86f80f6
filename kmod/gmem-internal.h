/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What gmem-core.c (regions, views, faults) and gmem-registry.c (/dev/gmem, the table
 * of live regions, module init) share. See gmem-core.c for the object model.
 */
#ifndef GMEM_INTERNAL_H
#define GMEM_INTERNAL_H

#include <linux/fs.h>
#include <linux/kref.h>
#include <linux/list.h>
#include <linux/rwsem.h>
#include <linux/types.h>
#include <linux/xarray.h>

#include <uapi/linux/gmem.h>

#define GMEM_MAGIC	0x676d656d	/* "gmem" */

struct mem_cgroup;

struct gmem_region {
	struct kref ref;		/* registry link, handles, views */
	u64 id;
	u64 size;
	u64 flags;
	char name[GMEM_NAME_MAX + 1];	/* "" if anonymous */

	/* Owned by gmem-registry.c, under its mutex. */
	struct hlist_node name_node;
	bool linked;

	/* The storage inode: i_mapping->i_mmap holds the VMAs of every view. */
	struct inode *inode;
	struct mem_cgroup *memcg;	/* charged for every page */

	/*
	 * Readers: faults, read/write, allocation. Writers: anything that
	 * takes access away (revoke, punch, shared->private, destroy) or
	 * changes the view list.
	 */
	struct rw_semaphore lock;
	bool dead;			/* destroyed */
	struct xarray pages;		/* index -> struct page *, one ref each */
	struct xarray attrs;		/* index -> xa_mk_value(GMEM_ATTR_*) */
	atomic_long_t nr_pages;
	struct list_head views;
	u64 nr_views;
	u64 next_view_id;
};

/* gmem-core.c */
struct gmem_region *gmem_region_new(u64 id, u64 size, u64 flags,
				    const char *name);
void gmem_region_put(struct gmem_region *region);
struct file *gmem_region_handle(struct gmem_region *region);
void gmem_region_entry(struct gmem_region *region,
		       struct gmem_region_entry *entry);
int gmem_fs_init(void);
void gmem_fs_exit(void);

/* gmem-registry.c */
void gmem_registry_unlink(struct gmem_region *region);

#endif /* GMEM_INTERNAL_H */
