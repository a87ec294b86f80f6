/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The differences between the kernels gmem.ko is built for (Debian's 6.1,
 * 6.12 and 7.3) that the code meets, in one place. Each shim names the
 * upstream release that made the change; only 6.1, 6.12 and 7.3 are built
 * and tested, so a cut between 6.12 and 7.3 is where upstream made it, not
 * a release gmem.ko was tried on.
 */
#ifndef GMEM_COMPAT_H
#define GMEM_COMPAT_H

#include <linux/mm.h>
#include <linux/uio.h>
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

/* 6.13 dropped vma_alloc_folio()'s hugepage argument. */
static inline struct folio *gmem_vma_alloc_folio(gfp_t gfp, struct vm_area_struct *vma, unsigned long addr)
{
#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 13, 0)
	return vma_alloc_folio(gfp, 0, vma, addr, false);
#else
	return vma_alloc_folio(gfp, 0, vma, addr);
#endif
}

/* 6.17 removed pfn_t: vmf_insert_mixed() takes a plain pfn. */
#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 17, 0)
#include <linux/pfn_t.h>
#define gmem_vmf_insert_mixed(vma, addr, pfn) vmf_insert_mixed(vma, addr, pfn_to_pfn_t(pfn))
#else
#define gmem_vmf_insert_mixed(vma, addr, pfn) vmf_insert_mixed(vma, addr, pfn)
#endif

/*
 * Copies into an order-0 page from an iterator without faulting. 6.12 has
 * both copy_page_from_iter_atomic() and copy_folio_from_iter_atomic(); 7.3
 * only the folio one; 6.1 only the page one.
 */
static inline size_t gmem_copy_page_from_iter_atomic(struct page *page, size_t offset, size_t bytes,
						     struct iov_iter *i)
{
#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 12, 0)
	return copy_page_from_iter_atomic(page, offset, bytes, i);
#else
	return copy_folio_from_iter_atomic(page_folio(page), offset, bytes, i);
#endif
}

#endif /* GMEM_COMPAT_H */
