/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-sandbox.c — the seccomp filter against its own self-test, in child
 * processes that give up their capabilities as gmemd does. The same probes
 * run first without the filter, where each must succeed or fail with
 * something other than EPERM (else the probe could not tell the filter
 * from the host), then under the filter, where each must fail with EPERM,
 * and under the killing filter, where the first one must kill the child
 * with SIGSYS. And the one call the filter allows with some arguments only:
 * pidfd_send_signal, with signal 0 (is a leader alive) and no other.
 */
#include <errno.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"
#include "macro.h"
#include "sandbox.h"
#include "tests.h"

/* What the probes give without the filter, as gmemd's self-test prints it. */
static const char expect_unfiltered[] = "socket-inet=ALLOWED process_vm_readv=ALLOWED execve=ENOENT kill=ALLOWED";
static const char expect_filtered[] = "socket-inet=EPERM process_vm_readv=EPERM execve=EPERM kill=EPERM";

/* The line in /proc/self/status that starts with key, without the key. */
static void status_field(const char *key, char *ret, size_t size) {
        char line[256];
        FILE *f = fopen("/proc/self/status", "re");

        snprintf(ret, size, "(none)");
        if (!f)
                return;
        while (fgets(line, sizeof(line), f))
                if (strncmp(line, key, strlen(key)) == 0 && line[strlen(key)] == ':') {
                        snprintf(ret, size, "%s", line + strlen(key) + 1 + strspn(line + strlen(key) + 1, " \t"));
                        ret[strcspn(ret, "\n")] = 0;
                }
        fclose(f);
}

/* In the child: one result line on fd, then the next. Exits 0, or 1 if a step failed (said on stderr). */
static void child_report(int fd, bool kill) {
        char buf[512], seccomp[64];
        int r;

        r = sandbox_drop_privileges();
        if (r < 0) {
                fprintf(stderr, "sandbox_drop_privileges: %s\n", strerror(-r));
                _exit(1);
        }
        sandbox_self_test(buf, sizeof(buf));
        status_field("Seccomp", seccomp, sizeof(seccomp));
        dprintf(fd, "%s|%s\n", buf, seccomp);
        r = sandbox_install_seccomp(kill);
        if (r < 0) {
                fprintf(stderr, "sandbox_install_seccomp: %s\n", strerror(-r));
                _exit(1);
        }
        sandbox_self_test(buf, sizeof(buf));
        status_field("Seccomp", seccomp, sizeof(seccomp));
        dprintf(fd, "%s|%s\n", buf, seccomp);
        _exit(0);
}

/* Runs child_report() in a child; returns its output and its wait status. */
static void run_child(bool kill, char *out, size_t size, int *ret_status) {
        int p[2];
        pid_t pid;
        size_t n = 0;
        ssize_t k;

        EXPECT(pipe(p) == 0, "a pipe");
        pid = fork();
        EXPECT(pid >= 0, "fork");
        if (pid == 0) {
                close(p[0]);
                child_report(p[1], kill);
        }
        close(p[1]);
        while (n + 1 < size && (k = read(p[0], out + n, size - 1 - n)) > 0)
                n += (size_t) k;
        out[n] = 0;
        close(p[0]);
        EXPECT(waitpid(pid, ret_status, 0) == pid, "the child is reaped");
}

/* Splits "RESULTS|SECCOMP" in place; returns the Seccomp field. */
static const char *split_line(char *line) {
        char *bar = strchr(line, '|');

        EXPECT(bar, "a result line has a Seccomp field: '%s'", line);
        *bar = 0;
        return bar + 1;
}

static void test_probes_tell_the_filter(void) {
        char out[1024], unfiltered[512], filtered[512];
        const char *seccomp;
        int status;

        run_child(false, out, sizeof(out), &status);
        EXPECT(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the child ran both self-tests (status %#x)", status);
        EXPECT(sscanf(out, "%511[^\n]\n%511[^\n]", unfiltered, filtered) == 2, "two result lines: '%s'", out);
        seccomp = split_line(unfiltered);
        EXPECT(streq(seccomp, "0"), "before the filter no seccomp filter is in force (Seccomp: %s)", seccomp);
        EXPECT(streq(unfiltered, expect_unfiltered),
               "without the filter, a process without capabilities may make every probe's call: '%s'", unfiltered);
        seccomp = split_line(filtered);
        EXPECT(streq(seccomp, "2"), "the kernel reports a seccomp filter in force (Seccomp: %s)", seccomp);
        EXPECT(streq(filtered, expect_filtered), "under the filter every probe fails with EPERM: '%s'", filtered);
}

static void test_kill_mode(void) {
        char out[1024];
        int status;

        run_child(true, out, sizeof(out), &status);
        EXPECT(WIFSIGNALED(status) && WTERMSIG(status) == SIGSYS,
               "under the killing filter the first probe kills the child with SIGSYS (status %#x)", status);
        EXPECT(strncmp(out, expect_unfiltered, strlen(expect_unfiltered)) == 0 && streq(strchr(out, '\n'), "\n"),
               "the probes ran without the filter and nothing was reported once it was in: '%s'", out);
}

/* In the child, under the filter: 0 if signal 0 goes through a pidfd and SIGCONT is EPERM; 2: no pidfd_open. */
static int child_pidfd_signals(void) {
        int fd, r;

        if (sandbox_drop_privileges() < 0 || sandbox_install_seccomp(false) < 0)
                return 1;
        fd = (int) syscall(SYS_pidfd_open, getpid(), 0);
        if (fd < 0)
                return errno == ENOSYS ? 2 : 1;
        if (syscall(SYS_pidfd_send_signal, fd, 0, NULL, 0) != 0)
                return 3;
        r = (int) syscall(SYS_pidfd_send_signal, fd, SIGCONT, NULL, 0);
        return r < 0 && errno == EPERM ? 0 : 4;
}

static void test_pidfd_signal_zero_only(void) {
        int status;
        pid_t pid;

        pid = fork();
        EXPECT(pid >= 0, "fork");
        if (pid == 0)
                _exit(child_pidfd_signals());
        EXPECT(waitpid(pid, &status, 0) == pid, "the child is reaped");
        if (WIFEXITED(status) && WEXITSTATUS(status) == 2)
                return;         /* no pidfd_open here (valgrind): nothing to probe */
        EXPECT(WIFEXITED(status) && WEXITSTATUS(status) == 0,
               "under the filter pidfd_send_signal passes with signal 0 and is EPERM with SIGCONT (status %#x: "
               "1 setup, 3 signal 0 refused, 4 SIGCONT not refused)", status);
}

int main(void) {
        if (GMEMD_SANITIZED)
                TEST_SKIP("sanitizer build: the sanitizers' own system calls are not in gmemd's allow-list, "
                          "and gmemd does not install the filter in such a build either");
        RUN(test_probes_tell_the_filter);
        RUN(test_kill_mode);
        RUN(test_pidfd_signal_zero_only);
        return 0;
}
