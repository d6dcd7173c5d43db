/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The x86_64 guest-physical memory layout Ember gives every guest.
 * docs/boot.md explains it; the test guest (tests/guest/) relies on it.
 */
#ifndef EMBER_VMM_LAYOUT_H
#define EMBER_VMM_LAYOUT_H

/* Below 1 MiB: the boot structures Ember writes before the first instruction. */
#define LAYOUT_GDT_ADDR 0x500ULL
#define LAYOUT_PVH_INFO_ADDR 0x6000ULL
#define LAYOUT_PVH_MODLIST_ADDR 0x6040ULL
#define LAYOUT_PVH_MEMMAP_ADDR 0x6080ULL
#define LAYOUT_PVH_MEMMAP_MAX 128
#define LAYOUT_ZERO_PAGE_ADDR 0x7000ULL
#define LAYOUT_BOOT_STACK_ADDR 0x8ff0ULL
#define LAYOUT_PML4_ADDR 0x9000ULL
#define LAYOUT_PDPTE_ADDR 0xa000ULL
#define LAYOUT_PDE_ADDR 0xb000ULL /* four pages, to 0xefff: the first 4 GiB */
#define LAYOUT_PDE_PAGES 4ULL
#define LAYOUT_CMDLINE_ADDR 0x20000ULL
#define LAYOUT_CMDLINE_MAX 2048ULL /* Linux x86 COMMAND_LINE_SIZE: it cuts a longer one */
#define LAYOUT_EBDA_START 0x9fc00ULL
#define LAYOUT_MPTABLE_ADDR LAYOUT_EBDA_START
#define LAYOUT_LOWMEM_END 0xa0000ULL

/* The kernel is loaded at 1 MiB. */
#define LAYOUT_HIMEM_START 0x100000ULL

/* The 32-bit MMIO gap: RAM never lives here; devices do. */
#define LAYOUT_MMIO_GAP_START 0xd0000000ULL
#define LAYOUT_MMIO_GAP_END 0x100000000ULL
#define LAYOUT_MMIO_GAP_SIZE (LAYOUT_MMIO_GAP_END - LAYOUT_MMIO_GAP_START)

/* Firecracker's boot timer: byte 123 written here means "boot complete". */
#define LAYOUT_BOOT_TIMER_ADDR LAYOUT_MMIO_GAP_START
#define LAYOUT_BOOT_TIMER_SIZE 0x1000ULL

/* virtio-mmio devices: one 4 KiB window each, from here up. */
#define LAYOUT_VIRTIO_MMIO_START (LAYOUT_MMIO_GAP_START + 0x1000ULL)
#define LAYOUT_VIRTIO_MMIO_SIZE 0x1000ULL
/* Their legacy IRQs, on the IOAPIC. */
#define LAYOUT_VIRTIO_IRQ_FIRST 5
#define LAYOUT_VIRTIO_IRQ_LAST 23

/*
 * The VM generation ID (vmgenid.h, docs/clone-safety.md): one read-only 4 KiB page, 1 MiB
 * into the gap, far above the last virtio-mmio window (slot 18 ends at 0xd0014000).
 */
#define LAYOUT_VMGENID_ADDR (LAYOUT_MMIO_GAP_START + 0x100000ULL)
#define LAYOUT_VMGENID_SIZE 0x1000ULL

#define LAYOUT_IOAPIC_ADDR 0xfec00000ULL
#define LAYOUT_LAPIC_ADDR 0xfee00000ULL
#define LAYOUT_IDENTITY_MAP_ADDR 0xfffbc000ULL
#define LAYOUT_TSS_ADDR 0xfffbd000ULL

/* Legacy ports and IRQs. */
#define LAYOUT_COM1_PORT 0x3f8
#define LAYOUT_COM1_IRQ 4
#define LAYOUT_I8042_DATA_PORT 0x60
#define LAYOUT_I8042_CMD_PORT 0x64
#define LAYOUT_I8042_IRQ 1
/* The optional debug-exit port (--debug-exit): the byte written is the exit code. */
#define LAYOUT_DEBUG_EXIT_PORT 0xf4

/* The BIOS warm-reset flag; Linux writes 0x1234 here before a warm reset. */
#define LAYOUT_WARM_RESET_FLAG_ADDR 0x472ULL
#define LAYOUT_WARM_RESET_MAGIC 0x1234

#endif
