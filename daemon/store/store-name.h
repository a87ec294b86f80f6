/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * store-name.h — the names of gmemd's entries in the service manager's fd
 * store. Each entry's FDNAME carries the (immutable) description of one
 * object, fields separated by '/', which names cannot contain:
 *
 *   region/ID/BACKEND/PAGE_SIZE/CREATOR/0/NAME/OWNER   master memfd
 *   vm/ID/UID|-/CREATOR/L|N/NAME                   leader pidfd (L) or a record memfd (N)
 *   view/ID/REGION_ID/VM_ID/ro|rw/OFFSET/LENGTH/ALLOCATE/CREATOR   custody file (a record
 *                                                  where views are the master file, secret)
 *   pending/ID                                     record, while view ID is pending
 *   revoked/ID/REGION_ID/VM_ID/ro|rw/OFFSET/LENGTH/ALLOCATE/CREATOR   record
 *   migration/ID/SOURCE_VM_ID/TARGET_VM_ID         record, while prepared
 *
 * Numbers are plain decimal: digits only, no sign, no suffix, at most
 * 2^64 - 1. Every ID is an object's id and never 0. BACKEND is a backend's
 * wire name (memfd, hugetlb, secret, kmod, guest_memfd); PAGE_SIZE a power of two; CREATOR a
 * uid up to 4294967295, UID one up to 4294967294 ((uid_t) -1 is no user) or
 * '-' for none; ALLOCATE is 0 or 1 (any other number reads as 1); a region's
 * sixth field is written 0 and any number is read and ignored (it held a
 * "persistent" flag that never had an effect, and was removed); L marks a VM whose leader is watched, and is written L.PID.START
 * when the leader's pid and start time (clock ticks after boot, as
 * /proc/PID/stat has it, both > 0) are known, so that a restore without its
 * pidfd (the kernel's ledger) finds the same process again and no other. NAME is a region or VM name
 * ([A-Za-z0-9_.-]{1,64}), OWNER a VM name or empty.
 *
 * store_name_format() writes the one canonical spelling of a description,
 * which is what gmemd stores; store_name_parse() reads it back. A name that
 * parses formats back to itself, but for how its numbers are spelled: a
 * zero-padded number ("007") or a flag other than 0 and 1 is accepted and
 * written canonically.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "parse.h"
#include "wire.h"

/*
 * Bytes for any name this codec writes, with its NUL: the longest is 202
 * characters (a region's), within the 255 systemd allows an FDNAME.
 */
#define STORE_NAME_MAX 256

typedef enum StoreNameKind {
        STORE_NAME_REGION,
        STORE_NAME_VM,
        STORE_NAME_VIEW,
        STORE_NAME_REVOKED,
        STORE_NAME_PENDING,
        STORE_NAME_MIGRATION,
        _STORE_NAME_KIND_MAX,
        _STORE_NAME_KIND_INVALID = -EINVAL,
} StoreNameKind;

/*
 * One entry's name, typed. kind says which member of the union is valid;
 * STORE_NAME_VIEW and STORE_NAME_REVOKED both use view. A StoreName owns its
 * strings (they are arrays inside it), so it can be copied and kept without
 * the string it was parsed from.
 */
typedef struct StoreName {
        StoreNameKind kind;
        union {
                struct {
                        uint64_t id;
                        BackendType backend;
                        uint64_t page_size;
                        uid_t creator;
                        char name[GMEM_NAME_MAX + 1];
                        char owner[GMEM_NAME_MAX + 1];  /* "" for none */
                } region;
                struct {
                        uint64_t id;
                        bool has_uid;
                        uid_t uid;                      /* if has_uid; 0 otherwise */
                        uid_t creator;
                        bool leader;
                        uint32_t leader_pid;            /* 0: not said */
                        uint64_t leader_start;          /* 0: not said */
                        char name[GMEM_NAME_MAX + 1];
                } vm;
                struct {
                        uint64_t id;
                        uint64_t region_id;
                        uint64_t vm_id;
                        ViewAccess access;
                        uint64_t offset;
                        uint64_t length;
                        bool allocate;
                        uid_t creator;
                } view;
                struct {
                        uint64_t view_id;
                } pending;
                struct {
                        uint64_t id;
                        uint64_t source_vm_id;
                        uint64_t target_vm_id;
                } migration;
        };
} StoreName;

const char *store_name_kind_to_string(StoreNameKind k) _pure_;
StoreNameKind store_name_kind_from_string(const char *s) _pure_;

/*
 * The kind a name claims by its first field, whether or not the rest of it
 * parses; _STORE_NAME_KIND_INVALID if it claims none.
 */
StoreNameKind store_name_kind_of(const char *s) _pure_;

/*
 * Writes n's name into buf (size bytes, STORE_NAME_MAX always suffice).
 * -EINVAL if n describes nothing this scheme can hold (a kind out of range,
 * an id of 0, an invalid name, ...); -ENAMETOOLONG if buf is too small.
 * buf is untouched on failure.
 */
int store_name_format(const StoreName *n, char *buf, size_t size);

/* Parses an entry's name; -EINVAL for anything malformed, *ret untouched then. */
int store_name_parse(const char *s, StoreName *ret);

/* Whether a and b describe the same entry: the fields of their kind, strings by content. */
bool store_name_equal(const StoreName *a, const StoreName *b) _pure_;
