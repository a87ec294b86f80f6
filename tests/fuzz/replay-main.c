/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * replay-main.c — a main() for the fuzz harnesses without libFuzzer: it
 * feeds every file named on the command line, and every file in every
 * directory named there (in name order, so a run is reproducible), to
 * LLVMFuzzerTestOneInput once. Linked with a harness it replays the
 * committed corpus as an ordinary test with any compiler, and replays a
 * crashing input from a fuzzing run under a debugger or valgrind. A failed
 * check in the harness aborts; finding no input at all is a failure too.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

static int replay_file(const char *path) {
        struct stat st;
        uint8_t *buf;
        size_t len = 0;
        int fd;

        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || fstat(fd, &st) < 0) {
                fprintf(stderr, "replay: cannot open %s: %m\n", path);
                if (fd >= 0)
                        close(fd);
                return -errno;
        }
        /* One byte more than needed, so an empty file is a valid (non-NULL) buffer. */
        buf = malloc((size_t) st.st_size + 1);
        if (!buf) {
                close(fd);
                return -ENOMEM;
        }
        while (len < (size_t) st.st_size) {
                ssize_t n = read(fd, buf + len, (size_t) st.st_size - len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        break;
                len += (size_t) n;
        }
        close(fd);

        /* A copy of exactly the input's size, so ASan sees reads past its end. */
        uint8_t *input = malloc(len ? len : 1);
        if (!input) {
                free(buf);
                return -ENOMEM;
        }
        memcpy(input, buf, len);
        free(buf);
        (void) LLVMFuzzerTestOneInput(input, len);
        free(input);
        return 1;
}

static int replay_dir(const char *dir) {
        struct dirent **names = NULL;
        int n, done = 0;

        n = scandir(dir, &names, NULL, alphasort);
        if (n < 0) {
                fprintf(stderr, "replay: cannot list %s: %m\n", dir);
                return -errno;
        }
        for (int i = 0; i < n; i++) {
                char path[4096];
                struct stat st;

                if (names[i]->d_name[0] == '.') {
                        free(names[i]);
                        continue;
                }
                (void) snprintf(path, sizeof(path), "%s/%s", dir, names[i]->d_name);
                free(names[i]);
                if (stat(path, &st) < 0 || !S_ISREG(st.st_mode))
                        continue;
                if (replay_file(path) > 0)
                        done++;
        }
        free(names);
        return done;
}

int main(int argc, char **argv) {
        int total = 0;

        if (argc < 2) {
                fprintf(stderr, "Usage: %s FILE|DIRECTORY...\n"
                        "Runs the fuzz harness once on every input given.\n", argv[0]);
                return 2;
        }
        if (LLVMFuzzerInitialize)
                (void) LLVMFuzzerInitialize(&argc, &argv);

        for (int i = 1; i < argc; i++) {
                struct stat st;
                int r;

                if (stat(argv[i], &st) < 0) {
                        fprintf(stderr, "replay: %s: %m\n", argv[i]);
                        return 1;
                }
                r = S_ISDIR(st.st_mode) ? replay_dir(argv[i]) : replay_file(argv[i]);
                if (r < 0)
                        return 1;
                total += r;
        }
        if (total == 0) {
                fprintf(stderr, "replay: no inputs found\n");
                return 1;
        }
        printf("replayed %d input%s without a failed check\n", total, total == 1 ? "" : "s");
        return 0;
}
