/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libgmem-migrations.c — intra-host migration: moving views, not memory.
 *
 * BeginMigration gives the target VM a pending view of every region the
 * source VM has a view of, on the same inode, and returns those views' fds
 * so the new hypervisor can map the memory before it takes over; Commit makes
 * them active and revokes the source's, Abort drops them. A migration is an
 * object on the bus; callers may name it by its path or by its numeric id,
 * the last element of the path.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "array.h"
#include "gmem-errors.h"
#include "libgmem-internal.h"

void gmem_migration_fd_array_free(GmemMigrationFd *fds, size_t n) {
        if (!fds)
                return;
        for (size_t i = 0; i < n; i++) {
                free(fds[i].region);
                safe_close(fds[i].fd);
        }
        free(fds);
}

int gmem_begin_migration(GmemClient *c, const char *source_vm, const char *target_vm,
                         char **ret_migration, GmemMigrationFd **ret_fds, size_t *ret_n_fds) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        _cleanup_free_ char *migration = NULL;
        GmemMigrationFd *fds = NULL;
        size_t n = 0, allocated = 0;
        const char *path, *region;
        int fd, r;

        if (!c)
                return -EINVAL;
        gmem_client_clear_error(c);
        if ((ret_fds == NULL) != (ret_n_fds == NULL))
                return gmem_client_invalid_argument(c, "The fds and their count are returned together");
        r = gmem_client_check_name(c, "VM", source_vm);
        if (r < 0)
                return r;
        r = gmem_client_check_name(c, "VM", target_vm);
        if (r < 0)
                return r;

        r = gmem_new_manager_call(c, "BeginMigration", &m);
        if (r < 0)
                return r;
        r = sd_bus_message_append(m, "ssa{sv}", source_vm, target_vm, 0);
        if (r < 0)
                return gmem_client_set_error(c, r, NULL, "Failed to build a D-Bus message");

        r = gmem_call(c, m, &reply);
        if (r < 0)
                return r;

        r = sd_bus_message_read(reply, "o", &path);
        if (r < 0)
                goto bad_reply;
        migration = strdup(path);
        if (!migration)
                return -ENOMEM;

        r = sd_bus_message_enter_container(reply, 'a', "(sh)");
        if (r < 0)
                goto bad_reply;
        while ((r = sd_bus_message_read(reply, "(sh)", &region, &fd)) > 0) {
                if (!ret_fds)
                        continue;
                r = GROW_ARRAY(fds, allocated, n + 1);
                if (r < 0)
                        goto fail;
                fds[n] = (GmemMigrationFd) {
                        .region = strdup(region),
                        .fd = fcntl(fd, F_DUPFD_CLOEXEC, 3),
                };
                n++;
                if (!fds[n - 1].region) {
                        r = -ENOMEM;
                        goto fail;
                }
                if (fds[n - 1].fd < 0) {
                        r = gmem_client_set_error(c, errno, NULL,
                                                  "Failed to duplicate a view's file descriptor");
                        goto fail;
                }
        }
        if (r < 0)
                goto bad_reply;

        if (ret_migration)
                *ret_migration = TAKE_PTR(migration);
        if (ret_fds) {
                *ret_fds = fds;
                *ret_n_fds = n;
        }
        return 0;

bad_reply:
        r = gmem_client_set_error(c, r, NULL, "Failed to parse the reply to BeginMigration");
fail:
        gmem_migration_fd_array_free(fds, n);
        return r;
}

static bool is_decimal(const char *s) {
        if (isempty(s))
                return false;
        for (; *s; s++)
                if (*s < '0' || *s > '9')
                        return false;
        return true;
}

int gmem_migration_path(const char *migration, char **ret_path) {
        char *p;

        if (!migration || !ret_path)
                return -EINVAL;

        if (migration[0] == '/') {
                if (!sd_bus_object_path_is_valid(migration))
                        return -EINVAL;
                p = strdup(migration);
        } else if (is_decimal(migration)) {
                uint64_t id;
                char *end;

                errno = 0;
                id = strtoull(migration, &end, 10);
                if (errno != 0 || *end)
                        return -EINVAL;
                if (asprintf(&p, GMEM_MIGRATION_PATH_PREFIX "%" PRIu64, id) < 0)
                        p = NULL;
        } else
                return -EINVAL;

        if (!p)
                return -ENOMEM;
        *ret_path = p;
        return 0;
}

static int call_migration(GmemClient *c, const char *method, const char *migration) {
        _cleanup_free_ char *path = NULL;
        int r;

        if (!c)
                return -EINVAL;
        gmem_client_clear_error(c);

        r = gmem_migration_path(migration, &path);
        if (r == -EINVAL)
                return gmem_client_set_error(c, EINVAL,
                                             GMEM_ERROR_PREFIX "InvalidArgument",
                                             "Invalid migration: give its object path or its numeric id");
        if (r < 0)
                return r;

        return gmem_call_manager(c, method, NULL, "o", path);
}

int gmem_commit_migration(GmemClient *c, const char *migration) {
        return call_migration(c, "CommitMigration", migration);
}

int gmem_abort_migration(GmemClient *c, const char *migration) {
        return call_migration(c, "AbortMigration", migration);
}

void gmem_migration_info_array_free(GmemMigrationInfo *migrations, size_t n) {
        if (!migrations)
                return;
        for (size_t i = 0; i < n; i++) {
                free(migrations[i].source);
                free(migrations[i].target);
                free(migrations[i].state);
                free(migrations[i].path);
        }
        free(migrations);
}

/* The id is the path's last element when that is a number. */
static uint64_t id_from_path(const char *path) {
        const char *e = strrchr(path, '/');
        uint64_t id;
        char *end;

        if (!e || !is_decimal(e + 1))
                return 0;
        errno = 0;
        id = strtoull(e + 1, &end, 10);
        return errno == 0 && !*end ? id : 0;
}

int gmem_list_migrations(GmemClient *c, GmemMigrationInfo **ret_migrations, size_t *ret_n) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        GmemMigrationInfo *migrations = NULL;
        size_t n = 0, allocated = 0;
        const char *source, *target, *state, *path;
        int r;

        if (!c)
                return -EINVAL;
        gmem_client_clear_error(c);
        if (!ret_migrations || !ret_n)
                return gmem_client_invalid_argument(c, "No place to return the list");

        r = gmem_call_manager(c, "ListMigrations", &reply, NULL);
        if (r < 0)
                return r;

        r = sd_bus_message_enter_container(reply, 'a', "(ssso)");
        if (r < 0)
                goto bad_reply;
        while ((r = sd_bus_message_read(reply, "(ssso)", &source, &target, &state, &path)) > 0) {
                r = GROW_ARRAY(migrations, allocated, n + 1);
                if (r < 0)
                        goto fail;
                migrations[n] = (GmemMigrationInfo) {
                        .id = id_from_path(path),
                        .source = strdup(source),
                        .target = strdup(target),
                        .state = strdup(state),
                        .path = strdup(path),
                };
                n++;
                if (!migrations[n - 1].source || !migrations[n - 1].target ||
                    !migrations[n - 1].state || !migrations[n - 1].path) {
                        r = -ENOMEM;
                        goto fail;
                }
        }
        if (r < 0)
                goto bad_reply;

        *ret_migrations = migrations;
        *ret_n = n;
        return 0;

bad_reply:
        r = gmem_client_set_error(c, r, NULL, "Failed to parse the reply to ListMigrations");
fail:
        gmem_migration_info_array_free(migrations, n);
        return r;
}
