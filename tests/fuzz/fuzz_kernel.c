// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer target: boot_x86__load_kernel() on an arbitrary file; when it loads, the same
 * bytes as the initrd, then the boot structures and registers.
 *
 * Each input runs against two fake guests: 64 MiB, and 3.25 GiB + 1 GiB split around the
 * MMIO gap. Both are MAP_NORESERVE; the big one is dropped after every input so that the
 * fuzzer's RSS stays small. The file is one memfd, truncated and rewritten per input.
 *
 * With FUZZ_KERNEL_INVARIANTS=1 in the environment, a kernel that loads but breaks what the
 * loader promises (entry inside the image, a usable command-line limit, boot structures
 * that can be written) aborts, so logic bugs show up as crashes too.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vmm/boot_x86.h"
#include "vmm/layout.h"
#include "vmm/log.h"
#include "vmm/memory.h"

#define SMALL_RAM (64ULL << 20)
#define BIG_RAM (LAYOUT_MMIO_GAP_START + (1ULL << 30))
#define CMDLINE "console=ttyS0 reboot=k panic=1"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int kernel_fd = -1;
static struct gmem small_guest, big_guest;
static bool invariants;

static void map_guest(struct gmem *gm, uint64_t bytes)
{
	if (memory__layout(gm, bytes))
		abort();
	for (unsigned int i = 0; i < gm->nr_regions; i++) {
		void *p = mmap(NULL, gm->regions[i].size, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

		if (p == MAP_FAILED)
			abort();
		gm->regions[i].host = p;
	}
}

static void drop_guest(const struct gmem *gm)
{
	for (unsigned int i = 0; i < gm->nr_regions; i++)
		madvise(gm->regions[i].host, gm->regions[i].size, MADV_DONTNEED);
}

static void init_once(void)
{
	const char *env = getenv("FUZZ_KERNEL_INVARIANTS");

	kernel_fd = memfd_create("kernel", MFD_CLOEXEC);
	if (kernel_fd < 0)
		abort();
	map_guest(&small_guest, SMALL_RAM);
	map_guest(&big_guest, BIG_RAM);
	invariants = env && *env == '1';
}

static void check(bool ok, const char *what, const struct kernel_image *ki)
{
	if (ok || !invariants)
		return;
	fprintf(stderr,
		"invariant broken: %s (format %d, entry %#llx, [%#llx, %#llx), cmdline_max %u)\n",
		what, ki->format, (unsigned long long)ki->entry, (unsigned long long)ki->load_start,
		(unsigned long long)ki->load_end, ki->cmdline_max);
	abort();
}

static void check_kernel(const struct gmem *gm, const struct kernel_image *ki)
{
	check(ki->load_start >= LAYOUT_HIMEM_START, "image below 1 MiB", ki);
	check(ki->load_start < ki->load_end, "empty image", ki);
	check(ki->entry >= ki->load_start && ki->entry < ki->load_end, "entry outside", ki);
	check(ki->cmdline_max >= 1 && ki->cmdline_max <= LAYOUT_CMDLINE_MAX, "cmdline_max", ki);
	check(ki->setup_hdr_len <= BOOT_SETUP_HDR_MAX, "setup header length", ki);
	if (ki->format == KERNEL_FORMAT_PVH)
		check(ki->entry < LAYOUT_MMIO_GAP_START, "PVH entry not 32-bit", ki);
	if (ki->format == KERNEL_FORMAT_BZIMAGE)
		check(gmem__ptr(gm, ki->load_start, ki->load_end - ki->load_start) != NULL,
		      "bzImage outside RAM", ki);
}

static void boot(const struct gmem *gm)
{
	struct initrd_image rd = { 0 };
	struct kernel_image ki;
	struct kvm_sregs sregs = { 0 };
	struct kvm_regs regs;
	int ret;

	error__clear();
	if (boot_x86__load_kernel(gm, kernel_fd, &ki))
		return;
	check_kernel(gm, &ki);
	if (!boot_x86__load_initrd(gm, kernel_fd, &ki, &rd)) {
		check(rd.addr >= ki.load_end && rd.addr + rd.size <= gmem__low_end(gm) &&
			  !(rd.addr & 0xfff),
		      "initrd placement", &ki);
	}
	ret = boot_x86__setup(gm, &ki, CMDLINE, &rd);
	/* a bzImage may take a shorter command line than ours: its refusal is fine */
	check(ret == 0 || sizeof(CMDLINE) > ki.cmdline_max,
	      "boot_x86__setup fails after a successful load", &ki);
	boot_x86__regs(&ki, &regs, &sregs);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (kernel_fd < 0)
		init_once();
	if (ftruncate(kernel_fd, 0) || pwrite(kernel_fd, data, size, 0) != (ssize_t)size)
		abort();
	boot(&small_guest);
	boot(&big_guest);
	drop_guest(&big_guest);
	return 0;
}
