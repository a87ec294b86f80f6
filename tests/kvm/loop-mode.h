/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * loop-mode.h — tiny-vmm's loop mode: a guest that keeps reading its
 * memory, and a VMM that says round by round whether it still can.
 */
#pragma once

#include "kvm-vm.h"
#include "view-modes.h"

/*
 * loop: the guest (optionally after writing the pattern of --seed) sums
 * the first --length bytes of the view over and over and reports each sum;
 * one round every --interval ms. Runs until SIGTERM, SIGINT or --timeout;
 * a failing KVM_RUN is reported and tried again every --interval ms.
 * Returns 0 when stopped so, a negative errno when a sum was wrong or the
 * guest did something else.
 */
int mode_loop(Vmm *v, const View *view);
