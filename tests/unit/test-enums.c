/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-enums.c — every enum's string table round-trips and refuses what it
 * does not know.
 */
#include "backend.h"
#include "policy.h"
#include "migration.h"
#include "tests.h"
#include "view.h"

#define CHECK_TABLE(max, to, from)                                                               \
        do {                                                                                     \
                for (int i = 0; i < (max); i++) {                                                \
                        EXPECT(to(i) != NULL, #to "(%d) has a name", i);                         \
                        EXPECT((int) from(to(i)) == i, #from " maps %s back to %d", to(i), i);   \
                }                                                                                \
                EXPECT(to(max) == NULL && to(-1) == NULL, #to " has no name out of range");     \
                EXPECT((int) from("nonsense") < 0 && (int) from(NULL) < 0, #from " refuses unknown strings"); \
        } while (0)

int main(void) {
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
