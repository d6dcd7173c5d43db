/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The driver's side of the virtio-mmio transport for tests and harnesses: register reads
 * and writes as a vCPU's MMIO exit makes them (virtio_mmio__bus_ops), the initialisation
 * sequence (virtio 1.2, 3.1.1 and 4.2.3.1) with split rings from fake_vring.h, and kicks
 * through the queue's ioeventfd (the eventfd KVM signals on a write to QueueNotify).
 */
#ifndef EMBER_TESTS_FAKE_VIRTIO_H
#define EMBER_TESTS_FAKE_VIRTIO_H

#include <stdint.h>

#include "fake_vring.h"
#include "virtio/mmio.h"

uint32_t fake_virtio__read(struct virtio_mmio *t, uint64_t off);
void fake_virtio__write(struct virtio_mmio *t, uint64_t off, uint32_t v);
/* The device's feature bits. */
uint64_t fake_virtio__offered(struct virtio_mmio *t);
/*
 * Resets the device, negotiates want (all of it offered, or -ENOTSUP) and sets up queue i on
 * rings[i] for i < nr, as a driver does before DRIVER_OK. 0 or -errno with error__set().
 */
int fake_virtio__configure(struct virtio_mmio *t, uint32_t device_id, uint64_t want,
			   const struct fake_vring *rings, unsigned int nr);
/* fake_virtio__configure(), then DRIVER_OK. */
int fake_virtio__start(struct virtio_mmio *t, uint32_t device_id, uint64_t want,
		       const struct fake_vring *rings, unsigned int nr);
/* Kicks queue q: 0 or -errno. */
int fake_virtio__kick(struct virtio_mmio *t, uint16_t q);

#endif
