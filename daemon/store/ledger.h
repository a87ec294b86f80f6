/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * ledger.h — gmemd's records kept in the kernel, for a host without a
 * service manager: what the fd store keeps under systemd, gmem.ko keeps
 * here, for the objects that outlive gmemd there (kmod regions and their
 * views) and the VMs and migrations that refer to them.
 *
 * A record is the same name the fd store would hold (store-name.h), kept as
 * the label of a pending view of a one-page region of the device that
 * nothing maps (backend-kmod.h, BACKEND_KMOD_LEDGER). The module keeps such
 * a view until it is revoked, so the records outlive gmemd; revoking is
 * removing. Only a ledger region made by gmemd's own uid is used.
 *
 * The ledger only knows names; which fd goes with a name is found again on
 * restore (store/restore.c): a region's handle by its kernel name, a view's
 * file by the label gmemd gave its kernel view.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

typedef struct Ledger Ledger;

/* Opens (or makes) the ledger and reads its records; -errno if the kmod backend cannot keep one. */
int ledger_open(Ledger **ret);
Ledger *ledger_free(Ledger *l);

/* Adds a record of this name (no-op if it is there); -errno if the kernel refused it. */
int ledger_add(Ledger *l, const char *name);
/* Removes the record of this name, if there is one. */
void ledger_remove(Ledger *l, const char *name);
bool ledger_has(const Ledger *l, const char *name);
size_t ledger_size(const Ledger *l);

/* Copies of the records' names: *ret_n strings in an array, the caller's to free. */
int ledger_names(const Ledger *l, char ***ret, size_t *ret_n);
