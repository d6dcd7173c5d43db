// SPDX-License-Identifier: Apache-2.0
#include "vmm/bus.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/log.h"

void bus__init(struct bus *bus, const char *name)
{
	memset(bus, 0, sizeof(*bus));
	bus->name = name;
}

static bool overlaps(const struct bus_range *r, uint64_t base, uint64_t last)
{
	return base <= r->base + (r->len - 1) && r->base <= last;
}

int bus__register(struct bus *bus, uint64_t base, uint64_t len, const struct bus_dev_ops *ops,
		  void *opaque, const char *name)
{
	uint64_t last;
	unsigned int pos = 0;

	if (bus->frozen)
		return -EBUSY;
	if (!len || __builtin_add_overflow(base, len - 1, &last))
		return -EINVAL;
	for (unsigned int i = 0; i < bus->nr; i++) {
		if (overlaps(&bus->ranges[i], base, last))
			return -EEXIST;
		if (bus->ranges[i].base < base)
			pos = i + 1;
	}
	if (bus->nr == bus->cap) {
		unsigned int cap = bus->cap ? bus->cap * 2 : 8;
		struct bus_range *r = realloc(bus->ranges, cap * sizeof(*r));

		if (!r)
			return -ENOMEM;
		bus->ranges = r;
		bus->cap = cap;
	}
	memmove(&bus->ranges[pos + 1], &bus->ranges[pos], (bus->nr - pos) * sizeof(bus->ranges[0]));
	bus->ranges[pos] = (struct bus_range){ base, len, ops, opaque, name };
	bus->nr++;
	return 0;
}

void bus__freeze(struct bus *bus)
{
	bus->frozen = true;
}

const struct bus_range *bus__find(const struct bus *bus, uint64_t addr, uint32_t len)
{
	unsigned int lo = 0, hi = bus->nr;
	uint64_t last;

	if (!len || __builtin_add_overflow(addr, (uint64_t)len - 1, &last))
		return NULL;
	while (lo < hi) {
		unsigned int mid = lo + (hi - lo) / 2;
		const struct bus_range *r = &bus->ranges[mid];

		if (addr < r->base) {
			hi = mid;
		} else if (addr > r->base + (r->len - 1)) {
			lo = mid + 1;
		} else {
			/* addr is inside r; the access must end inside it too */
			return last <= r->base + (r->len - 1) ? r : NULL;
		}
	}
	return NULL;
}

static void count_unassigned(struct bus *bus, uint64_t *ctr, const char *what, uint64_t addr,
			     uint32_t len)
{
	uint64_t n = __atomic_add_fetch(ctr, 1, __ATOMIC_RELAXED);

	/* a guest can do this in a loop: log the first few only */
	if (n <= 16)
		log_debug("unassigned %s %s at 0x%llx len %u", bus->name, what,
			  (unsigned long long)addr, len);
}

bool bus__read(struct bus *bus, uint64_t addr, uint8_t *data, uint32_t len)
{
	const struct bus_range *r = bus__find(bus, addr, len);

	if (!r || !r->ops->read) {
		memset(data, 0xff, len);
		count_unassigned(bus, &bus->unassigned_reads, "read", addr, len);
		return false;
	}
	r->ops->read(r->opaque, addr - r->base, data, len);
	return true;
}

bool bus__write(struct bus *bus, uint64_t addr, const uint8_t *data, uint32_t len)
{
	const struct bus_range *r = bus__find(bus, addr, len);

	if (!r || !r->ops->write) {
		count_unassigned(bus, &bus->unassigned_writes, "write", addr, len);
		return false;
	}
	r->ops->write(r->opaque, addr - r->base, data, len);
	return true;
}

void bus__destroy(struct bus *bus)
{
	free(bus->ranges);
	bus->ranges = NULL;
	bus->nr = bus->cap = 0;
}
