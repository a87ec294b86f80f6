/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * memcg.c — see memcg.h.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "memcg.h"

/* v1 reports "no limit" as a page-rounded LONG_MAX; anything this large is no limit. */
#define MEMCG_NO_LIMIT (1ULL << 62)

static int read_u64_file(const char *dir, const char *name, uint64_t *ret) {
        _cleanup_free_ char *path = NULL;
        _cleanup_fclose_ FILE *f = NULL;
        char line[64];
        char *end;

        if (asprintf(&path, "%s/%s", dir, name) < 0)
                return -ENOMEM;
        f = fopen(path, "re");
        if (!f)
                return -errno;
        if (!fgets(line, sizeof(line), f))
                return -EIO;
        line[strcspn(line, "\n")] = 0;
        if (streq(line, "max")) {
                *ret = UINT64_MAX;
                return 0;
        }
        errno = 0;
        *ret = strtoull(line, &end, 10);
        if (errno != 0 || end == line || *end != 0)
                return -EBADMSG;
        return 0;
}

static bool has_token(const char *list, const char *token) {
        size_t n = strlen(token);

        for (const char *p = list; p; p = strchr(p, ',')) {
                if (*p == ',')
                        p++;
                if (strncmp(p, token, n) == 0 && (p[n] == ',' || p[n] == 0))
                        return true;
        }
        return false;
}

/* The cgroup path of the memory controller: v2's "0::" line unless a v1 "memory" line exists. */
static int own_cgroup(const char *proc_cgroup, char *path, size_t size, bool *ret_v1) {
        _cleanup_fclose_ FILE *f = NULL;
        char line[4096];
        bool found = false;

        f = fopen(proc_cgroup ?: "/proc/self/cgroup", "re");
        if (!f)
                return -errno;
        while (fgets(line, sizeof(line), f)) {
                char *controllers, *p;

                line[strcspn(line, "\n")] = 0;
                controllers = strchr(line, ':');
                if (!controllers)
                        continue;
                *controllers++ = 0;     /* line is the hierarchy id now */
                p = strchr(controllers, ':');
                if (!p)
                        continue;
                *p++ = 0;
                if (*p != '/' || strlen(p) >= size)
                        continue;
                if (has_token(controllers, "memory")) {
                        strcpy(path, p);
                        *ret_v1 = true;
                        return 0;
                }
                if (streq(line, "0") && *controllers == 0) {
                        strcpy(path, p);
                        *ret_v1 = false;
                        found = true;
                }
        }
        return found ? 0 : -ENOENT;
}

int memcg_headroom(const char *root, const char *proc_cgroup, MemcgHeadroom *ret) {
        char cg[sizeof(ret->path)];
        bool v1 = false;
        int r;

        *ret = (MemcgHeadroom) { .left = UINT64_MAX, .limit = UINT64_MAX };
        r = own_cgroup(proc_cgroup, cg, sizeof(cg), &v1);
        if (r < 0)
                return r;

        /* From the cgroup up to the root of the hierarchy: the nearest limit is the smallest headroom. */
        for (;;) {
                _cleanup_free_ char *dir = NULL;
                uint64_t limit, usage;

                if (asprintf(&dir, "%s%s%s", root ?: "/sys/fs/cgroup", v1 ? "/memory" : "", cg) < 0)
                        return -ENOMEM;
                if (read_u64_file(dir, v1 ? "memory.limit_in_bytes" : "memory.max", &limit) >= 0 &&
                    limit < MEMCG_NO_LIMIT &&
                    read_u64_file(dir, v1 ? "memory.usage_in_bytes" : "memory.current", &usage) >= 0) {
                        uint64_t left = usage >= limit ? 0 : limit - usage;

                        if (left < ret->left) {
                                ret->left = left;
                                ret->limit = limit;
                                strcpy(ret->path, cg);
                        }
                }
                if (streq(cg, "/"))
                        break;
                char *slash = strrchr(cg, '/');
                if (slash == cg)
                        cg[1] = 0;
                else
                        *slash = 0;
        }
        return 0;
}

int memcg_host_memory(const char *meminfo, HostMemory *ret) {
        _cleanup_fclose_ FILE *f = NULL;
        bool have_available = false, have_total = false;
        HostMemory h = {};
        char line[256];

        f = fopen(meminfo ?: "/proc/meminfo", "re");
        if (!f)
                return -errno;
        while (fgets(line, sizeof(line), f)) {
                uint64_t kb;

                if (sscanf(line, "MemAvailable: %" SCNu64 " kB", &kb) == 1) {
                        h.available = kb > UINT64_MAX / 1024 ? UINT64_MAX : kb * 1024;
                        have_available = true;
                } else if (sscanf(line, "MemTotal: %" SCNu64 " kB", &kb) == 1) {
                        h.total = kb > UINT64_MAX / 1024 ? UINT64_MAX : kb * 1024;
                        have_total = true;
                }
        }
        if (!have_available || !have_total)
                return -ENOENT;
        *ret = h;
        return 0;
}
