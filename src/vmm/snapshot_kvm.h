/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The KVM side of a snapshot (docs/snapshot.md, docs/snapshot-format.md): each vCPU's state
 * (registers, special registers, FPU or XSAVE and XCRs, debug registers, LAPIC, the MSRs
 * KVM_GET_MSR_INDEX_LIST names, pending events, MP state, TSC frequency) and the VM's
 * in-kernel devices (both PICs, the IOAPIC, the PIT, kvmclock). Saving needs the vCPUs
 * parked outside KVM_RUN; restoring is done on vCPUs and a VM just created, before the vCPU
 * threads start. All return 0 or -errno with error__set().
 */
#ifndef EMBER_VMM_SNAPSHOT_KVM_H
#define EMBER_VMM_SNAPSHOT_KVM_H

#include "vmm/kvm.h"
#include "vmm/snapshot_file.h"

struct vcpu;
struct vm;

int snapshot_kvm__save_vcpu(const struct vcpu *vcpu, const struct kvm *kvm,
			    struct snapshot_file_writer *w);
int snapshot_kvm__restore_vcpu(struct vcpu *vcpu, const struct kvm *kvm,
			       const struct snapshot_file_reader *r);
int snapshot_kvm__save_vm(const struct vm *vm, struct snapshot_file_writer *w);
int snapshot_kvm__restore_vm(struct vm *vm, const struct snapshot_file_reader *r);

#endif
