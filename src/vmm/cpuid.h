/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The CPUID each vCPU sees: KVM's supported set, with per-vCPU APIC IDs, a topology that
 * matches the vCPU count, and the hypervisor bit.
 */
#ifndef EMBER_VMM_CPUID_H
#define EMBER_VMM_CPUID_H

#include <linux/kvm.h>
#include <stdbool.h>
#include <stdint.h>

struct cpu_topology {
	uint32_t nr_vcpus;
	uint32_t threads_per_core; /* 1, or 2 with SMT */
};

/* Returns a copy of base (malloc'ed) adjusted for vCPU index, or NULL on ENOMEM. */
struct kvm_cpuid2 *cpuid__for_vcpu(const struct kvm_cpuid2 *base, const struct cpu_topology *t,
				   uint32_t index);
/* The entry for function/index, or NULL. */
struct kvm_cpuid_entry2 *cpuid__find(struct kvm_cpuid2 *c, uint32_t function, uint32_t index);
/* log2 of the next power of two >= n (0 for n <= 1). */
uint32_t cpuid__order(uint32_t n);

#endif
