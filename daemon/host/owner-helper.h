/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * owner-helper.h — a process that keeps CAP_CHOWN and nothing else, to give
 * gmemd's hugetlb inodes to a hypervisor uid (see owner-helper.c for why).
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

/*
 * Forks the helper, which becomes user (NULL: stays who gmemd is), keeps
 * CAP_CHOWN alone, with filter a seccomp allow-list of the calls it makes,
 * and serves on the other end of *ret_fd until gmemd closes it. Call it
 * before dropping privileges. -EPERM (nothing started) when this process
 * does not hold CAP_CHOWN.
 */
int owner_helper_start(const char *user, bool filter, int *ret_fd);
/*
 * Asks the helper on channel to make the hugetlb memfd fd owned by uid with
 * mode (0600, the only one it gives). 0, the helper's -errno (EBADF: not a gmemd hugetlb
 * memfd), -EOPNOTSUPP when there is no helper (channel < 0), -EPIPE or
 * -ECONNRESET when it died.
 */
int owner_helper_give(int channel, int fd, uint32_t uid, unsigned mode);
