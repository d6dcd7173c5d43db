// SPDX-License-Identifier: Apache-2.0
/*
 * A bump allocator for pages after the image, and page tables for RAM above 4 GiB.
 * The first 4 GiB are identity-mapped at link time (entry.S).
 */
#include "guest.h"

#define PAGE_SIZE 4096ULL
#define HUGE_SIZE 0x200000ULL
#define GIB 0x40000000ULL
#define FOUR_GIB 0x100000000ULL
#define PDPT_LIMIT (512ULL << 30)
#define PTE_TABLE 0x03ULL
#define PDE_WB 0x83ULL
#define PDE_UC 0x9bULL
#define PTE_PRESENT 0x01ULL
#define PTE_ADDR_MASK 0x000ffffffffff000ULL

extern uint64_t boot_pdpt[512];
extern char _end[];

static uint64_t alloc_next, alloc_end;

static uint64_t align_up(uint64_t v, uint64_t a)
{
	return (v + a - 1) & ~(a - 1);
}

void *memory__alloc(size_t bytes)
{
	uint64_t p = alloc_next, size = align_up(bytes, PAGE_SIZE);

	if (!bytes || size > alloc_end - alloc_next)
		return NULL;
	alloc_next += size;
	return (void *)(uintptr_t)p;
}

static uint64_t *page_directory(uint64_t addr)
{
	uint64_t *pdpte = &boot_pdpt[addr >> 30];
	void *pd;

	if (*pdpte & PTE_PRESENT)
		return (uint64_t *)(uintptr_t)(*pdpte & PTE_ADDR_MASK);
	pd = memory__alloc(PAGE_SIZE);
	if (!pd)
		return NULL;
	memset(pd, 0, PAGE_SIZE);
	*pdpte = (uintptr_t)pd | PTE_TABLE;
	return pd;
}

int memory__map(uint64_t start, uint64_t end, bool uncached)
{
	uint64_t flags = uncached ? PDE_UC : PDE_WB, pa;

	start = start < FOUR_GIB ? FOUR_GIB : start & ~(HUGE_SIZE - 1);
	if (end > PDPT_LIMIT)
		return -1;
	for (pa = start; pa < end;) {
		uint64_t *pd = page_directory(pa), gib_end = (pa | (GIB - 1)) + 1;
		uint64_t stop = end < gib_end ? end : gib_end;

		if (!pd)
			return -1;
		/* The hot loop: ~5 instructions a 2 MiB page. */
		for (pd += (pa >> 21) & 511; pa < stop; pa += HUGE_SIZE)
			*pd++ = pa | flags;
	}
	__asm__ volatile("mov %%cr3, %%rax; mov %%rax, %%cr3" : : : "rax", "memory");
	return 0;
}

void memory__init(void)
{
	uint64_t image_end = align_up((uintptr_t)_end, PAGE_SIZE);

	alloc_next = alloc_end = image_end;
	for (unsigned int i = 0; i < boot_info.nr_regions; i++) {
		const struct mem_region *r = &boot_info.regions[i];

		if (r->type == E820_RAM && r->addr < image_end && image_end - r->addr < r->size) {
			alloc_end = r->addr + r->size;
			break;
		}
	}
	if (alloc_end > MMIO_GAP_START)
		alloc_end = MMIO_GAP_START;
	if (alloc_end == alloc_next)
		report("warning: no RAM after the image at 0x%llx", (unsigned long long)image_end);
	for (unsigned int i = 0; i < boot_info.nr_regions; i++) {
		const struct mem_region *r = &boot_info.regions[i];

		if (r->type != E820_RAM || r->size > UINT64_MAX - r->addr ||
		    r->addr + r->size <= FOUR_GIB)
			continue;
		if (memory__map(r->addr, r->addr + r->size, false))
			report("warning: cannot map RAM at 0x%llx", (unsigned long long)r->addr);
	}
}
