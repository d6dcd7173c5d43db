/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The driver's side of a split virtqueue (virtio 1.2, 2.7) in a fake guest memory, laid out
 * and filled the way Linux's virtio_ring.c does: descriptors taken in order and linked with
 * next = i + 1, avail ring entries first and then avail->idx (a release store, so a device
 * on another thread sees the entries), used_event / avail_event with VIRTIO_F_EVENT_IDX.
 * For tests and harnesses that play the driver.
 *
 * Descriptors are handed out round the table in order, so chains must come back in the
 * order they went (as they do for virtio-net and virtio-vsock queues) and at most size
 * descriptors be out at a time: the caller keeps count.
 */
#ifndef EMBER_TESTS_FAKE_VRING_H
#define EMBER_TESTS_FAKE_VRING_H

#include <stdbool.h>
#include <stdint.h>

#include "fake_gmem.h"

/* Guest memory one ring takes: the table, the avail ring and the used ring, 4 KiB each. */
#define FAKE_VRING_BYTES 0x3000ULL
#define FAKE_VRING_MAX 256

struct fake_vring {
	struct fake_gmem *mem;
	uint64_t desc, avail, used; /* guest-physical */
	uint16_t size;
	bool event_idx;
	uint16_t avail_idx; /* what avail->idx becomes at the next publish */
	uint16_t published; /* avail->idx as the device can see it */
	uint16_t next_desc; /* the next free descriptor */
	uint16_t last_used; /* the next used element to read */
};

/* A ring of size entries (a power of 2, at most FAKE_VRING_MAX) at gpa, zeroed. */
void fake_vring__init(struct fake_vring *r, struct fake_gmem *mem, uint64_t gpa, uint16_t size,
		      bool event_idx);
/*
 * A chain of n direct descriptors (gpas[i], lens[i]), device-writable if write, put in the
 * avail ring (not visible before fake_vring__publish()). Returns its head.
 */
uint16_t fake_vring__add(struct fake_vring *r, const uint64_t *gpas, const uint32_t *lens,
			 unsigned int n, bool write);
/* The same with each descriptor's direction of its own (write[i]: device-writable). */
uint16_t fake_vring__add_chain(struct fake_vring *r, const uint64_t *gpas, const uint32_t *lens,
			       const bool *write, unsigned int n);
/* Makes what was added visible; true when the device asked to be kicked for it. */
bool fake_vring__publish(struct fake_vring *r);
/* The next used element, if there is one (false: none yet). */
bool fake_vring__next_used(struct fake_vring *r, uint32_t *id, uint32_t *len);
/* With EVENT_IDX: an interrupt is wanted once the device uses the next element. */
void fake_vring__want_interrupt(struct fake_vring *r);

#endif
