/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * array.c — the one loop that grows a heap array as it is filled, so the
 * doubling, the overflow checks and the "untouched on failure" rule are
 * written once for every list the daemon, libgmem and gmemctl build.
 */
#include <errno.h>
#include <stdlib.h>

#include "array.h"

/*
 * The number of elements to grow an array of allocated elements to when it
 * needs room for need > allocated: twice what it has, or need when that is
 * more, and never less than GROW_ARRAY_MIN. Doubling is only a heuristic,
 * so a doubled count whose byte size would overflow falls back to need.
 */
static size_t grow_array_count(size_t allocated, size_t need, size_t element_size) {
        size_t want, bytes;

        if (MUL_OVERFLOW(allocated, (size_t) 2, &want))
                want = need;
        if (want < need)
                want = need;
        if (want < GROW_ARRAY_MIN)
                want = GROW_ARRAY_MIN;
        if (MUL_OVERFLOW(want, element_size, &bytes))
                want = need;
        return want;
}

int grow_array(void **array, size_t *allocated, size_t need, size_t element_size) {
        size_t want, bytes;
        void *p;

        if (element_size == 0)
                return -EINVAL;
        if (need <= *allocated)
                return 0;

        want = grow_array_count(*allocated, need, element_size);
        if (MUL_OVERFLOW(want, element_size, &bytes))
                return -ENOMEM;

        p = realloc(*array, bytes);
        if (!p)
                return -ENOMEM;

        *array = p;
        *allocated = want;
        return 0;
}
