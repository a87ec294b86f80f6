/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * gmemctl-views.c — gmemctl's verbs that hand out memory: attach, get-fd and
 * migrate, plus detach and the migration bookkeeping.
 *
 * A view's fd is only useful inside the process that maps it, so these verbs
 * either show what they got (the access and size the kernel reports for the
 * fd, and the view's state as the broker reports it) and close it, or, with
 * --exec, start a command in gmemctl's place that inherits the fds, named in
 * $GMEM_FD (the first) and $GMEM_FDS ("region=fd,region=fd"), e.g. QEMU with
 * mem-path=/proc/self/fd/$GMEM_FD.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "gmemctl.h"

int exec_with_fds(char *const *regions, const int *fds, size_t n, const char *migration) {
        char *list = NULL;
        size_t size = 0;
        char first[16];
        FILE *f;

        if (n == 0)
                return log_error_errno(-EINVAL, "No file descriptors to pass to %s", arg_exec_argv[0]);

        f = open_memstream(&list, &size);
        if (!f)
                return log_error_errno(-ENOMEM, "Out of memory");
        for (size_t i = 0; i < n; i++) {
                /* Let the fd survive exec. */
                if (fcntl(fds[i], F_SETFD, 0) < 0) {
                        fclose(f);
                        free(list);
                        return log_error_errno(-errno, "Failed to pass the fd of '%s' on: %s",
                                               regions[i], strerror(errno));
                }
                fprintf(f, "%s%s=%d", i > 0 ? "," : "", regions[i], fds[i]);
        }
        if (fclose(f) != 0) {
                free(list);
                return log_error_errno(-ENOMEM, "Out of memory");
        }

        (void) snprintf(first, sizeof(first), "%d", fds[0]);
        if (setenv("GMEM_FD", first, 1) < 0 || setenv("GMEM_FDS", list, 1) < 0 ||
            (migration && setenv("GMEM_MIGRATION", migration, 1) < 0)) {
                free(list);
                return log_error_errno(-errno, "Failed to set the environment: %s", strerror(errno));
        }
        free(list);

        /* The bus connection's socket is O_CLOEXEC: the command does not inherit it. */
        fflush(stdout);
        fflush(stderr);

        execvp(arg_exec_argv[0], arg_exec_argv);
        return log_error_errno(-errno, "Failed to execute %s: %s", arg_exec_argv[0], strerror(errno));
}

static int print_views(GmemClient *c, const char *vm, char *const *regions, const int *fds, size_t n,
                       const char *done) {
        static const char *const headers[] = { "VM", "REGION", "ACCESS", "SIZE", "STATE" };
        static const char *const keys[] = { "vm", "region", "access", "size", "state" };
        _cleanup_table_ Table *t = NULL;
        GmemVmProperties *p = NULL;
        int r = 0;

        t = table_new(ELEMENTSOF(headers), headers, keys);
        if (!t)
                return log_error_errno(-ENOMEM, "Out of memory");

        /* The view's state as the broker sees it; not fatal if it cannot be read. */
        (void) gmem_get_vm_properties(c, vm, &p);

        for (size_t i = 0; i < n && r >= 0; i++) {
                const char *state = NULL;
                struct stat st;
                int flags;

                if (fstat(fds[i], &st) < 0 || (flags = fcntl(fds[i], F_GETFL)) < 0) {
                        r = log_error_errno(-errno, "Failed to inspect the view of '%s': %s",
                                            regions[i], strerror(errno));
                        break;
                }
                for (size_t j = 0; p && j < p->n_views; j++)
                        if (streq(p->views[j].region, regions[i]))
                                state = p->views[j].state;

                r = table_add_string(t, vm);
                if (r >= 0)
                        r = table_add_string(t, regions[i]);
                if (r >= 0)
                        /* What the kernel says the fd allows, not what was asked for. */
                        r = table_add_string(t, (flags & O_ACCMODE) == O_RDWR ? "rw" :
                                                (flags & O_ACCMODE) == O_RDONLY ? "ro" : "wo");
                if (r >= 0)
                        r = table_add_size(t, (uint64_t) st.st_size);
                if (r >= 0)
                        r = table_add_string(t, state);
                if (r < 0)
                        r = log_error_errno(r, "Out of memory");
        }
        gmem_vm_properties_free(p);
        if (r < 0)
                return r;

        return table_print(t, "No views.", "view", "views", done);
}

/* attach and get-fd: one fd per region, then show them or exec. */
static int get_views(GmemClient *c, int argc, char **argv, bool attach) {
        const char *vm = argv[1];
        size_t n = (size_t) argc - 2, got = 0;
        _cleanup_free_ int *fds = NULL;
        int r = 0;

        fds = calloc(n, sizeof(int));
        if (!fds)
                return log_error_errno(-ENOMEM, "Out of memory");

        for (; got < n; got++) {
                const char *region = argv[2 + got];

                if (attach)
                        r = gmem_attach(c, vm, region, arg_access, arg_offset, arg_length, arg_allocate,
                                        &fds[got]);
                else
                        r = gmem_get_fd(c, vm, region, &fds[got]);
                if (r < 0) {
                        /* Views already attached stay: a repeated attach may have found them there. */
                        log_client_error(c, r, "Failed to %s region '%s' %s VM '%s'",
                                         attach ? "attach" : "get the view of", region,
                                         attach ? "to" : "for", vm);
                        goto finish;
                }
        }

        if (arg_exec)
                r = exec_with_fds(argv + 2, fds, n, NULL);
        else
                r = print_views(c, vm, argv + 2, fds, n, attach ? "attached" : "handed out");

finish:
        for (size_t i = 0; i < got; i++)
                safe_close(fds[i]);
        return r;
}

int verb_attach(GmemClient *c, int argc, char **argv) {
        return get_views(c, argc, argv, true);
}

int verb_get_fd(GmemClient *c, int argc, char **argv) {
        return get_views(c, argc, argv, false);
}

int verb_detach(GmemClient *c, int argc, char **argv) {
        int ret = 0, r;

        for (int i = 2; i < argc; i++) {
                r = gmem_detach(c, argv[1], argv[i]);
                if (r < 0) {
                        log_client_error(c, r, "Failed to detach region '%s' from VM '%s'", argv[i], argv[1]);
                        if (ret == 0)
                                ret = r;
                }
        }
        return ret;
}

static const char *migration_id(const char *path) {
        const char *e = strrchr(path, '/');
        return e ? e + 1 : path;
}

/* The id as a JSON number when it is one (it is, with gmemd), else as the string. */
static struct json_object *json_migration_id(const char *path) {
        const char *id = migration_id(path);
        char *end;
        uint64_t v;

        errno = 0;
        v = strtoull(id, &end, 10);
        if (errno == 0 && *id >= '0' && *id <= '9' && !*end)
                return json_object_new_uint64(v);
        return json_object_new_string(id);
}

static int print_prepared(const char *path, const char *source, const char *target,
                          const GmemMigrationFd *fds, size_t n) {
        static const char *const headers[] = { "ID", "SOURCE", "TARGET", "STATE", "REGIONS" };
        static const char *const keys[] = { "id", "source", "target", "state", "regions" };
        _cleanup_table_ Table *t = NULL;
        struct json_object *regions;
        char *list = NULL;
        size_t size = 0;
        FILE *f;
        int r;

        t = table_new(ELEMENTSOF(headers), headers, keys);
        if (!t)
                return log_error_errno(-ENOMEM, "Out of memory");

        f = open_memstream(&list, &size);
        if (!f)
                return log_error_errno(-ENOMEM, "Out of memory");
        regions = json_object_new_array();
        for (size_t i = 0; i < n; i++) {
                fprintf(f, "%s%s", i > 0 ? "," : "", fds[i].region);
                json_object_array_add(regions, json_object_new_string(fds[i].region));
        }
        if (fclose(f) != 0) {
                json_object_put(regions);
                free(list);
                return log_error_errno(-ENOMEM, "Out of memory");
        }

        r = table_add_cell(t, migration_id(path), json_migration_id(path), true);
        if (r >= 0)
                r = table_add_string(t, source);
        if (r >= 0)
                r = table_add_string(t, target);
        if (r >= 0)
                r = table_add_string(t, migration_state_to_string(MIGRATION_PREPARED));
        if (r >= 0)
                r = table_add_cell(t, isempty(list) ? "-" : list, regions, false);
        else
                json_object_put(regions);
        free(list);
        if (r < 0)
                return log_error_errno(r, "Out of memory");

        return table_print(t, "No migration.", "migration", "migrations", "prepared");
}

int verb_migrate(GmemClient *c, int argc, char **argv) {
        const char *source = argv[1], *target = argv[2];
        _cleanup_free_ char *path = NULL;
        _cleanup_free_ int *fds = NULL;
        _cleanup_free_ char **regions = NULL;
        GmemMigrationFd *mfds = NULL;
        size_t n = 0;
        int r;

        r = gmem_begin_migration(c, source, target, &path, &mfds, &n);
        if (r < 0)
                return log_client_error(c, r, "Failed to migrate VM '%s' to '%s'", source, target);

        if (!arg_no_commit) {
                r = gmem_commit_migration(c, path);
                if (r < 0) {
                        log_client_error(c, r, "Failed to commit the migration of VM '%s' to '%s'", source, target);
                        /* Leave nothing half done: the target's pending views go. */
                        if (gmem_abort_migration(c, path) < 0)
                                log_client_error(c, -EIO, "Failed to abort migration %s", path);
                        goto finish;
                }
        }

        if (arg_exec) {
                fds = calloc(n + 1, sizeof(int));
                regions = calloc(n + 1, sizeof(char *));
                if (!fds || !regions) {
                        r = log_error_errno(-ENOMEM, "Out of memory");
                        goto finish;
                }
                for (size_t i = 0; i < n; i++) {
                        fds[i] = mfds[i].fd;
                        regions[i] = mfds[i].region;
                }
                r = exec_with_fds(regions, fds, n, migration_id(path));
                goto finish;
        }

        if (arg_no_commit)
                r = print_prepared(path, source, target, mfds, n);

finish:
        gmem_migration_fd_array_free(mfds, n);
        return r;
}

int verb_list_migrations(GmemClient *c, int argc, char **argv) {
        static const char *const headers[] = { "ID", "SOURCE", "TARGET", "STATE", "PATH" };
        static const char *const keys[] = { "id", "source", "target", "state", "path" };
        _cleanup_table_ Table *t = NULL;
        GmemMigrationInfo *migrations = NULL;
        size_t n = 0;
        int r;

        r = gmem_list_migrations(c, &migrations, &n);
        if (r < 0)
                return log_client_error(c, r, "Failed to list migrations");

        t = table_new(ELEMENTSOF(headers), headers, keys);
        if (!t) {
                r = log_error_errno(-ENOMEM, "Out of memory");
                goto finish;
        }
        for (size_t i = 0; i < n && r >= 0; i++) {
                r = table_add_cell(t, migration_id(migrations[i].path),
                                   json_migration_id(migrations[i].path), true);
                if (r >= 0)
                        r = table_add_string(t, migrations[i].source);
                if (r >= 0)
                        r = table_add_string(t, migrations[i].target);
                if (r >= 0)
                        r = table_add_string(t, migrations[i].state);
                if (r >= 0)
                        r = table_add_string(t, migrations[i].path);
        }
        if (r < 0) {
                log_error_errno(r, "Out of memory");
                goto finish;
        }

        r = table_print(t, "No migrations.", "migration", "migrations", "listed");

finish:
        gmem_migration_info_array_free(migrations, n);
        return r;
}

int verb_commit_migration(GmemClient *c, int argc, char **argv) {
        bool commit = streq(argv[0], "commit-migration");
        _cleanup_free_ char *path = NULL;
        int r;

        if (gmem_migration_path(argv[1], &path) < 0)
                return log_usage("Invalid migration '%s': give its id (see list-migrations) or its object path",
                                 argv[1]);

        r = commit ? gmem_commit_migration(c, path) : gmem_abort_migration(c, path);
        if (r < 0)
                return log_client_error(c, r, "Failed to %s migration %s", commit ? "commit" : "abort", argv[1]);
        return 0;
}
