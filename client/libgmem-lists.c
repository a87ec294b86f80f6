/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libgmem-lists.c — every region or VM with its properties, in one round trip.
 *
 * gmem_list_regions() and gmem_list_vms() give the columns of ListRegions
 * and ListVms; a listing that also shows allocation, uid and views used to
 * ask each object's properties after that, two more calls per object, which
 * at 20,000 regions took seconds. The broker's ListRegionsFull and
 * ListVmsFull answer all of it in one reply, which is read here into the
 * property structures gmem_get_region_properties() and
 * gmem_get_vm_properties() fill. A broker from before those methods answers
 * UnknownMethod; then the old way is taken (the list, then each object's
 * properties; an object gone in between is left out), so that the caller
 * sees the same result from either broker.
 */
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "array.h"
#include "libgmem-internal.h"

#define REGION_ROW "sttssta(sss)o"
#define VM_ROW "suua(sss)o"

static void region_properties_clear(GmemRegionProperties *p) {
        free(p->name);
        free(p->backend);
        free(p->owner);
        gmem_view_info_array_free(p->views, p->n_views);
        free(p->path);
        *p = (GmemRegionProperties) {};
}

void gmem_region_properties_array_free(GmemRegionProperties *regions, size_t n) {
        if (!regions)
                return;
        for (size_t i = 0; i < n; i++)
                region_properties_clear(&regions[i]);
        free(regions);
}

static void vm_properties_clear(GmemVmProperties *p) {
        free(p->name);
        gmem_view_info_array_free(p->views, p->n_views);
        free(p->path);
        *p = (GmemVmProperties) {};
}

void gmem_vm_properties_array_free(GmemVmProperties *vms, size_t n) {
        if (!vms)
                return;
        for (size_t i = 0; i < n; i++)
                vm_properties_clear(&vms[i]);
        free(vms);
}

/* Whether the last call failed because the broker does not have the method (a broker from before it). */
static bool broker_lacks_method(const GmemClient *c) {
        return c->error_name && streq(c->error_name, SD_BUS_ERROR_UNKNOWN_METHOD);
}

/* One entry of ListRegionsFull into *p (zeroed); on failure *p holds what was read, for the caller to clear. */
static int read_region_row(sd_bus_message *m, GmemRegionProperties *p) {
        const char *name, *backend, *owner, *path;
        int r;

        r = sd_bus_message_enter_container(m, 'r', REGION_ROW);
        if (r <= 0)
                return r;
        /* Field by field: sd_bus_message_read() parses its format string anew for every row. */
        r = sd_bus_message_read_basic(m, 's', &name);
        if (r > 0)
                r = sd_bus_message_read_basic(m, 't', &p->id);
        if (r > 0)
                r = sd_bus_message_read_basic(m, 't', &p->size);
        if (r > 0)
                r = sd_bus_message_read_basic(m, 's', &backend);
        if (r > 0)
                r = sd_bus_message_read_basic(m, 's', &owner);
        if (r > 0)
                r = sd_bus_message_read_basic(m, 't', &p->allocated_bytes);
        if (r == 0)
                r = -EBADMSG;
        if (r < 0)
                return r;
        p->name = strdup(name);
        p->backend = strdup(backend);
        p->owner = strdup(owner);
        if (!p->name || !p->backend || !p->owner)
                return -ENOMEM;
        r = gmem_read_views(m, name, false, &p->views, &p->n_views);
        if (r < 0)
                return r;
        r = sd_bus_message_read(m, "o", &path);
        if (r < 0)
                return r;
        p->path = strdup(path);
        if (!p->path)
                return -ENOMEM;
        r = sd_bus_message_exit_container(m);
        return r < 0 ? r : 1;
}

static int read_vm_row(sd_bus_message *m, GmemVmProperties *p) {
        const char *name, *path;
        uint32_t leader, uid;
        int r;

        r = sd_bus_message_enter_container(m, 'r', VM_ROW);
        if (r <= 0)
                return r;
        r = sd_bus_message_read(m, "suu", &name, &leader, &uid);
        if (r < 0)
                return r;
        p->leader_pid = (pid_t) leader;
        p->uid = (uid_t) uid;     /* UINT32_MAX, GMEM_UID_INVALID, when there is none */
        p->name = strdup(name);
        if (!p->name)
                return -ENOMEM;
        r = gmem_read_views(m, name, true, &p->views, &p->n_views);
        if (r < 0)
                return r;
        r = sd_bus_message_read_basic(m, 'o', &path);
        if (r == 0)
                r = -EBADMSG;
        if (r < 0)
                return r;
        p->path = strdup(path);
        if (!p->path)
                return -ENOMEM;
        r = sd_bus_message_exit_container(m);
        return r < 0 ? r : 1;
}

/*
 * Reads an array of rows of element_size bytes with read_row into a new
 * array; clear empties one row. -ENOMEM is passed up as it is; any other
 * failure is a reply that cannot be parsed: -EBADMSG, with what kept in c
 * as the message.
 */
static int read_rows(GmemClient *c, sd_bus_message *m, const char *row, size_t element_size,
                     int (*read_row)(sd_bus_message *m, void *p), void (*clear)(void *p), const char *what,
                     void **ret, size_t *ret_n) {
        char *rows = NULL;
        size_t n = 0, allocated = 0;
        int r;

        r = sd_bus_message_enter_container(m, 'a', row);
        while (r >= 0) {
                void *p;

                r = grow_array((void **) &rows, &allocated, n + 1, element_size);
                if (r < 0)
                        break;
                p = rows + n * element_size;
                memset(p, 0, element_size);
                r = read_row(m, p);
                if (r <= 0) {
                        clear(p);
                        break;
                }
                n++;
        }
        if (r >= 0)
                r = sd_bus_message_exit_container(m);
        if (r < 0) {
                for (size_t i = 0; i < n; i++)
                        clear(rows + i * element_size);
                free(rows);
                return r == -ENOMEM ? r : gmem_client_set_error(c, EBADMSG, NULL, what);
        }
        *ret = rows;
        *ret_n = n;
        return 0;
}

static int read_region_row_cb(sd_bus_message *m, void *p) {
        return read_region_row(m, p);
}

static void region_clear_cb(void *p) {
        region_properties_clear(p);
}

static int read_vm_row_cb(sd_bus_message *m, void *p) {
        return read_vm_row(m, p);
}

static void vm_clear_cb(void *p) {
        vm_properties_clear(p);
}

/* For a broker without ListRegionsFull: ListRegions, then each region's properties. */
static int list_regions_one_by_one(GmemClient *c, GmemRegionProperties **ret, size_t *ret_n) {
        GmemRegionProperties *all = NULL;
        GmemRegionInfo *regions = NULL;
        size_t n = 0, k = 0;
        int r;

        r = gmem_list_regions(c, &regions, &n);
        if (r < 0)
                return r;
        if (n > 0) {
                all = calloc(n, sizeof(*all));
                if (!all) {
                        gmem_region_info_array_free(regions, n);
                        return -ENOMEM;
                }
        }
        for (size_t i = 0; i < n; i++) {
                GmemRegionProperties *p = NULL;

                r = gmem_get_region_properties(c, regions[i].name, &p);
                if (r == -ENOENT)       /* destroyed since the list was made */
                        continue;
                if (r < 0)
                        break;
                all[k++] = *p;
                free(p);
        }
        gmem_region_info_array_free(regions, n);
        if (r < 0 && r != -ENOENT) {
                gmem_region_properties_array_free(all, k);
                return r;
        }
        gmem_client_clear_error(c);
        *ret = all;
        *ret_n = k;
        return 0;
}

static int list_vms_one_by_one(GmemClient *c, GmemVmProperties **ret, size_t *ret_n) {
        GmemVmProperties *all = NULL;
        GmemVmInfo *vms = NULL;
        size_t n = 0, k = 0;
        int r;

        r = gmem_list_vms(c, &vms, &n);
        if (r < 0)
                return r;
        if (n > 0) {
                all = calloc(n, sizeof(*all));
                if (!all) {
                        gmem_vm_info_array_free(vms, n);
                        return -ENOMEM;
                }
        }
        for (size_t i = 0; i < n; i++) {
                GmemVmProperties *p = NULL;

                r = gmem_get_vm_properties(c, vms[i].name, &p);
                if (r == -ENOENT)       /* unregistered since the list was made */
                        continue;
                if (r < 0)
                        break;
                all[k++] = *p;
                free(p);
        }
        gmem_vm_info_array_free(vms, n);
        if (r < 0 && r != -ENOENT) {
                gmem_vm_properties_array_free(all, k);
                return r;
        }
        gmem_client_clear_error(c);
        *ret = all;
        *ret_n = k;
        return 0;
}

int gmem_list_regions_full(GmemClient *c, GmemRegionProperties **ret_regions, size_t *ret_n) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        void *rows = NULL;
        size_t n = 0;
        int r;

        if (!c)
                return -EINVAL;
        gmem_client_clear_error(c);
        if (!ret_regions || !ret_n)
                return gmem_client_invalid_argument(c, "No place to return the list");

        r = gmem_call_manager(c, "ListRegionsFull", &reply, NULL);
        if (r < 0 && broker_lacks_method(c))
                return list_regions_one_by_one(c, ret_regions, ret_n);
        if (r < 0)
                return r;
        r = read_rows(c, reply, "(" REGION_ROW ")", sizeof(GmemRegionProperties), read_region_row_cb,
                      region_clear_cb, "Failed to parse the reply to ListRegionsFull", &rows, &n);
        if (r < 0)
                return r;
        *ret_regions = rows;
        *ret_n = n;
        return 0;
}

int gmem_list_vms_full(GmemClient *c, GmemVmProperties **ret_vms, size_t *ret_n) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        void *rows = NULL;
        size_t n = 0;
        int r;

        if (!c)
                return -EINVAL;
        gmem_client_clear_error(c);
        if (!ret_vms || !ret_n)
                return gmem_client_invalid_argument(c, "No place to return the list");

        r = gmem_call_manager(c, "ListVmsFull", &reply, NULL);
        if (r < 0 && broker_lacks_method(c))
                return list_vms_one_by_one(c, ret_vms, ret_n);
        if (r < 0)
                return r;
        r = read_rows(c, reply, "(" VM_ROW ")", sizeof(GmemVmProperties), read_vm_row_cb, vm_clear_cb,
                      "Failed to parse the reply to ListVmsFull", &rows, &n);
        if (r < 0)
                return r;
        *ret_vms = rows;
        *ret_n = n;
        return 0;
}
