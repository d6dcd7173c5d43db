// SPDX-License-Identifier: Apache-2.0
/*
 * e820: prints the memory map as the guest was given it, then writes and reads back a
 * pattern at the first and last 8 bytes of every RAM entry above 1 MiB (the original
 * contents are put back: the first one holds this very image).
 */
#include "guest.h"

#define ONE_MIB 0x100000ULL
#define PATTERN 0x5aa5c33c0ff0e11eULL

static bool touch(uint64_t addr)
{
	volatile uint64_t *p = (volatile uint64_t *)(uintptr_t)addr;
	uint64_t old = *p, a = PATTERN ^ addr, b = ~a;
	bool ok;

	*p = a;
	ok = *p == a;
	*p = b;
	ok = ok && *p == b;
	*p = old;
	return ok;
}

const char *test_e820(void)
{
	uint64_t ram = 0;

	for (unsigned int i = 0; i < boot_info.nr_regions; i++) {
		const struct mem_region *r = &boot_info.regions[i];

		report("e820 0x%llx 0x%llx %u", (unsigned long long)r->addr,
		       (unsigned long long)(r->addr + r->size), r->type);
	}
	for (unsigned int i = 0; i < boot_info.nr_regions; i++) {
		const struct mem_region *r = &boot_info.regions[i];
		uint64_t start = r->addr < ONE_MIB ? ONE_MIB : r->addr, end = r->addr + r->size;

		if (r->type != E820_RAM)
			continue;
		ram += r->size;
		if (end < start + 16)
			continue;
		if (!touch(start) || !touch(end - 8))
			return fail("readback mismatch in RAM 0x%llx-0x%llx",
				    (unsigned long long)start, (unsigned long long)end);
		report("e820 touched 0x%llx 0x%llx", (unsigned long long)start,
		       (unsigned long long)end);
	}
	report("e820 ram=%llu", (unsigned long long)ram);
	return ram ? NULL : "no RAM in the memory map";
}
