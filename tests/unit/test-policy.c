/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-policy.c — the policy parser and matcher: the shipped default and
 * examples load; every malformed policy in tests/data/policy/bad is refused
 * with the message in its .expect file; oversized and deeply nested input is
 * refused without unbounded memory; classes match by uid and group, first
 * match wins.
 */
#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include "policy.h"
#include "tests.h"

static const char *srcdir;

static char *read_text(const char *path) {
        FILE *f = fopen(path, "re");
        char *buf = calloc(1, 65536);
        size_t n;

        EXPECT(f && buf, "%s can be read", path);
        n = fread(buf, 1, 65535, f);
        buf[n] = 0;
        fclose(f);
        return buf;
}

static void test_shipped(void) {
        static const char *const files[] = {
                "policy/default.json", "policy/examples/orchestrator.json", "policy/examples/single-user.json",
        };
        for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
                GmemError e = GMEM_ERROR_INIT;
                char path[4096];
                Policy *p = NULL;

                snprintf(path, sizeof(path), "%s/%s", srcdir, files[i]);
                EXPECT(policy_load_file(path, &p, &e) == 0, "shipped policy %s loads: %s", files[i], e.message);
                EXPECT(p->n_classes >= 1 && streq(p->classes[0].name, "admin"), "its first class is admin");
                policy_free(p);
        }

        GmemError e = GMEM_ERROR_INIT;
        Policy *builtin = NULL, *file = NULL;
        char path[4096];
        snprintf(path, sizeof(path), "%s/policy/default.json", srcdir);
        EXPECT(policy_load_builtin(&builtin, &e) == 0, "the built-in policy loads: %s", e.message);
        EXPECT(policy_load_file(path, &file, &e) == 0, "the default file loads");
        EXPECT(builtin->n_classes == file->n_classes, "built-in and shipped default have the same classes");
        for (size_t i = 0; i < builtin->n_classes; i++) {
                EXPECT(streq(builtin->classes[i].name, file->classes[i].name), "class %zu has the same name", i);
                EXPECT(builtin->classes[i].verbs == file->classes[i].verbs, "class %zu has the same verbs", i);
                EXPECT(builtin->classes[i].backends == file->classes[i].backends, "class %zu has the same backends", i);
                EXPECT(builtin->classes[i].scope == file->classes[i].scope, "class %zu has the same scope", i);
        }
        EXPECT(policy_match(builtin, &(Caller) { .uid = 0 }) == &builtin->classes[0], "root is admin by default");
        EXPECT(policy_match(builtin, &(Caller) { .uid = 1000 }) == NULL, "nobody else is anything by default");
        EXPECT(policy_class_allows(&builtin->classes[0], POLICY_VERB_RELOAD) &&
               policy_class_allows_backend(&builtin->classes[0], BACKEND_SECRET), "admin may do everything");
        EXPECT(builtin->classes[0].scope == POLICY_SCOPE_ALL && policy_class_reaches(&builtin->classes[0], 0, 1000),
               "admin reaches every object, whoever created it");
        policy_free(builtin);
        policy_free(file);
}

static void test_bad_corpus(void) {
        char dir[4096];
        struct dirent *de;
        unsigned n = 0;
        DIR *d;

        snprintf(dir, sizeof(dir), "%s/tests/data/policy/bad", srcdir);
        d = opendir(dir);
        EXPECT(d, "the corpus directory %s exists", dir);
        while ((de = readdir(d))) {
                char path[8192], expect_path[8192];
                size_t len = strlen(de->d_name);
                GmemError e = GMEM_ERROR_INIT;
                Policy *p = NULL;
                char *expect;

                if (len < 6 || strcmp(de->d_name + len - 5, ".json") != 0)
                        continue;
                snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
                snprintf(expect_path, sizeof(expect_path), "%s/%.*s.expect", dir, (int) (len - 5), de->d_name);
                expect = read_text(expect_path);
                expect[strcspn(expect, "\n")] = 0;

                EXPECT(policy_load_file(path, &p, &e) < 0 && !p, "malformed policy %s is refused", de->d_name);
                EXPECT(e.code == GMEM_ERROR_INVALID_ARGUMENT, "%s is refused as InvalidArgument", de->d_name);
                EXPECT(strstr(e.message, expect), "%s is refused with \"%s\", got \"%s\"", de->d_name, expect, e.message);
                EXPECT(strstr(e.message, path), "the message of %s names the file", de->d_name);
                fprintf(stderr, "  %-24s %s\n", de->d_name, e.message);
                free(expect);
                n++;
        }
        closedir(d);
        EXPECT(n >= 25, "the corpus has its %u cases", n);
}

static void test_bounds(void) {
        GmemError e = GMEM_ERROR_INIT;
        char path[] = "/tmp/gmem-policy-XXXXXX";
        size_t big = 4 * 1024 * 1024;
        Policy *p = NULL;
        char *buf;
        int fd;

        /* Many megabytes: refused from fstat() without being read. */
        fd = mkstemp(path);
        EXPECT(fd >= 0 && ftruncate(fd, (off_t) big) == 0, "a 4 MiB file can be made");
        close(fd);
        EXPECT(policy_load_file(path, &p, &e) < 0 && strstr(e.message, "the limit is"),
               "a 4 MiB policy is refused by size: %s", e.message);
        unlink(path);

        /* 100000 levels of nesting: refused at the depth limit. */
        buf = malloc(big);
        EXPECT(buf, "memory for a deep document");
        memset(buf, '[', 100000);
        e = (GmemError) GMEM_ERROR_INIT;
        EXPECT(policy_parse(buf, 100000, "deep", &p, &e) < 0 && strstr(e.message, "nested more than"),
               "deep nesting is refused: %s", e.message);

        /* A string longer than the limit given in memory is refused before parsing. */
        memset(buf, ' ', big);
        e = (GmemError) GMEM_ERROR_INIT;
        EXPECT(policy_parse(buf, big, "big", &p, &e) < 0 && strstr(e.message, "the limit is"),
               "an oversized buffer is refused: %s", e.message);
        free(buf);

        e = (GmemError) GMEM_ERROR_INIT;
        EXPECT(policy_load_file("/nonexistent/policy.json", &p, &e) < 0 && strstr(e.message, "/nonexistent/policy.json"),
               "a missing file is refused naming it: %s", e.message);
        e = (GmemError) GMEM_ERROR_INIT;
        EXPECT(policy_load_file("/tmp", &p, &e) < 0 && strstr(e.message, "not a regular file"),
               "a directory is refused");
}

static void test_match(void) {
        static const char text[] =
                "{\"version\":1,\"classes\":["
                "{\"name\":\"one\",\"match\":{\"uids\":[1000]},\"verbs\":[\"list\"]},"
                "{\"name\":\"grp\",\"match\":{\"gids\":[27],\"groups\":[\"no-such-group-xyz\"],"
                " \"users\":[\"root\",\"no-such-user-xyz\"]},"
                " \"verbs\":[\"attach\",\"get-fd\"],\"backends\":[\"memfd\",\"hugetlb\"],"
                " \"max_region_size\":\"8G\",\"quota\":{\"bytes\":\"16G\",\"regions\":\"unlimited\",\"vms\":3,\"views\":0}},"
                "{\"name\":\"also1000\",\"match\":{\"uids\":[1000]},\"verbs\":[\"all\"]},"
                "{\"name\":\"wide\",\"match\":{\"uids\":[2000]},\"verbs\":[\"list\"],\"scope\":\"all\"}"
                "]}";
        GmemError e = GMEM_ERROR_INIT;
        Policy *p = NULL;
        const PolicyClass *c;
        const gid_t g27[] = { 100, 27 };

        EXPECT(policy_parse(text, strlen(text), "inline", &p, &e) == 0, "the test policy parses: %s", e.message);
        EXPECT(p->n_warnings == 2, "missing users and groups are warned about (%zu)", p->n_warnings);
        EXPECT(strstr(p->warnings[0], "no-such"), "the warning names the missing name: %s", p->warnings[0]);

        c = policy_match(p, &(Caller) { .uid = 1000 });
        EXPECT(c && streq(c->name, "one"), "the first matching class wins");
        EXPECT(policy_class_allows(c, POLICY_VERB_LIST) && !policy_class_allows(c, POLICY_VERB_ATTACH),
               "a class allows its verbs and no others");
        EXPECT(policy_class_allows_backend(c, BACKEND_MEMFD) && !policy_class_allows_backend(c, BACKEND_HUGETLB),
               "a class without backends may use memfd only");
        EXPECT(c->scope == POLICY_SCOPE_OWN && policy_class_reaches(c, 1000, 1000) && !policy_class_reaches(c, 1000, 0),
               "a class without a scope reaches only what its member's uid created");
        c = policy_match(p, &(Caller) { .uid = 2000 });
        EXPECT(c && c->scope == POLICY_SCOPE_ALL && policy_class_reaches(c, 2000, 0),
               "a class with scope all reaches every object");

        c = policy_match(p, &(Caller) { .uid = 5000, .gids = g27, .n_gids = 2 });
        EXPECT(c && streq(c->name, "grp"), "a supplementary group matches");
        EXPECT(c->max_region_size == (UINT64_C(8) << 30) && c->quota[QUOTA_BYTES] == (UINT64_C(16) << 30) &&
               c->quota[QUOTA_REGIONS] == POLICY_UNLIMITED && c->quota[QUOTA_VMS] == 3 && c->quota[QUOTA_VIEWS] == 0,
               "sizes, counts and unlimited are parsed");
        EXPECT(policy_match(p, &(Caller) { .uid = 0 }) == c, "a user name resolves to its uid");
        EXPECT(policy_match(p, &(Caller) { .uid = 5000 }) == NULL, "a caller in no class matches nothing");
        policy_free(p);
}

static void test_enums(void) {
        for (PolicyVerb v = 0; v < _POLICY_VERB_MAX; v++)
                EXPECT(policy_verb_from_string(policy_verb_to_string(v)) == v, "verb %d round-trips", v);
        for (QuotaKind k = 0; k < _QUOTA_KIND_MAX; k++)
                EXPECT(quota_kind_from_string(quota_kind_to_string(k)) == k, "quota kind %d round-trips", k);
        for (PolicyScope s = 0; s < _POLICY_SCOPE_MAX; s++)
                EXPECT(policy_scope_from_string(policy_scope_to_string(s)) == s, "scope %d round-trips", s);
        EXPECT(policy_scope_from_string("class") < 0, "there is no scope 'class'");
        EXPECT(policy_verb_from_string("all") < 0, "'all' is a policy keyword, not a verb");
        EXPECT(policy_verb_to_string(_POLICY_VERB_MAX) == NULL && quota_kind_to_string(-1) == NULL,
               "out-of-range enums have no name");
}

int main(int argc, char *argv[]) {
        srcdir = argc > 1 ? argv[1] : ".";
        RUN(test_shipped);
        RUN(test_bad_corpus);
        RUN(test_bounds);
        RUN(test_match);
        RUN(test_enums);
        return 0;
}
