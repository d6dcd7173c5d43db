/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A fake guest memory for driving virtio devices without a guest: unit tests and bench
 * harnesses play the driver, writing rings and buffers into it, and hand the device its
 * struct gmem as a VM would. The memory is what memory__map() gives a VM (anonymous,
 * MAP_NORESERVE: only what is touched costs anything), so a harness can also register it
 * with KVM as memslots.
 *
 * The accessors are the driver's side: little-endian, and through gmem__ptr() like every
 * other access to guest memory. An address outside the fake guest is a bug in the test,
 * not a hostile guest: they abort. mem is the host view of the first region (from
 * guest-physical 0, up to the MMIO gap) for tests that compare bytes in place.
 */
#ifndef EMBER_TESTS_FAKE_GMEM_H
#define EMBER_TESTS_FAKE_GMEM_H

#include <stdint.h>

#include "vmm/memory.h"

struct fake_gmem {
	struct gmem gm;
	uint8_t *mem;	/* gm.regions[0].host */
	uint64_t bytes; /* RAM, over all regions */
};

/* bytes of RAM (a multiple of 4 KiB), laid out as for a VM of that size. 0 or -errno. */
int fake_gmem__create(struct fake_gmem *f, uint64_t bytes);
void fake_gmem__destroy(struct fake_gmem *f);
/* Zeroes [gpa, gpa + len). */
void fake_gmem__clear(struct fake_gmem *f, uint64_t gpa, uint64_t len);
/* gmem__ptr(), aborting when [gpa, gpa + len) is not wholly guest RAM. */
void *fake_gmem__ptr(const struct fake_gmem *f, uint64_t gpa, uint64_t len);

void fake_gmem__put16(struct fake_gmem *f, uint64_t gpa, uint16_t v);
void fake_gmem__put32(struct fake_gmem *f, uint64_t gpa, uint32_t v);
void fake_gmem__put64(struct fake_gmem *f, uint64_t gpa, uint64_t v);
uint16_t fake_gmem__get16(const struct fake_gmem *f, uint64_t gpa);
uint32_t fake_gmem__get32(const struct fake_gmem *f, uint64_t gpa);
uint64_t fake_gmem__get64(const struct fake_gmem *f, uint64_t gpa);
/*
 * For a driver on another thread than the device: a 16-bit ring index (avail->idx,
 * used_event) stored with release order, and one (used->idx, avail_event) loaded with
 * acquire order. gpa must be 2-byte aligned.
 */
void fake_gmem__store16_release(struct fake_gmem *f, uint64_t gpa, uint16_t v);
uint16_t fake_gmem__load16_acquire(const struct fake_gmem *f, uint64_t gpa);

/* Writes descriptor i of the table at gpa table (virtio 1.2, 2.7.5). */
void fake_gmem__set_desc(struct fake_gmem *f, uint64_t table, unsigned int i, uint64_t addr,
			 uint32_t len, uint16_t flags, uint16_t next);

#endif
