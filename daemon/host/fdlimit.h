/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fdlimit.h — file-descriptor headroom. Every region, view and leader costs
 * gmemd one fd for as long as it lives, and every 'h' in a reply costs one
 * more until sd-bus has written it. gmemd keeps FDLIMIT_RESERVE fds free on
 * top of what a call needs: a message whose fds the kernel cannot install
 * arrives with MSG_CTRUNC, and sd-bus treats that as the end of the
 * connection.
 */
#pragma once

#include <stddef.h>
#include <sys/resource.h>

/* dbus-daemon's default max_message_unix_fds: the most one incoming message carries. */
#define FDLIMIT_RESERVE 16U

/*
 * Raises the soft RLIMIT_NOFILE to the hard one (the service manager's
 * LimitNOFILE= does this under systemd; a daemon started otherwise begins at
 * 1024). Returns the limit in force in *ret.
 */
int fdlimit_raise(struct rlimit *ret);

/*
 * 0 if n more fds can be opened with FDLIMIT_RESERVE still free afterwards,
 * -EMFILE if not (-ENFILE when the system table is full). held is what the
 * caller knows gmemd holds; far below the limit the answer needs no system
 * call beyond getrlimit(), near it any_fd (an open fd) is duplicated
 * n + FDLIMIT_RESERVE times to find out. *ret_limit gets the soft limit,
 * read again at most once a second (a limit another process changes with
 * prlimit(2) counts from then on).
 */
int fdlimit_check(int any_fd, unsigned n, size_t held, rlim_t *ret_limit);

/* After the process changed its own limit: the next fdlimit_check() reads it again. */
void fdlimit_reread(void);
