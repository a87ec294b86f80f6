/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * parse.h — validation of the three kinds of input every request carries:
 * names, sizes and (offset, length) ranges. The checks live here, once, so
 * the daemon, libgmem and gmemctl agree on what is valid, and every range is
 * checked for 2^64 wrap-around before it is used.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gmem-errors.h"

#define GMEM_NAME_MAX 64
#define GMEM_FORMAT_SIZE_MAX 32

/* [A-Za-z0-9_.-]{1,64} */
bool gmem_name_is_valid(const char *s) _pure_;
int gmem_validate_name(const char *kind, const char *s, GmemError *e);

/*
 * Parses a decimal byte count with an optional binary suffix:
 * K, M, G, T, P, E (also KiB, MiB, …, and a plain trailing B).
 * Returns -EINVAL for a malformed string, -ERANGE when it does not fit 64 bits.
 */
int gmem_parse_size(const char *s, uint64_t *ret);

/*
 * prefix followed by v in decimal, into buf of at least
 * strlen(prefix) + GMEM_FORMAT_UINT_MAX bytes; returns buf. For keys and
 * /proc/self/fd/N paths on the hot path, where snprintf() costs ten times
 * as much.
 */
#define GMEM_FORMAT_UINT_MAX 21
char *gmem_format_uint(char *buf, const char *prefix, uint64_t v);

/* "1.5G"-style rendering; buf of at least GMEM_FORMAT_SIZE_MAX bytes. */
const char *gmem_format_size(char *buf, size_t n, uint64_t bytes);

/* size > 0, a multiple of align (a power of two), at most max (0: no limit). */
int gmem_validate_size(uint64_t size, uint64_t align, uint64_t max, GmemError *e);

/*
 * offset and length multiples of align (the object's page size, which the
 * message calls so), length > 0, offset + length without wrapping 2^64, and
 * offset + length <= size. what names the object in the message
 * ("region 'vm1-ram'").
 */
int gmem_validate_range(const char *what, uint64_t offset, uint64_t length,
                        uint64_t size, uint64_t align, GmemError *e);
