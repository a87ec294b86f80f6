/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fuzz-policy.c — fuzzes the policy parser (daemon/host/policy.c) with arbitrary
 * bytes as the policy file. The parser must accept exactly the policies
 * gmemd.policy(5) describes; the harness decides that independently with a
 * small validator of its own over json-c's reading of the same bytes (so
 * JSON syntax is json-c's, and everything above it — keys, types, ranges,
 * limits, uniqueness — is checked twice). Then:
 *   - a refused policy leaves *ret untouched and a message naming the origin;
 *   - an accepted policy has well-formed classes and round-trips: written
 *     back as JSON (ids instead of names) it parses to the same policy;
 *   - policy_match() picks the first class that names the caller;
 *   - nothing leaks (LeakSanitizer, in the libFuzzer build).
 */
#include <inttypes.h>
#include <json-c/json.h>

#include "fuzz.h"
#include "parse.h"
#include "policy.h"

#define ORIGIN "fuzz.json"

/* --- the reference validator, written from gmemd.policy(5) --- */

/* A JSON string without an embedded NUL (C code sees all of it). */
static bool ref_string(json_object *o, const char **ret) {
        if (!json_object_is_type(o, json_type_string))
                return false;
        *ret = json_object_get_string(o);
        return strlen(*ret) == (size_t) json_object_get_string_len(o);
}

static bool ref_keys(json_object *o, const char *const *keys) {
        json_object_object_foreach(o, key, val) {
                bool known = false;
                (void) val;
                for (size_t i = 0; keys[i]; i++)
                        known = known || streq(key, keys[i]);
                if (!known)
                        return false;
        }
        return true;
}

/* A non-negative integer below 2^64 - 1, "unlimited", or (sizes) a size string. */
static bool ref_amount(json_object *o, bool size) {
        const char *s;
        uint64_t v;

        if (json_object_is_type(o, json_type_string)) {
                if (!ref_string(o, &s))
                        return false;
                return streq(s, "unlimited") || (size && gmem_parse_size(s, &v) == 0);
        }
        if (!json_object_is_type(o, json_type_int))
                return false;
        if (json_object_get_int64(o) < 0)
                return false;
        /* json-c keeps values above INT64_MAX as unsigned and saturates past 2^64 - 1. */
        return json_object_get_uint64(o) != UINT64_MAX;
}

static bool ref_list(json_object *o) {
        return json_object_is_type(o, json_type_array) && json_object_array_length(o) <= POLICY_LIST_MAX;
}

static bool ref_ids(json_object *o) {
        if (!ref_list(o))
                return false;
        for (size_t i = 0; i < json_object_array_length(o); i++) {
                json_object *v = json_object_array_get_idx(o, i);
                if (!json_object_is_type(v, json_type_int) || !ref_amount(v, false) ||
                    json_object_get_uint64(v) >= UINT32_MAX)
                        return false;
        }
        return true;
}

static bool ref_names(json_object *o) {
        const char *s;

        if (!ref_list(o))
                return false;
        for (size_t i = 0; i < json_object_array_length(o); i++)
                if (!ref_string(json_object_array_get_idx(o, i), &s) || strlen(s) < 1 || strlen(s) > 256)
                        return false;
        return true;
}

static bool ref_words(json_object *o, const char *const *words) {
        const char *s;

        if (!ref_list(o))
                return false;
        for (size_t i = 0; i < json_object_array_length(o); i++) {
                bool known = false;
                if (!ref_string(json_object_array_get_idx(o, i), &s))
                        return false;
                for (size_t j = 0; words[j]; j++)
                        known = known || streq(s, words[j]);
                if (!known)
                        return false;
        }
        return true;
}

static bool ref_class(json_object *o, const char **names, size_t n_names) {
        static const char *const class_keys[] = { "name", "match", "verbs", "scope", "backends", "max_region_size", "quota",
                                                    NULL };
        static const char *const match_keys[] = { "uids", "users", "gids", "groups", NULL };
        static const char *const quota_keys[] = { "bytes", "regions", "vms", "views", NULL };
        static const char *const verbs[] = { "all", "list", "create-region", "destroy-region", "register-vm",
                                             "unregister-vm", "attach", "detach", "get-fd", "migrate", "discard",
                                             "set-attributes", "reload", NULL };
        static const char *const backends[] = { "all", "memfd", "hugetlb", "secret", "kmod", NULL };
        json_object *v, *match;
        const char *name, *scope;

        if (!json_object_is_type(o, json_type_object) || !ref_keys(o, class_keys))
                return false;
        if (!json_object_object_get_ex(o, "name", &v) || !ref_string(v, &name))
                return false;
        if (strlen(name) < 1 || strlen(name) > GMEM_NAME_MAX || strspn(name, "abcdefghijklmnopqrstuvwxyz"
                                                                       "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") !=
                                                                       strlen(name))
                return false;
        for (size_t i = 0; i < n_names; i++)
                if (streq(names[i], name))
                        return false;
        names[n_names] = name;

        if (!json_object_object_get_ex(o, "match", &match) || !json_object_is_type(match, json_type_object) ||
            !ref_keys(match, match_keys) || json_object_object_length(match) == 0)
                return false;
        if (json_object_object_get_ex(match, "uids", &v) && !ref_ids(v))
                return false;
        if (json_object_object_get_ex(match, "gids", &v) && !ref_ids(v))
                return false;
        if (json_object_object_get_ex(match, "users", &v) && !ref_names(v))
                return false;
        if (json_object_object_get_ex(match, "groups", &v) && !ref_names(v))
                return false;

        if (!json_object_object_get_ex(o, "verbs", &v) || !ref_words(v, verbs))
                return false;
        if (json_object_object_get_ex(o, "scope", &v) &&
            (!ref_string(v, &scope) || !(streq(scope, "own") || streq(scope, "all"))))
                return false;
        if (json_object_object_get_ex(o, "backends", &v) && !ref_words(v, backends))
                return false;
        if (json_object_object_get_ex(o, "max_region_size", &v) && !ref_amount(v, true))
                return false;
        if (json_object_object_get_ex(o, "quota", &v)) {
                json_object *q;
                if (!json_object_is_type(v, json_type_object) || !ref_keys(v, quota_keys))
                        return false;
                for (size_t i = 0; quota_keys[i]; i++)
                        if (json_object_object_get_ex(v, quota_keys[i], &q) && !ref_amount(q, i == 0))
                                return false;
        }
        return true;
}

static bool ref_policy_is_valid(const uint8_t *data, size_t size) {
        static const char *const top_keys[] = { "version", "classes", NULL };
        struct json_tokener *tok;
        json_object *root, *v, *classes;
        const char **names = NULL;
        bool ok = false;
        size_t n;

        if (size > POLICY_FILE_MAX)
                return false;
        tok = json_tokener_new_ex(POLICY_DEPTH_MAX);
        FUZZ_CHECK(tok, "json_tokener_new_ex()");
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
        root = json_tokener_parse_ex(tok, (const char *) data, (int) size);
        if (!root || json_tokener_get_error(tok) != json_tokener_success ||
            (size_t) json_tokener_get_parse_end(tok) != size)
                goto out;

        if (!json_object_is_type(root, json_type_object) || !ref_keys(root, top_keys))
                goto out;
        if (!json_object_object_get_ex(root, "version", &v) || !json_object_is_type(v, json_type_int) ||
            json_object_get_int64(v) != 1)
                goto out;
        if (!json_object_object_get_ex(root, "classes", &classes) || !json_object_is_type(classes, json_type_array))
                goto out;
        n = json_object_array_length(classes);
        if (n > POLICY_CLASSES_MAX)
                goto out;
        names = calloc(n + 1, sizeof(char *));
        FUZZ_CHECK(names, "calloc()");
        for (size_t i = 0; i < n; i++)
                if (!ref_class(json_object_array_get_idx(classes, i), names, i))
                        goto out;
        ok = true;
out:
        free(names);
        json_object_put(root);
        json_tokener_free(tok);
        return ok;
}

/* --- round trip --- */

static json_object *amount_to_json(uint64_t v) {
        return v == POLICY_UNLIMITED ? json_object_new_string("unlimited") : json_object_new_uint64(v);
}

static json_object *ids_to_json(const uint32_t *ids, size_t n) {
        json_object *a = json_object_new_array();
        for (size_t i = 0; i < n; i++)
                json_object_array_add(a, json_object_new_int64(ids[i]));
        return a;
}

static char *policy_to_json(const Policy *p) {
        json_object *root = json_object_new_object(), *classes = json_object_new_array();
        char *s;

        json_object_object_add(root, "version", json_object_new_int(1));
        for (size_t i = 0; i < p->n_classes; i++) {
                const PolicyClass *c = &p->classes[i];
                json_object *o = json_object_new_object(), *match = json_object_new_object(),
                            *verbs = json_object_new_array(), *backends = json_object_new_array(),
                            *quota = json_object_new_object();

                json_object_object_add(o, "name", json_object_new_string(c->name));
                json_object_object_add(match, "uids", ids_to_json((const uint32_t *) c->uids, c->n_uids));
                json_object_object_add(match, "gids", ids_to_json((const uint32_t *) c->gids, c->n_gids));
                json_object_object_add(o, "match", match);
                for (PolicyVerb v = 0; v < _POLICY_VERB_MAX; v++)
                        if (policy_class_allows(c, v))
                                json_object_array_add(verbs, json_object_new_string(policy_verb_to_string(v)));
                json_object_object_add(o, "verbs", verbs);
                json_object_object_add(o, "scope", json_object_new_string(policy_scope_to_string(c->scope)));
                for (BackendType t = 0; t < _BACKEND_MAX; t++)
                        if (policy_class_allows_backend(c, t))
                                json_object_array_add(backends, json_object_new_string(backend_type_to_string(t)));
                json_object_object_add(o, "backends", backends);
                json_object_object_add(o, "max_region_size", amount_to_json(c->max_region_size));
                for (QuotaKind k = 0; k < _QUOTA_KIND_MAX; k++)
                        json_object_object_add(quota, quota_kind_to_string(k), amount_to_json(c->quota[k]));
                json_object_object_add(o, "quota", quota);
                json_object_array_add(classes, o);
        }
        json_object_object_add(root, "classes", classes);
        s = strdup(json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN));
        json_object_put(root);
        FUZZ_CHECK(s, "strdup()");
        return s;
}

static void check_same(const Policy *a, const Policy *b) {
        FUZZ_CHECK(a->n_classes == b->n_classes, "the round trip keeps %zu classes", a->n_classes);
        for (size_t i = 0; i < a->n_classes; i++) {
                const PolicyClass *x = &a->classes[i], *y = &b->classes[i];

                FUZZ_CHECK(streq(x->name, y->name), "class %zu keeps its name '%s'", i, x->name);
                FUZZ_CHECK(x->n_uids == y->n_uids && (x->n_uids == 0 || memcmp(x->uids, y->uids, x->n_uids * sizeof(uid_t)) == 0),
                           "class '%s' keeps its uids", x->name);
                FUZZ_CHECK(x->n_gids == y->n_gids && (x->n_gids == 0 || memcmp(x->gids, y->gids, x->n_gids * sizeof(gid_t)) == 0),
                           "class '%s' keeps its gids", x->name);
                FUZZ_CHECK(x->verbs == y->verbs, "class '%s' keeps its verbs", x->name);
                FUZZ_CHECK(x->backends == y->backends, "class '%s' keeps its backends", x->name);
                FUZZ_CHECK(x->scope == y->scope, "class '%s' keeps its scope", x->name);
                FUZZ_CHECK(x->max_region_size == y->max_region_size, "class '%s' keeps max_region_size", x->name);
                FUZZ_CHECK(memcmp(x->quota, y->quota, sizeof(x->quota)) == 0, "class '%s' keeps its quotas", x->name);
        }
}

static void check_well_formed(const Policy *p) {
        FUZZ_CHECK(p->origin && streq(p->origin, ORIGIN), "the policy remembers its origin");
        FUZZ_CHECK(p->n_classes <= POLICY_CLASSES_MAX, "at most %d classes", POLICY_CLASSES_MAX);
        for (size_t i = 0; i < p->n_classes; i++) {
                const PolicyClass *c = &p->classes[i];

                FUZZ_CHECK(gmem_name_is_valid(c->name), "class %zu has a valid name", i);
                for (size_t j = 0; j < i; j++)
                        FUZZ_CHECK(!streq(c->name, p->classes[j].name), "class names are unique ('%s')", c->name);
                FUZZ_CHECK(c->verbs < (UINT32_C(1) << _POLICY_VERB_MAX), "class '%s' has known verbs only", c->name);
                FUZZ_CHECK(c->backends < (UINT32_C(1) << _BACKEND_MAX), "class '%s' has known backends only", c->name);
                FUZZ_CHECK(c->scope >= 0 && c->scope < _POLICY_SCOPE_MAX, "class '%s' has a known scope", c->name);
                FUZZ_CHECK(c->n_uids <= 2 * POLICY_LIST_MAX && c->n_gids <= 2 * POLICY_LIST_MAX,
                           "class '%s' has bounded id lists", c->name);
                for (size_t j = 0; j < c->n_uids; j++)
                        FUZZ_CHECK(c->uids[j] != (uid_t) -1, "class '%s' has no uid -1", c->name);
                for (size_t j = 0; j < c->n_gids; j++)
                        FUZZ_CHECK(c->gids[j] != (gid_t) -1, "class '%s' has no gid -1", c->name);
        }
        for (size_t i = 0; i < p->n_warnings; i++)
                FUZZ_CHECK(p->warnings[i] && strncmp(p->warnings[i], ORIGIN ": ", strlen(ORIGIN ": ")) == 0,
                           "warning %zu names the origin", i);
}

static const PolicyClass *ref_match(const Policy *p, const Caller *c) {
        for (size_t i = 0; i < p->n_classes; i++) {
                const PolicyClass *k = &p->classes[i];
                for (size_t j = 0; j < k->n_uids; j++)
                        if (k->uids[j] == c->uid)
                                return k;
                for (size_t j = 0; j < k->n_gids; j++)
                        for (size_t g = 0; g < c->n_gids; g++)
                                if (k->gids[j] == c->gids[g])
                                        return k;
        }
        return NULL;
}

static void check_match(const Policy *p) {
        /* Ids the policy names, their neighbours, and ids nobody names. */
        uid_t probe[8] = { 0, 1, 1000, 65534, (uid_t) -2 };
        size_t n = 5;

        if (p->n_classes > 0 && p->classes[0].n_uids > 0)
                probe[n++] = p->classes[0].uids[0];
        if (p->n_classes > 0 && p->classes[p->n_classes - 1].n_gids > 0)
                probe[n++] = p->classes[p->n_classes - 1].gids[0];
        if (p->n_classes > 1 && p->classes[1].n_uids > 0)
                probe[n++] = p->classes[1].uids[0] + 1;

        for (size_t i = 0; i < n; i++)
                for (size_t j = 0; j < n; j++) {
                        gid_t gids[2] = { probe[j], probe[(j + 1) % n] };
                        Caller c = { .uid = probe[i], .gids = gids, .n_gids = 1 + (i & 1) };
                        FUZZ_CHECK(policy_match(p, &c) == ref_match(p, &c), "uid %u gid %u matches the first class "
                                   "that names it", (unsigned) c.uid, (unsigned) gids[0]);
                }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static Policy sentinel;
        GmemError e = GMEM_ERROR_INIT;
        Policy *p = &sentinel;
        bool valid;
        int r;

        if (size > POLICY_FILE_MAX + 1)
                return 0;

        r = policy_parse((const char *) data, size, ORIGIN, &p, &e);
        /* gmemd.policy(5): no NUL characters anywhere, raw or escaped (json-c would cut names at them). */
        valid = !memchr(data, 0, size) && !memmem(data, size, "\\u0000", 6) && ref_policy_is_valid(data, size);

        if (r < 0) {
                FUZZ_CHECK(!valid, "a valid policy is accepted: %s", e.message);
                FUZZ_CHECK(p == &sentinel, "a refused policy leaves *ret untouched");
                FUZZ_CHECK(gmem_error_is_set(&e) && strncmp(e.message, ORIGIN, strlen(ORIGIN)) == 0,
                           "the error names the origin: '%s'", e.message);
                FUZZ_CHECK(memchr(e.message, 0, sizeof(e.message)), "the message is terminated");
                return 0;
        }

        FUZZ_CHECK(r == 0, "policy_parse() returns 0 or a negative errno, got %d", r);
        FUZZ_CHECK(valid, "an invalid policy is refused (accepted with %zu classes)", p->n_classes);
        FUZZ_CHECK(p && p != &sentinel, "an accepted policy is returned");
        FUZZ_CHECK(!gmem_error_is_set(&e), "success sets no error: %s", e.message);
        check_well_formed(p);
        check_match(p);

        /* Written back with ids instead of names, it is the same policy. */
        _cleanup_free_ char *text = policy_to_json(p);
        GmemError e2 = GMEM_ERROR_INIT;
        Policy *q = NULL;

        r = policy_parse(text, strlen(text), ORIGIN, &q, &e2);
        FUZZ_CHECK(r == 0, "the policy written back parses: %s (%s)", e2.message, text);
        check_same(p, q);
        FUZZ_CHECK(q->n_warnings == 0, "ids need no lookups, so no warnings");

        policy_free(q);
        policy_free(p);
        return 0;
}
