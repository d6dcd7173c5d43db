/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A KVM VM without vCPUs, for bench harnesses that drive a device model from the host: the
 * VM and its irqchip, a fake guest memory registered as memslots (as src/vmm/vm.c does), so
 * that a device's ioeventfds and irqfd go through KVM as in Ember, and a VMM thread that
 * runs the device's event loop. The harness's own thread plays the driver.
 */
#ifndef EMBER_TESTS_FAKE_VM_H
#define EMBER_TESTS_FAKE_VM_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "fake_gmem.h"
#include "vmm/event_loop.h"

struct fake_vm {
	int kvm_fd;
	int vm_fd;
	struct fake_gmem mem;
	struct event_loop loop;
	struct event_handler stop_h;
	bool stop;	/* set on the VMM thread by the stop eventfd */
	bool busy_poll; /* an experiment: the VMM loop never sleeps (epoll timeout 0) */
	pthread_t vmm;
	bool vmm_running;
};

/*
 * /dev/kvm, a VM with mem_bytes of RAM in memslots and an irqchip, an event loop. 0 or
 * -errno with error__set(); on an error, fake_vm__destroy() frees what was made.
 */
int fake_vm__create(struct fake_vm *vm, uint64_t mem_bytes);
/* Starts the VMM thread on vm->loop (the devices registered with it first). */
int fake_vm__start(struct fake_vm *vm);
/* Stops and joins the VMM thread; nothing if it does not run. */
void fake_vm__stop(struct fake_vm *vm);
/* Stops the VMM thread and frees everything but the devices (destroy those first). */
void fake_vm__destroy(struct fake_vm *vm);
/* Takes irq_fd back from KVM (KVM_IRQFD_FLAG_DEASSIGN), so that the driver can read it. */
int fake_vm__take_irqfd(struct fake_vm *vm, int irq_fd, uint32_t gsi);
/* The VMM thread's CPU clock, once it runs. */
int fake_vm__vmm_clock(const struct fake_vm *vm, clockid_t *clock);

#endif
