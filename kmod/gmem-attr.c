// SPDX-License-Identifier: GPL-2.0
/*
 * gmem memory attributes: which pages of a region are private, and their
 * conversion in place (see gmem-core.c for the object model).
 *
 * Memory attributes are ranges (region->attrs, a maple tree of private
 * ranges, merged), so their cost does not grow with the length converted;
 * lookups take the tree's own spinlock, writers also region->attrs_lock.
 * Shared->private takes no region->lock for writing, so that faults on
 * other pages never wait for it. It publishes the range in
 * region->conversions: from then on faults, reads and writes in that range
 * wait for region->conversion_wq, and those in flight that looked
 * before it was published see it after installing their PTE or taking
 * their page reference, and undo it (gmem_conversion_raced()). Then it
 * zaps the range in every view, checks the present pages in batches under
 * the read lock (stopping on a fatal signal), stores the attribute, or
 * nothing if a page was pinned (EBUSY: a copy of read()/write() in
 * progress counts), and leaves the list. Private->shared only stores the
 * attribute.
 *
 * This file: attribute lookups, the conversions in flight that faults,
 * read() and write() wait for and check (gmem-view.c), conversion both ways
 * with its check for pins, and setting and querying attributes for the
 * ioctls of gmem-handle.c and gmem-view.c.
 */
#include <linux/maple_tree.h>
#include <linux/mm.h>
#include <linux/mutex.h>
#include <linux/sched/signal.h>
#include <linux/spinlock.h>
#include <linux/string.h>
#include <linux/uaccess.h>
#include <linux/wait.h>
#include <linux/xarray.h>

#include "gmem-internal.h"

/* Present pages checked for pins per batch, between lock drops. */
#define GMEM_CHECK_BATCH	1024

/* ---- lookups, conversions in flight ------------------------------------- */

/* What region->attrs holds for a private page (NULL for a shared one). */
#define GMEM_PRIVATE_ENTRY	xa_mk_value(GMEM_ATTR_PRIVATE)

bool gmem_is_private(struct gmem_region *region, pgoff_t index)
{
	void *entry;

	mtree_lock(&region->attrs);	/* against a store freeing nodes */
	entry = mtree_load(&region->attrs, index);
	mtree_unlock(&region->attrs);
	return entry != NULL;
}

/*
 * The attribute entry of @index and, in @ret_first and @ret_last, the range
 * of indexes stored with it. Under region->lock.
 */
static void *gmem_attr_range(struct gmem_region *region, pgoff_t index,
			     pgoff_t *ret_first, pgoff_t *ret_last)
{
	MA_STATE(mas, &region->attrs, index, index);
	void *entry;

	mtree_lock(&region->attrs);
	entry = mas_walk(&mas);
	mtree_unlock(&region->attrs);
	*ret_first = mas.index;
	*ret_last = mas.last;
	return entry;
}

/*
 * Whether @index is in a shared -> private conversion in flight, and the
 * count of conversions ended so far, for gmem_wait_conversion(). Under
 * region->lock for reading.
 */
bool gmem_converting(struct gmem_region *region, pgoff_t index,
		     unsigned long *ret_seq)
{
	struct gmem_conversion *conv;
	bool found = false;

	spin_lock(&region->conversions_lock);
	*ret_seq = region->conversion_seq;
	list_for_each_entry(conv, &region->conversions, node)
		if (index >= conv->first && index <= conv->last) {
			found = true;
			break;
		}
	spin_unlock(&region->conversions_lock);
	return found;
}

/*
 * A fault, read or write that found @index shared and not converting, then
 * installed a PTE or took a page reference: whether a conversion began
 * meanwhile, so that it must undo that and look again. The conversion
 * publishes itself, then zaps and counts references; this publishes the PTE
 * or reference, then looks, a full barrier on both sides: either the
 * conversion saw it, or this sees the conversion in flight, or (ended) its
 * private attribute, stored before it left the list.
 */
bool gmem_conversion_raced(struct gmem_region *region, pgoff_t index)
{
	unsigned long seq;

	smp_mb();
	return gmem_converting(region, index, &seq) ||
		gmem_is_private(region, index);
}

/*
 * Wait, with region->lock held for reading on entry and on return but not
 * in between, until a conversion ends after gmem_converting() returned
 * @seq; -EINTR on a fatal signal.
 */
int gmem_wait_conversion(struct gmem_region *region, unsigned long seq)
{
	int r;

	up_read(&region->lock);
	r = wait_event_killable(region->conversion_wq,
				READ_ONCE(region->conversion_seq) != seq);
	down_read(&region->lock);
	return r ? -EINTR : 0;
}

/* ---- conversion --------------------------------------------------------- */

/*
 * Shared -> private, after the zap: no page of [first, last] may be
 * referenced by anyone but us. The range is in region->conversions, so no
 * fault, read or write can take a new reference to it, and any that remains
 * is a pin (GUP, O_DIRECT, vmsplice, an io_uring fixed buffer, or the copy
 * of a read/write in progress). Only the pages present are looked at, in
 * batches under the lock held for reading, so unrelated faults and I/O go
 * on; a fatal signal stops it (-EINTR).
 */
static int gmem_check_unpinned(struct gmem_region *region, pgoff_t first,
			       pgoff_t last)
{
	unsigned long index = first;
	struct page *page;
	int n, r = 0;

	while (!r && index <= last) {
		if (fatal_signal_pending(current))
			return -EINTR;
		down_read(&region->lock);
		for (n = 0; n < GMEM_CHECK_BATCH; n++) {
			struct folio *folio;

			page = xa_find(&region->pages, &index, last, XA_PRESENT);
			if (!page) {
				index = last + 1;
				break;
			}
			if (xa_is_value(page)) {	/* GMEM_POISONED */
				index++;
				continue;
			}
			folio = page_folio(page);
			if (folio_ref_count(folio) != 1 || folio_mapped(folio)) {
				r = -EBUSY;
				break;
			}
			index++;
		}
		up_read(&region->lock);
		cond_resched();
	}
	return r;
}

/*
 * Mark [first, last] private, merged with the private ranges around it so
 * that each run of equal pages is one entry. Under region->attrs_lock.
 */
static int gmem_attrs_store_private(struct gmem_region *region, pgoff_t first,
				    pgoff_t last)
{
	pgoff_t f, l;

	if (first > 0 && gmem_attr_range(region, first - 1, &f, &l))
		first = f;
	if (gmem_attr_range(region, last + 1, &f, &l))
		last = l;
	/* Charged to the caller, who is told if that fails. */
	return mtree_store_range(&region->attrs, first, last,
				 GMEM_PRIVATE_ENTRY,
				 GFP_KERNEL_ACCOUNT | GMEM_GFP_REPORTED);
}

/* Private -> shared: nothing is mapped, nothing to check. */
static int gmem_make_shared(struct gmem_region *region, pgoff_t first,
			    pgoff_t last)
{
	int r = -EIO;

	/* Faults look the tree up under its own lock: no need to stop them. */
	mutex_lock(&region->attrs_lock);
	if (!READ_ONCE(region->dead)) {
		/* Splitting a private range may need a node, the caller's. */
		r = mtree_store_range(&region->attrs, first, last, NULL,
				      GFP_KERNEL_ACCOUNT | GMEM_GFP_REPORTED);
	}
	mutex_unlock(&region->attrs_lock);
	return r;
}

/*
 * Shared -> private: the range joins region->conversions (faults, reads and
 * writes in it wait from then on, and those in flight that missed it undo
 * what they did, see gmem_conversion_raced()), is zapped and checked for
 * pins, becomes private (all or nothing), and leaves the list. No
 * region->lock is taken for writing: faults elsewhere never wait for it.
 * A revoke meanwhile (which takes it for writing) is no obstacle: pins it
 * detaches no longer count.
 */
static int gmem_make_private(struct gmem_region *region, pgoff_t first,
			     pgoff_t last)
{
	struct gmem_conversion conv = { .first = first, .last = last };
	int r;

	if (READ_ONCE(region->dead))
		return -EIO;
	spin_lock(&region->conversions_lock);
	list_add(&conv.node, &region->conversions);
	spin_unlock(&region->conversions_lock);
	smp_mb();	/* published before the zap, see gmem_conversion_raced() */

	/* In every view; the lock keeps the view list still. */
	down_read(&region->lock);
	gmem_zap(region, (u64)first << PAGE_SHIFT,
		 (u64)(last - first + 1) << PAGE_SHIFT);
	up_read(&region->lock);
	r = gmem_check_unpinned(region, first, last);

	if (!r) {
		mutex_lock(&region->attrs_lock);
		r = READ_ONCE(region->dead) ? -EIO :
			gmem_attrs_store_private(region, first, last);
		mutex_unlock(&region->attrs_lock);
	}

	/* The attribute is stored before the range leaves the list. */
	spin_lock(&region->conversions_lock);
	list_del(&conv.node);
	region->conversion_seq++;
	spin_unlock(&region->conversions_lock);
	wake_up_all(&region->conversion_wq);
	return r;
}

/* ---- setting and querying ----------------------------------------------- */

int gmem_set_attributes(struct gmem_region *region, u64 offset,
			u64 length, u64 attributes)
{
	pgoff_t first = offset >> PAGE_SHIFT;
	pgoff_t last = first + (length >> PAGE_SHIFT) - 1;

	if (attributes & GMEM_ATTR_PRIVATE)
		return gmem_make_private(region, first, last);
	return gmem_make_shared(region, first, last);
}

/*
 * The attributes of the page at @offset, and the length of the run of pages
 * from it (at most @length) with the same attributes; through @view if not
 * NULL, which must be usable.
 */
static int gmem_get_attributes(struct gmem_region *region,
			       struct gmem_view *view, u64 offset, u64 length,
			       u64 *ret_attributes, u64 *ret_length)
{
	pgoff_t first = offset >> PAGE_SHIFT;
	pgoff_t last = first + (length >> PAGE_SHIFT) - 1;
	pgoff_t f, l, end;
	bool private;
	int r;

	down_read(&region->lock);
	r = gmem_usable(region, view);
	if (r) {
		up_read(&region->lock);
		return r;
	}
	/* Ranges are merged, but a run may still span a few of them. */
	private = gmem_attr_range(region, first, &f, &end) != NULL;
	while (end < last &&
	       (gmem_attr_range(region, end + 1, &f, &l) != NULL) == private) {
		end = l;
		cond_resched();
	}
	up_read(&region->lock);

	*ret_attributes = private ? GMEM_ATTR_PRIVATE : 0;
	*ret_length = (u64)(min(end, last) - first + 1) << PAGE_SHIFT;
	return 0;
}

/* On a handle (@view NULL): the whole region; on a view: its window. */
long gmem_ioctl_get_attributes(struct gmem_region *region,
			       struct gmem_view *view, void __user *argp)
{
	u64 start = view ? view->offset : 0;
	u64 end = view ? view->offset + view->length : region->size;
	struct gmem_attributes args;
	int r;

	if (copy_from_user(&args, argp, sizeof(args)))
		return -EFAULT;
	if (args.flags || args.attributes ||
	    memchr_inv(args.reserved, 0, sizeof(args.reserved)))
		return -EINVAL;
	if (!gmem_range_ok(args.offset, args.length, start, end))
		return -EINVAL;

	r = gmem_get_attributes(region, view, args.offset, args.length,
				&args.attributes, &args.length);
	if (r)
		return r;
	if (copy_to_user(argp, &args, sizeof(args)))
		return -EFAULT;
	return 0;
}
