/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * gmem: guest-memory regions with per-file views, the interface of
 * /dev/gmem (gmem.ko).
 *
 * A *region* is memory that lives in the kernel until it is destroyed; the
 * file descriptors that name it are:
 *
 *  - the /dev/gmem device fd: create, open (by id or name) and list regions;
 *  - a region *handle* fd (the owner's): new views, activate and revoke views,
 *    memory attributes, info, destroy, and fallocate() over the whole region;
 *  - a *view* fd: one user's window onto the region, with its own rights.
 *    read()/write()/pread()/pwrite()/mmap(MAP_SHARED)/fallocate() work within
 *    the view's rights and window. File offsets are region offsets: a view of
 *    window [offset, offset + length) accepts offsets only in that window,
 *    and its st_size (and SEEK_END) is offset + length.
 *
 * Every ioctl struct is made of __u64 fields (and a name buffer); reserved
 * fields must be zero and unknown flag bits are refused with EINVAL, so
 * fields and flags can be given meaning later. GMEM_GET_FEATURES tells which
 * flags and attributes this module accepts. Every fd returned is O_CLOEXEC.
 *
 * Sizes, offsets and lengths are multiples of the page size reported by
 * GMEM_GET_FEATURES. Error numbers of note:
 *   EINVAL  malformed request (flags, reserved fields, alignment, range)
 *   EIO     the view was revoked, or the region destroyed
 *   EAGAIN  the view is pending (not yet activated)
 *   EACCES  the view lacks the right, or the page is private
 *   EBUSY   a page of the range is pinned, the conversion was not made
 *   ENOMEM  (GMEM_REGION_REVOKE_VIEW) the view is revoked, but not every
 *           pinned page could be replaced by a copy: some pin may still
 *           reach the region; revoke again to finish
 *   EEXIST  a region of that name exists; ENOENT no such region
 */
#ifndef _UAPI_LINUX_GMEM_H
#define _UAPI_LINUX_GMEM_H

#include <linux/ioctl.h>
#include <linux/types.h>

#define GMEM_API_VERSION	1

/* Region names: [A-Za-z0-9_.-]{1,64}, NUL-terminated, rest of the buffer zero. */
#define GMEM_NAME_MAX		64
#define GMEM_NAME_SIZE		72

/* ---- /dev/gmem ---------------------------------------------------------- */

/* GMEM_GET_FEATURES (out). */
struct gmem_features {
	__u64 api_version;	/* GMEM_API_VERSION */
	__u64 region_flags;	/* flags GMEM_CREATE_REGION accepts */
	__u64 view_flags;	/* flags GMEM_REGION_NEW_VIEW accepts */
	__u64 attributes;	/* attributes GMEM_REGION_SET_ATTRIBUTES accepts */
	__u64 page_size;	/* granule of sizes, offsets and lengths */
	__u64 max_size;		/* largest region size */
	__u64 name_max;		/* GMEM_NAME_MAX */
	__u64 reserved[9];
};

/* Flags of GMEM_CREATE_REGION: none yet (huge pages are not supported). */
#define GMEM_REGION_FLAGS_ALL	0ULL

/*
 * GMEM_CREATE_REGION (in/out): returns the handle fd. The region's memory
 * is charged to the memory cgroup of the calling task and lives until
 * GMEM_REGION_DESTROY, whatever fds are closed. Needs /dev/gmem open for
 * writing.
 */
struct gmem_create_region {
	__u64 size;		/* in: bytes, page multiple, > 0 */
	__u64 flags;		/* in: GMEM_REGION_FLAGS_ALL */
	__u64 id;		/* out: region id, never reused while loaded */
	__u64 reserved[5];
	char name[GMEM_NAME_SIZE];	/* in: optional (all zero: no name) */
};

/*
 * GMEM_OPEN_REGION (in): returns a new handle fd of an existing region,
 * found by id (name all zero) or by name (id 0); not both. Needs /dev/gmem
 * open for writing, and the effective uid that created the region (or
 * CAP_SYS_ADMIN): EACCES otherwise. A handle is the region's owner, so one
 * user of the device cannot take over another's regions.
 */
struct gmem_open_region {
	__u64 id;
	__u64 flags;		/* 0 */
	__u64 reserved[6];
	char name[GMEM_NAME_SIZE];
};

/* One entry of GMEM_LIST_REGIONS. */
struct gmem_region_entry {
	__u64 id;
	__u64 size;
	__u64 flags;
	__u64 allocated;	/* bytes backed by memory */
	__u64 nr_views;		/* views that are kept or have an open file */
	__u64 creator_uid;	/* effective uid of the task that created it */
	__u64 reserved[2];
	char name[GMEM_NAME_SIZE];
};

/* GMEM_LIST_REGIONS (in/out): regions with id >= start_id, by id. */
struct gmem_list_regions {
	__u64 start_id;		/* in */
	__u64 entries;		/* in: pointer to struct gmem_region_entry[nr_entries] */
	__u64 nr_entries;	/* in: room in entries; out: entries filled */
	__u64 next_id;		/* out: start_id to continue with, 0 if no more */
	__u64 flags;		/* 0 */
	__u64 reserved[3];
};

#define GMEM_IOC			0xB9
#define GMEM_GET_FEATURES		_IOR(GMEM_IOC, 0x00, struct gmem_features)
#define GMEM_CREATE_REGION		_IOWR(GMEM_IOC, 0x01, struct gmem_create_region)
#define GMEM_OPEN_REGION		_IOW(GMEM_IOC, 0x02, struct gmem_open_region)
#define GMEM_LIST_REGIONS		_IOWR(GMEM_IOC, 0x03, struct gmem_list_regions)

/* ---- region handle ------------------------------------------------------ */

/* View rights and state flags. */
#define GMEM_VIEW_READ		(1ULL << 0)	/* required */
#define GMEM_VIEW_WRITE		(1ULL << 1)
#define GMEM_VIEW_ALLOCATE	(1ULL << 2)	/* fallocate; needs WRITE */
#define GMEM_VIEW_PENDING	(1ULL << 3)	/* unusable until activated */
#define GMEM_VIEW_KEEP		(1ULL << 4)	/* the region keeps it, see below */
#define GMEM_VIEW_FLAGS_ALL	(GMEM_VIEW_READ | GMEM_VIEW_WRITE | \
				 GMEM_VIEW_ALLOCATE | GMEM_VIEW_PENDING | \
				 GMEM_VIEW_KEEP)

/* Bytes a view's label may have. */
#define GMEM_LABEL_MAX		256

/*
 * GMEM_REGION_NEW_VIEW (in/out): returns the view fd, opened O_RDWR if the
 * view may write, else O_RDONLY. The window must lie inside the region.
 *
 * A view goes away with its last file, unless it is made with
 * GMEM_VIEW_KEEP: then the region keeps it (in GMEM_REGION_INFO, open again
 * with GMEM_REGION_OPEN_VIEW) with no file open, until it is revoked or the
 * region destroyed. That is how a broker's views outlive the broker.
 *
 * label/label_len: optional bytes (at most GMEM_LABEL_MAX, any content)
 * the view carries for the region's owner, who reads them back with
 * GMEM_REGION_VIEW_LABEL; the module does not interpret them. A view fd
 * does not show them.
 */
struct gmem_new_view {
	__u64 flags;		/* in: GMEM_VIEW_* */
	__u64 offset;		/* in: window start, page multiple */
	__u64 length;		/* in: window length, page multiple, > 0 */
	__u64 id;		/* out: view id, unique within the region */
	__u64 label;		/* in: pointer to label_len bytes, or 0 */
	__u64 label_len;	/* in: 0..GMEM_LABEL_MAX */
	__u64 reserved[2];
};

/* How struct gmem_view_op names its view. */
#define GMEM_VIEW_OP_FD		(1ULL << 0)	/* view is a view fd, else a view id */

/*
 * GMEM_REGION_ACTIVATE_VIEW: pending -> active (active: no-op; revoked: EIO).
 * GMEM_REGION_REVOKE_VIEW: -> revoked, at once: every mapping of the view is
 * zapped (other views keep theirs), later faults get SIGBUS,
 * read/write/fallocate/mmap/re-open fail with EIO, and a read or write in
 * progress either ends before the revoke returns or fails with EIO.
 *
 * References to the view's pages taken before the revoke (GUP pins, io_uring
 * fixed buffers, pages in a pipe from vmsplice(), O_DIRECT in flight) cannot
 * be taken back; instead every page of the view's window that such a
 * reference holds is replaced in the region by a copy. The old page is then
 * an orphan: reads through the reference see the content at revoke time,
 * writes through it no longer reach the region, and it no longer makes a
 * conversion fail with EBUSY. The owner of a reference cannot be told, so a
 * reference taken through another view of those pages is detached as well
 * (that view's mappings fault the copy in); a view whose party must keep
 * its pins coherent should take them after the revoke of another view over
 * the same pages. If a copy cannot be allocated the revoke fails with ENOMEM:
 * the view is revoked all the same (no new access), but some reference may
 * still reach the region; revoking again finishes the job. Once it has
 * succeeded, revoking again is a no-op.
 *
 * A kept view (GMEM_VIEW_KEEP) is let go once its revoke succeeded: it
 * lasts as long as files of it are open, revoked.
 * GMEM_REGION_OPEN_VIEW: a new file of a view that is not revoked (pending
 * or active), with the view's rights (O_RDWR if it may write); returns the
 * fd. By id only (GMEM_VIEW_OP_FD: EINVAL).
 */
struct gmem_view_op {
	__u64 flags;		/* GMEM_VIEW_OP_FD or 0 */
	__u64 view;		/* view id, or fd with GMEM_VIEW_OP_FD */
	__u64 reserved[2];
};

/* View states. */
#define GMEM_VIEW_STATE_ACTIVE	1
#define GMEM_VIEW_STATE_PENDING	2
#define GMEM_VIEW_STATE_REVOKED	3

/* A view as GMEM_REGION_INFO and GMEM_VIEW_INFO report it. */
struct gmem_view_info {
	__u64 id;
	__u64 region_id;
	__u64 flags;		/* rights: GMEM_VIEW_READ | _WRITE | _ALLOCATE, and
				 * GMEM_VIEW_KEEP while the region keeps it */
	__u64 offset;
	__u64 length;
	__u64 state;		/* GMEM_VIEW_STATE_* */
	__u64 label_len;	/* bytes of its label (0 in GMEM_VIEW_INFO) */
	__u64 reserved[1];
};

/*
 * GMEM_REGION_VIEW_LABEL (in/out): copies view id's label to label (room for
 * label_len bytes) and sets label_len to its length; ERANGE (label_len set)
 * if it does not fit. Any view still in the region, revoked ones too.
 */
struct gmem_view_label {
	__u64 id;		/* in: view id */
	__u64 flags;		/* 0 */
	__u64 label;		/* in: pointer to label_len bytes */
	__u64 label_len;	/* in: room; out: the label's length */
	__u64 reserved[4];
};

/* Region states. */
#define GMEM_REGION_STATE_LIVE		1
#define GMEM_REGION_STATE_DESTROYED	2

/*
 * GMEM_REGION_INFO (in/out). views/nr_views_max are in; everything else is
 * out (ignored on input) except reserved, which must be zero.
 */
struct gmem_region_info {
	__u64 id;
	__u64 size;
	__u64 flags;
	__u64 allocated;	/* bytes backed by memory */
	__u64 nr_views;		/* views that are kept or have an open file */
	__u64 state;		/* GMEM_REGION_STATE_* */
	__u64 views;		/* in: pointer to struct gmem_view_info[nr_views_max], or 0 */
	__u64 nr_views_max;	/* in: room in views; out: entries filled */
	__u64 start_view_id;	/* in: report views from this id on (ids grow) */
	__u64 creator_uid;	/* out: effective uid of the task that created it */
	__u64 reserved[2];
	char name[GMEM_NAME_SIZE];
};

/* Memory attributes. */
#define GMEM_ATTR_PRIVATE	(1ULL << 0)	/* not faultable, not readable by the host */
#define GMEM_ATTRS_ALL		GMEM_ATTR_PRIVATE

/*
 * GMEM_REGION_SET_ATTRIBUTES (in): set the attributes of a page range, in
 * place (content is kept both ways). Shared -> private zaps every mapping of
 * the range first; if a page of it is pinned (GUP, O_DIRECT, vmsplice, an
 * io_uring fixed buffer, a read/write copying that page at that moment) it
 * fails with EBUSY and changes nothing. While it runs, faults, reads and
 * writes in the range wait; the rest of the region is not held up. A fatal
 * signal stops it (EINTR, nothing changed).
 *
 * GMEM_REGION_GET_ATTRIBUTES (in/out), also on a view fd (within its window):
 * returns the attributes of the page at offset, and in length the length of
 * the run of pages from offset, at most length, with those same attributes.
 */
struct gmem_attributes {
	__u64 offset;
	__u64 length;
	__u64 attributes;	/* SET: in; GET: must be 0 in, out */
	__u64 flags;		/* 0 */
	__u64 reserved[4];
};

/*
 * GMEM_REGION_DESTROY: unlink the region (it can no longer be opened or
 * listed), revoke every view and free its memory. The handles, views and
 * mappings that remain are dead; the bookkeeping goes with the last of them.
 */
struct gmem_destroy {
	__u64 flags;		/* 0 */
	__u64 reserved[3];
};

#define GMEM_REGION_NEW_VIEW		_IOWR(GMEM_IOC, 0x10, struct gmem_new_view)
#define GMEM_REGION_ACTIVATE_VIEW	_IOW(GMEM_IOC, 0x11, struct gmem_view_op)
#define GMEM_REGION_REVOKE_VIEW		_IOW(GMEM_IOC, 0x12, struct gmem_view_op)
#define GMEM_REGION_SET_ATTRIBUTES	_IOW(GMEM_IOC, 0x13, struct gmem_attributes)
#define GMEM_REGION_GET_ATTRIBUTES	_IOWR(GMEM_IOC, 0x14, struct gmem_attributes)
#define GMEM_REGION_INFO		_IOWR(GMEM_IOC, 0x15, struct gmem_region_info)
#define GMEM_REGION_DESTROY		_IOW(GMEM_IOC, 0x16, struct gmem_destroy)
#define GMEM_REGION_OPEN_VIEW		_IOW(GMEM_IOC, 0x17, struct gmem_view_op)
#define GMEM_REGION_VIEW_LABEL		_IOWR(GMEM_IOC, 0x18, struct gmem_view_label)

/* ---- view --------------------------------------------------------------- */

/* GMEM_VIEW_INFO (out): this view's rights, window and state. */
#define GMEM_VIEW_INFO			_IOR(GMEM_IOC, 0x20, struct gmem_view_info)

#endif /* _UAPI_LINUX_GMEM_H */
