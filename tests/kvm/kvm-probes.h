/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * kvm-probes.h — the modes that need no gmemd, only KVM: probe (does KVM
 * run a guest?), probe-gmem (what does it offer for guest_memfd?) and
 * vm-fd-handoff (is a VM fd of use to another process?).
 */
#pragma once

#include <stdbool.h>

#include "kvm-vm.h"

/* probe: on v, opened by the caller, a guest that only reports done. 0, or a negative errno (printed). */
int mode_probe(Vmm *v);

/*
 * probe-gmem: what this KVM offers for guest_memfd: the capabilities on
 * /dev/kvm and on a default VM, then KVM_CREATE_GUEST_MEMFD on a VM of
 * every type KVM_CAP_VM_TYPES lists. Returns the exit status: 0 a
 * guest_memfd was created, 77 none could be (or no KVM), 1 something
 * unexpected failed.
 */
int mode_probe_gmem(Vmm *v);

/*
 * vm-fd-handoff: a child after fork() and a process that received the fds
 * over a UNIX socket must get EIO from every VM and vCPU ioctl, the
 * creator none. 0 if so, else a negative errno (printed); *ret_unusable
 * is set when KVM is missing or unusable (exit 77).
 */
int mode_vm_fd_handoff(Vmm *v, bool *ret_unusable);
