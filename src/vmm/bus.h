/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Port-I/O and MMIO dispatch: a sorted array of ranges, built before the vCPUs start and
 * frozen after, looked up by binary search from the vCPU threads without locks.
 */
#ifndef EMBER_VMM_BUS_H
#define EMBER_VMM_BUS_H

#include <stdbool.h>
#include <stdint.h>

struct bus_dev_ops {
	/* offset is relative to the range's base; len is 1, 2, 4 or 8 */
	void (*read)(void *opaque, uint64_t offset, uint8_t *data, uint32_t len);
	void (*write)(void *opaque, uint64_t offset, const uint8_t *data, uint32_t len);
};

struct bus_range {
	uint64_t base;
	uint64_t len;
	const struct bus_dev_ops *ops;
	void *opaque;
	const char *name;
};

struct bus {
	const char *name; /* "pio" or "mmio", for logs */
	struct bus_range *ranges;
	unsigned int nr;
	unsigned int cap;
	bool frozen;
	uint64_t unassigned_reads;  /* atomically updated */
	uint64_t unassigned_writes; /* atomically updated */
};

void bus__init(struct bus *bus, const char *name);
/* -EINVAL for an empty or wrapping range, -EEXIST on overlap, -EBUSY once frozen. */
int bus__register(struct bus *bus, uint64_t base, uint64_t len, const struct bus_dev_ops *ops,
		  void *opaque, const char *name);
void bus__freeze(struct bus *bus);
const struct bus_range *bus__find(const struct bus *bus, uint64_t addr, uint32_t len);
/*
 * Dispatch one access. An access nobody owns (or one that straddles a range's end) reads
 * as all ones, is otherwise ignored and counted; returns false for it.
 */
bool bus__read(struct bus *bus, uint64_t addr, uint8_t *data, uint32_t len);
bool bus__write(struct bus *bus, uint64_t addr, const uint8_t *data, uint32_t len);
void bus__destroy(struct bus *bus);

#endif
