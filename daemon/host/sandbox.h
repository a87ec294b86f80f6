/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * sandbox.h — gmemd's least privilege: the user it runs as, no capabilities,
 * no new privileges, not dumpable, and a seccomp allow-list of the system
 * calls it makes. Each step is one function so that the order in main() is
 * visible: drop the user and capabilities early, install the syscall filter
 * once the bus is connected and the name owned.
 */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

/*
 * Switches to user (name or uid) with its groups; needs root. Resolves the
 * name before anything else, then empties the bounding, ambient and
 * inheritable sets, which the switch would leave as they are. A uid with
 * no passwd entry becomes uid and gid, with no supplementary groups, and
 * returns 1; 0 otherwise; -ESRCH for an unknown name.
 */
int sandbox_drop_user(const char *user);
/*
 * The same for the owner helper (owner-helper.h): CAP_CHOWN survives the
 * switch, in the permitted and effective sets only, and every other
 * capability goes (so there is no way back to uid 0 either).
 */
int sandbox_drop_user_keeping_chown(const char *user);
/*
 * The owner helper's sets after that: CAP_CHOWN alone in the effective and
 * permitted sets, no ambient or inheritable ones, no-new-privileges, not
 * dumpable.
 */
int sandbox_keep_only_chown(void);
/*
 * Clears every capability set (effective, permitted, inheritable, ambient,
 * and the bounding set unless gmemd never held CAP_SETPCAP), sets
 * no-new-privileges and non-dumpable, then checks that this holds: refuses
 * (-EPERM) otherwise.
 */
int sandbox_drop_privileges(void);
/* 0 if every capability set is empty (see above for the bounding set) and no-new-privileges is set, else -EPERM. */
int sandbox_check_privileges(void);
/* Installs the seccomp allow-list; disallowed calls fail with EPERM (or kill, if kill is true). */
int sandbox_install_seccomp(bool kill);
/*
 * Makes a few harmless calls that an unprivileged process may make but the
 * filter forbids (an AF_INET socket, process_vm_readv, execve, kill) and
 * writes a line saying how each ended ("socket-inet=EPERM ..." with the
 * filter, ALLOWED or another errno without), for tests.
 */
void sandbox_self_test(char *buf, size_t size);
