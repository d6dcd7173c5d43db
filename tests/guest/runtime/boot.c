// SPDX-License-Identifier: Apache-2.0
/*
 * Copies the command line and the memory map out of the boot structures: the PVH
 * hvm_start_info (Xen's arch-x86/hvm/start_info.h) or the Linux zero page (boot_params).
 * Done first, so the structures' memory is free afterwards (smp.c reuses 0x8000).
 */
#include "guest.h"

#define HVM_START_MAGIC 0x336ec578
#define FOUR_GIB 0x100000000ULL

/* Offsets in struct boot_params (Linux arch/x86/include/uapi/asm/bootparam.h). */
#define ZP_EXT_CMD_LINE_PTR 0x0c8
#define ZP_E820_ENTRIES 0x1e8
#define ZP_CMD_LINE_PTR 0x228
#define ZP_E820_TABLE 0x2d0
#define ZP_E820_MAX 128

struct hvm_start_info {
	uint32_t magic;
	uint32_t version;
	uint32_t flags;
	uint32_t nr_modules;
	uint64_t modlist_paddr;
	uint64_t cmdline_paddr;
	uint64_t rsdp_paddr;
	uint64_t memmap_paddr; /* version >= 1 */
	uint32_t memmap_entries;
	uint32_t reserved;
};

struct hvm_memmap_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
	uint32_t reserved;
};

struct boot_e820_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
} __attribute__((packed));

struct boot_info boot_info NOINIT;

const char *boot__protocol_name(unsigned int protocol)
{
	return protocol == BOOT_PVH ? "pvh" : protocol == BOOT_LINUX64 ? "linux64" : "unknown";
}

/* Only the first 4 GiB are mapped this early. */
static bool low_range(uint64_t paddr, uint64_t len)
{
	return paddr && paddr < FOUR_GIB && len <= FOUR_GIB - paddr;
}

static void add_region(uint64_t addr, uint64_t size, uint32_t type)
{
	struct mem_region *r;

	if (boot_info.nr_regions >= MEMMAP_MAX)
		return;
	r = &boot_info.regions[boot_info.nr_regions++];
	r->addr = addr;
	r->size = size;
	r->type = type;
}

static void copy_cmdline(uint64_t paddr)
{
	uint64_t max = CMDLINE_MAX - 1;
	size_t n = 0;

	if (paddr && !low_range(paddr, 1)) {
		report("warning: command line at 0x%llx is not below 4 GiB",
		       (unsigned long long)paddr);
	} else if (paddr) {
		if (FOUR_GIB - paddr < max)
			max = FOUR_GIB - paddr;
		n = strnlen((const char *)(uintptr_t)paddr, max);
		memcpy(boot_info.cmdline, (const char *)(uintptr_t)paddr, n);
	}
	boot_info.cmdline[n] = 0;
}

static void read_start_info(uint64_t paddr)
{
	const struct hvm_start_info *si = (const void *)(uintptr_t)paddr;
	const struct hvm_memmap_entry *map;
	uint32_t n;

	if (!low_range(paddr, sizeof(*si)) || si->magic != HVM_START_MAGIC) {
		report("warning: no hvm_start_info at 0x%llx", (unsigned long long)paddr);
		return;
	}
	copy_cmdline(si->cmdline_paddr);
	if (si->version < 1 || !si->memmap_entries)
		return;
	n = si->memmap_entries < MEMMAP_MAX ? si->memmap_entries : MEMMAP_MAX;
	if (!low_range(si->memmap_paddr, n * sizeof(*map))) {
		report("warning: bad memmap_paddr 0x%llx", (unsigned long long)si->memmap_paddr);
		return;
	}
	map = (const void *)(uintptr_t)si->memmap_paddr;
	for (uint32_t i = 0; i < n; i++)
		add_region(map[i].addr, map[i].size, map[i].type);
}

static void read_zero_page(uint64_t paddr)
{
	const uint8_t *zp = (const void *)(uintptr_t)paddr;
	const struct boot_e820_entry *e820;
	uint64_t cmdline;
	unsigned int n;

	if (!low_range(paddr, 4096)) {
		report("warning: no boot_params at 0x%llx", (unsigned long long)paddr);
		return;
	}
	cmdline = *(const uint32_t *)(zp + ZP_CMD_LINE_PTR) |
		  (uint64_t) * (const uint32_t *)(zp + ZP_EXT_CMD_LINE_PTR) << 32;
	copy_cmdline(cmdline);
	n = zp[ZP_E820_ENTRIES] < ZP_E820_MAX ? zp[ZP_E820_ENTRIES] : ZP_E820_MAX;
	e820 = (const void *)(zp + ZP_E820_TABLE);
	for (unsigned int i = 0; i < n; i++)
		add_region(e820[i].addr, e820[i].size, e820[i].type);
}

void boot__init(unsigned int protocol, uint64_t info_paddr)
{
	boot_info.protocol = protocol;
	boot_info.nr_regions = 0;
	boot_info.cmdline[0] = 0;
	if (protocol == BOOT_PVH)
		read_start_info(info_paddr);
	else
		read_zero_page(info_paddr);
}
