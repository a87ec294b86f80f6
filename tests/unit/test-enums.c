/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-enums.c — every enum's string table round-trips and refuses what it
 * does not know; the string-table macro handles holes and out-of-range
 * values; the wire names are the ones org.gmemd.Broker1(5) documents.
 */
#include "backend.h"
#include "policy.h"
#include "migration.h"
#include "string-table.h"
#include "tests.h"
#include "view.h"
#include "wire.h"

#define CHECK_TABLE(max, to, from)                                                               \
        do {                                                                                     \
                for (int i = 0; i < (max); i++) {                                                \
                        EXPECT(to(i) != NULL, #to "(%d) has a name", i);                         \
                        EXPECT((int) from(to(i)) == i, #from " maps %s back to %d", to(i), i);   \
                }                                                                                \
                EXPECT(to(max) == NULL && to(-1) == NULL, #to " has no name out of range");     \
                EXPECT((int) from("nonsense") < 0 && (int) from(NULL) < 0, #from " refuses unknown strings"); \
        } while (0)

/* A table with a hole, as a sparse enum would have. */
typedef enum Sparse {
        SPARSE_A,
        SPARSE_HOLE,
        SPARSE_C,
        _SPARSE_MAX,
        _SPARSE_INVALID = -EINVAL,
} Sparse;

static const char *const sparse_table[_SPARSE_MAX] = {
        [SPARSE_A] = "a",
        [SPARSE_C] = "c",
};
static DEFINE_STRING_TABLE_LOOKUP_TO_STRING(sparse, Sparse);
static DEFINE_STRING_TABLE_LOOKUP_FROM_STRING(sparse, Sparse);

static void test_string_table_macro(void) {
        EXPECT(streq(sparse_to_string(SPARSE_A), "a") && streq(sparse_to_string(SPARSE_C), "c"),
               "a table's rows are found by value");
        EXPECT(sparse_to_string(SPARSE_HOLE) == NULL, "a hole in the table has no name");
        EXPECT(sparse_to_string(_SPARSE_MAX) == NULL && sparse_to_string(_SPARSE_INVALID) == NULL,
               "values past the end and negative values have no name");
        EXPECT(sparse_from_string("c") == SPARSE_C, "a name maps back to its value past a hole");
        EXPECT(sparse_from_string("") == _SPARSE_INVALID && sparse_from_string(NULL) == _SPARSE_INVALID &&
               sparse_from_string("A") == _SPARSE_INVALID, "unknown, empty, NULL and differently cased names are -EINVAL");
}

/* What clients see: these strings are API (org.gmemd.Broker1(5)). */
static void test_wire_names(void) {
        const char *const want_backends[] = { "memfd", "hugetlb", "secret", "kmod", "guest_memfd" };
        const char *const want_access[] = { "ro", "rw" };
        const char *const want_attributes[] = { "shared", "private" };
        const char *const want_view_states[] = { "active", "pending", "revoked" };
        const char *const want_migration_states[] = { "prepared", "committed", "aborted" };

        for (size_t i = 0; i < ELEMENTSOF(want_backends); i++)
                EXPECT(streq(backend_type_to_string((BackendType) i), want_backends[i]), "backend %zu is '%s'", i,
                       want_backends[i]);
        for (size_t i = 0; i < ELEMENTSOF(want_access); i++)
                EXPECT(streq(view_access_to_string((ViewAccess) i), want_access[i]), "access %zu is '%s'", i,
                       want_access[i]);
        for (size_t i = 0; i < ELEMENTSOF(want_attributes); i++)
                EXPECT(streq(memory_attribute_to_string((MemoryAttribute) i), want_attributes[i]),
                       "attribute %zu is '%s'", i, want_attributes[i]);
        for (size_t i = 0; i < ELEMENTSOF(want_view_states); i++)
                EXPECT(streq(view_state_to_string((ViewState) i), want_view_states[i]), "view state %zu is '%s'", i,
                       want_view_states[i]);
        for (size_t i = 0; i < ELEMENTSOF(want_migration_states); i++)
                EXPECT(streq(migration_state_to_string((MigrationState) i), want_migration_states[i]),
                       "migration state %zu is '%s'", i, want_migration_states[i]);
}

int main(void) {
        test_string_table_macro();
        test_wire_names();
        CHECK_TABLE(_BACKEND_MAX, backend_type_to_string, backend_type_from_string);
        CHECK_TABLE(_VIEW_ACCESS_MAX, view_access_to_string, view_access_from_string);
        CHECK_TABLE(_MEMORY_ATTRIBUTE_MAX, memory_attribute_to_string, memory_attribute_from_string);
        CHECK_TABLE(_VIEW_STATE_MAX, view_state_to_string, view_state_from_string);
        CHECK_TABLE(_MIGRATION_STATE_MAX, migration_state_to_string, migration_state_from_string);
        CHECK_TABLE(_POLICY_VERB_MAX, policy_verb_to_string, policy_verb_from_string);
        CHECK_TABLE(_QUOTA_KIND_MAX, quota_kind_to_string, quota_kind_from_string);
        EXPECT(backend_get(BACKEND_MEMFD) == &backend_memfd_ops, "memfd is registered");
        for (BackendType t = 0; t < _BACKEND_MAX; t++)
                EXPECT(backend_get(t) && backend_get(t)->type == t, "backend %d is registered under its type", t);
        return 0;
}
