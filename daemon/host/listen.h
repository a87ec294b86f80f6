/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * listen.h — the listening socket of gmemd's direct connections: the one
 * a service manager passed (socket activation), or one gmemd makes itself.
 */
#pragma once

/*
 * The listening AF_UNIX stream socket the service manager passed under name
 * (FileDescriptorName=) in $LISTEN_FDS, made non-blocking: 1 with *ret_fd
 * set, 0 if none was passed, -ENOTSOCK if the fd of that name is something
 * else. The environment is left for the fd store's restore, which skips it.
 */
int listen_fd_by_name(const char *name, int *ret_fd);

/*
 * Binds and listens on path, a socket anyone may connect to (who may do what
 * is the policy's to say). A socket already at path is replaced (a gmemd
 * that did not exit cleanly left it); anything else there is -EEXIST, and a
 * path too long for a socket address -ENAMETOOLONG.
 */
int listen_unix_socket(const char *path, int *ret_fd);
