/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The virtio-mmio transport, version 2 (virtio 1.x, 4.2). It owns the registers, the
 * feature negotiation, the status state machine and the queues; a device supplies a const
 * ops table. Queue notifications arrive through KVM ioeventfds on the VMM thread's loop (a
 * notify never exits to userspace on a vCPU thread), interrupts leave through an irqfd.
 *
 * Locking: register accesses come from vCPU threads, queue work from the VMM thread; both
 * hold t->lock, so a device's ops run with it held.
 */
#ifndef EMBER_VIRTIO_MMIO_H
#define EMBER_VIRTIO_MMIO_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "virtio/queue.h"
#include "vmm/bus.h"
#include "vmm/event_loop.h"
#include "vmm/memory.h"
#include "vmm/metrics.h"

#define VIRTIO_MMIO_MAX_QUEUES 4

/* Feature bits (virtio 1.x, 6) */
#define VIRTIO_F_INDIRECT_DESC 28
#define VIRTIO_F_EVENT_IDX 29
#define VIRTIO_F_VERSION_1 32

/* Device status bits */
#define VIRTIO_STATUS_ACKNOWLEDGE 1
#define VIRTIO_STATUS_DRIVER 2
#define VIRTIO_STATUS_DRIVER_OK 4
#define VIRTIO_STATUS_FEATURES_OK 8
#define VIRTIO_STATUS_NEEDS_RESET 64
#define VIRTIO_STATUS_FAILED 128

/* InterruptStatus bits */
#define VIRTIO_MMIO_INT_VRING 1
#define VIRTIO_MMIO_INT_CONFIG 2

struct virtio_mmio;
struct snapshot_file_writer;
struct snapshot_file_reader;

struct virtio_dev_ops {
	uint32_t device_id; /* VIRTIO_ID_* */
	const char *name;
	uint16_t nr_queues;
	/* the device's feature bits; the transport adds VERSION_1 */
	uint64_t (*features)(void *dev);
	uint32_t config_size;
	void (*config_read)(void *dev, uint32_t offset, uint8_t *data, uint32_t len);
	void (*config_write)(void *dev, uint32_t offset, const uint8_t *data, uint32_t len);
	/* DRIVER_OK: the queues are ready; 0 or -errno (the device is then FAILED) */
	int (*activate)(void *dev);
	/* the driver reset the device (or it needs a reset); drop in-flight work */
	void (*reset)(void *dev);
	/* VMM thread: queue q was kicked */
	void (*notify)(void *dev, uint16_t q);
};

struct virtio_mmio_kick {
	struct event_handler h;
	struct virtio_mmio *t;
	uint16_t queue;
};

struct virtio_mmio {
	pthread_mutex_t lock;
	const struct virtio_dev_ops *ops;
	void *dev;
	const struct gmem *gm;
	int vm_fd;
	uint64_t base;
	uint32_t gsi;
	int irq_fd;

	uint32_t status;
	uint32_t dev_features_sel;
	uint32_t drv_features_sel;
	uint64_t driver_features;
	uint32_t queue_sel;
	uint32_t isr;
	uint32_t config_generation;
	struct virtq queues[VIRTIO_MMIO_MAX_QUEUES];
	struct virtio_mmio_kick kicks[VIRTIO_MMIO_MAX_QUEUES];
	struct virtio_metrics m; /* needs_reset: times the driver broke a rule */
	bool restored_irq; /* restored with InterruptStatus set: raise it again at a kick */
};

extern const struct bus_dev_ops virtio_mmio__bus_ops;

/*
 * Sets up the transport at base (4 KiB) with interrupt gsi: an irqfd and one ioeventfd per
 * queue on QueueNotify. The caller registers &virtio_mmio__bus_ops on the MMIO bus with t
 * as opaque, and calls virtio_mmio__watch() with the VMM loop. 0 or -errno with
 * error__set(); on an error, virtio_mmio__destroy() closes what was opened.
 *
 * Without KVM (vm_fd < 0: unit tests and harnesses), the same transport with its eventfds
 * registered nowhere, and base and gsi only names: no KVM_IRQFD, no KVM_IOEVENTFD (nor its
 * removal in virtio_mmio__destroy()). The caller kicks queue q by writing 8 bytes to
 * t->kicks[q].h.fd (handled once watched, as a kick from KVM would be) and sees the
 * interrupts by reading t->irq_fd. A write to QueueNotify through the bus is not a kick
 * there: it is counted in bad_register_accesses, as one that no ioeventfd took.
 */
int virtio_mmio__init(struct virtio_mmio *t, int vm_fd, const struct gmem *gm, uint64_t base,
		      uint32_t gsi, const struct virtio_dev_ops *ops, void *dev);
int virtio_mmio__watch(struct virtio_mmio *t, struct event_loop *loop);
void virtio_mmio__destroy(struct virtio_mmio *t);

/* With t->lock held (from ops): interrupt the driver for used buffers on queue q, if it
 * wants one (EVENT_IDX, NO_INTERRUPT). */
void virtio_mmio__used(struct virtio_mmio *t, uint16_t q);
/* With t->lock held: the config space changed (e.g. the disk's size). */
void virtio_mmio__config_changed(struct virtio_mmio *t);
/* With t->lock held: the driver broke a rule; the device stops until it is reset. */
void virtio_mmio__needs_reset(struct virtio_mmio *t, const char *why);
/* Queue q is live (DRIVER_OK, ready, not broken). */
bool virtio_mmio__queue_live(const struct virtio_mmio *t, uint16_t q);
/*
 * Snapshots (docs/snapshot-format.md, the virtio-mmio section), with t->lock held.
 *
 * save: the registers and every queue, under the device's id; given_back[q] (NULL: none)
 * chains the device took from queue q and has not used, the most recent ones: the file
 * holds q's next available index moved back by that many, so that the restored device
 * takes them again. The device itself is not changed.
 *
 * restore: on a device just created (status 0; else -EBUSY), the section saved under id.
 * Everything is checked before anything changes, as the driver's register writes are: the
 * device type, MMIO base and IRQ, the status bits, the features (what the driver took must
 * be offered), the queue count, and each ready queue's size (a power of two up to
 * VIRTQ_MAX_SIZE) and rings (aligned, wholly in guest RAM); -EINVAL with a message that
 * names label ("drive rootfs") otherwise. Then the registers and queues are set as they
 * were, and a device the driver had started (DRIVER_OK) is activated again through its
 * ops, its queues kept. Once the loop watches the device, each ready queue gets a kick
 * (what the driver made available meanwhile is looked at), and an interrupt the driver had
 * not acknowledged is raised again. 0 or -errno with error__set().
 */
int virtio_mmio__save(struct virtio_mmio *t, const char *id, const uint16_t *given_back,
		      struct snapshot_file_writer *w);
int virtio_mmio__restore(struct virtio_mmio *t, const char *label, const char *id,
			 const struct snapshot_file_reader *r);
/* For device events outside the transport's own (completions, timers). */
void virtio_mmio__lock(struct virtio_mmio *t);
void virtio_mmio__unlock(struct virtio_mmio *t);

#endif
