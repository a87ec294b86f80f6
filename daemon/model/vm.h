/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * vm.h — a VM is a consumer of guest memory: a name, the uid of its
 * hypervisor, optionally the hypervisor's leader process (watched through a
 * pidfd, so pid reuse cannot fool the broker once registered), and its views.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

#include "gmem-errors.h"
#include "manager.h"
#include "usage.h"

struct Vm {
        Manager *manager;
        uint64_t id;                /* stable across restarts */
        char *name;
        pid_t leader_pid;           /* 0: none, or exited */
        uint64_t leader_start;      /* its start time (clock ticks after boot, /proc/PID/stat); 0: unknown */
        uid_t uid;                  /* hypervisor uid; valid if has_uid */
        bool has_uid;
        int pidfd;
        sd_event_source *leader_source;
        Hashmap *views;             /* region name -> View */
        Migration *migration;       /* the prepared migration this VM is in */
        uid_t creator;              /* its tenant */
        UsageCharge charge;         /* one VM, against the creator's quota */
};

typedef struct VmParams {
        const char *name;
        bool has_leader_pid;
        uint32_t leader_pid;
        bool has_uid;
        uint32_t uid;
        uint64_t id;                /* 0: the next free one */
        bool has_leader_pidfd;      /* watch leader_pidfd (restored; taken over) instead of leader_pid */
        int leader_pidfd;
        /*
         * Watch the process of leader_fd, a pidfd the client opened itself (borrowed: checked, then
         * duplicated). With has_leader_pid too, both must name the same process.
         */
        bool has_leader_fd;
        int leader_fd;
        uint64_t leader_start;      /* with has_leader_pid: the process must have started then (restoring by pid) */
} VmParams;

/* Checks a's quota of VMs and charges one VM in the same step: *ret is the charge vm_register() takes. */
int vm_reserve(Manager *m, const Actor *a, UsageCharge *ret, GmemError *e);
/*
 * Registers a VM, taking *reserved over (the charge vm_reserve() made), also
 * on failure: then it is released and nothing is left. Restoring from the fd
 * store reserves for the stored creator under usage_unlimited.
 */
int vm_register(Manager *m, const VmParams *p, UsageCharge *reserved, Vm **ret, GmemError *e);
/* Drops the VM's views; MigrationInProgress while in a prepared migration. */
int vm_unregister(Vm *vm, GmemError *e);
Vm *vm_free(Vm *vm);
/* Drops every view of the VM (after aborting its migration, if any). */
void vm_release_views(Vm *vm);
/* Called when the leader process has exited. */
void vm_leader_exited(Vm *vm);
