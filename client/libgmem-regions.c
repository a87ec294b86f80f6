/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libgmem-regions.c — regions: the memory the broker owns.
 *
 * A region is an inode held by the broker under a name; it outlives every VM
 * that maps it. These calls create and destroy regions, list them, read one
 * region's properties (its id, allocation and the views VMs hold of it), and
 * act on a byte range of it: discard (punch a hole that every view sees),
 * allocate (pre-fault) and set memory attributes. Ranges are passed to the
 * broker as given: the broker knows the region's size and alignment and says
 * which limit a bad range breaks.
 */
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "array.h"
#include "libgmem-internal.h"

#define BUS_CHECK(c, r) \
        do { if ((r) < 0) return gmem_client_set_error((c), (r), NULL, "Failed to build a D-Bus message"); } while (0)

/* The region's name and its owner VM's, if any, are names the broker takes. */
static int check_region_names(GmemClient *c, const char *name, const GmemRegionOptions *options) {
        int r;

        r = gmem_client_check_name(c, "region", name);
        if (r < 0)
                return r;
        if (options && options->owner && options->owner[0])
                return gmem_client_check_name(c, "VM", options->owner);
        return 0;
}

/* Sends m, a call of method that answers with a region's object path, and returns that path if asked. */
static int call_for_region_path(GmemClient *c, sd_bus_message *m, const char *method, char **ret_path) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *path;
        int r;

        r = gmem_call(c, m, &reply);
        if (r < 0)
                return r;
        r = sd_bus_message_read(reply, "o", &path);
        if (r < 0)
                return gmem_client_set_error(c, r, NULL, method);
        if (ret_path) {
                *ret_path = strdup(path);
                if (!*ret_path)
                        return -ENOMEM;
        }
        return 0;
}

int gmem_create_region(GmemClient *c, const char *name, uint64_t size,
                       const GmemRegionOptions *options, char **ret_path) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        int r;

        if (!c)
                return -EINVAL;
        gmem_client_clear_error(c);
        r = check_region_names(c, name, options);
        if (r < 0)
                return r;

        r = gmem_new_manager_call(c, "CreateRegion", &m);
        if (r < 0)
                return r;
        r = sd_bus_message_append(m, "st", name, size);
        BUS_CHECK(c, r);
        r = sd_bus_message_open_container(m, 'a', "{sv}");
        BUS_CHECK(c, r);
        if (options) {
                if (options->backend) {
                        r = gmem_append_option(m, "backend", "s", options->backend);
                        BUS_CHECK(c, r);
                }
                if (options->hugepage_size > 0) {
                        r = gmem_append_option(m, "hugepage_size", "t", options->hugepage_size);
                        BUS_CHECK(c, r);
                }
                if (options->owner) {
                        r = gmem_append_option(m, "owner", "s", options->owner);
                        BUS_CHECK(c, r);
                }
                if (options->populate) {
                        r = gmem_append_option(m, "populate", "b", 1);
                        BUS_CHECK(c, r);
                }
        }
        r = sd_bus_message_close_container(m);
        BUS_CHECK(c, r);
        return call_for_region_path(c, m, "Failed to parse the reply to CreateRegion", ret_path);
}

int gmem_adopt_region(GmemClient *c, const char *name, int fd, const GmemRegionOptions *options, char **ret_path) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        int r;

        if (!c)
                return -EINVAL;
        gmem_client_clear_error(c);
        r = check_region_names(c, name, options);
        if (r < 0)
                return r;
        if (fd < 0)
                return gmem_client_invalid_argument(c, "No file descriptor to adopt");
        /* A guest_memfd's size and pages are the hypervisor's: nothing to choose when adopting it. */
        if (options && (options->hugepage_size > 0 || options->populate))
                return gmem_client_invalid_argument(c, "Options hugepage_size and populate do not apply to an "
                                                    "adopted region");

        r = gmem_new_manager_call(c, "AdoptRegion", &m);
        if (r < 0)
                return r;
        /* sd-bus sends a duplicate: the caller keeps fd, and closes it when it likes. */
        r = sd_bus_message_append(m, "sh", name, fd);
        BUS_CHECK(c, r);
        r = sd_bus_message_open_container(m, 'a', "{sv}");
        BUS_CHECK(c, r);
        if (options && options->backend) {
                r = gmem_append_option(m, "backend", "s", options->backend);
                BUS_CHECK(c, r);
        }
        if (options && options->owner) {
                r = gmem_append_option(m, "owner", "s", options->owner);
                BUS_CHECK(c, r);
        }
        r = sd_bus_message_close_container(m);
        BUS_CHECK(c, r);
        return call_for_region_path(c, m, "Failed to parse the reply to AdoptRegion", ret_path);
}

int gmem_destroy_region(GmemClient *c, const char *name) {
        int r;

        if (!c)
                return -EINVAL;
        gmem_client_clear_error(c);
        r = gmem_client_check_name(c, "region", name);
        if (r < 0)
                return r;

        return gmem_call_manager(c, "DestroyRegion", NULL, "s", name);
}

int gmem_get_object_path(GmemClient *c, const char *method, const char *kind, const char *name,
                         char **ret_path) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *path;
        int r;

        if (!c)
                return -EINVAL;
        gmem_client_clear_error(c);
        if (!ret_path)
                return gmem_client_invalid_argument(c, "No place to return the object path");
        r = gmem_client_check_name(c, kind, name);
        if (r < 0)
                return r;

        r = gmem_call_manager(c, method, &reply, "s", name);
        if (r < 0)
                return r;
        r = sd_bus_message_read(reply, "o", &path);
        if (r < 0)
                return gmem_client_set_error(c, r, NULL, "Failed to parse the broker's reply");

        *ret_path = strdup(path);
        return *ret_path ? 0 : -ENOMEM;
}

int gmem_get_region_path(GmemClient *c, const char *name, char **ret_path) {
        return gmem_get_object_path(c, "GetRegion", "region", name, ret_path);
}

void gmem_region_info_array_free(GmemRegionInfo *regions, size_t n) {
        if (!regions)
                return;
        for (size_t i = 0; i < n; i++) {
                free(regions[i].name);
                free(regions[i].backend);
                free(regions[i].owner);
                free(regions[i].path);
        }
        free(regions);
}

int gmem_list_regions(GmemClient *c, GmemRegionInfo **ret_regions, size_t *ret_n) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        GmemRegionInfo *regions = NULL;
        size_t n = 0, allocated = 0;
        const char *name, *backend, *owner, *path;
        uint64_t size;
        int r;

        if (!c)
                return -EINVAL;
        gmem_client_clear_error(c);
        if (!ret_regions || !ret_n)
                return gmem_client_invalid_argument(c, "No place to return the list");

        r = gmem_call_manager(c, "ListRegions", &reply, NULL);
        if (r < 0)
                return r;

        r = sd_bus_message_enter_container(reply, 'a', "(stsso)");
        if (r < 0)
                goto bad_reply;
        while ((r = sd_bus_message_read(reply, "(stsso)", &name, &size, &backend, &owner, &path)) > 0) {
                r = GROW_ARRAY(regions, allocated, n + 1);
                if (r < 0)
                        goto fail;
                regions[n] = (GmemRegionInfo) {
                        .name = strdup(name),
                        .size = size,
                        .backend = strdup(backend),
                        .owner = strdup(owner),
                        .path = strdup(path),
                };
                n++;
                if (!regions[n - 1].name || !regions[n - 1].backend || !regions[n - 1].owner ||
                    !regions[n - 1].path) {
                        r = -ENOMEM;
                        goto fail;
                }
        }
        if (r < 0)
                goto bad_reply;

        *ret_regions = regions;
        *ret_n = n;
        return 0;

bad_reply:
        r = gmem_client_set_error(c, r, NULL, "Failed to parse the reply to ListRegions");
fail:
        gmem_region_info_array_free(regions, n);
        return r;
}

GmemRegionProperties *gmem_region_properties_free(GmemRegionProperties *p) {
        if (!p)
                return NULL;
        free(p->name);
        free(p->backend);
        free(p->owner);
        gmem_view_info_array_free(p->views, p->n_views);
        free(p->path);
        free(p);
        return NULL;
}

DEFINE_TRIVIAL_CLEANUP_FUNC(GmemRegionProperties *, gmem_region_properties_free);

static const GmemProperty region_properties[] = {
        { "Name",           's', offsetof(GmemRegionProperties, name)            },
        { "Id",             't', offsetof(GmemRegionProperties, id)              },
        { "Size",           't', offsetof(GmemRegionProperties, size)            },
        { "Backend",        's', offsetof(GmemRegionProperties, backend)         },
        { "Owner",          's', offsetof(GmemRegionProperties, owner)           },
        { "AllocatedBytes", 't', offsetof(GmemRegionProperties, allocated_bytes) },
        {}
};

static int read_region_views(sd_bus_message *m, const char *key, void *data) {
        GmemRegionProperties *p = data;
        /* The region's own name is filled in later, once Name has surely been read. */
        return gmem_read_views_property(m, key, false, &p->views, &p->n_views);
}

int gmem_get_region_properties(GmemClient *c, const char *name, GmemRegionProperties **ret) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(gmem_region_properties_freep) GmemRegionProperties *p = NULL;
        _cleanup_free_ char *path = NULL;
        int r;

        if (!c)
                return -EINVAL;
        gmem_client_clear_error(c);
        if (!ret)
                return gmem_client_invalid_argument(c, "No place to return the properties");

        r = gmem_get_region_path(c, name, &path);
        if (r < 0)
                return r;
        r = gmem_get_all_properties(c, path, GMEM_REGION_INTERFACE, &reply);
        if (r < 0)
                return r;

        p = calloc(1, sizeof(*p));
        if (!p)
                return -ENOMEM;
        r = gmem_read_properties(reply, region_properties, p, read_region_views);
        if (r < 0)
                return gmem_client_set_error(c, r, NULL, "Failed to parse the region's properties");

        if (!p->name && !(p->name = strdup(name)))
                return -ENOMEM;
        for (size_t i = 0; i < p->n_views; i++) {
                free(p->views[i].region);
                p->views[i].region = strdup(p->name);
                if (!p->views[i].region)
                        return -ENOMEM;
        }
        p->path = TAKE_PTR(path);

        *ret = TAKE_PTR(p);
        return 0;
}

static int call_range(GmemClient *c, const char *method, const char *region, uint64_t offset,
                      uint64_t length, const char *attribute) {
        int r;

        if (!c)
                return -EINVAL;
        gmem_client_clear_error(c);
        r = gmem_client_check_name(c, "region", region);
        if (r < 0)
                return r;

        if (attribute)
                return gmem_call_manager(c, method, NULL, "stts", region, offset, length, attribute);
        return gmem_call_manager(c, method, NULL, "stt", region, offset, length);
}

int gmem_discard(GmemClient *c, const char *region, uint64_t offset, uint64_t length) {
        return call_range(c, "Discard", region, offset, length, NULL);
}

int gmem_allocate(GmemClient *c, const char *region, uint64_t offset, uint64_t length) {
        return call_range(c, "Allocate", region, offset, length, NULL);
}

int gmem_get_memory_attributes(GmemClient *c, const char *region, uint64_t offset, uint64_t length,
                               GmemAttributeRun **ret, size_t *ret_n) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_free_ GmemAttributeRun *runs = NULL;
        size_t n = 0, allocated = 0;
        int r;

        if (!c || !ret || !ret_n)
                return -EINVAL;
        gmem_client_clear_error(c);
        r = gmem_client_check_name(c, "region", region);
        if (r < 0)
                return r;
        r = gmem_call_manager(c, "GetMemoryAttributes", &reply, "stt", region, offset, length);
        if (r < 0)
                return r;
        r = sd_bus_message_enter_container(reply, 'a', "(tts)");
        if (r < 0)
                return gmem_client_set_error(c, r, NULL, "Failed to parse the memory attributes");
        for (;;) {
                uint64_t o, l;
                const char *a;
                int attr;

                r = sd_bus_message_read(reply, "(tts)", &o, &l, &a);
                if (r < 0)
                        return gmem_client_set_error(c, r, NULL, "Failed to parse the memory attributes");
                if (r == 0)
                        break;
                attr = gmem_memory_attribute_from_string(a);
                if (attr < 0)
                        return gmem_client_set_error(c, -EBADMSG, NULL, "The broker answered an unknown attribute");
                r = GROW_ARRAY(runs, allocated, n + 1);
                if (r < 0)
                        return r;
                runs[n++] = (GmemAttributeRun) { .offset = o, .length = l, .attribute = (GmemMemoryAttribute) attr };
        }
        *ret = TAKE_PTR(runs);
        *ret_n = n;
        return 0;
}

int gmem_reload(GmemClient *c) {
        if (!c)
                return -EINVAL;
        gmem_client_clear_error(c);
        return gmem_call_manager(c, "Reload", NULL, "");
}

/* The public enum is numbered as the wire's: its names are common/wire.c's. */
_Static_assert((int) GMEM_MEMORY_SHARED == (int) MEMORY_ATTRIBUTE_SHARED &&
               (int) GMEM_MEMORY_PRIVATE == (int) MEMORY_ATTRIBUTE_PRIVATE &&
               (int) _GMEM_MEMORY_ATTRIBUTE_MAX == (int) _MEMORY_ATTRIBUTE_MAX,
               "GmemMemoryAttribute and MemoryAttribute agree");

const char *gmem_memory_attribute_to_string(GmemMemoryAttribute a) {
        return memory_attribute_to_string((MemoryAttribute) a);
}

int gmem_memory_attribute_from_string(const char *s) {
        return memory_attribute_from_string(s);
}

int gmem_set_memory_attributes(GmemClient *c, const char *region, uint64_t offset, uint64_t length,
                               GmemMemoryAttribute attribute) {
        const char *s = gmem_memory_attribute_to_string(attribute);

        if (!c)
                return -EINVAL;
        if (!s) {
                gmem_client_clear_error(c);
                return gmem_client_invalid_argument(c, "Invalid memory attribute: must be shared or private");
        }
        return call_range(c, "SetMemoryAttributes", region, offset, length, s);
}
