/* SPDX-License-Identifier: Apache-2.0 */
/*
 * x86_64 direct boot: an ELF vmlinux through its PVH entry note when it has one and the
 * 64-bit Linux boot protocol otherwise, or a bzImage through its setup header; an optional
 * initrd; the command line, the e820 map, the GDT, the identity page tables and the zero
 * page (or PVH start_info); and the registers of the boot vCPU.
 * Kernel and initrd files are untrusted: every offset and size is checked.
 */
#ifndef EMBER_VMM_BOOT_X86_H
#define EMBER_VMM_BOOT_X86_H

#include <linux/kvm.h>
#include <stdint.h>

#include "vmm/memory.h"

enum kernel_format {
	KERNEL_FORMAT_ELF,     /* vmlinux, 64-bit Linux boot protocol */
	KERNEL_FORMAT_PVH,     /* vmlinux with a PVH entry note */
	KERNEL_FORMAT_BZIMAGE, /* bzImage, 64-bit entry of its protected-mode part */
};

#define BOOT_SETUP_HDR_OFFSET 0x1f1
#define BOOT_SETUP_HDR_MAX 0x80
#define BOOT_E820_MAX 128

struct kernel_image {
	enum kernel_format format;
	uint64_t entry;
	uint64_t load_start;
	uint64_t load_end;    /* exclusive; covers bss and, for a bzImage, init_size */
	uint32_t cmdline_max; /* bytes, NUL included */
	uint64_t initrd_addr_max;
	uint8_t setup_hdr[BOOT_SETUP_HDR_MAX]; /* bzImage: its header, from 0x1f1 */
	uint32_t setup_hdr_len;
};

struct initrd_image {
	uint64_t addr;
	uint64_t size; /* 0: none */
};

struct e820_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
};

#define E820_RAM 1
#define E820_RESERVED 2

const char *boot_x86__format_name(enum kernel_format f);
/* Loads the kernel from fd into guest memory. -EINVAL/-EFAULT/-EIO with error__set(). */
int boot_x86__load_kernel(const struct gmem *gm, int fd, struct kernel_image *img);
/* Places the initrd at the top of low RAM, above the kernel. */
int boot_x86__load_initrd(const struct gmem *gm, int fd, const struct kernel_image *img,
			  struct initrd_image *out);
/* The guest's memory map; returns the number of entries written (at most max). */
unsigned int boot_x86__e820(const struct gmem *gm, struct e820_entry *out, unsigned int max);
/* Writes the command line, GDT, page tables and zero page or PVH start_info. */
int boot_x86__setup(const struct gmem *gm, const struct kernel_image *img, const char *cmdline,
		    const struct initrd_image *initrd);
/* The boot vCPU's registers at the kernel's entry. */
void boot_x86__regs(const struct kernel_image *img, struct kvm_regs *regs, struct kvm_sregs *sregs);

#endif
