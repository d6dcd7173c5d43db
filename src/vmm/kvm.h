/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The /dev/kvm system fd: API version and capability checks, and what KVM supports.
 */
#ifndef EMBER_VMM_KVM_H
#define EMBER_VMM_KVM_H

#include <linux/kvm.h>
#include <stdint.h>

struct kvm {
	int fd;
	int vcpu_mmap_size;
	struct kvm_cpuid2 *cpuid; /* KVM_GET_SUPPORTED_CPUID */
	int max_vcpus;
};

/* Opens path (normally /dev/kvm) and checks everything Ember needs. */
int kvm__open(struct kvm *kvm, const char *path);
void kvm__close(struct kvm *kvm);
/* Frees the supported-CPUID copy only. */
void kvm__close_cpuid(struct kvm *kvm);
int kvm__check_extension(const struct kvm *kvm, long cap);

#endif
