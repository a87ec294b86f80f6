/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * policy.c — parsing and validating the policy file (json-c), and matching
 * callers to classes.
 *
 * The parser is strict: every key must be known, every value of the right
 * type and range, and the first problem is reported with the origin, the
 * key path ("classes[1].quota.bytes") and what was expected. The input is
 * bounded before parsing (size and nesting), so a hostile file cannot make
 * the daemon use unbounded memory. User and group names are resolved once,
 * at load time: the daemon never does NSS lookups while serving.
 */
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "parse.h"
#include "policy.h"
#include "policy-builtin.h"
#include "string-table.h"

static const char *const policy_verb_table[_POLICY_VERB_MAX] = {
        [POLICY_VERB_LIST]           = "list",
        [POLICY_VERB_CREATE_REGION]  = "create-region",
        [POLICY_VERB_DESTROY_REGION] = "destroy-region",
        [POLICY_VERB_REGISTER_VM]    = "register-vm",
        [POLICY_VERB_UNREGISTER_VM]  = "unregister-vm",
        [POLICY_VERB_ATTACH]         = "attach",
        [POLICY_VERB_DETACH]         = "detach",
        [POLICY_VERB_GET_FD]         = "get-fd",
        [POLICY_VERB_MIGRATE]        = "migrate",
        [POLICY_VERB_DISCARD]        = "discard",
        [POLICY_VERB_SET_ATTRIBUTES] = "set-attributes",
        [POLICY_VERB_RELOAD]         = "reload",
};
DEFINE_STRING_TABLE_LOOKUP(policy_verb, PolicyVerb);

static const char *const policy_scope_table[_POLICY_SCOPE_MAX] = {
        [POLICY_SCOPE_OWN] = "own",
        [POLICY_SCOPE_ALL] = "all",
};
DEFINE_STRING_TABLE_LOOKUP(policy_scope, PolicyScope);

static const char *const quota_kind_table[_QUOTA_KIND_MAX] = {
        [QUOTA_BYTES]   = "bytes",
        [QUOTA_REGIONS] = "regions",
        [QUOTA_VMS]     = "vms",
        [QUOTA_VIEWS]   = "views",
};
DEFINE_STRING_TABLE_LOOKUP(quota_kind, QuotaKind);


/* --- parse context --- */

/* Key paths are short ("classes[12].match.groups[3]"); a longer one is cut, never overflowed. */
#define KEY_PATH_MAX 160

static void key_path(char buf[static KEY_PATH_MAX], const char *fmt, ...) _printf_(2, 3);
static void key_path(char buf[static KEY_PATH_MAX], const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        (void) vsnprintf(buf, KEY_PATH_MAX, fmt, ap);
        va_end(ap);
}

typedef struct Parser {
        const char *origin;
        GmemError *error;
        Policy *policy;
} Parser;

static int fail(Parser *p, const char *path, const char *fmt, ...) _printf_(3, 4);
static int fail(Parser *p, const char *path, const char *fmt, ...) {
        char what[GMEM_ERROR_MESSAGE_MAX / 2];
        va_list ap;

        va_start(ap, fmt);
        (void) vsnprintf(what, sizeof(what), fmt, ap);
        va_end(ap);
        return gmem_error_set(p->error, GMEM_ERROR_INVALID_ARGUMENT, "%s: %s: %s", p->origin,
                              isempty(path) ? "top level" : path, what);
}

static int warn(Parser *p, const char *path, const char *fmt, ...) _printf_(3, 4);
static int warn(Parser *p, const char *path, const char *fmt, ...) {
        char buf[512], what[256], **w;
        va_list ap;

        va_start(ap, fmt);
        (void) vsnprintf(what, sizeof(what), fmt, ap);
        va_end(ap);
        (void) snprintf(buf, sizeof(buf), "%s: %s: %s", p->origin, path, what);

        w = realloc(p->policy->warnings, (p->policy->n_warnings + 1) * sizeof(char *));
        if (!w)
                return -ENOMEM;
        p->policy->warnings = w;
        w[p->policy->n_warnings] = strdup(buf);
        if (!w[p->policy->n_warnings])
                return -ENOMEM;
        p->policy->n_warnings++;
        return 0;
}

static const char *json_type_name(json_object *o) {
        switch (json_object_get_type(o)) {
        case json_type_null:    return "null";
        case json_type_boolean: return "a boolean";
        case json_type_double:  return "a fractional number";
        case json_type_int:     return "an integer";
        case json_type_object:  return "an object";
        case json_type_array:   return "an array";
        case json_type_string:  return "a string";
        }
        return "something else";
}

/* Checks every key of obj is one of the n keys (a string table: the policy's own words). */
static int check_keys(Parser *p, const char *path, json_object *obj, const char *const *keys, size_t n) {
        json_object_object_foreach(obj, key, val) {
                char expected[256] = "";
                size_t len = 0;

                (void) val;
                if (string_table_lookup(keys, n, key) >= 0)
                        continue;
                for (size_t i = 0; i < n && len < sizeof(expected); i++)
                        len += (size_t) snprintf(expected + len, sizeof(expected) - len, "%s%s", i ? ", " : "",
                                                 keys[i]);
                return fail(p, path, "unknown key '%.64s'; expected one of: %s", key, expected);
        }
        return 0;
}

static int expect_type(Parser *p, const char *path, json_object *o, json_type t, const char *what) {
        if (json_object_get_type(o) != t)
                return fail(p, path, "expected %s, got %s", what, json_type_name(o));
        return 0;
}

/* A byte count or count: a non-negative integer, "unlimited", or (for sizes) a string like "64G". */
static int parse_amount(Parser *p, const char *path, json_object *o, bool size, uint64_t *ret) {
        if (json_object_get_type(o) == json_type_string) {
                const char *s = json_object_get_string(o);
                uint64_t v;
                int r;

                if (streq(s, "unlimited")) {
                        *ret = POLICY_UNLIMITED;
                        return 0;
                }
                if (!size)
                        return fail(p, path, "expected a non-negative integer or \"unlimited\", got \"%.64s\"", s);
                r = gmem_parse_size(s, &v);
                if (r == -ERANGE)
                        return fail(p, path, "size \"%.64s\" does not fit in 64 bits", s);
                if (r < 0)
                        return fail(p, path, "expected a size such as 4096, \"64G\" or \"unlimited\", got \"%.64s\"", s);
                *ret = v;
                return 0;
        }
        if (json_object_get_type(o) != json_type_int)
                return fail(p, path, "expected a non-negative integer%s, got %s",
                            size ? ", a size string" : " or \"unlimited\"", json_type_name(o));

        int64_t v = json_object_get_int64(o);
        if (v < 0)
                return fail(p, path, "expected a non-negative integer, got %" PRId64, v);
        if (v == INT64_MAX) {
                /*
                 * json-c keeps integers above INT64_MAX as unsigned and saturates
                 * beyond 2^64 - 1: that value is taken as an overflow ("unlimited"
                 * says it better anyway).
                 */
                uint64_t u = json_object_get_uint64(o);
                if (u == UINT64_MAX)
                        return fail(p, path, "integer does not fit in 64 bits (write \"unlimited\" for no limit)");
                *ret = u;
                return 0;
        }
        *ret = (uint64_t) v;
        return 0;
}

/* Checks o is an array of at most POLICY_LIST_MAX entries and returns its length. */
static int parse_list(Parser *p, const char *path, json_object *o, size_t *ret_n) {
        size_t n;

        if (expect_type(p, path, o, json_type_array, "an array") < 0)
                return -EINVAL;
        n = json_object_array_length(o);
        if (n > POLICY_LIST_MAX)
                return fail(p, path, "%zu entries, the limit is %d", n, POLICY_LIST_MAX);
        *ret_n = n;
        return 0;
}

static int verb_lookup(const char *s) {
        return policy_verb_from_string(s);
}

static int backend_lookup(const char *s) {
        return backend_type_from_string(s);
}

/* A set of names from an enum, as a bit mask: ["all"] or a list of names lookup() knows. */
typedef struct NameSet {
        const char *what;               /* "verb", "backend" */
        int (*lookup)(const char *s);
        int max;
        const char *expected;           /* for the message */
} NameSet;

static const NameSet verb_set = {
        "verb", verb_lookup, _POLICY_VERB_MAX,
        "all, list, create-region, destroy-region, register-vm, unregister-vm, attach, detach, get-fd, migrate, "
        "discard, set-attributes or reload",
};

static const NameSet backend_set = {
        "backend", backend_lookup, _BACKEND_MAX, "all, memfd, hugetlb, secret, kmod or guest_memfd",
};

static int parse_name_set(Parser *p, const char *path, json_object *o, const NameSet *set, uint32_t *ret) {
        uint32_t mask = 0;
        size_t n;
        int r;

        r = parse_list(p, path, o, &n);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                json_object *v = json_object_array_get_idx(o, i);
                char ipath[KEY_PATH_MAX], what[32];
                const char *name;
                int k;

                key_path(ipath, "%s[%zu]", path, i);
                (void) snprintf(what, sizeof(what), "a %s name", set->what);
                if (expect_type(p, ipath, v, json_type_string, what) < 0)
                        return -EINVAL;
                name = json_object_get_string(v);
                if (streq(name, "all")) {
                        mask |= (UINT32_C(1) << set->max) - 1;
                        continue;
                }
                k = set->lookup(name);
                if (k < 0)
                        return fail(p, ipath, "unknown %s \"%.64s\"; expected %s", set->what, name, set->expected);
                mask |= UINT32_C(1) << k;
        }
        *ret = mask;
        return 0;
}

static int append_id(uint32_t **ids, size_t *n, uint32_t id) {
        uint32_t *l;

        for (size_t i = 0; i < *n; i++)
                if ((*ids)[i] == id)
                        return 0;
        l = realloc(*ids, (*n + 1) * sizeof(uint32_t));
        if (!l)
                return -ENOMEM;
        l[(*n)++] = id;
        *ids = l;
        return 0;
}

static int parse_ids(Parser *p, const char *path, json_object *o, uint32_t **ids, size_t *n_ids) {
        size_t n;
        int r;

        r = parse_list(p, path, o, &n);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                json_object *v = json_object_array_get_idx(o, i);
                char ipath[KEY_PATH_MAX];
                uint64_t id;

                key_path(ipath, "%s[%zu]", path, i);
                if (json_object_get_type(v) != json_type_int)
                        return fail(p, ipath, "expected a numeric id, got %s", json_type_name(v));
                r = parse_amount(p, ipath, v, false, &id);
                if (r < 0)
                        return r;
                if (id >= UINT32_MAX)
                        return fail(p, ipath, "id %" PRIu64 " is out of range (0 to 4294967294)", id);
                if (append_id(ids, n_ids, (uint32_t) id) < 0)
                        return gmem_error_set_errno(p->error, ENOMEM, "%s", p->origin);
        }
        return 0;
}

static int resolve_names(Parser *p, const char *path, json_object *o, bool users, uint32_t **ids, size_t *n_ids) {
        size_t n;
        int r;

        r = parse_list(p, path, o, &n);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                json_object *v = json_object_array_get_idx(o, i);
                char ipath[KEY_PATH_MAX], buf[16384];
                const char *name;
                uint32_t id;
                bool found;

                key_path(ipath, "%s[%zu]", path, i);
                if (expect_type(p, ipath, v, json_type_string, users ? "a user name" : "a group name") < 0)
                        return -EINVAL;
                name = json_object_get_string(v);
                if (isempty(name) || strlen(name) > 256)
                        return fail(p, ipath, "expected a %s name of 1 to 256 characters", users ? "user" : "group");

                if (users) {
                        struct passwd pw, *res = NULL;
                        found = getpwnam_r(name, &pw, buf, sizeof(buf), &res) == 0 && res;
                        id = found ? (uint32_t) res->pw_uid : 0;
                } else {
                        struct group gr, *res = NULL;
                        found = getgrnam_r(name, &gr, buf, sizeof(buf), &res) == 0 && res;
                        id = found ? (uint32_t) res->gr_gid : 0;
                }
                if (!found) {
                        if (warn(p, ipath, "no %s '%.64s' on this host; left out", users ? "user" : "group", name) < 0)
                                return gmem_error_set_errno(p->error, ENOMEM, "%s", p->origin);
                        continue;
                }
                if (append_id(ids, n_ids, id) < 0)
                        return gmem_error_set_errno(p->error, ENOMEM, "%s", p->origin);
        }
        return 0;
}

static int parse_match(Parser *p, const char *path, json_object *o, PolicyClass *c) {
        static const char *const keys[] = { "uids", "users", "gids", "groups" };
        char kpath[KEY_PATH_MAX];
        json_object *v;
        int r;

        if (expect_type(p, path, o, json_type_object, "an object") < 0)
                return -EINVAL;
        r = check_keys(p, path, o, keys, ELEMENTSOF(keys));
        if (r < 0)
                return r;
        if (json_object_object_length(o) == 0)
                return fail(p, path, "expected at least one of uids, users, gids, groups");

        if (json_object_object_get_ex(o, "uids", &v)) {
                key_path(kpath, "%s.uids", path);
                r = parse_ids(p, kpath, v, (uint32_t **) &c->uids, &c->n_uids);
                if (r < 0)
                        return r;
        }
        if (json_object_object_get_ex(o, "users", &v)) {
                key_path(kpath, "%s.users", path);
                r = resolve_names(p, kpath, v, true, (uint32_t **) &c->uids, &c->n_uids);
                if (r < 0)
                        return r;
        }
        if (json_object_object_get_ex(o, "gids", &v)) {
                key_path(kpath, "%s.gids", path);
                r = parse_ids(p, kpath, v, (uint32_t **) &c->gids, &c->n_gids);
                if (r < 0)
                        return r;
        }
        if (json_object_object_get_ex(o, "groups", &v)) {
                key_path(kpath, "%s.groups", path);
                r = resolve_names(p, kpath, v, false, (uint32_t **) &c->gids, &c->n_gids);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int parse_quota(Parser *p, const char *path, json_object *o, PolicyClass *c) {
        int r;

        if (expect_type(p, path, o, json_type_object, "an object") < 0)
                return -EINVAL;
        /* The keys of a quota are the names of the quota kinds. */
        r = check_keys(p, path, o, quota_kind_table, ELEMENTSOF(quota_kind_table));
        if (r < 0)
                return r;
        for (QuotaKind k = 0; k < _QUOTA_KIND_MAX; k++) {
                json_object *v;
                char kpath[KEY_PATH_MAX];

                if (!json_object_object_get_ex(o, quota_kind_to_string(k), &v))
                        continue;
                key_path(kpath, "%s.%s", path, quota_kind_to_string(k));
                r = parse_amount(p, kpath, v, k == QUOTA_BYTES, &c->quota[k]);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int parse_class(Parser *p, const char *path, json_object *o, PolicyClass *c) {
        static const char *const keys[] = { "name", "match", "verbs", "scope", "backends", "max_region_size", "quota" };
        char kpath[KEY_PATH_MAX];
        json_object *v;
        int r;

        if (expect_type(p, path, o, json_type_object, "an object") < 0)
                return -EINVAL;
        r = check_keys(p, path, o, keys, ELEMENTSOF(keys));
        if (r < 0)
                return r;

        for (QuotaKind k = 0; k < _QUOTA_KIND_MAX; k++)
                c->quota[k] = POLICY_UNLIMITED;
        c->max_region_size = POLICY_UNLIMITED;
        c->backends = UINT32_C(1) << BACKEND_MEMFD;

        key_path(kpath, "%s.name", path);
        if (!json_object_object_get_ex(o, "name", &v))
                return fail(p, path, "missing key 'name'");
        if (expect_type(p, kpath, v, json_type_string, "a class name") < 0)
                return -EINVAL;
        if (!gmem_name_is_valid(json_object_get_string(v)))
                return fail(p, kpath, "invalid class name \"%.64s\": expected 1 to 64 characters of [A-Za-z0-9_.-]",
                            json_object_get_string(v));
        for (size_t i = 0; i < p->policy->n_classes; i++)
                if (streq(p->policy->classes[i].name, json_object_get_string(v)))
                        return fail(p, kpath, "duplicate class \"%s\" (also classes[%zu])", json_object_get_string(v), i);
        c->name = strdup(json_object_get_string(v));
        if (!c->name)
                return gmem_error_set_errno(p->error, ENOMEM, "%s", p->origin);

        key_path(kpath, "%s.match", path);
        if (!json_object_object_get_ex(o, "match", &v))
                return fail(p, path, "missing key 'match'");
        r = parse_match(p, kpath, v, c);
        if (r < 0)
                return r;

        key_path(kpath, "%s.verbs", path);
        if (!json_object_object_get_ex(o, "verbs", &v))
                return fail(p, path, "missing key 'verbs'");
        r = parse_name_set(p, kpath, v, &verb_set, &c->verbs);
        if (r < 0)
                return r;

        c->scope = POLICY_SCOPE_OWN;
        if (json_object_object_get_ex(o, "scope", &v)) {
                key_path(kpath, "%s.scope", path);
                if (expect_type(p, kpath, v, json_type_string, "\"own\" or \"all\"") < 0)
                        return -EINVAL;
                c->scope = policy_scope_from_string(json_object_get_string(v));
                if (c->scope < 0)
                        return fail(p, kpath, "unknown scope \"%.64s\"; expected own or all",
                                    json_object_get_string(v));
        }

        if (json_object_object_get_ex(o, "backends", &v)) {
                key_path(kpath, "%s.backends", path);
                r = parse_name_set(p, kpath, v, &backend_set, &c->backends);
                if (r < 0)
                        return r;
        }
        if (json_object_object_get_ex(o, "max_region_size", &v)) {
                key_path(kpath, "%s.max_region_size", path);
                r = parse_amount(p, kpath, v, true, &c->max_region_size);
                if (r < 0)
                        return r;
        }
        if (json_object_object_get_ex(o, "quota", &v)) {
                key_path(kpath, "%s.quota", path);
                r = parse_quota(p, kpath, v, c);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int parse_top(Parser *p, json_object *o) {
        static const char *const keys[] = { "version", "classes" };
        json_object *v;
        size_t n;
        int r;

        if (expect_type(p, "", o, json_type_object, "an object") < 0)
                return -EINVAL;
        r = check_keys(p, "", o, keys, ELEMENTSOF(keys));
        if (r < 0)
                return r;
        if (!json_object_object_get_ex(o, "version", &v))
                return fail(p, "", "missing key 'version' (expected 1)");
        if (json_object_get_type(v) != json_type_int || json_object_get_int64(v) != 1)
                return fail(p, "version", "expected 1, got %.32s", json_object_to_json_string(v));

        if (!json_object_object_get_ex(o, "classes", &v))
                return fail(p, "", "missing key 'classes'");
        if (expect_type(p, "classes", v, json_type_array, "an array of classes") < 0)
                return -EINVAL;
        n = json_object_array_length(v);
        if (n > POLICY_CLASSES_MAX)
                return fail(p, "classes", "%zu classes, the limit is %d", n, POLICY_CLASSES_MAX);

        p->policy->classes = calloc(n ? n : 1, sizeof(PolicyClass));
        if (!p->policy->classes)
                return gmem_error_set_errno(p->error, ENOMEM, "%s", p->origin);
        for (size_t i = 0; i < n; i++) {
                char path[KEY_PATH_MAX];

                key_path(path, "classes[%zu]", i);
                r = parse_class(p, path, json_object_array_get_idx(v, i), &p->policy->classes[i]);
                p->policy->n_classes = i + 1;   /* so that policy_free() frees what was parsed */
                if (r < 0)
                        return r;
        }
        return 0;
}

Policy *policy_free(Policy *p) {
        if (!p)
                return NULL;
        for (size_t i = 0; i < p->n_classes; i++) {
                free(p->classes[i].name);
                free(p->classes[i].uids);
                free(p->classes[i].gids);
        }
        for (size_t i = 0; i < p->n_warnings; i++)
                free(p->warnings[i]);
        free(p->warnings);
        free(p->classes);
        free(p->origin);
        free(p);
        return NULL;
}

int policy_parse(const char *text, size_t len, const char *origin, Policy **ret, GmemError *e) {
        _cleanup_(policy_freep) Policy *policy = NULL;
        struct json_tokener *tok;
        json_object *root;
        Parser p;
        int r;

        if (len > POLICY_FILE_MAX)
                return gmem_error_set(e, GMEM_ERROR_INVALID_ARGUMENT, "%s: %zu bytes, the limit is %d", origin, len,
                                      POLICY_FILE_MAX);
        if (len > INT32_MAX)
                return gmem_error_set(e, GMEM_ERROR_INVALID_ARGUMENT, "%s: too large", origin);

        /*
         * json-c cuts strings and keys at an escaped NUL, so "root\u0000x" would be
         * read as "root": refuse NULs, raw or escaped, before anything is parsed.
         */
        if (memchr(text, 0, len))
                return gmem_error_set(e, GMEM_ERROR_INVALID_ARGUMENT, "%s: contains a NUL byte", origin);
        if (memmem(text, len, "\\u0000", 6))
                return gmem_error_set(e, GMEM_ERROR_INVALID_ARGUMENT, "%s: contains \\u0000: NUL characters are not "
                                      "allowed in names or values", origin);

        policy = calloc(1, sizeof(*policy));
        if (!policy)
                return gmem_error_set_errno(e, ENOMEM, "%s", origin);
        policy->origin = strdup(origin);
        if (!policy->origin)
                return gmem_error_set_errno(e, ENOMEM, "%s", origin);

        tok = json_tokener_new_ex(POLICY_DEPTH_MAX);
        if (!tok)
                return gmem_error_set_errno(e, ENOMEM, "%s", origin);
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
        root = json_tokener_parse_ex(tok, text, (int) len);
        if (!root || json_tokener_get_error(tok) != json_tokener_success ||
            (size_t) json_tokener_get_parse_end(tok) < len) {
                enum json_tokener_error je = json_tokener_get_error(tok);
                size_t at = json_tokener_get_parse_end(tok);
                /* Count the line of the error for a person reading the message. */
                unsigned line = 1;
                for (size_t i = 0; i < at && i < len; i++)
                        line += text[i] == '\n';
                if (je == json_tokener_success)
                        r = gmem_error_set(e, GMEM_ERROR_INVALID_ARGUMENT, "%s:%u: syntax error: trailing data after "
                                           "the policy object", origin, line);
                else if (je == json_tokener_continue)
                        r = gmem_error_set(e, GMEM_ERROR_INVALID_ARGUMENT, "%s:%u: syntax error: unexpected end of "
                                           "file", origin, line);
                else if (je == json_tokener_error_depth)
                        r = gmem_error_set(e, GMEM_ERROR_INVALID_ARGUMENT, "%s:%u: nested more than %d levels deep",
                                           origin, line, POLICY_DEPTH_MAX);
                else
                        r = gmem_error_set(e, GMEM_ERROR_INVALID_ARGUMENT, "%s:%u: syntax error: %s", origin, line,
                                           json_tokener_error_desc(je));
                json_object_put(root);
                json_tokener_free(tok);
                return r;
        }
        json_tokener_free(tok);

        p = (Parser) { .origin = origin, .error = e, .policy = policy };
        r = parse_top(&p, root);
        json_object_put(root);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(policy);
        return 0;
}

int policy_load_file(const char *path, Policy **ret, GmemError *e) {
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *buf = NULL;
        struct stat st;
        size_t len = 0;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return gmem_error_set_errno(e, errno, "Cannot open policy %s", path);
        if (fstat(fd, &st) < 0)
                return gmem_error_set_errno(e, errno, "Cannot stat policy %s", path);
        if (!S_ISREG(st.st_mode))
                return gmem_error_set(e, GMEM_ERROR_INVALID_ARGUMENT, "%s: not a regular file", path);
        if (st.st_size > POLICY_FILE_MAX)
                return gmem_error_set(e, GMEM_ERROR_INVALID_ARGUMENT, "%s: %lld bytes, the limit is %d", path,
                                      (long long) st.st_size, POLICY_FILE_MAX);

        /* Read at most one byte past the limit: the file may grow after fstat(). */
        buf = malloc(POLICY_FILE_MAX + 1);
        if (!buf)
                return gmem_error_set_errno(e, ENOMEM, "Cannot read policy %s", path);
        for (;;) {
                ssize_t n = read(fd, buf + len, POLICY_FILE_MAX + 1 - len);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return gmem_error_set_errno(e, errno, "Cannot read policy %s", path);
                }
                if (n == 0)
                        break;
                len += (size_t) n;
                if (len > POLICY_FILE_MAX)
                        return gmem_error_set(e, GMEM_ERROR_INVALID_ARGUMENT, "%s: larger than %d bytes", path,
                                              POLICY_FILE_MAX);
        }
        return policy_parse(buf, len, path, ret, e);
}

int policy_load_builtin(Policy **ret, GmemError *e) {
        return policy_parse(policy_builtin_json, strlen(policy_builtin_json), "built-in policy", ret, e);
}

static bool id_in(const uint32_t *ids, size_t n, uint32_t id) {
        for (size_t i = 0; i < n; i++)
                if (ids[i] == id)
                        return true;
        return false;
}

const PolicyClass *policy_match(const Policy *p, const Caller *c) {
        if (!p || !c)
                return NULL;
        for (size_t i = 0; i < p->n_classes; i++) {
                const PolicyClass *k = &p->classes[i];

                if (id_in((const uint32_t *) k->uids, k->n_uids, (uint32_t) c->uid))
                        return k;
                for (size_t j = 0; j < c->n_gids; j++)
                        if (id_in((const uint32_t *) k->gids, k->n_gids, (uint32_t) c->gids[j]))
                                return k;
        }
        return NULL;
}
