/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A VM: the KVM VM fd, its memory, its vCPUs, its buses and legacy devices, and how it
 * stops.
 */
#ifndef EMBER_VMM_VM_H
#define EMBER_VMM_VM_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "vmm/boot_timer.h"
#include "vmm/boot_x86.h"
#include "vmm/bus.h"
#include "vmm/debug_exit.h"
#include "vmm/i8042.h"
#include "vmm/kvm.h"
#include "vmm/memory.h"
#include "vmm/serial.h"
#include "vmm/vm_config.h"
#include "vmm/vmgenid.h"

struct vcpu;
struct virtio_blk;
struct event_loop;

enum vm_stop_reason {
	VM_STOP_NONE,
	VM_STOP_RESET,	    /* the guest reset: i8042 CPU reset or triple fault */
	VM_STOP_PANIC,	    /* it reset with the warm-reset flag set: a guest panic */
	VM_STOP_DEBUG_EXIT, /* it wrote its exit code to the debug-exit port */
	VM_STOP_SIGNAL,	    /* Ember got SIGINT or SIGTERM */
	VM_STOP_ERROR,	    /* a KVM or emulation error */
};

/* Ember's exit codes; docs/cli.md lists them. */
#define EMBER_EXIT_OK 0
#define EMBER_EXIT_ERROR 1
#define EMBER_EXIT_GUEST_PANIC 2
#define EMBER_EXIT_GUEST_FAULT 3

/* Extra behaviour the command line switches on. */
struct vm_options {
	bool boot_timer;
	bool debug_exit;
	/* the boot timer counts from here (µs since process start): 0, or InstanceStart */
	uint64_t boot_timer_origin_us;
};

struct vm {
	struct kvm kvm;
	int fd;
	const struct vm_config *cfg;
	struct vm_options opts;
	struct gmem gmem;
	struct kernel_image kernel;
	struct initrd_image initrd;
	char *cmdline;

	struct vcpu *vcpus;
	uint32_t nr_vcpus;
	uint32_t nr_started;

	struct bus pio;
	struct bus mmio;
	struct serial serial;
	int serial_out_fd;
	int serial_irq_fd;
	int serial_rx_ready_fd;
	int serial_out_kick_fd;
	struct i8042 i8042;
	int i8042_irq_fd;
	struct boot_timer boot_timer;
	struct debug_exit debug_exit;
	struct virtio_blk *blks[VM_MAX_DRIVES];
	unsigned int nr_blks;
	struct virtio_net *nets[VM_MAX_NET_IFACES];
	unsigned int nr_nets;
	struct virtio_vsock *vsock; /* NULL without one */
	struct virtio_rng *rng;	    /* the entropy device; NULL without one */
	struct virtio_balloon *balloon; /* NULL without one */
	struct vmgenid vmgenid;	    /* the VM generation ID page, always there */

	/* stopping: the first vCPU or signal to ask wins */
	pthread_mutex_t stop_lock;
	enum vm_stop_reason stop_reason;
	int stop_code;
	int stop_evt; /* eventfd, written when a stop is requested */
	volatile bool stopping;

	/* pausing: vCPUs park on run_cond while pause_requested */
	pthread_mutex_t run_lock;
	pthread_cond_t run_cond;
	bool pause_requested;
	uint32_t nr_parked;

	bool restoring; /* made by vm__create_restored(): no kernel, no boot registers */
};

/* Where virtio-mmio device slot i lives, and its IRQ (layout.h). */
uint64_t vm__device_base(unsigned int slot);
uint32_t vm__device_irq(unsigned int slot);
/* Adds the devices' event sources (queue kicks, completions, timers) to the VMM loop. */
int vm__watch_devices(struct vm *vm, struct event_loop *loop);
/* The drive with this id, or NULL. */
struct virtio_blk *vm__find_drive(struct vm *vm, const char *id);
struct virtio_net *vm__find_net(struct vm *vm, const char *id);
/* Refuses what Ember cannot build yet (devices to come), naming it; 0 or -errno. */
int vm__check_config(const struct vm_config *cfg);
/* Opens KVM, creates the VM, memory, devices and vCPUs, and loads the kernel. */
int vm__create(struct vm *vm, const struct vm_config *cfg, const struct vm_options *opts);
/*
 * For a snapshot's restore: the VM of cfg on guest memory the caller has laid out and mapped
 * (*mem is taken over, vm unmaps it, and left empty - also on failure), devices and vCPUs
 * created but no kernel loaded and no boot registers set: the caller restores every state
 * before vm__start().
 */
int vm__create_restored(struct vm *vm, const struct vm_config *cfg,
			const struct vm_options *opts, struct gmem *mem);
/*
 * KVM's dirty log of memory region `region` (its slot) into bitmap (a bit per 4 KiB page,
 * region size / 4 KiB bits, rounded up to 64), and clears it. Only with track_dirty_pages;
 * 0 or -errno with error__set().
 */
int vm__get_dirty_log(struct vm *vm, unsigned int region, uint64_t *bitmap);
struct snapshot_file_writer;
struct snapshot_file_reader;
/* Every device's state into a snapshot, and back (snapshot.c calls them). 0 or -errno. */
int vm__save_devices(struct vm *vm, struct snapshot_file_writer *w);
int vm__restore_devices(struct vm *vm, const struct snapshot_file_reader *r);
/* How cfg's guest memory is backed (machine-config huge_pages, ksm). */
void vm__memory_backing(const struct vm_config *cfg, struct memory_backing *b);
/* Starts one thread per vCPU. */
int vm__start(struct vm *vm);
/* Records why the VM stops (first caller wins) and wakes the VMM thread. */
void vm__request_stop(struct vm *vm, enum vm_stop_reason reason, int code);
/*
 * Parks every vCPU outside KVM_RUN and returns once all are parked (-ETIMEDOUT after
 * timeout_ms, the VM then stays pausing); vm__resume() lets them run again.
 */
int vm__pause(struct vm *vm, int timeout_ms);
/* Before vm__start(): the vCPU threads park before they run a guest instruction. */
void vm__start_paused(struct vm *vm);
void vm__resume(struct vm *vm);
/* Called by a vCPU thread between runs: parks it while a pause is requested. */
void vm__vcpu_checkpoint(struct vm *vm);
/* Presses and releases Ctrl-Alt-Del on the i8042 keyboard. */
void vm__send_ctrl_alt_del(struct vm *vm);
/* Kicks every vCPU out of KVM_RUN and joins the threads. */
void vm__stop_vcpus(struct vm *vm);
/* The process exit code for the recorded stop reason. */
int vm__exit_code(const struct vm *vm);
void vm__destroy(struct vm *vm);
/*
 * For a process about to exit: stops the vCPUs and frees what Ember allocated, but leaves
 * the KVM fds and guest memory to the kernel's process exit. The kernel tears a VM down
 * faster once the address space is gone than through close() on a live process
 * (bench/results/startup.md).
 */
void vm__destroy_for_exit(struct vm *vm);
/*
 * Builds a kernel command line: boot_args plus what the config makes Ember append (its
 * virtio devices, the root, reboot=panic_warm), before any "--". A VM's own line also
 * names the VMGenID page (`ember.vmgenid=0x<address>`, before reboot=panic_warm).
 */
int vm__build_cmdline(const struct vm_config *cfg, char **out);

#endif
