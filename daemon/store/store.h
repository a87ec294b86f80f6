/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * store.h — nothing lost on a crash: every region, VM, view and prepared
 * migration is kept in the service manager's file-descriptor store
 * (sd_notify FDSTORE=1) before the call that made it is answered, and the
 * model is rebuilt from LISTEN_FDS/LISTEN_FDNAMES on start.
 *
 * Each object is one store entry whose FDNAME carries its (immutable)
 * description: region/..., vm/..., view/..., revoked/..., pending/... and
 * migration/..., the scheme store-name.h describes and store-name.c alone
 * writes and reads. A region's entry holds its master memfd; a VM's its
 * leader's pidfd, or a record memfd without one; an active or pending
 * view's its custody file (a record where views are the master file, as
 * for secret regions); revoked views, pending markers and prepared
 * migrations are records.
 *
 * An fd entry's name never changes: systemd ignores an FDSTORE=1 whose fd
 * is an open file it holds already, whatever the name, so a file can never
 * be stored again under a new name. State that changes lives in records.
 * A change stores the new entry first and removes the old one after, so a
 * crash in between leaves both and restoring prefers the later state; a
 * pending record goes in before its view, and a pending view that belongs
 * to no restored migration is dropped (its BeginMigration was never
 * answered). Record memfds are empty and sealed.
 */
#pragma once

#include <stdbool.h>

#include "config.h"
#include "manager.h"

typedef struct Store Store;

/*
 * The number of entries systemd keeps for a unit unless told otherwise
 * (FileDescriptorStoreMax= of the shipped gmemd.service).
 */
#define STORE_MAX_DEFAULT GMEMD_FD_STORE_MAX

/*
 * Enabled when the service manager listens ($NOTIFY_SOCKET); otherwise a
 * no-op store. max is how many entries the service manager keeps for gmemd
 * (systemd closes what is stored beyond it): the store admits new objects
 * only while their entries fit, with one entry to spare for replacing an
 * entry (the new one goes in before the old one goes out).
 */
int store_new(Manager *m, unsigned max, Store **ret);
Store *store_free(Store *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(Store *, store_free);
bool store_enabled(const Store *s);
/*
 * gmem.ko keeps gmemd's records too (ledger.h): kmod regions and their
 * views, and every VM and prepared migration, outlive gmemd without a
 * service manager. Opened by store_new() when the kmod backend is usable.
 */
bool store_has_ledger(const Store *s);
/* The last store_restore() took the ledger's records: the service manager passed nothing. */
bool store_restored_from_ledger(const Store *s);

/*
 * Rebuilds the model from the fds passed in (LISTEN_FDS; restore.c), or,
 * when the service manager passed none, from the ledger's records and the
 * kernel objects they name. Every
 * name is parsed and every fd checked (type, identity, size, access) before
 * it is trusted; entries that are unknown, stale or fail a check are removed
 * from the store and closed. An fd passed in under the name foreign (if not
 * NULL) is someone else's (the socket of direct connections): left open.
 * Returns the number of entries restored.
 */
int store_restore(Store *s, const char *foreign, unsigned *ret_removed);

/* Starts recording the model's changes (after store_restore()). */
void store_attach(Store *s);
