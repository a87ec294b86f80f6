/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * listen.c — see listen.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "listen.h"
#include "macro.h"

int listen_fd_by_name(const char *name, int *ret_fd) {
        char **names = NULL;
        int n, found = -1;

        n = sd_listen_fds_with_names(false, &names);
        if (n <= 0)
                return n;
        for (int i = 0; i < n; i++) {
                if (found < 0 && names[i] && strcmp(names[i], name) == 0)
                        found = SD_LISTEN_FDS_START + i;
                free(names[i]);
        }
        free(names);
        if (found < 0)
                return 0;
        if (sd_is_socket_unix(found, SOCK_STREAM, 1, NULL, 0) <= 0)
                return -ENOTSOCK;
        if (fcntl(found, F_SETFL, fcntl(found, F_GETFL) | O_NONBLOCK) < 0 ||
            fcntl(found, F_SETFD, FD_CLOEXEC) < 0)
                return -errno;
        *ret_fd = found;
        return 1;
}

int listen_unix_socket(const char *path, int *ret_fd) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        _cleanup_close_ int fd = -EBADF;
        mode_t old_umask;
        struct stat st;
        int r;

        if (!path || path[0] != '/')
                return -EINVAL;
        if (strlen(path) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        memcpy(sa.sun_path, path, strlen(path) + 1);

        if (lstat(path, &st) >= 0) {
                if (!S_ISSOCK(st.st_mode))
                        return -EEXIST;
                if (unlink(path) < 0)
                        return -errno;
        } else if (errno != ENOENT)
                return -errno;

        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;
        /* Mode 0666 from the start, whatever the umask (the policy decides who may do what), and no chmod()
         * by path afterwards, which a symlink put there meanwhile would redirect. */
        old_umask = umask(0111);
        r = bind(fd, (const struct sockaddr *) &sa, sizeof(sa));
        (void) umask(old_umask);
        if (r < 0)
                return -errno;
        if (listen(fd, SOMAXCONN) < 0) {
                r = -errno;
                (void) unlink(path);
                return r;
        }
        *ret_fd = TAKE_FD(fd);
        return 0;
}
