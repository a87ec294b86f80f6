/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * policy.h — who may do what: the policy file's caller classes, parsed and
 * validated into plain data, and matched against the credentials the bus
 * captured for a caller. A class names the verbs its members may use, the
 * backends they may create regions on, the largest region and the quotas
 * each member (each uid) may hold. The first class that matches decides.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "gmem-errors.h"
#include "wire.h"

#define POLICY_DEFAULT_PATH GMEMD_SYSCONFDIR "/gmemd/policy.json"
#define POLICY_FILE_MAX (1024 * 1024)     /* bytes */
#define POLICY_DEPTH_MAX 8                /* JSON nesting */
#define POLICY_CLASSES_MAX 1024
#define POLICY_LIST_MAX 4096              /* entries of any list */
#define POLICY_UNLIMITED UINT64_MAX

typedef enum PolicyVerb {
        POLICY_VERB_LIST,
        POLICY_VERB_CREATE_REGION,
        POLICY_VERB_DESTROY_REGION,
        POLICY_VERB_REGISTER_VM,
        POLICY_VERB_UNREGISTER_VM,
        POLICY_VERB_ATTACH,
        POLICY_VERB_DETACH,
        POLICY_VERB_GET_FD,
        POLICY_VERB_MIGRATE,
        POLICY_VERB_DISCARD,            /* Discard and Allocate */
        POLICY_VERB_SET_ATTRIBUTES,
        POLICY_VERB_RELOAD,
        _POLICY_VERB_MAX,
        _POLICY_VERB_INVALID = -EINVAL,
} PolicyVerb;

const char *policy_verb_to_string(PolicyVerb v) _pure_;
PolicyVerb policy_verb_from_string(const char *s) _pure_;

typedef enum QuotaKind {
        QUOTA_BYTES,
        QUOTA_REGIONS,
        QUOTA_VMS,
        QUOTA_VIEWS,
        _QUOTA_KIND_MAX,
        _QUOTA_KIND_INVALID = -EINVAL,
} QuotaKind;

const char *quota_kind_to_string(QuotaKind k) _pure_;
QuotaKind quota_kind_from_string(const char *s) _pure_;

/*
 * Which objects a class's verbs reach: own, the regions, VMs and views its
 * member's uid created (the object's creator); all, every object on the host.
 */
typedef enum PolicyScope {
        POLICY_SCOPE_OWN,
        POLICY_SCOPE_ALL,
        _POLICY_SCOPE_MAX,
        _POLICY_SCOPE_INVALID = -EINVAL,
} PolicyScope;

const char *policy_scope_to_string(PolicyScope s) _pure_;
PolicyScope policy_scope_from_string(const char *s) _pure_;

typedef struct PolicyClass {
        char *name;
        uid_t *uids;                    /* from "uids" and resolved "users" */
        size_t n_uids;
        gid_t *gids;                    /* resolved "groups" */
        size_t n_gids;
        uint32_t verbs;                 /* bit per PolicyVerb */
        PolicyScope scope;              /* POLICY_SCOPE_OWN if unset */
        uint32_t backends;              /* bit per BackendType */
        uint64_t max_region_size;       /* POLICY_UNLIMITED if unset */
        uint64_t quota[_QUOTA_KIND_MAX];
} PolicyClass;

typedef struct Policy {
        char *origin;                   /* file path or "built-in" */
        PolicyClass *classes;
        size_t n_classes;
        char **warnings;                /* users or groups that do not exist */
        size_t n_warnings;
} Policy;

/* The caller as the bus captured it. */
typedef struct Caller {
        uid_t uid;
        const gid_t *gids;              /* primary and supplementary */
        size_t n_gids;
} Caller;

/*
 * Parses a policy. On failure returns -errno and a message in e naming the
 * origin, the key path and what was expected. Users and groups are resolved
 * here, once; names that do not exist are left out with a warning.
 */
int policy_parse(const char *text, size_t len, const char *origin, Policy **ret, GmemError *e);
/* Reads at most POLICY_FILE_MAX bytes of path and parses them. */
int policy_load_file(const char *path, Policy **ret, GmemError *e);
/* The built-in default, identical to policy/default.json. */
int policy_load_builtin(Policy **ret, GmemError *e);
Policy *policy_free(Policy *p);
DEFINE_TRIVIAL_CLEANUP_FUNC(Policy *, policy_free);

/* The first class the caller belongs to, or NULL. */
const PolicyClass *policy_match(const Policy *p, const Caller *c);
static inline bool policy_class_allows(const PolicyClass *c, PolicyVerb v) {
        return c && v >= 0 && v < _POLICY_VERB_MAX && (c->verbs & (UINT32_C(1) << v));
}
/* Whether the class's verbs reach an object the given uid created, for a member with uid. */
static inline bool policy_class_reaches(const PolicyClass *c, uid_t uid, uid_t creator) {
        return c && (c->scope == POLICY_SCOPE_ALL || creator == uid);
}
static inline bool policy_class_allows_backend(const PolicyClass *c, BackendType t) {
        return c && t >= 0 && t < _BACKEND_MAX && (c->backends & (UINT32_C(1) << t));
}
