// SPDX-License-Identifier: Apache-2.0
#include "vmm/boot_x86.h"

#include <asm/bootparam.h>
#include <elf.h>
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmm/layout.h"
#include "vmm/log.h"

#define ELF_MAX_PHNUM 128
#define NOTE_MAX 65536
#define XEN_ELFNOTE_PHYS32_ENTRY 18
#define BZ_BOOT_FLAG 0xaa55
#define BZ_HDR_MAGIC 0x53726448 /* "HdrS" */
#define BZ_MIN_VERSION 0x020c	/* 2.12: xloadflags, so we know there is a 64-bit entry */
#define BZ_HEAD_BYTES 0x400
#define BZ_ENTRY64_OFFSET 0x200
#define BZ_DEFAULT_SETUP_SECTS 4
#define BZ_DEFAULT_INITRD_MAX 0x37ffffffULL
#define PAGE_SIZE_4K 0x1000ULL
#define PVH_START_MAGIC 0x336ec578
#define GDT_ENTRIES 5
#define SEL_CODE32 0x08
#define SEL_CODE64 0x10
#define SEL_DATA 0x18
#define SEL_TSS 0x20

/* Xen's public arch-x86/hvm/start_info.h, version 1 */
struct hvm_start_info {
	uint32_t magic;
	uint32_t version;
	uint32_t flags;
	uint32_t nr_modules;
	uint64_t modlist_paddr;
	uint64_t cmdline_paddr;
	uint64_t rsdp_paddr;
	uint64_t memmap_paddr;
	uint32_t memmap_entries;
	uint32_t reserved;
};

struct hvm_modlist_entry {
	uint64_t paddr;
	uint64_t size;
	uint64_t cmdline_paddr;
	uint64_t reserved;
};

struct hvm_memmap_table_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
	uint32_t reserved;
};

const char *boot_x86__format_name(enum kernel_format f)
{
	switch (f) {
	case KERNEL_FORMAT_PVH:
		return "ELF vmlinux (PVH entry)";
	case KERNEL_FORMAT_BZIMAGE:
		return "bzImage";
	default:
		return "ELF vmlinux (64-bit boot protocol)";
	}
}

/* Reads exactly len bytes at off, or fails: a short file is a truncated kernel. */
static int read_exact(int fd, void *buf, uint64_t len, uint64_t off, const char *what)
{
	uint8_t *p = buf;

	while (len) {
		size_t chunk = len > (1U << 30) ? (1U << 30) : (size_t)len;
		ssize_t r = pread(fd, p, chunk, (off_t)off);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return error__set(-errno, "%s: read error: %s", what, strerror(errno));
		if (r == 0)
			return error__set(-EINVAL, "%s: file is truncated", what);
		p += r;
		off += (uint64_t)r;
		len -= (uint64_t)r;
	}
	return 0;
}

static int file_size(int fd, uint64_t *size, const char *what)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return error__set(-errno, "%s: %s", what, strerror(errno));
	if (!S_ISREG(st.st_mode))
		return error__set(-EINVAL, "%s: not a regular file", what);
	*size = (uint64_t)st.st_size;
	return 0;
}

/* [off, off + len) lies within a file of size bytes */
static bool in_file(uint64_t off, uint64_t len, uint64_t size)
{
	uint64_t end;

	return !__builtin_add_overflow(off, len, &end) && end <= size;
}

static int load_segment(const struct gmem *gm, int fd, uint64_t fsize, const Elf64_Phdr *ph)
{
	uint8_t *dst;
	uint64_t end;

	if (ph->p_filesz > ph->p_memsz)
		return error__set(-EINVAL, "kernel: ELF segment has p_filesz > p_memsz");
	if (!in_file(ph->p_offset, ph->p_filesz, fsize))
		return error__set(-EINVAL, "kernel: ELF segment lies beyond the end of the file");
	if (!ph->p_memsz)
		return 0;
	if (__builtin_add_overflow(ph->p_paddr, ph->p_memsz, &end))
		return error__set(-EINVAL, "kernel: ELF segment address wraps");
	if (ph->p_paddr < LAYOUT_HIMEM_START)
		return error__set(-EINVAL, "kernel: ELF segment at 0x%llx is below 1 MiB",
				  (unsigned long long)ph->p_paddr);
	/* the kernel runs from low RAM: PVH entry is 32-bit, and the boot page tables map 4 GiB */
	if (end > LAYOUT_MMIO_GAP_START)
		return error__set(-EINVAL,
				  "kernel: ELF segment [0x%llx, 0x%llx) is not below the MMIO gap "
				  "at 0x%llx",
				  (unsigned long long)ph->p_paddr, (unsigned long long)end,
				  LAYOUT_MMIO_GAP_START);
	dst = gmem__ptr(gm, ph->p_paddr, ph->p_memsz);
	if (!dst)
		return error__set(-EINVAL,
				  "kernel: ELF segment [0x%llx, 0x%llx) is outside guest RAM",
				  (unsigned long long)ph->p_paddr, (unsigned long long)end);
	return read_exact(fd, dst, ph->p_filesz, ph->p_offset, "kernel");
}

static int check_ehdr(const Elf64_Ehdr *eh, uint64_t fsize)
{
	if (eh->e_ident[EI_CLASS] != ELFCLASS64 || eh->e_ident[EI_DATA] != ELFDATA2LSB)
		return error__set(-EINVAL, "kernel: not a 64-bit little-endian ELF");
	if (eh->e_machine != EM_X86_64)
		return error__set(-EINVAL, "kernel: ELF is not for x86_64 (e_machine %u)",
				  eh->e_machine);
	if (eh->e_type != ET_EXEC)
		return error__set(-EINVAL, "kernel: ELF is not an executable (e_type %u)",
				  eh->e_type);
	if (eh->e_phentsize != sizeof(Elf64_Phdr) || !eh->e_phnum || eh->e_phnum > ELF_MAX_PHNUM)
		return error__set(-EINVAL,
				  "kernel: bad ELF program header table (%u entries of %u)",
				  eh->e_phnum, eh->e_phentsize);
	if (!in_file(eh->e_phoff, (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr), fsize))
		return error__set(-EINVAL,
				  "kernel: ELF program headers lie beyond the end of the file");
	return 0;
}

static uint64_t align4(uint64_t v)
{
	return (v + 3) & ~3ULL;
}

/* Looks for Xen's PHYS32_ENTRY note in one PT_NOTE segment. 1 if found, 0 if not, -errno. */
static int parse_notes(const uint8_t *buf, uint64_t len, uint64_t *entry)
{
	uint64_t off = 0;

	while (len - off >= sizeof(Elf64_Nhdr)) {
		Elf64_Nhdr nh;
		uint64_t name_off, desc_off, next;

		memcpy(&nh, buf + off, sizeof(nh));
		name_off = off + sizeof(nh);
		desc_off = name_off + align4(nh.n_namesz);
		next = desc_off + align4(nh.n_descsz);
		if (desc_off > len || next > len)
			return error__set(-EINVAL, "kernel: malformed ELF note");
		if (nh.n_type == XEN_ELFNOTE_PHYS32_ENTRY && nh.n_namesz == 4 &&
		    !memcmp(buf + name_off, "Xen", 4)) {
			uint32_t e32;

			if (nh.n_descsz == 4) {
				memcpy(&e32, buf + desc_off, 4);
				*entry = e32;
			} else if (nh.n_descsz == 8) {
				memcpy(entry, buf + desc_off, 8);
			} else {
				return error__set(-EINVAL, "kernel: PVH entry note has %u bytes",
						  nh.n_descsz);
			}
			return 1;
		}
		off = next;
	}
	return 0;
}

static int find_pvh_entry(int fd, uint64_t fsize, const Elf64_Phdr *phdrs, unsigned int n,
			  uint64_t *entry)
{
	uint8_t *buf = malloc(NOTE_MAX);
	int ret = 0;

	if (!buf)
		return -ENOMEM;
	for (unsigned int i = 0; i < n && !ret; i++) {
		const Elf64_Phdr *ph = &phdrs[i];

		if (ph->p_type != PT_NOTE || !ph->p_filesz)
			continue;
		if (ph->p_filesz > NOTE_MAX || !in_file(ph->p_offset, ph->p_filesz, fsize)) {
			ret = error__set(-EINVAL, "kernel: bad ELF note segment");
			break;
		}
		ret = read_exact(fd, buf, ph->p_filesz, ph->p_offset, "kernel");
		if (!ret)
			ret = parse_notes(buf, ph->p_filesz, entry);
	}
	free(buf);
	return ret;
}

static int load_elf(const struct gmem *gm, int fd, uint64_t fsize, const Elf64_Ehdr *eh,
		    struct kernel_image *img)
{
	Elf64_Phdr phdrs[ELF_MAX_PHNUM];
	uint64_t pvh_entry = 0;
	int ret = check_ehdr(eh, fsize);

	if (ret)
		return ret;
	ret = read_exact(fd, phdrs, (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr), eh->e_phoff,
			 "kernel");
	if (ret)
		return ret;
	img->load_start = UINT64_MAX;
	for (unsigned int i = 0; i < eh->e_phnum; i++) {
		if (phdrs[i].p_type != PT_LOAD || !phdrs[i].p_memsz)
			continue;
		ret = load_segment(gm, fd, fsize, &phdrs[i]);
		if (ret)
			return ret;
		if (phdrs[i].p_paddr < img->load_start)
			img->load_start = phdrs[i].p_paddr;
		if (phdrs[i].p_paddr + phdrs[i].p_memsz > img->load_end)
			img->load_end = phdrs[i].p_paddr + phdrs[i].p_memsz;
	}
	if (img->load_start == UINT64_MAX)
		return error__set(-EINVAL, "kernel: ELF has no loadable segment");
	ret = find_pvh_entry(fd, fsize, phdrs, eh->e_phnum, &pvh_entry);
	if (ret < 0)
		return ret;
	img->format = ret ? KERNEL_FORMAT_PVH : KERNEL_FORMAT_ELF;
	img->entry = ret ? pvh_entry : eh->e_entry;
	if (img->entry < img->load_start || img->entry >= img->load_end ||
	    (ret && img->entry >= LAYOUT_MMIO_GAP_START))
		return error__set(-EINVAL, "kernel: entry point 0x%llx is outside the loaded image",
				  (unsigned long long)img->entry);
	img->cmdline_max = LAYOUT_CMDLINE_MAX;
	img->initrd_addr_max = UINT64_MAX;
	return 0;
}

static uint16_t get16(const uint8_t *b, unsigned int off)
{
	return (uint16_t)(b[off] | b[off + 1] << 8);
}

static uint32_t get32(const uint8_t *b, unsigned int off)
{
	return (uint32_t)get16(b, off) | (uint32_t)get16(b, off + 2) << 16;
}

static bool is_bzimage(const uint8_t *head, uint64_t len)
{
	return len >= 0x206 && get16(head, 0x1fe) == BZ_BOOT_FLAG &&
	       get32(head, 0x202) == BZ_HDR_MAGIC;
}

static uint64_t get64(const uint8_t *b, unsigned int off)
{
	return (uint64_t)get32(b, off) | (uint64_t)get32(b, off + 4) << 32;
}

static int check_bzimage(const uint8_t *head, uint64_t len, uint64_t fsize, uint64_t *setup)
{
	unsigned int sects = head[0x1f1] ? head[0x1f1] : BZ_DEFAULT_SETUP_SECTS;
	uint16_t version;
	uint64_t pm_size, sys_bytes;

	if (len < 0x268)
		return error__set(-EINVAL, "kernel: bzImage is truncated");
	version = get16(head, 0x206);
	if (version < BZ_MIN_VERSION)
		return error__set(-EINVAL,
				  "kernel: bzImage boot protocol %u.%02u is too old (need 2.12)",
				  version >> 8, version & 0xff);
	if (!(get16(head, 0x236) & XLF_KERNEL_64))
		return error__set(-EINVAL, "kernel: bzImage has no 64-bit entry point");
	if (!(head[0x211] & LOADED_HIGH))
		return error__set(-EINVAL, "kernel: a zImage (not loaded high) is not supported");
	*setup = ((uint64_t)sects + 1) * 512;
	if (*setup >= fsize)
		return error__set(-EINVAL, "kernel: bzImage has no protected-mode part");
	pm_size = fsize - *setup;
	/* syssize counts the protected-mode part in 16-byte paragraphs */
	sys_bytes = (uint64_t)get32(head, 0x1f4) * 16;
	if (sys_bytes > pm_size + 15)
		return error__set(-EINVAL, "kernel: bzImage is truncated (%llu of %llu bytes)",
				  (unsigned long long)pm_size, (unsigned long long)sys_bytes);
	if (pm_size <= BZ_ENTRY64_OFFSET)
		return error__set(-EINVAL,
				  "kernel: bzImage is too small for its 64-bit entry point");
	return 0;
}

/*
 * The bzImage decompresses itself to its run address (pref_address, or 1 MiB) and needs
 * init_size bytes there: all of it must be guest RAM below the MMIO gap.
 */
static int check_bzimage_room(const struct gmem *gm, const uint8_t *head, uint64_t pm_size,
			      uint64_t *end)
{
	uint64_t run = get64(head, 0x258), init_size = get32(head, 0x260), run_end;

	if (run < LAYOUT_HIMEM_START)
		run = LAYOUT_HIMEM_START;
	*end = LAYOUT_HIMEM_START + pm_size;
	if (__builtin_add_overflow(run, init_size, &run_end) ||
	    (init_size && !gmem__ptr(gm, run, init_size)) ||
	    !gmem__ptr(gm, LAYOUT_HIMEM_START, pm_size))
		return error__set(
			-EINVAL,
			"kernel: bzImage needs guest RAM up to %llu MiB; the guest is too small",
			(unsigned long long)((run_end > *end ? run_end : *end) >> 20) + 1);
	if (run_end > *end)
		*end = run_end;
	return 0;
}

static int load_bzimage(const struct gmem *gm, int fd, uint64_t fsize, const uint8_t *head,
			uint64_t len, struct kernel_image *img)
{
	uint64_t setup = 0, pm_size, end = 0, cmdline_max;
	uint32_t hdr_end;
	int ret = check_bzimage(head, len, fsize, &setup);

	if (ret)
		return ret;
	pm_size = fsize - setup;
	ret = check_bzimage_room(gm, head, pm_size, &end);
	if (ret)
		return ret;
	ret = read_exact(fd, gmem__ptr(gm, LAYOUT_HIMEM_START, pm_size), pm_size, setup, "kernel");
	if (ret)
		return ret;
	hdr_end = 0x202 + head[0x201];
	if (hdr_end > BOOT_SETUP_HDR_OFFSET + BOOT_SETUP_HDR_MAX)
		hdr_end = BOOT_SETUP_HDR_OFFSET + BOOT_SETUP_HDR_MAX;
	img->setup_hdr_len = hdr_end - BOOT_SETUP_HDR_OFFSET;
	memcpy(img->setup_hdr, head + BOOT_SETUP_HDR_OFFSET, img->setup_hdr_len);
	img->format = KERNEL_FORMAT_BZIMAGE;
	img->entry = LAYOUT_HIMEM_START + BZ_ENTRY64_OFFSET;
	img->load_start = LAYOUT_HIMEM_START;
	img->load_end = end;
	/* cmdline_size excludes the NUL; 0 or huge means "no smaller limit than ours" */
	cmdline_max = (uint64_t)get32(head, 0x238) + 1;
	img->cmdline_max = cmdline_max > 1 && cmdline_max < LAYOUT_CMDLINE_MAX
				   ? (uint32_t)cmdline_max
				   : (uint32_t)LAYOUT_CMDLINE_MAX;
	img->initrd_addr_max = get32(head, 0x22c) ? get32(head, 0x22c) : BZ_DEFAULT_INITRD_MAX;
	return 0;
}

int boot_x86__load_kernel(const struct gmem *gm, int fd, struct kernel_image *img)
{
	uint8_t head[BZ_HEAD_BYTES];
	uint64_t fsize, len;
	int ret;

	memset(img, 0, sizeof(*img));
	ret = file_size(fd, &fsize, "kernel");
	if (ret)
		return ret;
	if (fsize < SELFMAG)
		return error__set(-EINVAL, "kernel: file is empty or truncated (%llu bytes)",
				  (unsigned long long)fsize);
	len = fsize < sizeof(head) ? fsize : sizeof(head);
	ret = read_exact(fd, head, len, 0, "kernel");
	if (ret)
		return ret;
	if (!memcmp(head, ELFMAG, SELFMAG)) {
		Elf64_Ehdr eh;

		if (fsize < sizeof(eh))
			return error__set(-EINVAL, "kernel: ELF header is truncated");
		memcpy(&eh, head, sizeof(eh));
		return load_elf(gm, fd, fsize, &eh, img);
	}
	if (is_bzimage(head, len))
		return load_bzimage(gm, fd, fsize, head, len, img);
	return error__set(-EINVAL, "kernel: not an ELF vmlinux or a bzImage (bad magic)");
}

int boot_x86__load_initrd(const struct gmem *gm, int fd, const struct kernel_image *img,
			  struct initrd_image *out)
{
	uint64_t size, limit, addr, kernel_end;
	void *dst;
	int ret = file_size(fd, &size, "initrd");

	if (ret)
		return ret;
	if (!size)
		return error__set(-EINVAL, "initrd: file is empty");
	limit = gmem__low_end(gm);
	if (img->initrd_addr_max != UINT64_MAX && img->initrd_addr_max + 1 < limit)
		limit = img->initrd_addr_max + 1;
	kernel_end = (img->load_end + PAGE_SIZE_4K - 1) & ~(PAGE_SIZE_4K - 1);
	if (size > limit || ((limit - size) & ~(PAGE_SIZE_4K - 1)) < kernel_end)
		return error__set(-EINVAL,
				  "initrd: %llu KiB do not fit in guest RAM between the kernel "
				  "and 0x%llx",
				  (unsigned long long)(size >> 10), (unsigned long long)limit);
	addr = (limit - size) & ~(PAGE_SIZE_4K - 1);
	dst = gmem__ptr(gm, addr, size);
	if (!dst)
		return error__set(-EFAULT, "initrd: no guest RAM at 0x%llx",
				  (unsigned long long)addr);
	ret = read_exact(fd, dst, size, 0, "initrd");
	if (ret)
		return ret;
	out->addr = addr;
	out->size = size;
	return 0;
}

static unsigned int add_e820(struct e820_entry *out, unsigned int n, unsigned int max,
			     uint64_t addr, uint64_t size, uint32_t type)
{
	if (n < max && size)
		out[n++] = (struct e820_entry){ addr, size, type };
	return n;
}

unsigned int boot_x86__e820(const struct gmem *gm, struct e820_entry *out, unsigned int max)
{
	uint64_t low_end = gmem__low_end(gm);
	unsigned int n = 0;

	n = add_e820(out, n, max, 0, low_end < LAYOUT_EBDA_START ? low_end : LAYOUT_EBDA_START,
		     E820_RAM);
	if (low_end > LAYOUT_EBDA_START)
		n = add_e820(out, n, max, LAYOUT_EBDA_START, LAYOUT_LOWMEM_END - LAYOUT_EBDA_START,
			     E820_RESERVED);
	if (low_end > LAYOUT_HIMEM_START)
		n = add_e820(out, n, max, LAYOUT_HIMEM_START, low_end - LAYOUT_HIMEM_START,
			     E820_RAM);
	for (unsigned int i = 1; i < gm->nr_regions; i++)
		n = add_e820(out, n, max, gm->regions[i].gpa, gm->regions[i].size, E820_RAM);
	return n;
}

static uint64_t gdt_entry(uint16_t flags, uint32_t base, uint32_t limit)
{
	return ((uint64_t)(base & 0xff000000) << 32) | ((uint64_t)(flags & 0xf0ff) << 40) |
	       ((uint64_t)(limit & 0x000f0000) << 32) | ((uint64_t)(base & 0x00ffffff) << 16) |
	       (uint64_t)(limit & 0x0000ffff);
}

static int write_gdt_and_tables(const struct gmem *gm)
{
	const uint64_t gdt[GDT_ENTRIES] = {
		0,
		gdt_entry(0xc09b, 0, 0xfffff), /* 0x08: 32-bit code, PVH */
		gdt_entry(0xa09b, 0, 0xfffff), /* 0x10: 64-bit code, __BOOT_CS */
		gdt_entry(0xc093, 0, 0xfffff), /* 0x18: data, __BOOT_DS */
		gdt_entry(0x008b, 0, 0x67),    /* 0x20: TSS */
	};
	uint64_t *pml4 = gmem__ptr(gm, LAYOUT_PML4_ADDR, PAGE_SIZE_4K);
	uint64_t *pdpte = gmem__ptr(gm, LAYOUT_PDPTE_ADDR, PAGE_SIZE_4K);
	uint64_t *pde = gmem__ptr(gm, LAYOUT_PDE_ADDR, LAYOUT_PDE_PAGES * PAGE_SIZE_4K);

	if (!pml4 || !pdpte || !pde || gmem__write(gm, LAYOUT_GDT_ADDR, gdt, sizeof(gdt)))
		return error__set(-EFAULT, "guest RAM is too small for the boot structures");
	/* identity-map the first 4 GiB with 2 MiB pages: one page directory per GiB */
	pml4[0] = LAYOUT_PDPTE_ADDR | 0x03;
	for (uint64_t i = 0; i < LAYOUT_PDE_PAGES; i++)
		pdpte[i] = (LAYOUT_PDE_ADDR + i * PAGE_SIZE_4K) | 0x03;
	for (uint64_t i = 0; i < LAYOUT_PDE_PAGES * 512; i++)
		pde[i] = (i << 21) | 0x83;
	return 0;
}

static int write_pvh_info(const struct gmem *gm, const struct initrd_image *initrd)
{
	struct e820_entry e820[LAYOUT_PVH_MEMMAP_MAX];
	unsigned int n = boot_x86__e820(gm, e820, LAYOUT_PVH_MEMMAP_MAX);
	struct hvm_start_info si = {
		.magic = PVH_START_MAGIC,
		.version = 1,
		.cmdline_paddr = LAYOUT_CMDLINE_ADDR,
		.memmap_paddr = LAYOUT_PVH_MEMMAP_ADDR,
		.memmap_entries = n,
	};

	for (unsigned int i = 0; i < n; i++) {
		struct hvm_memmap_table_entry m = { e820[i].addr, e820[i].size, e820[i].type, 0 };

		if (gmem__write(gm, LAYOUT_PVH_MEMMAP_ADDR + i * sizeof(m), &m, sizeof(m)))
			return -EFAULT;
	}
	if (initrd && initrd->size) {
		struct hvm_modlist_entry mod = { .paddr = initrd->addr, .size = initrd->size };

		if (gmem__write(gm, LAYOUT_PVH_MODLIST_ADDR, &mod, sizeof(mod)))
			return -EFAULT;
		si.nr_modules = 1;
		si.modlist_paddr = LAYOUT_PVH_MODLIST_ADDR;
	}
	return gmem__write(gm, LAYOUT_PVH_INFO_ADDR, &si, sizeof(si));
}

static int write_zero_page(const struct gmem *gm, const struct kernel_image *img,
			   const struct initrd_image *initrd)
{
	struct boot_params *bp = gmem__ptr(gm, LAYOUT_ZERO_PAGE_ADDR, sizeof(*bp));
	struct e820_entry e820[BOOT_E820_MAX];
	unsigned int n;

	if (!bp)
		return -EFAULT;
	memset(bp, 0, sizeof(*bp));
	if (img->format == KERNEL_FORMAT_BZIMAGE) {
		memcpy((uint8_t *)bp + BOOT_SETUP_HDR_OFFSET, img->setup_hdr, img->setup_hdr_len);
	} else {
		bp->hdr.boot_flag = BZ_BOOT_FLAG;
		bp->hdr.header = BZ_HDR_MAGIC;
		bp->hdr.kernel_alignment = 0x01000000;
		bp->hdr.cmdline_size = (uint32_t)LAYOUT_CMDLINE_MAX - 1;
	}
	bp->hdr.type_of_loader = 0xff;
	bp->hdr.cmd_line_ptr = (uint32_t)LAYOUT_CMDLINE_ADDR;
	if (initrd && initrd->size) {
		bp->hdr.ramdisk_image = (uint32_t)initrd->addr;
		bp->hdr.ramdisk_size = (uint32_t)initrd->size;
		bp->ext_ramdisk_image = (uint32_t)(initrd->addr >> 32);
		bp->ext_ramdisk_size = (uint32_t)(initrd->size >> 32);
	}
	n = boot_x86__e820(gm, e820, BOOT_E820_MAX);
	for (unsigned int i = 0; i < n; i++) {
		bp->e820_table[i].addr = e820[i].addr;
		bp->e820_table[i].size = e820[i].size;
		bp->e820_table[i].type = e820[i].type;
	}
	bp->e820_entries = (uint8_t)n;
	return 0;
}

int boot_x86__setup(const struct gmem *gm, const struct kernel_image *img, const char *cmdline,
		    const struct initrd_image *initrd)
{
	size_t len = strlen(cmdline);
	int ret;

	if (len + 1 > img->cmdline_max)
		return error__set(-EINVAL,
				  "kernel command line is %zu bytes; this kernel takes at most %u",
				  len, img->cmdline_max - 1);
	if (gmem__write(gm, LAYOUT_CMDLINE_ADDR, cmdline, len + 1))
		return error__set(-EFAULT, "guest RAM is too small for the command line");
	ret = write_gdt_and_tables(gm);
	if (ret)
		return ret;
	if (img->format == KERNEL_FORMAT_PVH)
		ret = write_pvh_info(gm, initrd);
	else
		ret = write_zero_page(gm, img, initrd);
	if (ret)
		return error__set(ret, "guest RAM is too small for the boot information");
	return 0;
}

static void set_segment(struct kvm_segment *s, uint16_t sel, uint8_t type, bool code64)
{
	*s = (struct kvm_segment){
		.base = 0,
		.limit = 0xffffffff,
		.selector = sel,
		.type = type,
		.present = 1,
		.dpl = 0,
		.db = code64 ? 0 : 1,
		.s = 1,
		.l = code64 ? 1 : 0,
		.g = 1,
	};
}

void boot_x86__regs(const struct kernel_image *img, struct kvm_regs *regs, struct kvm_sregs *sregs)
{
	bool pvh = img->format == KERNEL_FORMAT_PVH;

	memset(regs, 0, sizeof(*regs));
	regs->rflags = 0x2;
	regs->rip = img->entry;
	set_segment(&sregs->cs, pvh ? SEL_CODE32 : SEL_CODE64, 0xb, !pvh);
	set_segment(&sregs->ds, SEL_DATA, 0x3, false);
	sregs->es = sregs->fs = sregs->gs = sregs->ss = sregs->ds;
	sregs->tr = (struct kvm_segment){
		.selector = SEL_TSS, .limit = 0x67, .type = 0xb, .present = 1
	};
	sregs->gdt.base = LAYOUT_GDT_ADDR;
	sregs->gdt.limit = GDT_ENTRIES * 8 - 1;
	sregs->idt.base = 0;
	sregs->idt.limit = 0;
	if (pvh) {
		regs->rbx = LAYOUT_PVH_INFO_ADDR;
		sregs->cr0 = 0x11; /* PE, ET */
		sregs->cr3 = 0;
		sregs->cr4 = 0;
		sregs->efer = 0;
		return;
	}
	regs->rsi = LAYOUT_ZERO_PAGE_ADDR;
	regs->rsp = regs->rbp = LAYOUT_BOOT_STACK_ADDR;
	sregs->cr0 = 0x80000011; /* PG, PE, ET */
	sregs->cr3 = LAYOUT_PML4_ADDR;
	sregs->cr4 = 0x20;   /* PAE */
	sregs->efer = 0x500; /* LME, LMA */
}
