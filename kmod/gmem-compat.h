/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The differences between the kernels gmem.ko is built for (Debian's 6.1 and
 * 6.12) that the code meets, in one place. Each shim names the release that
 * made it unnecessary.
 */
#ifndef GMEM_COMPAT_H
#define GMEM_COMPAT_H

#include <linux/mm.h>
#include <linux/version.h>

#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 3, 0)
/* 6.3 made vm_flags read-only and added these accessors. */
static inline void vm_flags_set(struct vm_area_struct *vma, vm_flags_t flags)
{
	vma->vm_flags |= flags;
}

static inline void vm_flags_clear(struct vm_area_struct *vma, vm_flags_t flags)
{
	vma->vm_flags &= ~flags;
}
#endif

/*
 * How many PTEs map an order-0 page. 6.12 has no page_mapcount() but an
 * inline folio_mapcount(), which 6.1 has out of line and does not export.
 */
static inline int gmem_page_mapcount(struct page *page)
{
#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 12, 0)
	return page_mapcount(page);
#else
	return folio_mapcount(page_folio(page));
#endif
}

#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 3, 0)
/* 6.3 passes inode operations a struct mnt_idmap instead. */
#define GMEM_IDMAP struct user_namespace
#else
#define GMEM_IDMAP struct mnt_idmap
#endif

#endif /* GMEM_COMPAT_H */
