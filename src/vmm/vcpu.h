/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vCPUs: creation and set-up (CPUID, MSRs, LAPIC LINT0/LINT1, boot registers), and the
 * KVM_RUN loop, one thread each.
 */
#ifndef EMBER_VMM_VCPU_H
#define EMBER_VMM_VCPU_H

#include <linux/kvm.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "vmm/metrics.h"

struct vm;

struct vcpu {
	struct vm *vm;
	uint32_t index;
	int fd;
	struct kvm_run *run;
	pthread_t thread;
	bool started;
	struct vcpu_metrics m;
};

/* The signal that kicks a vCPU thread out of KVM_RUN. */
#define VCPU_KICK_SIGNAL (SIGRTMIN + 1)

int vcpu__create(struct vm *vm, struct vcpu *vcpu, uint32_t index);
/* Sets the boot vCPU's registers for the kernel's entry point. */
int vcpu__set_boot_regs(struct vcpu *vcpu);
int vcpu__start(struct vcpu *vcpu);
/* Makes the thread leave KVM_RUN; the caller has set vm->stopping. */
void vcpu__kick(struct vcpu *vcpu);
void vcpu__join(struct vcpu *vcpu);
void vcpu__destroy(struct vcpu *vcpu);
/* Installs the no-op handler for VCPU_KICK_SIGNAL; once per process. */
int vcpu__init_signals(void);

#endif
