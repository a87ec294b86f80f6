/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * gmem-abi.h — KVM's guest_memfd ABI, which the <linux/kvm.h> of older
 * kernels lacks: the capabilities, KVM_CREATE_GUEST_MEMFD and its flags,
 * and KVM_SET_USER_MEMORY_REGION2, which binds a guest_memfd to a slot.
 */
#pragma once

#include <stdint.h>
#include <sys/ioctl.h>

#include <linux/kvm.h>

/*
 * guest_memfd, for probe-gmem, vm-fd-handoff and the custody modes. The <linux/kvm.h> of Linux
 * 6.1 has none of it. The numbers are those of include/uapi/linux/kvm.h and
 * arch/x86/include/uapi/asm/kvm.h of Linux 6.12 (as installed by
 * linux-headers-6.12.95+deb12-common), except KVM_CAP_GUEST_MEMFD_FLAGS and
 * its flags, which came later: they are those of Linux 6.18's
 * include/uapi/linux/kvm.h (commit d2042d8f96dd "KVM: Rework
 * KVM_CAP_GUEST_MEMFD_MMAP into KVM_CAP_GUEST_MEMFD_FLAGS"), and
 * KVM_X86_TDX_VM (Linux 6.16). All are ABI; where a header has them, they
 * must agree (checked below).
 */
#define GMEM_CAP_USER_MEMORY2 231
#define GMEM_CAP_MEMORY_ATTRIBUTES 233
#define GMEM_CAP_GUEST_MEMFD 234
#define GMEM_CAP_VM_TYPES 235
#define GMEM_CAP_GUEST_MEMFD_FLAGS 244

#define GMEM_X86_DEFAULT_VM 0
#define GMEM_X86_SW_PROTECTED_VM 1

#ifdef KVM_CAP_USER_MEMORY2
_Static_assert(KVM_CAP_USER_MEMORY2 == GMEM_CAP_USER_MEMORY2, "KVM_CAP_USER_MEMORY2");
#endif
#ifdef KVM_CAP_MEMORY_ATTRIBUTES
_Static_assert(KVM_CAP_MEMORY_ATTRIBUTES == GMEM_CAP_MEMORY_ATTRIBUTES, "KVM_CAP_MEMORY_ATTRIBUTES");
#endif
#ifdef KVM_CAP_GUEST_MEMFD
_Static_assert(KVM_CAP_GUEST_MEMFD == GMEM_CAP_GUEST_MEMFD, "KVM_CAP_GUEST_MEMFD");
#endif
#ifdef KVM_CAP_VM_TYPES
_Static_assert(KVM_CAP_VM_TYPES == GMEM_CAP_VM_TYPES, "KVM_CAP_VM_TYPES");
#endif
#ifdef KVM_CAP_GUEST_MEMFD_FLAGS
_Static_assert(KVM_CAP_GUEST_MEMFD_FLAGS == GMEM_CAP_GUEST_MEMFD_FLAGS, "KVM_CAP_GUEST_MEMFD_FLAGS");
#endif
#ifdef KVM_X86_SW_PROTECTED_VM
_Static_assert(KVM_X86_SW_PROTECTED_VM == GMEM_X86_SW_PROTECTED_VM, "KVM_X86_SW_PROTECTED_VM");
#endif

/* struct kvm_create_guest_memfd, the argument of KVM_CREATE_GUEST_MEMFD (a VM ioctl). */
typedef struct GmemCreate {
        uint64_t size;
        uint64_t flags;
        uint64_t reserved[6];
} GmemCreate;
_Static_assert(sizeof(GmemCreate) == 64, "struct kvm_create_guest_memfd is 64 bytes");

#define GMEM_KVM_CREATE_GUEST_MEMFD _IOWR(KVMIO, 0xd4, GmemCreate)
#ifdef KVM_CREATE_GUEST_MEMFD
_Static_assert(KVM_CREATE_GUEST_MEMFD == GMEM_KVM_CREATE_GUEST_MEMFD, "KVM_CREATE_GUEST_MEMFD");
#endif

/* KVM_CREATE_GUEST_MEMFD flags (include/uapi/linux/kvm.h of 6.18), the bits of KVM_CAP_GUEST_MEMFD_FLAGS. */
#define GMEM_FLAG_MMAP (UINT64_C(1) << 0)
#define GMEM_FLAG_INIT_SHARED (UINT64_C(1) << 1)
#ifdef GUEST_MEMFD_FLAG_MMAP
_Static_assert(GUEST_MEMFD_FLAG_MMAP == GMEM_FLAG_MMAP, "GUEST_MEMFD_FLAG_MMAP");
#endif
#ifdef GUEST_MEMFD_FLAG_INIT_SHARED
_Static_assert(GUEST_MEMFD_FLAG_INIT_SHARED == GMEM_FLAG_INIT_SHARED, "GUEST_MEMFD_FLAG_INIT_SHARED");
#endif

/* struct kvm_userspace_memory_region2 (Linux 6.8) and the slot flag that binds a guest_memfd. */
typedef struct GmemRegion2 {
        uint32_t slot;
        uint32_t flags;
        uint64_t guest_phys_addr;
        uint64_t memory_size;
        uint64_t userspace_addr;
        uint64_t guest_memfd_offset;
        uint32_t guest_memfd;
        uint32_t pad1;
        uint64_t pad2[14];
} GmemRegion2;
_Static_assert(sizeof(GmemRegion2) == 160, "struct kvm_userspace_memory_region2 is 160 bytes");

#define GMEM_KVM_SET_USER_MEMORY_REGION2 _IOW(KVMIO, 0x49, GmemRegion2)
#ifdef KVM_SET_USER_MEMORY_REGION2
_Static_assert(KVM_SET_USER_MEMORY_REGION2 == GMEM_KVM_SET_USER_MEMORY_REGION2, "KVM_SET_USER_MEMORY_REGION2");
#endif
#define GMEM_KVM_MEM_GUEST_MEMFD (1U << 2)
#ifdef KVM_MEM_GUEST_MEMFD
_Static_assert(KVM_MEM_GUEST_MEMFD == GMEM_KVM_MEM_GUEST_MEMFD, "KVM_MEM_GUEST_MEMFD");
#endif
