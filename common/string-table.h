/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * string-table.h — the one way gmemd, libgmem and gmemctl write an enum <->
 * string pair. A table is an array indexed by the enum, one row per value:
 *
 *     static const char *const view_state_table[_VIEW_STATE_MAX] = {
 *             [VIEW_STATE_ACTIVE]  = "active",
 *             ...
 *     };
 *     DEFINE_STRING_TABLE_LOOKUP(view_state, ViewState);
 *
 * which defines view_state_to_string() (NULL for a value out of range or a
 * hole in the table) and view_state_from_string() (the value, or -EINVAL
 * for NULL or an unknown string, which is every enum's _INVALID).
 */
#pragma once

#include <stddef.h>

#include "macro.h"

/* Index of s in table[0..n), or -EINVAL. Rows may be NULL (holes). */
int string_table_lookup(const char *const *table, size_t n, const char *s) _pure_;

#define DEFINE_STRING_TABLE_LOOKUP_TO_STRING(name, type)                                \
        const char *name##_to_string(type i) {                                          \
                /* A negative value wraps to a huge one: out of range too. */            \
                if ((size_t) i >= ELEMENTSOF(name##_table))                             \
                        return NULL;                                                    \
                return name##_table[i];                                                 \
        }

#define DEFINE_STRING_TABLE_LOOKUP_FROM_STRING(name, type)                              \
        type name##_from_string(const char *s) {                                        \
                return (type) string_table_lookup(name##_table, ELEMENTSOF(name##_table), s); \
        }

#define DEFINE_STRING_TABLE_LOOKUP(name, type)                                          \
        DEFINE_STRING_TABLE_LOOKUP_TO_STRING(name, type)                                \
        DEFINE_STRING_TABLE_LOOKUP_FROM_STRING(name, type)
