// SPDX-License-Identifier: GPL-2.0
/*
 * gmem: guest-memory regions whose files are per-user views.
 *
 * The inode is the storage, the file is one user's view of it. A *region*
 * owns a storage inode on a private pseudo filesystem; its pages live in the
 * region's own page array (region->pages), not in the page cache, so they are
 * never on an LRU list: never reclaimed, never migrated or compacted. Pages
 * are allocated zeroed on first touch. No address_space holds a page.
 *
 * Who pays for a page: whoever makes it exist, never the region's creator
 * as such. A fault charges the memory cgroup of the address space that
 * faults (vma->vm_mm, as anonymous memory and shmem do: also when the fault
 * comes through GUP from another process); fallocate() and write() charge
 * the calling task. The charge (__GFP_ACCOUNT, kernel memory) stays with the
 * page until it is punched or the region destroyed, whatever happens to the
 * process that paid (a removed cgroup's charges move to its parent). At a
 * limit nothing is OOM-killed (__GFP_RETRY_MAYFAIL: reclaim is tried, then
 * the allocation fails): a fault gets SIGBUS, never VM_FAULT_OOM, which would
 * send the task into pagefault_out_of_memory() and retry the fault for ever;
 * fallocate() and write() fail with ENOMEM, keeping what they allocated
 * before the limit. The same holds when the machine itself is out of memory.
 * Where a page is placed follows the same split: a fault allocates by the
 * VMA's memory policy (mbind(), what QEMU's host-nodes= and policy= set),
 * fallocate() and write() by the calling task's (set_mempolicy()).
 * The index that holds the pages (region->pages) and the attribute ranges
 * (region->attrs) are charged as kernel memory to whoever inserts into
 * them; at a limit that fails the same way (SIGBUS, ENOMEM), quietly for
 * fallocate(), write() and GMEM_REGION_SET_ATTRIBUTES (__GFP_NOWARN).
 *
 * A *view* is one inode (mode, size, i_fop of its own) per window and set of
 * rights; every file of the view, the first one and any re-open through
 * /proc/<pid>/fd, keeps the view inode's own mapping as its f_mapping and
 * points its private_data at the view. Each view's address_space is thus the
 * i_mmap tree of that view's VMAs alone (upstream guest_memfd's per-file
 * invalidation): a revoke zaps the revoked view's mappings and no other,
 * while a punch, a conversion or a destroy walks the region's views and zaps
 * the range in each. Re-opening goes through gmem_view_open(), which
 * refuses a revoked view and any write access the view does not have. The
 * *handle* is a file of the storage inode itself: the owner's, for ioctls and
 * fallocate over the whole region; it cannot be re-opened through /proc.
 *
 * What lives where:
 *   storage inode   size
 *   region          pages, memory attributes (ranges), conversions in
 *                   flight, view list, state, the lock
 *   view inode      the view (i_private): window, rights, state, label;
 *                   the i_mmap tree of the view's VMAs
 *   file            nothing of its own: a handle or one open of a view
 *
 * Who pins whom:
 *   VMA -> view file -> view dentry -> view inode -> view -> region
 *   handle file -> region (and its dentry -> storage inode)
 *   registry (until GMEM_REGION_DESTROY) -> region
 *   region -> view inode of a kept view (GMEM_VIEW_KEEP), until it is
 *             revoked or the region destroyed (a cycle those two break)
 *   region -> storage inode, pages (one reference each), anchor
 *   anchor file, and every file of ours -> module (f_op->owner)
 * So memory outlives every fd until the region is destroyed, and the module
 * cannot be unloaded while a region exists. The region's view list is not a
 * reference: a view leaves it when its inode goes (its last file, or the
 * region letting a kept view go).
 *
 * The module's last reference must be dropped by code that is not ours:
 * __fput() drops a file's after its ->release, but then evicts the file's
 * inode (our evict_inode, our s_op) and puts our mount, and the last region
 * goes from inside such an eviction or release. So a region does not hold
 * the module itself but through its *anchor*, an anonymous-inode file whose
 * f_op owner is this module, fput() as the very last thing of the region's
 * release: fput() defers to task_work (or to the delayed-fput work, which
 * does not run concurrently with itself), so the anchor's __fput() and its
 * module_put() run after every frame of ours on this stack has returned.
 *
 * A read fault on a hole of a mapping that can never be written (no
 * VM_MAYWRITE: a read-only view, or a file opened read-only) maps the shared
 * zero page instead of allocating, so reading a region through a read-only
 * view does not fill it. Whoever then allocates that page zaps the index in
 * every view, and the mapping faults the real page in. Faults and
 * allocations both hold region->lock only for reading, so they order
 * themselves: the fault sets region->zero_mapped, installs the zero PTE and
 * looks at the index again (zapping its own PTE if a page has appeared); the
 * allocator stores the page and zaps if region->zero_mapped is set, a full
 * barrier after each store. One of the two always sees the other.
 *
 * Access is taken away under region->lock held for writing (revoke, punch,
 * destroy): the state or page changes, then unmap_mapping_range() zaps the
 * range in the view concerned, or in every view (the view list changes
 * only under the lock held for writing, so holding it for reading is
 * enough to walk it, and a view with a VMA is on it: VMA -> file -> view
 * inode); conversion to private has a protocol of its own (gmem-attr.c).
 * Faults check the state and install the PTE themselves (vm_insert_page() on
 * a VM_MIXEDMAP VMA) under the lock held for reading, so no fault can
 * install a stale PTE after the zap. read()/write() copy under the lock held
 * for reading with page faults disabled, and fault the user buffer in
 * unlocked before they retry (gmem-view.c): no copy outlasts a revoke, and
 * no page reference outlasts the lock. During the copy itself they hold
 * one, which is how a conversion to private that starts meanwhile sees
 * them (gmem-attr.c).
 *
 * A page with a hardware memory error (PageHWPoison, which memory_failure()
 * sets on our pages though it cannot unmap them: they are not on an LRU)
 * is never copied by read()/write() or mapped again: whoever finds it
 * replaces it in region->pages with the mark GMEM_POISONED, zaps its
 * mappings in every view and drops the region's reference. Faults on the mark get
 * VM_FAULT_HWPOISON (SIGBUS BUS_MCEERR_AR), read/write/fallocate
 * -EHWPOISON; a punch removes the mark, and the page is a hole again.
 *
 * This file: helpers, the page array (lookup, allocation, freeing),
 * invalidation and revocation, fallocate, region create/release and the
 * pseudo filesystem. Memory attributes and their conversion are in
 * gmem-attr.c, the handle's ioctls in gmem-handle.c, the view's face (fault,
 * mmap, read/write, re-open) in gmem-view.c, the device and registry in
 * gmem-registry.c.
 */
#include <linux/anon_inodes.h>
#include <linux/cred.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/fs_context.h>
#include <linux/falloc.h>
#include <linux/highmem.h>
#include <linux/maple_tree.h>
#include <linux/memcontrol.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/mount.h>
#include <linux/mutex.h>
#include <linux/overflow.h>
#include <linux/pagemap.h>
#include <linux/pseudo_fs.h>
#include <linux/sched/mm.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/string.h>

#include "gmem-compat.h"
#include "gmem-internal.h"

/* Pages are allocated in batches of this many between lock drops. */
#define GMEM_ALLOC_BATCH	64
/*
 * Zeroed, charged to the current (or active) memory cgroup, and failing at
 * its limit instead of calling the OOM killer. Not __GFP_MOVABLE: the pages
 * are never migrated.
 */
#define GMEM_GFP	(GFP_HIGHUSER | __GFP_ZERO | __GFP_ACCOUNT | \
			 __GFP_RETRY_MAYFAIL)
/* A revoke's copies: the caller is told (ENOMEM), nobody is OOM-killed. */
#define GMEM_GFP_COPY	(GFP_HIGHUSER | __GFP_ACCOUNT | __GFP_RETRY_MAYFAIL | \
			 __GFP_NOWARN)

struct vfsmount *gmem_mnt;

/* ---- helpers ------------------------------------------------------------ */

bool gmem_range_ok(u64 offset, u64 length, u64 start, u64 end)
{
	u64 last;

	if (!length || !PAGE_ALIGNED(offset) || !PAGE_ALIGNED(length))
		return false;
	if (check_add_overflow(offset, length, &last))
		return false;
	return offset >= start && last <= end;
}

/* Zap @view's mappings of [offset, offset + length); under region->lock. */
static void gmem_zap_view(struct gmem_view *view, u64 offset, u64 length)
{
	unmap_mapping_range(view->inode->i_mapping, offset, length, 0);
}

/*
 * Zap every mapping of [offset, offset + length) in every view; under
 * region->lock, for reading at least (the view list changes only under it
 * held for writing).
 */
void gmem_zap(struct gmem_region *region, u64 offset, u64 length)
{
	struct gmem_view *view;

	lockdep_assert_held(&region->lock);
	list_for_each_entry(view, &region->views, node)
		gmem_zap_view(view, offset, length);
}

/*
 * The page at @index, or NULL for a hole; -EHWPOISON if it had a memory
 * error: such a page is dropped from the region (its memory is never
 * freed for reuse, see free_pages_prepare()), and every mapping of it
 * zapped, and the index answers -EHWPOISON until it is punched. Under
 * region->lock held at least for reading.
 */
int gmem_find_page(struct gmem_region *region, pgoff_t index,
		   struct page **ret_page)
{
	struct page *page = xa_load(&region->pages, index);

	*ret_page = NULL;
	if (xa_is_value(page))
		return -EHWPOISON;
	if (page && PageHWPoison(page)) {
		/* Racing finders: one of them drops it. */
		if (xa_cmpxchg(&region->pages, index, page, GMEM_POISONED,
			       GFP_KERNEL) == page) {
			atomic_long_dec(&region->nr_pages);
			gmem_zap(region, (u64)index << PAGE_SHIFT, PAGE_SIZE);
			put_page(page);
		}
		return -EHWPOISON;
	}
	*ret_page = page;
	return 0;
}

/*
 * A new zeroed page. In a fault (@vmf), charged to the memory cgroup of the
 * faulting address space and placed by the VMA's memory policy (mbind(), or
 * else the faulting task's); outside a fault (fallocate, write), charged to
 * the calling task and placed by its policy, and failing quietly (the
 * caller is told, ENOMEM).
 */
static struct page *gmem_alloc_page(const struct vm_fault *vmf)
{
	struct mem_cgroup *memcg, *old_memcg;
	struct folio *folio;

	if (!vmf)
		return alloc_page(GMEM_GFP | GMEM_GFP_REPORTED);

	memcg = get_mem_cgroup_from_mm(vmf->vma->vm_mm);
	old_memcg = set_active_memcg(memcg);
	folio = gmem_vma_alloc_folio(GMEM_GFP, vmf->vma, vmf->address);
	set_active_memcg(old_memcg);
	mem_cgroup_put(memcg);
	return folio ? &folio->page : NULL;
}

/*
 * The page at @index, allocated if there is none (see gmem_alloc_page() for
 * who pays; the index nodes that hold it are charged to the inserting
 * task); -ENOMEM at a memory cgroup's limit, -EHWPOISON (see
 * gmem_find_page()). Under region->lock held at least for reading; the page
 * stays while the lock is held.
 */
int gmem_get_page(struct gmem_region *region, pgoff_t index,
		  const struct vm_fault *vmf, struct page **ret_page)
{
	struct page *page, *old;
	int r;

	r = gmem_find_page(region, index, &page);
	if (r || page) {
		*ret_page = page;
		return r;
	}

	page = gmem_alloc_page(vmf);
	/* Concurrent readers may race to fill the same index. */
	old = page ? xa_cmpxchg(&region->pages, index, NULL, page,
				GFP_KERNEL_ACCOUNT | __GFP_RETRY_MAYFAIL |
				(vmf ? 0 : __GFP_NOWARN)) : NULL;
	if (!page)
		return -ENOMEM;

	if (xa_is_err(old)) {
		__free_page(page);
		return xa_err(old);
	}
	if (old) {
		__free_page(page);
		/* Found by a racing reader, or dropped as poisoned since. */
		return gmem_find_page(region, index, ret_page);
	} else {
		atomic_long_inc(&region->nr_pages);
		/* A read-only mapping may show the zero page here: replace it. */
		smp_mb();	/* pairs with gmem_fault_zero() */
		if (READ_ONCE(region->zero_mapped))
			gmem_zap(region, (u64)index << PAGE_SHIFT, PAGE_SIZE);
	}
	*ret_page = page;
	return 0;
}

/* ---- invalidation ------------------------------------------------------- */

/*
 * Drop the pages (and poison marks) of [first, last]; under region->lock
 * for writing, zapped.
 */
void gmem_free_pages(struct gmem_region *region, pgoff_t first,
		     pgoff_t last)
{
	unsigned long index;
	struct page *page;

	xa_for_each_range(&region->pages, index, page, first, last) {
		xa_erase(&region->pages, index);
		if (!xa_is_value(page)) {	/* not GMEM_POISONED */
			atomic_long_dec(&region->nr_pages);
			put_page(page);	/* a pinner keeps its own reference */
		}
		cond_resched();
	}
}

/*
 * The memory cgroup @page is charged to, with a reference; NULL if none (then
 * the current task's is charged).
 */
static struct mem_cgroup *gmem_page_memcg(struct page *page)
{
	struct mem_cgroup *memcg;

	rcu_read_lock();
	memcg = folio_memcg(page_folio(page));
	if (memcg && !css_tryget(&memcg->css))
		memcg = NULL;
	rcu_read_unlock();
	return memcg;
}

/*
 * Revocation and the references it cannot take back. A revoke zaps the
 * view's mappings and refuses it every later fault, read, write; what it
 * cannot reach is a reference to a page taken through the view before: a
 * GUP pin, an io_uring fixed buffer, a page put in a pipe by vmsplice(),
 * O_DIRECT in flight. The rule: every page of the revoked window that such
 * a reference holds is replaced in the region by a copy, so the reference
 * points at an orphan afterwards, a page that is no longer the region's:
 * what is read through it is the content at revoke time, what is written
 * through it reaches no one, and it no longer blocks a conversion. Whose
 * reference it is cannot be told, so one taken through another view of the
 * window is detached as well; every view's PTE of a replaced page is zapped
 * and faults the copy in. A write through a pin while this runs may or may
 * not be in the copy; none made after it reaches the region.
 *
 * A reference is what page_count() has beyond the region's own and one per
 * PTE (vm_insert_page() takes both a reference and a mapcount; a zap drops
 * the mapcount first, fork() takes the reference first), so the count errs
 * towards copying a page that a PTE is just coming or going from. Under
 * region->lock for writing: no fault maps a page meanwhile, and the revoked
 * view's own PTEs are gone already, so its party can take no reference any
 * more. A copy is charged to the memory cgroup the page was charged to.
 * -ENOMEM if a copy cannot be made (that cgroup is full, say; copies are
 * allocated without invoking the OOM killer): the pages already replaced
 * stay replaced, and the caller reports that the revoke is not complete.
 */
static int gmem_detach_pins(struct gmem_region *region, pgoff_t first,
			    pgoff_t last)
{
	struct mem_cgroup *memcg, *old_memcg;
	struct page *page, *copy;
	unsigned long index;
	void *old;

	lockdep_assert_held_write(&region->lock);
	xa_for_each_range(&region->pages, index, page, first, last) {
		cond_resched();
		if (xa_is_value(page))		/* GMEM_POISONED */
			continue;
		if (PageHWPoison(page)) {
			/* Never copied: dropped from the region instead. */
			gmem_find_page(region, index, &page);
			continue;
		}
		if (page_count(page) == 1 + gmem_page_mapcount(page))
			continue;

		/* The copy takes the page's place: it is charged as the page was. */
		memcg = gmem_page_memcg(page);
		old_memcg = set_active_memcg(memcg);
		copy = alloc_page(GMEM_GFP_COPY);
		set_active_memcg(old_memcg);
		mem_cgroup_put(memcg);
		if (!copy)
			return -ENOMEM;
		/* No PTE may go on mapping the page that becomes the orphan. */
		gmem_zap(region, (u64)index << PAGE_SHIFT, PAGE_SIZE);
		copy_highpage(copy, page);
		/* Replacing a present entry allocates nothing. */
		old = xa_store(&region->pages, index, copy, GFP_KERNEL);
		if (WARN_ON_ONCE(old != page)) {
			__free_page(copy);
			return xa_is_err(old) ? xa_err(old) : -EIO;
		}
		put_page(page);		/* the pinners keep their references */
	}
	return 0;
}

/* -> revoked, and its pins detached; under region->lock for writing. */
int gmem_revoke(struct gmem_region *region, struct gmem_view *view)
{
	pgoff_t first = view->offset >> PAGE_SHIFT;
	pgoff_t last = first + (view->length >> PAGE_SHIFT) - 1;
	int r;

	if (view->state != GMEM_VIEW_STATE_REVOKED) {
		view->state = GMEM_VIEW_STATE_REVOKED;
		gmem_zap_view(view, view->offset, view->length);
	}
	if (view->detached)
		return 0;
	r = gmem_detach_pins(region, first, last);
	if (!r)
		view->detached = true;
	return r;
}

/* ---- fallocate ---------------------------------------------------------- */

static long gmem_punch(struct gmem_region *region, struct gmem_view *view,
		       u64 offset, u64 length)
{
	long r = 0;

	down_write(&region->lock);
	r = gmem_usable(region, view);
	if (!r) {
		gmem_zap(region, offset, length);
		gmem_free_pages(region, offset >> PAGE_SHIFT,
				((offset + length) >> PAGE_SHIFT) - 1);
	}
	up_write(&region->lock);
	return r;
}

static long gmem_allocate(struct gmem_region *region, struct gmem_view *view,
			  u64 offset, u64 length)
{
	pgoff_t index = offset >> PAGE_SHIFT;
	pgoff_t end = (offset + length) >> PAGE_SHIFT;
	struct page *page;
	long r = 0;

	while (index < end) {
		pgoff_t batch_end = min_t(pgoff_t, end, index + GMEM_ALLOC_BATCH);

		if (signal_pending(current))
			return -EINTR;

		down_read(&region->lock);
		r = gmem_usable(region, view);
		for (; !r && index < batch_end; index++)
			r = gmem_get_page(region, index, NULL, &page);
		up_read(&region->lock);
		if (r)
			return r;
		cond_resched();
	}
	return 0;
}

long gmem_fallocate(struct gmem_region *region, struct gmem_view *view,
			   int mode, loff_t offset, loff_t len)
{
	u64 start = view ? view->offset : 0;
	u64 end = view ? view->offset + view->length : region->size;

	if (mode & ~(FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE))
		return -EOPNOTSUPP;
	if (!(mode & FALLOC_FL_KEEP_SIZE))
		return -EOPNOTSUPP;	/* the size is fixed */
	if (offset < 0 || len <= 0 || !gmem_range_ok(offset, len, start, end))
		return -EINVAL;

	if (mode & FALLOC_FL_PUNCH_HOLE)
		return gmem_punch(region, view, offset, len);
	return gmem_allocate(region, view, offset, len);
}

static void gmem_evict_inode(struct inode *inode)
{
	struct gmem_view *view = NULL;

	if (inode->i_fop == &gmem_view_fops)
		view = inode->i_private;
	truncate_inode_pages_final(&inode->i_data);
	clear_inode(inode);
	if (view)
		gmem_view_free(view);
}

/* ---- inode operations --------------------------------------------------- */

/* Size, mode and owner are fixed: views and regions are not resized. */
static int gmem_setattr(GMEM_IDMAP *idmap,
			struct dentry *dentry, struct iattr *attr)
{
	return -EPERM;
}

const struct inode_operations gmem_iops = {
	.setattr	= gmem_setattr,
};

/* ---- region: create, handle, release ------------------------------------ */

/* A region's hold on the module, see the header comment; nothing else. */
static const struct file_operations gmem_anchor_fops = {
	.owner		= THIS_MODULE,
};

static void gmem_region_release_ref(struct kref *ref)
{
	struct gmem_region *region = container_of(ref, struct gmem_region, ref);
	struct file *anchor = region->anchor;

	WARN_ON(!list_empty(&region->views));
	gmem_free_pages(region, 0, ULONG_MAX);
	xa_destroy(&region->pages);
	mtree_destroy(&region->attrs);
	iput(region->inode);
	kfree(region);
	fput(anchor);	/* last: the module may go once its __fput() runs */
}

void gmem_region_put(struct gmem_region *region)
{
	kref_put(&region->ref, gmem_region_release_ref);
}

/* A new region with one reference, the caller's; not yet in the registry. */
struct gmem_region *gmem_region_new(u64 id, u64 size, u64 flags,
				    const char *name)
{
	struct gmem_region *region;
	struct file *anchor;
	struct inode *inode;
	int r;

	region = kzalloc(sizeof(*region), GFP_KERNEL_ACCOUNT);
	if (!region)
		return ERR_PTR(-ENOMEM);

	/* Takes the module reference (no unload while a region exists). */
	anchor = anon_inode_getfile("[gmem-region]", &gmem_anchor_fops, NULL,
				    O_RDONLY);
	if (IS_ERR(anchor)) {
		r = PTR_ERR(anchor);
		goto err_free_region;
	}

	inode = alloc_anon_inode(gmem_mnt->mnt_sb);
	if (IS_ERR(inode)) {
		r = PTR_ERR(inode);
		goto err_fput_anchor;
	}
	inode->i_mode = S_IFREG | 0600;
	inode->i_op = &gmem_iops;
	inode->i_fop = &gmem_region_fops;
	inode->i_flags |= S_NOATIME;
	i_size_write(inode, size);
	inode->i_private = region;

	kref_init(&region->ref);
	region->anchor = anchor;
	region->creator = current_euid();
	region->id = id;
	region->size = size;
	region->flags = flags;
	strscpy(region->name, name, sizeof(region->name));
	INIT_HLIST_NODE(&region->name_node);
	region->inode = inode;
	init_rwsem(&region->lock);
	/* Index nodes are charged to whoever inserts (GFP_KERNEL_ACCOUNT). */
	xa_init_flags(&region->pages, XA_FLAGS_ACCOUNT);
	mt_init(&region->attrs);
	mutex_init(&region->attrs_lock);
	INIT_LIST_HEAD(&region->conversions);
	spin_lock_init(&region->conversions_lock);
	init_waitqueue_head(&region->conversion_wq);
	INIT_LIST_HEAD(&region->views);
	return region;

err_fput_anchor:
	fput(anchor);
err_free_region:
	kfree(region);
	return ERR_PTR(r);
}

/* A new handle file of @region (which it pins). */
struct file *gmem_region_handle(struct gmem_region *region)
{
	struct file *file;
	char name[32];

	snprintf(name, sizeof(name), "gmem:%llu", region->id);
	ihold(region->inode);
	__module_get(THIS_MODULE);	/* put by __fput() with the f_op */
	file = alloc_file_pseudo(region->inode, gmem_mnt, name, O_RDWR,
				 &gmem_region_fops);
	if (IS_ERR(file)) {
		module_put(THIS_MODULE);
		iput(region->inode);
		return file;
	}
	kref_get(&region->ref);
	file->private_data = region;
	return file;
}

void gmem_region_entry(struct gmem_region *region,
		       struct gmem_region_entry *entry)
{
	memset(entry, 0, sizeof(*entry));
	entry->id = region->id;
	entry->size = region->size;
	entry->flags = region->flags;
	entry->allocated = (u64)atomic_long_read(&region->nr_pages) << PAGE_SHIFT;
	entry->nr_views = READ_ONCE(region->nr_views);
	entry->creator_uid = from_kuid_munged(current_user_ns(), region->creator);
	strscpy(entry->name, region->name, sizeof(entry->name));
}

/* ---- the pseudo filesystem ---------------------------------------------- */

static const struct super_operations gmem_super_ops = {
	.statfs		= simple_statfs,
	.evict_inode	= gmem_evict_inode,
};

static int gmem_init_fs_context(struct fs_context *fc)
{
	struct pseudo_fs_context *ctx;

	ctx = init_pseudo(fc, GMEM_MAGIC);
	if (!ctx)
		return -ENOMEM;
	ctx->ops = &gmem_super_ops;
	fc->s_iflags |= SB_I_NOEXEC | SB_I_NODEV;
	return 0;
}

/* No .owner: the internal mount must not pin the module. */
static struct file_system_type gmem_fs_type = {
	.name		 = "gmemfs",
	.init_fs_context = gmem_init_fs_context,
	.kill_sb	 = kill_anon_super,
};

int gmem_fs_init(void)
{
	gmem_mnt = kern_mount(&gmem_fs_type);
	return PTR_ERR_OR_ZERO(gmem_mnt);
}

void gmem_fs_exit(void)
{
	kern_unmount(gmem_mnt);
}
