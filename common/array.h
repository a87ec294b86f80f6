/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * array.h — arrays that grow as they are filled.
 *
 * A list read element by element (a D-Bus array, the cells of a table) is
 * kept in a heap array together with the number of elements it has room
 * for. Before an element is stored the caller asks for room for one more;
 * the array then at least doubles, so that filling it with n elements costs
 * O(log n) reallocations. Every size is checked for overflow before it is
 * used, and a failure leaves the array and its count as they were: the
 * caller still owns the old array and frees it on its error path.
 * Shared by the daemon, libgmem and gmemctl.
 */
#pragma once

#include <stddef.h>

#include "macro.h"

/* The room a growing array gets when it is first allocated, in elements. */
#define GROW_ARRAY_MIN 8

/*
 * Makes room for at least need elements of element_size bytes in *array,
 * which has room for *allocated of them now (0 with a NULL *array). Does
 * nothing when there is room already. Otherwise reallocates to the largest
 * of need, twice *allocated and GROW_ARRAY_MIN, or to exactly need when
 * that larger size would overflow. Returns 0 with *array and *allocated
 * updated, -EINVAL for an element_size of 0, -ENOMEM when need elements do
 * not fit in a size_t or the allocation fails; *array and *allocated are
 * untouched then.
 */
int grow_array(void **array, size_t *allocated, size_t need, size_t element_size) _warn_unused_result_;

/*
 * grow_array() for a typed array variable: GROW_ARRAY(views, allocated, n + 1)
 * takes the element size from the array's type. The pointer passes through
 * a void * temporary, so no object is accessed through a type it does not
 * have; array is assigned only on success.
 */
#define GROW_ARRAY(array, allocated, need)                                              \
        ({                                                                              \
                void *_grow_p_ = (array);                                               \
                int _grow_r_ = grow_array(&_grow_p_, &(allocated), (need),              \
                                          sizeof((array)[0]));                          \
                if (_grow_r_ >= 0)                                                      \
                        (array) = _grow_p_;                                             \
                _grow_r_;                                                               \
        })
