// SPDX-License-Identifier: GPL-2.0
/*
 * gmem views: one user's window onto a region, with its own rights.
 *
 * A view is an inode of its own on gmem's pseudo filesystem (i_private is
 * the struct gmem_view), so that it has its own mode, size and i_fop and
 * can be re-opened through /proc/<pid>/fd/<n>; every file of it keeps the
 * view inode's mapping as its f_mapping, so the view's i_mmap tree holds the
 * view's mappings and only them. This file is the view's face: fault, mmap,
 * read/write, fallocate, re-open, creation and release. The storage, the
 * invalidation protocol and the object model are in gmem-core.c, the
 * conversion protocol in gmem-attr.c.
 */
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/highmem.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/mount.h>
#include <linux/pagemap.h>
#include <linux/pgtable.h>
#include <linux/sched/signal.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/uio.h>

#include "gmem-compat.h"
#include "gmem-internal.h"

/* ---- fault, vm_ops, mmap ------------------------------------------------ */

/*
 * A read fault on a hole of a mapping that cannot be written: the zero page,
 * as a special PTE (no reference, no rmap). Under region->lock for reading;
 * see gmem-core.c on how it is replaced when the page is allocated.
 */
static vm_fault_t gmem_fault_zero(struct vm_fault *vmf,
				  struct gmem_region *region, pgoff_t index)
{
	unsigned long address = vmf->address & PAGE_MASK;
	vm_fault_t ret;

	if (!READ_ONCE(region->zero_mapped))
		WRITE_ONCE(region->zero_mapped, true);
	smp_mb();	/* zero_mapped before the PTE, pairs with gmem_get_page() */
	ret = gmem_vmf_insert_mixed(vmf->vma, address, page_to_pfn(ZERO_PAGE(address)));
	smp_mb();	/* the PTE before looking again */
	if (xa_load(&region->pages, index)) {
		/* Allocated meanwhile, maybe without seeing our PTE. */
		gmem_zap(region, (u64)index << PAGE_SHIFT, PAGE_SIZE);
		return VM_FAULT_NOPAGE;	/* fault again, on the real page */
	}
	return ret;
}

static vm_fault_t gmem_fault(struct vm_fault *vmf)
{
	struct vm_area_struct *vma = vmf->vma;
	struct gmem_view *view = vma->vm_file->private_data;
	struct gmem_region *region = view->region;
	pgoff_t index = vmf->pgoff;
	unsigned long seq;
	struct page *page;
	vm_fault_t ret;
	int r;

	down_read(&region->lock);
retry:
	ret = VM_FAULT_SIGBUS;
	if (gmem_view_usable(view))
		goto out_unlock;
	/* Cannot happen (VM_DONTEXPAND), but the window is the law. */
	if (index < view->offset >> PAGE_SHIFT ||
	    index >= (view->offset + view->length) >> PAGE_SHIFT)
		goto out_unlock;
	/* Becoming private: wait (killed: SIGBUS, or EFAULT in the kernel). */
	if (gmem_converting(region, index, &seq)) {
		if (gmem_wait_conversion(region, seq))
			goto out_unlock;
		goto retry;
	}
	if (gmem_is_private(region, index))
		goto out_unlock;

	/* VM_MAYWRITE: no mprotect() can ever make the PTE writable. */
	if (!(vma->vm_flags & VM_MAYWRITE) &&
	    !xa_load(&region->pages, index)) {
		ret = gmem_fault_zero(vmf, region, index);
	} else {
		/*
		 * No memory (a memory cgroup's limit) is SIGBUS for the
		 * toucher, not VM_FAULT_OOM: pagefault_out_of_memory() would
		 * retry the fault for ever. The same when vmf_insert_page()
		 * cannot get a page table. A page with a memory error is
		 * VM_FAULT_HWPOISON (SIGBUS BUS_MCEERR_AR).
		 */
		r = gmem_get_page(region, index, vmf, &page);
		if (r) {
			if (r == -EHWPOISON)
				ret = VM_FAULT_HWPOISON;
			goto out_unlock;
		}
		/* Under the lock: a revoke or punch cannot slip in between. */
		ret = vmf_insert_page(vma, vmf->address & PAGE_MASK, page);
		if (ret == VM_FAULT_OOM)
			ret = VM_FAULT_SIGBUS;
	}
	if (ret == VM_FAULT_NOPAGE && gmem_conversion_raced(region, index)) {
		gmem_zap(region, (u64)index << PAGE_SHIFT, PAGE_SIZE);
		goto retry;
	}
out_unlock:
	up_read(&region->lock);
	return ret;
}

static const struct vm_operations_struct gmem_vm_ops = {
	.fault = gmem_fault,
};

static int gmem_view_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct gmem_view *view = file->private_data;
	pgoff_t first = view->offset >> PAGE_SHIFT;
	pgoff_t end = (view->offset + view->length) >> PAGE_SHIFT;

	/* VM_MAYSHARE: a read-only MAP_SHARED mapping has no VM_SHARED. */
	if (!(vma->vm_flags & VM_MAYSHARE))
		return -EINVAL;		/* MAP_PRIVATE would copy on write */
	if (vma->vm_pgoff < first || vma->vm_pgoff > end ||
	    vma_pages(vma) > end - vma->vm_pgoff)
		return -EINVAL;
	if (READ_ONCE(view->region->dead) ||
	    READ_ONCE(view->state) == GMEM_VIEW_STATE_REVOKED)
		return -EIO;
	if (!(view->flags & GMEM_VIEW_WRITE)) {
		if (vma->vm_flags & VM_WRITE)
			return -EACCES;
		vm_flags_clear(vma, VM_MAYWRITE);
	}

	/*
	 * PTEs are installed by gmem_fault() itself, see vm_insert_page().
	 * The window is checked here once: mappings cannot grow (mremap).
	 */
	vm_flags_set(vma, VM_MIXEDMAP | VM_DONTEXPAND | VM_DONTDUMP);
	vma->vm_ops = &gmem_vm_ops;
	return 0;
}

/* ---- read, write -------------------------------------------------------- */

/*
 * read() and write() copy under region->lock held for reading, with page
 * faults disabled: a revoke (which takes the lock for writing) waits for a
 * copy in progress, and no copy starts once it has returned. A copy that
 * meets a user buffer that is not mapped stops short; the lock is dropped,
 * the buffer faulted in (which may take long: userfaultfd, a fault on a
 * mapping of this very region, I/O) and the copy retried under the lock,
 * with the view checked again, as mm/filemap.c's generic_perform_write()
 * does. No page reference is held across the lock.
 *
 * A conversion to private does not take the lock for writing, so the copy
 * also keeps it from the page the way a pin would: before it, in a range
 * being converted, they wait; then they take a page reference for the
 * length of the copy and look again (gmem_conversion_raced()): either the
 * conversion sees the reference (EBUSY), or they see the conversion, drop
 * the reference without copying, and wait for it (then EACCES).
 */

/*
 * 0 if @view may be used now at @index, once no conversion to private is in
 * flight there (waited for); under region->lock for reading.
 */
static int gmem_view_usable_at(struct gmem_view *view, pgoff_t index)
{
	int r = gmem_view_usable(view);
	unsigned long seq;

	while (!r && gmem_converting(view->region, index, &seq)) {
		r = gmem_wait_conversion(view->region, seq);
		if (!r)
			r = gmem_view_usable(view);
	}
	return r;
}

/*
 * Take a reference to @page (NULL: a hole) for a copy of @index; false if a
 * conversion to private began meanwhile, and then none is held. Under
 * region->lock for reading.
 */
static bool gmem_copy_begin(struct gmem_region *region, pgoff_t index,
			    struct page *page)
{
	if (page)
		get_page(page);
	if (!gmem_conversion_raced(region, index))
		return true;
	if (page)
		put_page(page);
	return false;
}

/* Up to @n bytes of @page (NULL: a hole) into @to; under region->lock. */
static size_t gmem_copy_to_iter(struct page *page, size_t off, size_t n,
				struct iov_iter *to)
{
	size_t copied;

	pagefault_disable();
	if (page)
		copied = copy_page_to_iter(page, off, n, to);
	else
		copied = iov_iter_zero(n, to);	/* a hole reads as zeros */
	pagefault_enable();
	return copied;
}

static ssize_t gmem_view_read_iter(struct kiocb *iocb, struct iov_iter *to)
{
	struct gmem_view *view = iocb->ki_filp->private_data;
	struct gmem_region *region = view->region;
	u64 end = view->offset + view->length;
	loff_t pos = iocb->ki_pos;
	ssize_t done = 0;
	int r = 0;

	if (pos < view->offset)
		return -EACCES;

	while (iov_iter_count(to) && (u64)pos < end) {
		pgoff_t index = pos >> PAGE_SHIFT;
		size_t off = offset_in_page(pos);
		size_t n = min3(PAGE_SIZE - off, iov_iter_count(to),
				(size_t)(end - pos));
		struct page *page = NULL;
		size_t copied = 0;

		down_read(&region->lock);
		r = gmem_view_usable_at(view, index);
		if (!r && gmem_is_private(region, index))
			r = -EACCES;
		if (!r)
			r = gmem_find_page(region, index, &page);
		if (!r && !gmem_copy_begin(region, index, page)) {
			up_read(&region->lock);
			continue;	/* look again: wait, or EACCES */
		}
		if (!r) {
			copied = gmem_copy_to_iter(page, off, n, to);
			if (page)
				put_page(page);
		}
		up_read(&region->lock);
		if (r)
			break;

		done += copied;
		pos += copied;
		/* Short: fault the rest of the buffer in, unlocked; retry. */
		n -= copied;
		if (n && fault_in_iov_iter_writeable(to, n) == n) {
			r = -EFAULT;
			break;
		}
		if (fatal_signal_pending(current)) {
			r = -EINTR;
			break;
		}
		cond_resched();
	}
	iocb->ki_pos = pos;
	return done ? done : r;
}

static ssize_t gmem_view_write_iter(struct kiocb *iocb, struct iov_iter *from)
{
	struct gmem_view *view = iocb->ki_filp->private_data;
	struct gmem_region *region = view->region;
	u64 end = view->offset + view->length;
	loff_t pos = iocb->ki_pos;
	ssize_t done = 0;
	int r = 0;

	if (!(view->flags & GMEM_VIEW_WRITE))
		return -EACCES;
	if (iocb->ki_flags & IOCB_APPEND)
		return -EINVAL;		/* the size is fixed */
	if (pos < view->offset)
		return -EACCES;
	if ((u64)pos >= end && iov_iter_count(from))
		return -ENOSPC;

	while (iov_iter_count(from) && (u64)pos < end) {
		pgoff_t index = pos >> PAGE_SHIFT;
		size_t off = offset_in_page(pos);
		size_t n = min3(PAGE_SIZE - off, iov_iter_count(from),
				(size_t)(end - pos));
		struct page *page = NULL;
		size_t copied = 0;

		down_read(&region->lock);
		r = gmem_view_usable_at(view, index);
		if (!r && gmem_is_private(region, index))
			r = -EACCES;
		if (!r)
			r = gmem_get_page(region, index, NULL, &page);
		if (!r && !gmem_copy_begin(region, index, page)) {
			up_read(&region->lock);
			continue;	/* look again: wait, or EACCES */
		}
		if (!r) {
			pagefault_disable();
			copied = gmem_copy_page_from_iter_atomic(page, off, n, from);
			pagefault_enable();
			put_page(page);
		}
		up_read(&region->lock);
		if (r)
			break;

		done += copied;
		pos += copied;
		/* Short: fault the rest of the source in, unlocked; retry. */
		n -= copied;
		if (n && fault_in_iov_iter_readable(from, n) == n) {
			r = -EFAULT;
			break;
		}
		if (fatal_signal_pending(current)) {
			r = -EINTR;
			break;
		}
		cond_resched();
	}
	iocb->ki_pos = pos;
	return done ? done : r;
}

/* ---- file_operations ---------------------------------------------------- */

void gmem_view_info_fill(struct gmem_view *view,
				struct gmem_view_info *info)
{
	memset(info, 0, sizeof(*info));
	info->id = view->id;
	info->region_id = view->region->id;
	info->flags = view->flags;
	info->offset = view->offset;
	info->length = view->length;
	info->state = view->region->dead ? GMEM_VIEW_STATE_REVOKED : view->state;
	if (view->kept)
		info->flags |= GMEM_VIEW_KEEP;
	info->label_len = view->label_len;
}

static long gmem_view_ioctl(struct file *file, unsigned int cmd,
			    unsigned long arg)
{
	struct gmem_view *view = file->private_data;
	struct gmem_region *region = view->region;
	void __user *argp = (void __user *)arg;
	struct gmem_view_info info;

	switch (cmd) {
	case GMEM_VIEW_INFO:
		down_read(&region->lock);
		gmem_view_info_fill(view, &info);
		up_read(&region->lock);
		info.label_len = 0;	/* the label is the region owner's */
		return copy_to_user(argp, &info, sizeof(info)) ? -EFAULT : 0;
	case GMEM_REGION_GET_ATTRIBUTES:
		return gmem_ioctl_get_attributes(region, view, argp);
	default:
		return -ENOTTY;
	}
}

static long gmem_view_fallocate(struct file *file, int mode, loff_t offset,
				loff_t len)
{
	struct gmem_view *view = file->private_data;

	if (!(view->flags & GMEM_VIEW_ALLOCATE))
		return -EPERM;
	return gmem_fallocate(view->region, view, mode, offset, len);
}

static loff_t gmem_view_llseek(struct file *file, loff_t offset, int whence)
{
	struct gmem_view *view = file->private_data;

	return fixed_size_llseek(file, offset, whence,
				 view->offset + view->length);
}

/*
 * A re-open through /proc/<pid>/fd/<n>: a new file of the same view, with no
 * more rights than the view has, and none at all once it is revoked.
 */
static int gmem_view_open(struct inode *inode, struct file *file)
{
	struct gmem_view *view = inode->i_private;
	struct gmem_region *region = view->region;
	int r = 0;

	down_read(&region->lock);
	if (region->dead || view->state == GMEM_VIEW_STATE_REVOKED)
		r = -EIO;
	else if ((file->f_mode & FMODE_WRITE) &&
		 !(view->flags & GMEM_VIEW_WRITE))
		r = -EACCES;
	up_read(&region->lock);
	if (r)
		return r;

	file->private_data = view;	/* f_mapping: the view inode's own */
	return 0;
}

const struct file_operations gmem_view_fops = {
	.owner		= THIS_MODULE,
	.open		= gmem_view_open,
	.llseek		= gmem_view_llseek,
	.read_iter	= gmem_view_read_iter,
	.write_iter	= gmem_view_write_iter,
	.mmap		= gmem_view_mmap,
	.fallocate	= gmem_view_fallocate,
	.fsync		= noop_fsync,
	.unlocked_ioctl	= gmem_view_ioctl,
	.compat_ioctl	= compat_ptr_ioctl,
};

/* ---- create, release ---------------------------------------------------- */

/*
 * A new file of @view, with the view's rights; it takes over a reference to
 * view->inode from the caller (kept by the caller on failure).
 */
struct file *gmem_view_open_file(struct gmem_view *view)
{
	bool writable = view->flags & GMEM_VIEW_WRITE;
	struct file *file;
	char name[48];

	snprintf(name, sizeof(name), "gmem:%llu:view%llu", view->region->id,
		 view->id);
	__module_get(THIS_MODULE);	/* put by __fput() with the f_op */
	file = alloc_file_pseudo(view->inode, gmem_mnt, name,
				 writable ? O_RDWR : O_RDONLY, &gmem_view_fops);
	if (IS_ERR(file)) {
		module_put(THIS_MODULE);	/* the caller's file holds it too */
		return file;
	}
	file->f_mode |= FMODE_PREAD | FMODE_PWRITE;
	file->private_data = view;	/* f_mapping: the view inode's own */
	return file;
}

/*
 * A new view of @region as @args says, and its first file. @label (NULL or
 * args->label_len bytes of kmalloc) becomes the view's, also on failure.
 */
struct file *gmem_view_create(struct gmem_region *region,
				     struct gmem_new_view *args, char *label)
{
	bool writable = args->flags & GMEM_VIEW_WRITE;
	struct gmem_view *view;
	struct inode *inode;
	struct file *file;
	int r;

	view = kzalloc(sizeof(*view), GFP_KERNEL_ACCOUNT);
	if (!view) {
		kfree(label);
		return ERR_PTR(-ENOMEM);
	}
	kref_get(&region->ref);
	view->region = region;
	INIT_LIST_HEAD(&view->node);
	view->label = label;
	view->label_len = label ? args->label_len : 0;
	view->flags = args->flags & ~(GMEM_VIEW_PENDING | GMEM_VIEW_KEEP);
	view->offset = args->offset;
	view->length = args->length;
	view->state = (args->flags & GMEM_VIEW_PENDING) ?
		GMEM_VIEW_STATE_PENDING : GMEM_VIEW_STATE_ACTIVE;

	inode = alloc_anon_inode(gmem_mnt->mnt_sb);
	if (IS_ERR(inode)) {
		r = PTR_ERR(inode);
		goto err_put_region;
	}
	/* Anyone who can reach the view may re-open it; gmem_view_open() decides. */
	inode->i_mode = S_IFREG | (writable ? 0666 : 0444);
	inode->i_op = &gmem_iops;
	inode->i_fop = &gmem_view_fops;
	inode->i_flags |= S_NOATIME;
	i_size_write(inode, view->offset + view->length);
	inode->i_private = view;	/* from here on, iput() frees the view */
	view->inode = inode;

	down_write(&region->lock);
	if (region->dead) {
		up_write(&region->lock);
		r = -EIO;
		goto err_iput;
	}
	view->id = ++region->next_view_id;
	list_add_tail(&view->node, &region->views);
	region->nr_views++;
	if (args->flags & GMEM_VIEW_KEEP) {
		ihold(inode);		/* the region's, see gmem_view_let_go() */
		view->kept = true;
	}
	up_write(&region->lock);

	file = gmem_view_open_file(view);
	if (IS_ERR(file)) {
		r = PTR_ERR(file);
		gmem_view_let_go(view);
		goto err_iput;
	}
	args->id = view->id;
	return file;

err_iput:
	/*
	 * The inode owns the view: its eviction (gmem_evict_inode) frees the
	 * view and puts the region, so this path stops short of err_put_region.
	 */
	iput(inode);
	return ERR_PTR(r);

err_put_region:
	/* Before the inode took the view, nothing else holds it. */
	kfree(view->label);
	kfree(view);
	gmem_region_put(region);
	return ERR_PTR(r);
}

void gmem_view_free(struct gmem_view *view)
{
	struct gmem_region *region = view->region;

	down_write(&region->lock);
	if (!list_empty(&view->node)) {
		list_del_init(&view->node);
		region->nr_views--;
	}
	up_write(&region->lock);
	kfree(view->label);
	kfree(view);
	gmem_region_put(region);	/* last: it may be the module's last hold */
}

/*
 * The region stops keeping @view (no-op if it did not): the view lasts as
 * long as its files. Not under region->lock, which the view's eviction
 * takes; the caller holds the region.
 */
void gmem_view_let_go(struct gmem_view *view)
{
	struct gmem_region *region = view->region;
	bool kept;

	down_write(&region->lock);
	kept = view->kept;
	view->kept = false;
	up_write(&region->lock);
	if (kept)
		iput(view->inode);
}
