/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * backend-util.h — helpers the backends share: page sizes, the kernel's
 * huge page pools, inode identity checks, allocated-bytes accounting.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "backend.h"

uint64_t backend_system_page_size(void);
/* BackendOps.page_size of backends that use the system page size only: any requested size is refused. */
int backend_page_size_system(const char *backend, uint64_t requested, uint64_t *ret, GmemError *e);
/* The kernel's default huge page size (Hugepagesize in /proc/meminfo), bytes. */
int backend_hugepage_default_size(uint64_t *ret);
/* nr_hugepages and free_hugepages minus resv_hugepages of a pool; -ENOENT if no such pool. */
int backend_hugepage_counts(uint64_t page_size, uint64_t *ret_total, uint64_t *ret_free);
/* What /proc/self/fd/FD links to ("/memfd:gmem:r (deleted)", "anon_inode:[pidfd]", ...). */
int backend_fd_link(int fd, char *buf, size_t size);
/*
 * A new open file of fd's inode, through gmemd's own fd table in procfs
 * (O_CLOEXEC and O_NOCTTY added to flags); a new fd or a negative errno.
 * *ret_checked says whether it is the same inode by construction (the table
 * was opened and checked by backend_reopen_init()); if false, it was
 * opened through whatever /proc is now, and the caller checks the inode.
 */
int backend_reopen(int fd, int flags, bool *ret_checked);
/* Opens gmemd's fd table for backend_reopen(): once, at start, after privileges are dropped. */
int backend_reopen_init(void);
void backend_reopen_done(void);
/*
 * BackendOps.adopt_view of backends whose views are files of the region's
 * own inode: fd must be one, opened with spec's access.
 */
int backend_adopt_view_same_inode(const BackendRegion *br, int fd, const BackendViewSpec *spec, BackendView *ret,
                                  GmemError *e);
/* 0 if both fds refer to the same inode, -EXDEV otherwise. */
int backend_check_same_inode(int a, int b);
/* Remembers br's inode, so that backend_check_view_inode() needs one fstat(), of the view, not two. */
void backend_region_note_inode(BackendRegion *br);
/* 0 if fd is a file of br's inode, -EXDEV if not. */
int backend_check_view_inode(const BackendRegion *br, int fd);
/* BackendOps.info of backends whose inode counts its blocks and has no private memory. */
int backend_info_from_blocks(const BackendRegion *br, BackendRegionInfo *ret);
/*
 * BackendOps.info of backends whose inode keeps no block count (secret,
 * guest_memfd) but can be mapped: the pages in the file's page cache.
 */
int backend_info_from_mincore(const BackendRegion *br, BackendRegionInfo *ret);
/* BackendOps.get_attributes of backends without private memory: every page is shared. */
int backend_get_attributes_shared(const BackendRegion *br, uint64_t offset, uint64_t length, MemoryAttribute *ret,
                                  uint64_t *ret_length, GmemError *e);
