/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libgmem.h — the C client library of gmemd, the guest-memory broker.
 *
 * A GmemClient is a connection to the broker (org.gmemd.Broker1): on its
 * direct socket, peer to peer, or on the system bus or a given D-Bus
 * address. The API is the same on each, but signals come only over a bus
 * (gmem_subscribe()). Every call is synchronous and
 * returns 0 (or a documented positive value) on success and a negative errno
 * on failure; outputs are ret_* parameters, written only on success. When
 * the broker refuses a call, the D-Bus error name and message it sent are
 * kept in the client and read with gmem_client_last_error_name() and
 * gmem_client_last_error_message(); the errno returned is the one the error
 * registry maps that name to (-ENOENT for NoSuchRegion, -EBUSY for Busy, …).
 *
 * File descriptors returned by the library (views of a region) are owned by
 * the caller and have O_CLOEXEC set. Strings and arrays returned are owned by
 * the caller and released with the matching *_free() function.
 *
 * A GmemClient is not thread-safe: use one per thread, or lock around it.
 * See libgmem(3).
 */
#ifndef LIBGMEM_H
#define LIBGMEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define GMEM_BUS_NAME "org.gmemd.Broker1"
#define GMEM_MANAGER_PATH "/org/gmemd/Broker1"
/* Where the broker's direct socket is unless $GMEM_DIRECT_SOCKET says otherwise. */
#define GMEM_DIRECT_SOCKET_DEFAULT "/run/gmemd/private"

typedef struct GmemClient GmemClient;

/* Connection */

/*
 * Connects to the broker: on its direct socket (as gmem_connect_direct(NULL))
 * when that connection succeeds, else, silently, on the system bus
 * ($DBUS_SYSTEM_BUS_ADDRESS is honoured). Fails only when the bus fails too
 * (with the bus's error) or memory runs out.
 */
int gmem_connect(GmemClient **ret);
/* Connects to the broker on the bus at a D-Bus address ("unix:path=/run/dbus/system_bus_socket"); never direct. */
int gmem_connect_address(const char *address, GmemClient **ret);
/*
 * Connects to the broker's direct socket at path, peer to peer, and returns
 * once the D-Bus authentication is done. path NULL: $GMEM_DIRECT_SOCKET, or
 * GMEM_DIRECT_SOCKET_DEFAULT when that is unset or empty. -ENOENT: no socket
 * there; -ECONNREFUSED: nobody listens; -EACCES: the caller may not connect;
 * -ENAMETOOLONG: path does not fit a socket address; -ECONNRESET, -EPIPE,
 * -ENOTCONN: the broker hung up (the caller is over its connection limits).
 */
int gmem_connect_direct(const char *path, GmemClient **ret);
/* 1 if c talks to the broker on its direct socket, 0 on a bus; -EINVAL for NULL. */
int gmem_client_is_direct(const GmemClient *c);
GmemClient *gmem_client_ref(GmemClient *c);
/* Drops a reference; closes the connection with the last one. Accepts NULL, returns NULL. */
GmemClient *gmem_client_unref(GmemClient *c);

/*
 * The D-Bus error name and message of the last failed call on c, or NULL if
 * the last call succeeded. Local argument checks set them too (with the
 * registry's name, e.g. org.gmemd.Broker1.Error.InvalidName, when there is one).
 * Valid until the next call on c.
 */
const char *gmem_client_last_error_name(const GmemClient *c);
const char *gmem_client_last_error_message(const GmemClient *c);

/* Regions */

typedef struct GmemRegionOptions {
        const char *backend;       /* "memfd" (default), "hugetlb", "secret", "kmod"; "guest_memfd" (adopted only);
                                      NULL: the broker's default */
        uint64_t hugepage_size;    /* hugetlb only; 0: the broker's default */
        const char *owner;         /* a registered VM name that may allocate; NULL: none */
        bool populate;             /* pre-fault the whole region at creation */
} GmemRegionOptions;

/* options may be NULL (all defaults). ret_path (the region's object path) may be NULL. */
int gmem_create_region(GmemClient *c, const char *name, uint64_t size,
                       const GmemRegionOptions *options, char **ret_path);
/*
 * Hands a guest_memfd the caller made (KVM_CREATE_GUEST_MEMFD with
 * GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED) to the broker, which
 * keeps it as region name: its memory then outlives the caller and its VM.
 * The broker checks what fd is and takes its size from it. fd stays the
 * caller's (a duplicate is sent). options may be NULL; only backend
 * ("guest_memfd", the default) and owner apply, hugepage_size and populate
 * are -EINVAL. ret_path may be NULL.
 */
int gmem_adopt_region(GmemClient *c, const char *name, int fd, const GmemRegionOptions *options, char **ret_path);
int gmem_destroy_region(GmemClient *c, const char *name);
int gmem_get_region_path(GmemClient *c, const char *name, char **ret_path);

typedef struct GmemRegionInfo {
        char *name;
        uint64_t size;
        char *backend;
        char *owner;               /* "" when there is none */
        char *path;
} GmemRegionInfo;

int gmem_list_regions(GmemClient *c, GmemRegionInfo **ret_regions, size_t *ret_n);
void gmem_region_info_array_free(GmemRegionInfo *regions, size_t n);

/* One VM's view of one region, as the Views properties list them. */
typedef struct GmemViewInfo {
        char *vm;
        char *region;
        char *access;              /* "ro", "rw" */
        char *state;               /* "active", "pending", "revoked" */
} GmemViewInfo;

typedef struct GmemRegionProperties {
        char *name;
        uint64_t id;
        uint64_t size;
        char *backend;
        char *owner;
        uint64_t allocated_bytes;
        GmemViewInfo *views;       /* region is filled in with the region's own name */
        size_t n_views;
        char *path;
} GmemRegionProperties;

int gmem_get_region_properties(GmemClient *c, const char *name, GmemRegionProperties **ret);
GmemRegionProperties *gmem_region_properties_free(GmemRegionProperties *p);

/*
 * Every region the caller may list with its properties, as
 * gmem_get_region_properties() gives them (views only of VMs the caller may
 * see), in one call to the broker, in the order of gmem_list_regions(). A
 * broker without ListRegionsFull is asked region by region instead. A reply
 * that cannot be parsed is -EBADMSG. Free with
 * gmem_region_properties_array_free(). Since LIBGMEM_0.6.
 */
int gmem_list_regions_full(GmemClient *c, GmemRegionProperties **ret_regions, size_t *ret_n);
void gmem_region_properties_array_free(GmemRegionProperties *regions, size_t n);

/* Punches a hole: every view reads zeros in the range afterwards. */
int gmem_discard(GmemClient *c, const char *region, uint64_t offset, uint64_t length);
/* Makes gmemd re-read its policy file; on failure the old policy stays in force. */
int gmem_reload(GmemClient *c);
/* Pre-faults the range. */
int gmem_allocate(GmemClient *c, const char *region, uint64_t offset, uint64_t length);

typedef enum GmemMemoryAttribute {
        GMEM_MEMORY_SHARED,
        GMEM_MEMORY_PRIVATE,
        _GMEM_MEMORY_ATTRIBUTE_MAX,
} GmemMemoryAttribute;

const char *gmem_memory_attribute_to_string(GmemMemoryAttribute a);
int gmem_memory_attribute_from_string(const char *s);   /* the attribute, or -EINVAL */
int gmem_set_memory_attributes(GmemClient *c, const char *region, uint64_t offset, uint64_t length,
                               GmemMemoryAttribute attribute);

/* A run of pages that share one memory attribute. */
typedef struct GmemAttributeRun {
        uint64_t offset;
        uint64_t length;
        GmemMemoryAttribute attribute;
} GmemAttributeRun;

/*
 * The memory attributes of a range of a region, as runs in order (at most
 * 4096: a range with more is -ERANGE, ask for a smaller one). *ret is freed
 * with free(). Since LIBGMEM_0.2.
 */
int gmem_get_memory_attributes(GmemClient *c, const char *region, uint64_t offset, uint64_t length,
                               GmemAttributeRun **ret, size_t *ret_n);

/* VMs */

#define GMEM_UID_INVALID ((uid_t) -1)

/* leader_pid 0: no leader tracked. uid GMEM_UID_INVALID: none. ret_path may be NULL. */
int gmem_register_vm(GmemClient *c, const char *name, pid_t leader_pid, uid_t uid, char **ret_path);
/*
 * Registers a VM whose leader is the process of leader_pidfd, a pidfd the
 * caller opened (pidfd_open(2)) and keeps: unlike a pid, it cannot come to
 * name another process before the broker watches it. -EINVAL if it is not a
 * pidfd of a live process; -EOPNOTSUPP if the broker does not know the
 * option (the broker's error is kept): fall back to gmem_register_vm() with
 * the pid. uid GMEM_UID_INVALID: none. Since LIBGMEM_0.5.
 */
int gmem_register_vm_with_leader_fd(GmemClient *c, const char *name, int leader_pidfd, uid_t uid, char **ret_path);
int gmem_unregister_vm(GmemClient *c, const char *name);
int gmem_get_vm_path(GmemClient *c, const char *name, char **ret_path);

typedef struct GmemVmInfo {
        char *name;
        pid_t leader_pid;          /* 0 when there is none */
        char *path;
} GmemVmInfo;

int gmem_list_vms(GmemClient *c, GmemVmInfo **ret_vms, size_t *ret_n);
void gmem_vm_info_array_free(GmemVmInfo *vms, size_t n);

typedef struct GmemVmProperties {
        char *name;
        pid_t leader_pid;
        uid_t uid;                 /* GMEM_UID_INVALID when the broker reports none */
        GmemViewInfo *views;       /* vm is filled in with the VM's own name */
        size_t n_views;
        char *path;
} GmemVmProperties;

int gmem_get_vm_properties(GmemClient *c, const char *name, GmemVmProperties **ret);
GmemVmProperties *gmem_vm_properties_free(GmemVmProperties *p);

/*
 * Every VM the caller may list with its properties, as
 * gmem_get_vm_properties() gives them, in one call to the broker, in the
 * order of gmem_list_vms(). As gmem_list_regions_full() otherwise. Free with
 * gmem_vm_properties_array_free(). Since LIBGMEM_0.6.
 */
int gmem_list_vms_full(GmemClient *c, GmemVmProperties **ret_vms, size_t *ret_n);
void gmem_vm_properties_array_free(GmemVmProperties *vms, size_t n);

/* Views */

typedef enum GmemAccess {
        GMEM_ACCESS_RO,
        GMEM_ACCESS_RW,
        _GMEM_ACCESS_MAX,
} GmemAccess;

const char *gmem_access_to_string(GmemAccess a);
int gmem_access_from_string(const char *s);   /* the access, or -EINVAL */

/*
 * Gives vm a view of region with the given access and window (length 0: to
 * the end of the region) and returns its file descriptor (O_CLOEXEC, owned
 * by the caller). allocate lets the view punch holes and allocate (rw only).
 * Asking again with the same access and window returns the same view.
 */
int gmem_attach(GmemClient *c, const char *vm, const char *region, GmemAccess access,
                uint64_t offset, uint64_t length, bool allocate, int *ret_fd);
int gmem_detach(GmemClient *c, const char *vm, const char *region);
/* The view's file again, e.g. after a hypervisor restart. */
int gmem_get_fd(GmemClient *c, const char *vm, const char *region, int *ret_fd);

/* Migrations */

typedef struct GmemMigrationFd {
        char *region;
        int fd;                    /* O_CLOEXEC; set it to -1 to keep it from ..._array_free() */
} GmemMigrationFd;

/*
 * Prepares the move of source's views to target: target gets a pending view
 * of every region source has a view of, on the same memory. Returns the
 * migration's object path and the new views' fds.
 */
int gmem_begin_migration(GmemClient *c, const char *source_vm, const char *target_vm,
                         char **ret_migration, GmemMigrationFd **ret_fds, size_t *ret_n_fds);
void gmem_migration_fd_array_free(GmemMigrationFd *fds, size_t n);

/* migration: the object path, or the decimal id ("3"). */
int gmem_commit_migration(GmemClient *c, const char *migration);
int gmem_abort_migration(GmemClient *c, const char *migration);
/* Object path of a migration given as a path or a decimal id; -EINVAL if neither. */
int gmem_migration_path(const char *migration, char **ret_path);

typedef struct GmemMigrationInfo {
        uint64_t id;               /* from the path; 0 if it does not end in a number */
        char *source;
        char *target;
        char *state;               /* "prepared", "committed", "aborted" */
        char *path;
} GmemMigrationInfo;

int gmem_list_migrations(GmemClient *c, GmemMigrationInfo **ret_migrations, size_t *ret_n);
void gmem_migration_info_array_free(GmemMigrationInfo *migrations, size_t n);

/* The broker */

typedef struct GmemManagerProperties {
        char *version;
        char **backends;           /* NULL-terminated */
        char *default_backend;
        uint64_t total_bytes;
        uint64_t allocated_bytes;
        char *persistence;         /* "fd-store", "degraded", "none"; NULL from a broker that does not say */
} GmemManagerProperties;

int gmem_get_manager_properties(GmemClient *c, GmemManagerProperties **ret);
GmemManagerProperties *gmem_manager_properties_free(GmemManagerProperties *p);

/*
 * Every property of the broker's object at path (the manager, a region, a VM
 * or a migration), as NULL-terminated "Name=value" lines in the broker's
 * order: numbers in decimal, booleans yes/no, arrays space-separated, the
 * fields of a structure joined with ':'. Free with gmem_properties_text_free().
 */
int gmem_get_properties_text(GmemClient *c, const char *path, char ***ret);
char **gmem_properties_text_free(char **lines);

/* Events: the broker's signals */

typedef enum GmemEventType {
        GMEM_EVENT_REGION_NEW,
        GMEM_EVENT_REGION_REMOVED,
        GMEM_EVENT_VM_NEW,
        GMEM_EVENT_VM_REMOVED,
        GMEM_EVENT_VIEW_REVOKED,
        GMEM_EVENT_MIGRATION_CHANGED,
        GMEM_EVENT_PROPERTIES_CHANGED,
        GMEM_EVENT_OTHER,                 /* a signal this library version does not know */
        _GMEM_EVENT_TYPE_MAX,
} GmemEventType;

/* Fields that do not apply to a type are NULL. All are valid only during the handler call. */
typedef struct GmemEvent {
        GmemEventType type;
        const char *member;       /* the signal's name: "RegionNew", "PropertiesChanged", … */
        const char *path;         /* the object that sent it */
        const char *name;         /* RegionNew/Removed, VmNew/Removed: the object's name */
        const char *object;       /* RegionNew/Removed, VmNew/Removed, MigrationChanged: its path */
        const char *vm;           /* ViewRevoked */
        const char *region;       /* ViewRevoked */
        const char *state;        /* MigrationChanged */
        const char *interface;    /* PropertiesChanged: the interface whose properties changed */
        const char *properties;   /* PropertiesChanged: "Name=value Name=value …", invalidated ones as "Name" */
} GmemEvent;

const char *gmem_event_type_to_string(GmemEventType t);

/* A negative return from the handler is passed up by gmem_client_process(). */
typedef int (*GmemEventHandler)(GmemClient *c, const GmemEvent *event, void *userdata);

/*
 * Subscribes to every signal the broker sends; the match is in place when
 * this returns, and the broker has been asked (Manager.Subscribe()) for the
 * signals it sends only to subscribers. Signals travel on the bus only: on a
 * direct client the first call opens a second connection, to the system bus,
 * for them. A later call only replaces handler and userdata.
 */
int gmem_subscribe(GmemClient *c, GmemEventHandler handler, void *userdata);

/*
 * For an event loop: the connection's fd, the poll events it waits for. On
 * a direct client that subscribed, the system bus connection the signals
 * come on (the direct one needs no polling: calls wait for their replies).
 */
int gmem_client_get_fd(GmemClient *c);
int gmem_client_get_events(GmemClient *c);
/* Handles one pending message: > 0 if one was handled (call again), 0 if none was waiting. */
int gmem_client_process(GmemClient *c);
/* Waits for the connection to become ready, at most timeout_usec (UINT64_MAX: forever). */
int gmem_client_wait(GmemClient *c, uint64_t timeout_usec);

#ifdef __cplusplus
}
#endif

#endif
