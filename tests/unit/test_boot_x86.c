// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests for src/vmm/boot_x86.c: the ELF/PVH and bzImage loaders, the initrd, the boot
 * structures and the boot vCPU's registers. Guest memory is plain mmap'ed memory laid out
 * by memory__layout(); kernel files are memfds built from synthetic images. No KVM.
 *
 * With EMBER_FUZZ_SEED_DIR set, the binary writes its synthetic images there instead of
 * testing, for the corpus of tests/fuzz/fuzz_kernel.c.
 */
#include <asm/bootparam.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "vmm/boot_x86.h"
#include "vmm/layout.h"
#include "vmm/log.h"
#include "vmm/memory.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define MIB (1ULL << 20)
#define GIB (1ULL << 30)

#define GAP_START LAYOUT_MMIO_GAP_START
#define GAP_END LAYOUT_MMIO_GAP_END
#define SMALL_RAM (64 * MIB)
#define BIG_RAM (GAP_START + GIB) /* [0, 3.25 GiB) and [4 GiB, 5 GiB) */
#define HIGH_END (GAP_END + GIB)

/* ---- guest memory ---- */

struct guests {
	struct gmem small;
	struct gmem big;
};

static void guest_map(struct gmem *gm, uint64_t bytes)
{
	assert_int_equal(memory__layout(gm, bytes), 0);
	for (unsigned int i = 0; i < gm->nr_regions; i++) {
		void *p = mmap(NULL, gm->regions[i].size, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

		assert_true(p != MAP_FAILED);
		gm->regions[i].host = p;
	}
}

static void guest_unmap(struct gmem *gm)
{
	for (unsigned int i = 0; i < gm->nr_regions; i++)
		munmap(gm->regions[i].host, gm->regions[i].size);
	memset(gm, 0, sizeof(*gm));
}

static int setup_guests(void **state)
{
	struct guests *g = calloc(1, sizeof(*g));

	if (!g)
		return -1;
	guest_map(&g->small, SMALL_RAM);
	guest_map(&g->big, BIG_RAM);
	*state = g;
	return 0;
}

static int teardown_guests(void **state)
{
	struct guests *g = *state;

	guest_unmap(&g->small);
	guest_unmap(&g->big);
	free(g);
	return 0;
}

static uint8_t *gpa(const struct gmem *gm, uint64_t addr, uint64_t len)
{
	uint8_t *p = gmem__ptr(gm, addr, len);

	assert_non_null(p);
	return p;
}

/* ---- synthetic kernel images ---- */

struct image {
	union {
		uint8_t b[8192];
		Elf64_Ehdr eh;
		struct boot_params bp;
	};
	size_t len;
};

/*
 * The ELF: header, two program headers (PT_LOAD, PT_NOTE), the note segment (a GNU
 * build-id note, then optionally Xen's PVH entry note), and the loaded bytes.
 */
#define ELF_PH_OFF 0x40
#define ELF_NOTE_OFF 0xc0
#define ELF_SEG_OFF 0x100
#define ELF_SEG_FILESZ 0x100
#define ELF_SEG_MEMSZ 0x3000 /* the rest is bss */
#define ELF_LEN (ELF_SEG_OFF + ELF_SEG_FILESZ)
#define ELF_LOAD_ADDR LAYOUT_HIMEM_START
#define ELF_ENTRY (ELF_LOAD_ADDR + 0x40)
#define PVH_ENTRY (ELF_LOAD_ADDR + 0x80)
#define GNU_NOTE_LEN (12 + 4 + 8)
#define PVH_NOTE_OFF (ELF_NOTE_OFF + GNU_NOTE_LEN)

enum pvh_note { NOTE_NONE, NOTE_PVH4, NOTE_PVH8 };

static size_t put_note(uint8_t *p, const char *name, uint32_t type, const void *desc,
		       uint32_t descsz)
{
	Elf64_Nhdr nh = { .n_namesz = 4, .n_descsz = descsz, .n_type = type };

	memcpy(p, &nh, sizeof(nh));
	memcpy(p + sizeof(nh), name, 4);
	memcpy(p + sizeof(nh) + 4, desc, descsz);
	return sizeof(nh) + 4 + ((descsz + 3) & ~3U);
}

static void build_elf(struct image *im, enum pvh_note note)
{
	Elf64_Ehdr eh = {
		.e_ident = { ELFMAG0, ELFMAG1, ELFMAG2, ELFMAG3, ELFCLASS64, ELFDATA2LSB,
			     EV_CURRENT },
		.e_type = ET_EXEC,
		.e_machine = EM_X86_64,
		.e_version = EV_CURRENT,
		.e_entry = ELF_ENTRY,
		.e_phoff = ELF_PH_OFF,
		.e_ehsize = sizeof(Elf64_Ehdr),
		.e_phentsize = sizeof(Elf64_Phdr),
		.e_phnum = 2,
	};
	Elf64_Phdr ph[2] = {
		{ .p_type = PT_LOAD,
		  .p_flags = PF_R | PF_X,
		  .p_offset = ELF_SEG_OFF,
		  .p_vaddr = 0xffffffff81000000ULL,
		  .p_paddr = ELF_LOAD_ADDR,
		  .p_filesz = ELF_SEG_FILESZ,
		  .p_memsz = ELF_SEG_MEMSZ,
		  .p_align = 0x1000 },
		{ .p_type = PT_NOTE, .p_flags = PF_R, .p_offset = ELF_NOTE_OFF, .p_align = 4 },
	};
	const uint8_t build_id[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
	uint32_t e32 = PVH_ENTRY;
	uint64_t e64 = PVH_ENTRY;
	size_t n;

	memset(im, 0, sizeof(*im));
	n = put_note(im->b + ELF_NOTE_OFF, "GNU", NT_GNU_BUILD_ID, build_id, sizeof(build_id));
	if (note == NOTE_PVH4)
		n += put_note(im->b + ELF_NOTE_OFF + n, "Xen", 18, &e32, 4);
	else if (note == NOTE_PVH8)
		n += put_note(im->b + ELF_NOTE_OFF + n, "Xen", 18, &e64, 8);
	ph[1].p_filesz = ph[1].p_memsz = n;
	memcpy(im->b, &eh, sizeof(eh));
	memcpy(im->b + ELF_PH_OFF, ph, sizeof(ph));
	for (size_t i = 0; i < ELF_SEG_FILESZ; i++)
		im->b[ELF_SEG_OFF + i] = (uint8_t)(0x80 + i);
	im->len = ELF_LEN;
}

/* The bzImage: one setup sector after the boot sector, then the protected-mode part. */
#define BZ_SETUP_SECTS 1
#define BZ_SETUP_LEN ((BZ_SETUP_SECTS + 1) * 512)
#define BZ_PM_LEN 0x400
#define BZ_LEN (BZ_SETUP_LEN + BZ_PM_LEN)
#define BZ_INIT_SIZE 0x20000
#define BZ_CMDLINE_SIZE 2047
#define BZ_INITRD_MAX 0x7fffffffU
#define BZ_HDR_END 0x268 /* 0x202 + the jump byte 0x66 */

static struct setup_header *bz_hdr(struct image *im)
{
	return &im->bp.hdr;
}

static void build_bzimage(struct image *im)
{
	struct setup_header *h = bz_hdr(im);

	memset(im, 0, sizeof(*im));
	h->setup_sects = BZ_SETUP_SECTS;
	h->syssize = BZ_PM_LEN / 16;
	h->boot_flag = 0xaa55;
	h->jump = 0x66eb;
	h->header = 0x53726448; /* "HdrS" */
	h->version = 0x020f;
	h->loadflags = LOADED_HIGH;
	h->initrd_addr_max = BZ_INITRD_MAX;
	h->kernel_alignment = 0x200000;
	h->relocatable_kernel = 1;
	h->xloadflags = XLF_KERNEL_64 | XLF_CAN_BE_LOADED_ABOVE_4G;
	h->cmdline_size = BZ_CMDLINE_SIZE;
	h->init_size = BZ_INIT_SIZE;
	for (size_t i = 0; i < BZ_PM_LEN; i++)
		im->b[BZ_SETUP_LEN + i] = (uint8_t)(i * 7 + 1);
	im->len = BZ_LEN;
}

/* setup_sects 0 means 4: the protected-mode part moves to 0xa00. */
#define BZ_SECTS0_SETUP_LEN 0xa00

static void build_bzimage_sects0(struct image *im)
{
	build_bzimage(im);
	memmove(im->b + BZ_SECTS0_SETUP_LEN, im->b + BZ_SETUP_LEN, BZ_PM_LEN);
	memset(im->b + BZ_SETUP_LEN, 0, BZ_SECTS0_SETUP_LEN - BZ_SETUP_LEN);
	bz_hdr(im)->setup_sects = 0;
	im->len = BZ_SECTS0_SETUP_LEN + BZ_PM_LEN;
}

/* A field patch, so that malformed images are rows in a table. */
struct patch {
	size_t off;
	size_t width; /* 0: unused row */
	uint64_t val;
};

#define FIELD(type, base, f) (base) + offsetof(type, f), sizeof(((type *)0)->f)
#define EH(f) FIELD(Elf64_Ehdr, 0, f)
#define PH(i, f) FIELD(Elf64_Phdr, ELF_PH_OFF + (i) * sizeof(Elf64_Phdr), f)
#define PVH_NH(f) FIELD(Elf64_Nhdr, PVH_NOTE_OFF, f)
#define GNU_NH(f) FIELD(Elf64_Nhdr, ELF_NOTE_OFF, f)
#define PVH_DESC4 PVH_NOTE_OFF + 16, 4
#define PVH_DESC8 PVH_NOTE_OFF + 16, 8
#define IDENT(i) offsetof(Elf64_Ehdr, e_ident) + (i), 1
#define BZ(f) FIELD(struct boot_params, 0, hdr.f)

static void apply(struct image *im, const struct patch *p, size_t n)
{
	for (size_t i = 0; i < n && p[i].width; i++) {
		assert_true(p[i].off + p[i].width <= sizeof(im->b));
		for (size_t k = 0; k < p[i].width; k++)
			im->b[p[i].off + k] = (uint8_t)(p[i].val >> (8 * k));
	}
}

static int file_of(const void *data, size_t len)
{
	int fd = memfd_create("image", MFD_CLOEXEC);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	return fd;
}

static int load_image(const struct gmem *gm, const struct image *im, size_t len,
		      struct kernel_image *ki)
{
	int fd = file_of(im->b, len);
	int ret;

	error__clear();
	ret = boot_x86__load_kernel(gm, fd, ki);
	close(fd);
	return ret;
}

static void expect_error(int ret, int err, const char *msg)
{
	if (ret != err || !strstr(error__get(), msg))
		fail_msg("expected %d \"...%s...\", got %d \"%s\"", err, msg, ret, error__get());
}

/* ---- ELF and PVH: good images ---- */

static void check_elf_loaded(const struct gmem *gm, const struct image *im,
			     const struct kernel_image *ki)
{
	assert_int_equal(ki->load_start, ELF_LOAD_ADDR);
	assert_int_equal(ki->load_end, ELF_LOAD_ADDR + ELF_SEG_MEMSZ);
	assert_int_equal(ki->cmdline_max, LAYOUT_CMDLINE_MAX);
	assert_memory_equal(gpa(gm, ELF_LOAD_ADDR, ELF_SEG_FILESZ), im->b + ELF_SEG_OFF,
			    ELF_SEG_FILESZ);
}

static void elf_without_pvh_note(void **state)
{
	struct guests *g = *state;
	struct kernel_image ki;
	struct image im;

	build_elf(&im, NOTE_NONE);
	assert_int_equal(load_image(&g->small, &im, im.len, &ki), 0);
	assert_int_equal(ki.format, KERNEL_FORMAT_ELF);
	assert_int_equal(ki.entry, ELF_ENTRY);
	assert_int_equal(ki.initrd_addr_max, UINT64_MAX);
	check_elf_loaded(&g->small, &im, &ki);
	assert_string_equal(boot_x86__format_name(ki.format), "ELF vmlinux (64-bit boot protocol)");
}

static void elf_with_pvh_note(void **state)
{
	static const enum pvh_note notes[] = { NOTE_PVH4, NOTE_PVH8 };
	struct guests *g = *state;

	for (size_t i = 0; i < ARRAY_SIZE(notes); i++) {
		struct kernel_image ki;
		struct image im;

		build_elf(&im, notes[i]);
		assert_int_equal(load_image(&g->small, &im, im.len, &ki), 0);
		assert_int_equal(ki.format, KERNEL_FORMAT_PVH);
		assert_int_equal(ki.entry, PVH_ENTRY);
		check_elf_loaded(&g->small, &im, &ki);
	}
	assert_string_equal(boot_x86__format_name(KERNEL_FORMAT_PVH), "ELF vmlinux (PVH entry)");
}

static void elf_pvh_note_in_second_note_segment(void **state)
{
	struct guests *g = *state;
	struct kernel_image ki;
	struct image im;
	Elf64_Phdr *ph = (Elf64_Phdr *)(im.b + ELF_PH_OFF);
	uint8_t gnu[GNU_NOTE_LEN];
	uint32_t e32 = PVH_ENTRY;

	/* three headers: PT_LOAD, a PT_NOTE with the GNU note, a PT_NOTE with the PVH note */
	build_elf(&im, NOTE_NONE);
	memcpy(gnu, im.b + ELF_NOTE_OFF, sizeof(gnu));
	ph[2] = ph[1];
	memcpy(im.b + ELF_PH_OFF + 3 * sizeof(*ph), gnu, sizeof(gnu));
	ph[1].p_offset = ELF_PH_OFF + 3 * sizeof(*ph);
	ph[2].p_offset = ELF_LEN;
	ph[2].p_filesz = ph[2].p_memsz = put_note(im.b + ELF_LEN, "Xen", 18, &e32, 4);
	im.len = ELF_LEN + ph[2].p_filesz;
	im.eh.e_phnum = 3;
	assert_int_equal(load_image(&g->small, &im, im.len, &ki), 0);
	assert_int_equal(ki.format, KERNEL_FORMAT_PVH);
	assert_int_equal(ki.entry, PVH_ENTRY);
}

static void elf_several_segments(void **state)
{
	struct guests *g = *state;
	struct kernel_image ki;
	struct image im;
	Elf64_Phdr *ph;

	build_elf(&im, NOTE_NONE);
	ph = (Elf64_Phdr *)(im.b + ELF_PH_OFF);
	/* the note becomes a second PT_LOAD at 2 MiB, and an empty third one is skipped */
	ph[1] = ph[0];
	ph[1].p_paddr = 2 * MIB;
	ph[1].p_memsz = 0x10000;
	memset(&ph[2], 0, sizeof(ph[2]));
	ph[2].p_type = PT_LOAD;
	ph[2].p_paddr = 3 * MIB; /* memsz 0: ignored, even below the others' end */
	im.eh.e_phnum = 3;
	assert_int_equal(load_image(&g->small, &im, im.len, &ki), 0);
	assert_int_equal(ki.format, KERNEL_FORMAT_ELF);
	assert_int_equal(ki.load_start, ELF_LOAD_ADDR);
	assert_int_equal(ki.load_end, 2 * MIB + 0x10000);
	assert_memory_equal(gpa(&g->small, 2 * MIB, ELF_SEG_FILESZ), im.b + ELF_SEG_OFF,
			    ELF_SEG_FILESZ);
}

/* Segments that end exactly at the end of a RAM region are accepted. */
static void elf_segment_at_region_ends(void **state)
{
	struct guests *g = *state;
	const struct {
		const struct gmem *gm;
		uint64_t paddr;
	} cases[] = {
		{ &g->small, SMALL_RAM - ELF_SEG_MEMSZ },
		{ &g->big, GAP_START - ELF_SEG_MEMSZ },
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		const struct patch p[] = {
			{ PH(0, p_paddr), cases[i].paddr },
			{ EH(e_entry), cases[i].paddr },
		};
		struct kernel_image ki;
		struct image im;

		build_elf(&im, NOTE_NONE);
		apply(&im, p, ARRAY_SIZE(p));
		assert_int_equal(load_image(cases[i].gm, &im, im.len, &ki), 0);
		assert_int_equal(ki.load_end, cases[i].paddr + ELF_SEG_MEMSZ);
		assert_memory_equal(gpa(cases[i].gm, cases[i].paddr, ELF_SEG_FILESZ),
				    im.b + ELF_SEG_OFF, ELF_SEG_FILESZ);
	}
}

/* ---- ELF and PVH: malformed images ---- */

struct bad_elf {
	const char *name;
	struct patch p[3];
	const char *msg;
};

static const struct bad_elf bad_elves[] = {
	{ "bad magic", { { IDENT(1), 'X' } }, "bad magic" },
	{ "32-bit", { { IDENT(EI_CLASS), ELFCLASS32 } }, "64-bit little-endian" },
	{ "big-endian", { { IDENT(EI_DATA), ELFDATA2MSB } }, "little-endian" },
	{ "class none", { { IDENT(EI_CLASS), ELFCLASSNONE } }, "64-bit" },
	{ "i386", { { EH(e_machine), EM_386 } }, "not for x86_64" },
	{ "aarch64", { { EH(e_machine), EM_AARCH64 } }, "not for x86_64" },
	{ "ET_DYN", { { EH(e_type), ET_DYN } }, "not an executable" },
	{ "ET_REL", { { EH(e_type), ET_REL } }, "not an executable" },
	{ "ET_CORE", { { EH(e_type), ET_CORE } }, "not an executable" },
	{ "e_phnum 0", { { EH(e_phnum), 0 } }, "program header table" },
	{ "e_phnum 129", { { EH(e_phnum), 129 } }, "program header table" },
	{ "e_phnum 0xffff", { { EH(e_phnum), 0xffff } }, "program header table" },
	{ "e_phentsize 32", { { EH(e_phentsize), 32 } }, "program header table" },
	{ "e_phentsize 0", { { EH(e_phentsize), 0 } }, "program header table" },
	{ "e_phnum 128 past EOF", { { EH(e_phnum), 128 } }, "beyond the end" },
	{ "phoff past EOF", { { EH(e_phoff), 0x10000 } }, "beyond the end" },
	{ "phoff at EOF", { { EH(e_phoff), ELF_LEN - 56 + 1 } }, "beyond the end" },
	{ "phoff wraps", { { EH(e_phoff), UINT64_MAX - 8 } }, "beyond the end" },
	{ "filesz > memsz", { { PH(0, p_memsz), ELF_SEG_FILESZ - 1 } }, "p_filesz > p_memsz" },
	{ "segment past EOF", { { PH(0, p_offset), ELF_LEN - 0x80 } }, "end of the file" },
	{ "segment offset wraps", { { PH(0, p_offset), UINT64_MAX } }, "end of the file" },
	{ "segment filesz huge",
	  { { PH(0, p_filesz), UINT64_MAX }, { PH(0, p_memsz), UINT64_MAX } },
	  "end of the file" },
	{ "segment below 1 MiB",
	  { { PH(0, p_paddr), 0x9000 }, { EH(e_entry), 0x9040 } },
	  "below 1 MiB" },
	{ "segment at 0", { { PH(0, p_paddr), 0 }, { EH(e_entry), 0x40 } }, "below 1 MiB" },
	{ "segment ends at 1 MiB",
	  { { PH(0, p_paddr), MIB - ELF_SEG_MEMSZ }, { EH(e_entry), 0xff000 } },
	  "below 1 MiB" },
	{ "segment beyond RAM",
	  { { PH(0, p_paddr), 128 * MIB }, { EH(e_entry), 128 * MIB } },
	  "outside guest RAM" },
	{ "segment ends past RAM",
	  { { PH(0, p_paddr), SMALL_RAM - 0x1000 }, { EH(e_entry), SMALL_RAM - 0x1000 } },
	  "outside guest RAM" },
	{ "huge bss", { { PH(0, p_memsz), 0x7fffffffffffffffULL } }, "not below the MMIO gap" },
	{ "paddr wraps", { { PH(0, p_paddr), 0xfffffffffffff000ULL } }, "wraps" },
	{ "paddr ends at 2^64", { { PH(0, p_paddr), 0ULL - ELF_SEG_MEMSZ } }, "wraps" },
	{ "paddr just below 2^64",
	  { { PH(0, p_paddr), 0ULL - ELF_SEG_MEMSZ - 1 } },
	  "not below the MMIO gap" },
	{ "entry below the image", { { EH(e_entry), ELF_LOAD_ADDR - 1 } }, "entry point" },
	{ "entry at load_end", { { EH(e_entry), ELF_LOAD_ADDR + ELF_SEG_MEMSZ } }, "entry point" },
	{ "entry 0", { { EH(e_entry), 0 } }, "entry point" },
	{ "entry virtual", { { EH(e_entry), 0xffffffff81000040ULL } }, "entry point" },
	{ "no PT_LOAD", { { PH(0, p_type), PT_NULL } }, "no loadable segment" },
	{ "empty PT_LOAD",
	  { { PH(0, p_memsz), 0 }, { PH(0, p_filesz), 0 } },
	  "no loadable segment" },
	{ "note past EOF", { { PH(1, p_offset), ELF_LEN - 4 } }, "bad ELF note segment" },
	{ "note offset wraps", { { PH(1, p_offset), UINT64_MAX - 3 } }, "bad ELF note segment" },
	{ "note segment 64 KiB + 1", { { PH(1, p_filesz), 65537 } }, "bad ELF note segment" },
	{ "note namesz huge", { { GNU_NH(n_namesz), 0xffffffff } }, "malformed ELF note" },
	{ "note descsz huge", { { GNU_NH(n_descsz), 0xffffffff } }, "malformed ELF note" },
	{ "note descsz aligns to 4 GiB",
	  { { GNU_NH(n_descsz), 0xfffffffd } },
	  "malformed ELF note" },
	{ "note descsz past segment", { { GNU_NH(n_descsz), 13 } }, "malformed ELF note" },
};

/* With either PVH note, 4- or 8-byte. */
static const struct bad_elf bad_pvh[] = {
	{ "namesz huge", { { PVH_NH(n_namesz), 0x80000000 } }, "malformed ELF note" },
	{ "descsz huge", { { PVH_NH(n_descsz), 0xfffffffc } }, "malformed ELF note" },
	{ "desc of 2 bytes", { { PVH_NH(n_descsz), 2 } }, "PVH entry note has 2 bytes" },
	{ "desc of 0 bytes", { { PVH_NH(n_descsz), 0 } }, "PVH entry note has 0 bytes" },
	{ "desc of 16 bytes",
	  { { PVH_NH(n_descsz), 16 }, { PH(1, p_filesz), GNU_NOTE_LEN + 12 + 4 + 16 } },
	  "PVH entry note has 16 bytes" },
	{ "PVH entry outside", { { PVH_DESC4, 0x5000000 } }, "entry point" },
	{ "PVH entry below", { { PVH_DESC4, 0x1000 } }, "entry point" },
};

static const struct bad_elf bad_pvh8[] = {
	{ "PVH entry above 4 GiB", { { PVH_DESC8, (1ULL << 32) + PVH_ENTRY } }, "entry point" },
};

/* Against [0, 3.25 GiB) + [4 GiB, 5 GiB): the MMIO gap and the high region. */
static const struct bad_elf bad_elves_gap[] = {
	{ "segment crosses the gap",
	  { { PH(0, p_paddr), GAP_START - 0x1000 }, { EH(e_entry), GAP_START - 0x1000 } },
	  "MMIO gap" },
	{ "segment inside the gap",
	  { { PH(0, p_paddr), GAP_START }, { EH(e_entry), GAP_START } },
	  "not below the MMIO gap" },
	{ "segment at the top of the gap",
	  { { PH(0, p_paddr), GAP_END - 0x1000 }, { EH(e_entry), GAP_END - 0x1000 } },
	  "not below the MMIO gap" },
	{ "segment covers the gap",
	  { { PH(0, p_paddr), GAP_START - 0x1000 },
	    { PH(0, p_memsz), GAP_END - GAP_START + 0x2000 },
	    { EH(e_entry), GAP_START - 0x1000 } },
	  "not below the MMIO gap" },
	{ "segment past high RAM",
	  { { PH(0, p_paddr), HIGH_END - 0x1000 }, { EH(e_entry), HIGH_END - 0x1000 } },
	  "not below the MMIO gap" },
};

static const struct bad_elf bad_pvh8_gap[] = {
	{ "PVH entry in high RAM",
	  { { PH(0, p_paddr), GAP_END }, { PVH_DESC8, GAP_END + 0x80 } },
	  "not below the MMIO gap" },
};

static void check_bad_elves(const struct gmem *gm, enum pvh_note note, const struct bad_elf *cases,
			    size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const struct bad_elf *c = &cases[i];
		struct kernel_image ki;
		struct image im;
		int ret;

		build_elf(&im, note);
		apply(&im, c->p, ARRAY_SIZE(c->p));
		ret = load_image(gm, &im, im.len, &ki);
		if (ret != -EINVAL || !strstr(error__get(), c->msg))
			fail_msg("%s (note %d): expected -EINVAL \"...%s...\", got %d \"%s\"",
				 c->name, note, c->msg, ret, error__get());
	}
}

#define CHECK_BAD(gm, note, table) check_bad_elves(gm, note, table, ARRAY_SIZE(table))

static void elf_rejected(void **state)
{
	struct guests *g = *state;

	CHECK_BAD(&g->small, NOTE_NONE, bad_elves);
	CHECK_BAD(&g->small, NOTE_PVH4, bad_pvh);
	CHECK_BAD(&g->small, NOTE_PVH8, bad_pvh);
	CHECK_BAD(&g->small, NOTE_PVH8, bad_pvh8);
	CHECK_BAD(&g->big, NOTE_NONE, bad_elves_gap);
	CHECK_BAD(&g->big, NOTE_PVH8, bad_pvh8_gap);
}

/* Every proper prefix of a good ELF is refused with a message; the whole file loads. */
static void elf_truncated_at_every_length(void **state)
{
	static const enum pvh_note notes[] = { NOTE_NONE, NOTE_PVH4, NOTE_PVH8 };
	struct guests *g = *state;

	for (size_t n = 0; n < ARRAY_SIZE(notes); n++) {
		struct kernel_image ki;
		struct image im;

		build_elf(&im, notes[n]);
		for (size_t len = 0; len < im.len; len++) {
			int ret = load_image(&g->small, &im, len, &ki);

			if (ret != -EINVAL || !error__get()[0])
				fail_msg("ELF (note %d) cut at %zu bytes: %d \"%s\"", notes[n], len,
					 ret, error__get());
		}
		assert_int_equal(load_image(&g->small, &im, im.len, &ki), 0);
	}
}

/* Follows the boot page tables in guest memory: does gva map to itself? */
static bool identity_mapped(const struct gmem *gm, uint64_t gva)
{
	uint64_t pml4e, pdpte, pde;

	memcpy(&pml4e, gpa(gm, 0x9000 + ((gva >> 39) & 511) * 8, 8), 8);
	if (!(pml4e & 1))
		return false;
	memcpy(&pdpte, gpa(gm, (pml4e & ~0xfffULL) + ((gva >> 30) & 511) * 8, 8), 8);
	if (!(pdpte & 1))
		return false;
	memcpy(&pde, gpa(gm, (pdpte & ~0xfffULL) + ((gva >> 21) & 511) * 8, 8), 8);
	return (pde & 0x81) == 0x81 && (pde & ~0x1fffffULL & 0xfffffffffffULL) == (gva & ~0x1fffffULL);
}

/*
 * The 64-bit boot protocol enters in long mode on Ember's identity page tables: a kernel
 * anywhere in low RAM (up to the MMIO gap) must be mapped there, and one above the gap
 * must be refused at load time rather than fault at its first instruction.
 */
static void elf_64bit_entry_above_identity_map(void **state)
{
	struct guests *g = *state;
	const uint64_t mapped[] = { GIB, GAP_START - ELF_SEG_MEMSZ };

	for (size_t i = 0; i < ARRAY_SIZE(mapped); i++) {
		const struct patch p[] = {
			{ PH(0, p_paddr), mapped[i] },
			{ EH(e_entry), mapped[i] + 0x40 },
		};
		struct kernel_image ki;
		struct image im;

		build_elf(&im, NOTE_NONE);
		apply(&im, p, ARRAY_SIZE(p));
		assert_int_equal(load_image(&g->big, &im, im.len, &ki), 0);
		assert_int_equal(boot_x86__setup(&g->big, &ki, "", NULL), 0);
		if (!identity_mapped(&g->big, ki.entry))
			fail_msg("ELF entry 0x%llx is accepted but not mapped by the boot page tables",
				 (unsigned long long)ki.entry);
	}
	const uint64_t above[] = { GAP_END, HIGH_END - ELF_SEG_MEMSZ };

	for (size_t i = 0; i < ARRAY_SIZE(above); i++) {
		const struct patch p[] = {
			{ PH(0, p_paddr), above[i] },
			{ EH(e_entry), above[i] + 0x40 },
		};
		struct kernel_image ki;
		struct image im;

		build_elf(&im, NOTE_NONE);
		apply(&im, p, ARRAY_SIZE(p));
		error__clear();
		expect_error(load_image(&g->big, &im, im.len, &ki), -EINVAL, "not below the MMIO gap");
	}
}

static void kernel_not_regular_file(void **state)
{
	struct guests *g = *state;
	struct kernel_image ki;
	int fds[2];

	assert_int_equal(pipe(fds), 0);
	error__clear();
	expect_error(boot_x86__load_kernel(&g->small, fds[0], &ki), -EINVAL, "not a regular file");
	close(fds[0]);
	close(fds[1]);
	error__clear();
	assert_true(boot_x86__load_kernel(&g->small, 12345, &ki) == -EBADF);
	assert_true(error__get()[0] != '\0');
}

static void kernel_empty_or_tiny(void **state)
{
	struct guests *g = *state;
	static const char *const files[] = { "", "\x7f",
					     "\x7f"
					     "EL",
					     "MZ\x90" };
	struct image im;

	for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
		struct kernel_image ki;

		memset(&im, 0, sizeof(im));
		memcpy(im.b, files[i], strlen(files[i]));
		expect_error(load_image(&g->small, &im, strlen(files[i]), &ki), -EINVAL,
			     "empty or truncated");
	}
	memset(&im, 0, sizeof(im));
	{
		struct kernel_image ki;

		expect_error(load_image(&g->small, &im, 4096, &ki), -EINVAL, "bad magic");
		memcpy(im.b, ELFMAG, SELFMAG);
		expect_error(load_image(&g->small, &im, 63, &ki), -EINVAL,
			     "ELF header is truncated");
	}
}

/* ---- bzImage ---- */

static void bzimage_good(void **state)
{
	struct guests *g = *state;
	struct kernel_image ki;
	struct image im;

	build_bzimage(&im);
	memset(gpa(&g->small, LAYOUT_HIMEM_START, BZ_INIT_SIZE), 0xee, BZ_INIT_SIZE);
	assert_int_equal(load_image(&g->small, &im, im.len, &ki), 0);
	assert_int_equal(ki.format, KERNEL_FORMAT_BZIMAGE);
	assert_string_equal(boot_x86__format_name(ki.format), "bzImage");
	assert_int_equal(ki.entry, 0x100200);
	assert_int_equal(ki.load_start, LAYOUT_HIMEM_START);
	assert_int_equal(ki.load_end, LAYOUT_HIMEM_START + BZ_INIT_SIZE);
	assert_int_equal(ki.cmdline_max, BZ_CMDLINE_SIZE + 1);
	assert_int_equal(ki.initrd_addr_max, BZ_INITRD_MAX);
	assert_int_equal(ki.setup_hdr_len, BZ_HDR_END - BOOT_SETUP_HDR_OFFSET);
	assert_memory_equal(ki.setup_hdr, im.b + BOOT_SETUP_HDR_OFFSET, ki.setup_hdr_len);
	assert_memory_equal(gpa(&g->small, LAYOUT_HIMEM_START, BZ_PM_LEN), im.b + BZ_SETUP_LEN,
			    BZ_PM_LEN);
}

/* Header fields with a special meaning at 0. */
static void bzimage_defaults(void **state)
{
	struct guests *g = *state;
	struct kernel_image ki;
	struct image im;

	build_bzimage_sects0(&im);
	bz_hdr(&im)->cmdline_size = 0;
	bz_hdr(&im)->initrd_addr_max = 0;
	assert_int_equal(load_image(&g->small, &im, im.len, &ki), 0);
	assert_memory_equal(gpa(&g->small, LAYOUT_HIMEM_START, BZ_PM_LEN),
			    im.b + BZ_SECTS0_SETUP_LEN, BZ_PM_LEN);
	assert_int_equal(ki.cmdline_max, LAYOUT_CMDLINE_MAX);
	assert_int_equal(ki.initrd_addr_max, 0x37ffffff);
	/* init_size 0: the file's own size */
	build_bzimage(&im);
	bz_hdr(&im)->init_size = 0;
	assert_int_equal(load_image(&g->small, &im, im.len, &ki), 0);
	assert_int_equal(ki.load_end, LAYOUT_HIMEM_START + BZ_PM_LEN);
}

/* The copied header ends where the jump at 0x200 lands, never past 0x1f1 + 0x80. */
static void bzimage_setup_header_length(void **state)
{
	static const struct {
		uint8_t jump;
		uint32_t len;
	} cases[] = { { 0, 0x11 }, { 0x66, 0x77 }, { 0x6e, 0x7f }, { 0x6f, 0x80 }, { 0xff, 0x80 } };
	struct guests *g = *state;

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct kernel_image ki;
		struct image im;

		build_bzimage(&im);
		memset(im.b + BZ_HDR_END, 0x5a, 0x20);
		im.b[0x201] = cases[i].jump;
		assert_int_equal(load_image(&g->small, &im, im.len, &ki), 0);
		assert_int_equal(ki.setup_hdr_len, cases[i].len);
		assert_memory_equal(ki.setup_hdr, im.b + BOOT_SETUP_HDR_OFFSET, cases[i].len);
	}
}

struct bad_bz {
	const char *name;
	struct patch p[2];
	const char *msg;
};

static const struct bad_bz bad_bzimages[] = {
	{ "boot flag", { { BZ(boot_flag), 0xaa56 } }, "bad magic" },
	{ "HdrS", { { BZ(header), 0x53726449 } }, "bad magic" },
	{ "version 2.11", { { BZ(version), 0x020b } }, "too old" },
	{ "version 2.00", { { BZ(version), 0x0200 } }, "too old" },
	{ "version 0", { { BZ(version), 0 } }, "too old" },
	{ "no XLF_KERNEL_64", { { BZ(xloadflags), XLF_CAN_BE_LOADED_ABOVE_4G } }, "64-bit entry" },
	{ "zImage", { { BZ(loadflags), 0 } }, "not loaded high" },
	{ "setup is the whole file", { { BZ(setup_sects), 3 } }, "no protected-mode part" },
	{ "setup past EOF", { { BZ(setup_sects), 0xff } }, "no protected-mode part" },
	{ "init_size = RAM", { { BZ(init_size), SMALL_RAM } }, "too small" },
	{ "init_size > RAM", { { BZ(init_size), 0x10000000 } }, "too small" },
	{ "init_size 4 GiB - 1", { { BZ(init_size), 0xffffffff } }, "too small" },
};

static void bzimage_rejected(void **state)
{
	struct guests *g = *state;

	for (size_t i = 0; i < ARRAY_SIZE(bad_bzimages); i++) {
		const struct bad_bz *c = &bad_bzimages[i];
		struct kernel_image ki;
		struct image im;
		int ret;

		build_bzimage(&im);
		apply(&im, c->p, ARRAY_SIZE(c->p));
		ret = load_image(&g->small, &im, im.len, &ki);
		if (ret != -EINVAL || !strstr(error__get(), c->msg))
			fail_msg("%s: expected -EINVAL \"...%s...\", got %d \"%s\"", c->name,
				 c->msg, ret, error__get());
	}
}

/* init_size up to the end of RAM is fine. */
static void bzimage_init_size_fills_ram(void **state)
{
	struct guests *g = *state;
	struct kernel_image ki;
	struct image im;

	build_bzimage(&im);
	bz_hdr(&im)->init_size = SMALL_RAM - LAYOUT_HIMEM_START;
	assert_int_equal(load_image(&g->small, &im, im.len, &ki), 0);
	assert_int_equal(ki.load_end, SMALL_RAM);
}

/* Cut anywhere up to the end of the setup sectors: refused with a message. */
static void bzimage_truncated_setup(void **state)
{
	struct guests *g = *state;
	struct kernel_image ki;
	struct image im;

	build_bzimage(&im);
	for (size_t len = 0; len <= BZ_SETUP_LEN; len++) {
		int ret = load_image(&g->small, &im, len, &ki);

		if (ret != -EINVAL || !error__get()[0])
			fail_msg("bzImage cut at %zu bytes: %d \"%s\"", len, ret, error__get());
	}
}

/*
 * Cut inside the protected-mode part (syssize says 0x400 bytes): the kernel is incomplete,
 * so loading must fail. syssize counts 16-byte paragraphs, rounded up, so a cut inside the
 * last paragraph cannot be seen; every shorter file must be refused.
 */
static void bzimage_truncated_protected_mode_part(void **state)
{
	struct guests *g = *state;
	struct kernel_image ki;
	struct image im;
	size_t accepted = 0, first = 0;

	build_bzimage(&im);
	for (size_t len = BZ_SETUP_LEN + 1; len <= im.len - 16; len++) {
		if (!load_image(&g->small, &im, len, &ki) && !accepted++)
			first = len;
	}
	if (accepted)
		fail_msg("%zu truncated bzImages accepted (first: %zu of %zu bytes)", accepted,
			 first, im.len);
}

/*
 * The 64-bit entry is 0x200 bytes into the protected-mode part. A part shorter than that
 * should be refused ("too small for its entry point"). FAILS: the check compares the entry
 * with load_end, which includes init_size, not with what was read from the file.
 */
static void bzimage_entry_beyond_code(void **state)
{
	struct guests *g = *state;
	struct kernel_image ki;
	struct image im;

	build_bzimage(&im);
	bz_hdr(&im)->syssize = 0x100 / 16;
	im.len = BZ_SETUP_LEN + 0x100;
	if (!load_image(&g->small, &im, im.len, &ki))
		fail_msg("bzImage with 0x100 bytes of code accepted, entry 0x%llx",
			 (unsigned long long)ki.entry);
}

/*
 * cmdline_size is the longest command line without its NUL: 0xffffffff means "no limit"
 * and cmdline_max must be clamped to LAYOUT_CMDLINE_MAX. FAILS: cmdline_size + 1 wraps to 0
 * in a uint32_t (boot_x86.c:333), the clamp misses it, and boot_x86__setup then refuses
 * every command line, even an empty one.
 */
static void bzimage_cmdline_size_max(void **state)
{
	struct guests *g = *state;
	struct initrd_image none = { 0 };
	struct kernel_image ki;
	struct image im;

	build_bzimage(&im);
	bz_hdr(&im)->cmdline_size = 0xffffffff;
	assert_int_equal(load_image(&g->small, &im, im.len, &ki), 0);
	assert_int_equal(ki.cmdline_max, LAYOUT_CMDLINE_MAX);
	assert_int_equal(boot_x86__setup(&g->small, &ki, "console=ttyS0", &none), 0);
}

/* ---- initrd ---- */

static int load_initrd(const struct gmem *gm, const struct kernel_image *ki, size_t size,
		       struct initrd_image *out)
{
	uint8_t *data = malloc(size ? size : 1);
	int fd, ret;

	assert_non_null(data);
	for (size_t i = 0; i < size; i++)
		data[i] = (uint8_t)(i ^ (i >> 8));
	fd = file_of(data, size);
	error__clear();
	ret = boot_x86__load_initrd(gm, fd, ki, out);
	close(fd);
	if (!ret) {
		assert_int_equal(out->size, size);
		assert_memory_equal(gpa(gm, out->addr, size), data, size);
	}
	free(data);
	return ret;
}

static struct kernel_image kernel_at(uint64_t end, uint64_t initrd_max)
{
	return (struct kernel_image){
		.format = KERNEL_FORMAT_ELF,
		.entry = LAYOUT_HIMEM_START,
		.load_start = LAYOUT_HIMEM_START,
		.load_end = end,
		.cmdline_max = LAYOUT_CMDLINE_MAX,
		.initrd_addr_max = initrd_max,
	};
}

static void initrd_placement(void **state)
{
	struct guests *g = *state;
	const struct {
		const struct gmem *gm;
		uint64_t kernel_end, initrd_max, size, addr;
	} cases[] = {
		/* top of low RAM, rounded down to a page */
		{ &g->small, 2 * MIB, UINT64_MAX, 5000, SMALL_RAM - 0x2000 },
		{ &g->small, 2 * MIB, UINT64_MAX, 0x1000, SMALL_RAM - 0x1000 },
		{ &g->small, 2 * MIB, UINT64_MAX, 1, SMALL_RAM - 0x1000 },
		/* exactly between the page-rounded end of the kernel and the end of RAM */
		{ &g->small, 2 * MIB + 1, UINT64_MAX, SMALL_RAM - 2 * MIB - 0x1000,
		  2 * MIB + 0x1000 },
		/* the kernel's initrd_addr_max is the last byte it can reach */
		{ &g->small, 2 * MIB, 0x1fffffff, 0x1000, SMALL_RAM - 0x1000 },
		{ &g->small, 2 * MIB, 0x3fffff, 0x1000, 0x3ff000 },
		{ &g->small, 2 * MIB, 0x3ffffe, 0x1000, 0x3fe000 },
		/* below the MMIO gap when RAM continues above 4 GiB */
		{ &g->big, 2 * MIB, UINT64_MAX, 0x3000, GAP_START - 0x3000 },
		{ &g->big, 2 * MIB, 0x37ffffff, 0x1800, 0x37ffe000 },
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct kernel_image ki = kernel_at(cases[i].kernel_end, cases[i].initrd_max);
		struct initrd_image rd = { 0 };
		int ret = load_initrd(cases[i].gm, &ki, cases[i].size, &rd);

		if (ret)
			fail_msg("case %zu: %d \"%s\"", i, ret, error__get());
		assert_int_equal(rd.addr, cases[i].addr);
		assert_int_equal(rd.addr & 0xfff, 0);
		assert_true(rd.addr >= ((ki.load_end + 0xfff) & ~0xfffULL));
		assert_true(rd.addr + rd.size <= gmem__low_end(cases[i].gm));
	}
}

static void initrd_rejected(void **state)
{
	struct guests *g = *state;
	const struct {
		uint64_t kernel_end, initrd_max, size;
		const char *msg;
	} cases[] = {
		{ 2 * MIB, UINT64_MAX, 0, "empty" },
		{ 2 * MIB, UINT64_MAX, SMALL_RAM + 1, "do not fit" },
		{ 2 * MIB, UINT64_MAX, SMALL_RAM, "do not fit" },
		{ 2 * MIB, UINT64_MAX, SMALL_RAM - 2 * MIB + 1, "do not fit" },
		{ 2 * MIB + 1, UINT64_MAX, SMALL_RAM - 2 * MIB - 0x1000 + 1, "do not fit" },
		{ 2 * MIB, 0x200fff, 0x1001, "do not fit" },
		{ 2 * MIB, 0x1000, 0x1000, "do not fit" },
		{ SMALL_RAM, UINT64_MAX, 1, "do not fit" },
		{ 128 * MIB, UINT64_MAX, 1, "do not fit" },
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct kernel_image ki = kernel_at(cases[i].kernel_end, cases[i].initrd_max);
		struct initrd_image rd = { 0x1234, 0x5678 };
		int ret = load_initrd(&g->small, &ki, cases[i].size, &rd);

		if (ret != -EINVAL || !strstr(error__get(), cases[i].msg))
			fail_msg("case %zu: expected \"%s\", got %d \"%s\"", i, cases[i].msg, ret,
				 error__get());
		assert_int_equal(rd.addr, 0x1234);
		assert_int_equal(rd.size, 0x5678);
	}
}

static void initrd_not_regular_file(void **state)
{
	struct guests *g = *state;
	struct kernel_image ki = kernel_at(2 * MIB, UINT64_MAX);
	struct initrd_image rd = { 0 };
	int fds[2];

	assert_int_equal(pipe(fds), 0);
	error__clear();
	expect_error(boot_x86__load_initrd(&g->small, fds[0], &ki, &rd), -EINVAL,
		     "not a regular file");
	close(fds[0]);
	close(fds[1]);
}

/* A real loaded kernel, then its initrd: the initrd lands above the kernel's init_size. */
static void initrd_after_bzimage(void **state)
{
	struct guests *g = *state;
	struct initrd_image rd = { 0 };
	struct kernel_image ki;
	struct image im;

	build_bzimage(&im);
	bz_hdr(&im)->initrd_addr_max = 0x1fffff;
	assert_int_equal(load_image(&g->small, &im, im.len, &ki), 0);
	assert_int_equal(load_initrd(&g->small, &ki, 0x1000, &rd), 0);
	assert_int_equal(rd.addr, 0x1ff000);
	assert_int_equal(load_initrd(&g->small, &ki, 0x2000 + MIB - BZ_INIT_SIZE, &rd), -EINVAL);
}

/* ---- boot structures ---- */

struct hvm_start_info_v1 {
	uint32_t magic, version, flags, nr_modules;
	uint64_t modlist_paddr, cmdline_paddr, rsdp_paddr, memmap_paddr;
	uint32_t memmap_entries, reserved;
};

struct hvm_modlist_entry_v1 {
	uint64_t paddr, size, cmdline_paddr, reserved;
};

struct hvm_memmap_entry_v1 {
	uint64_t addr, size;
	uint32_t type, reserved;
};

static const struct e820_entry small_e820[] = {
	{ 0, LAYOUT_EBDA_START, E820_RAM },
	{ LAYOUT_EBDA_START, LAYOUT_LOWMEM_END - LAYOUT_EBDA_START, E820_RESERVED },
	{ LAYOUT_HIMEM_START, SMALL_RAM - LAYOUT_HIMEM_START, E820_RAM },
};

static const struct e820_entry big_e820[] = {
	{ 0, LAYOUT_EBDA_START, E820_RAM },
	{ LAYOUT_EBDA_START, LAYOUT_LOWMEM_END - LAYOUT_EBDA_START, E820_RESERVED },
	{ LAYOUT_HIMEM_START, GAP_START - LAYOUT_HIMEM_START, E820_RAM },
	{ GAP_END, GIB, E820_RAM },
};

static void check_zero_page_e820(const struct boot_params *bp, const struct e820_entry *e,
				 unsigned int n)
{
	assert_int_equal(bp->e820_entries, n);
	for (unsigned int i = 0; i < n; i++) {
		assert_int_equal(bp->e820_table[i].addr, e[i].addr);
		assert_int_equal(bp->e820_table[i].size, e[i].size);
		assert_int_equal(bp->e820_table[i].type, e[i].type);
	}
}

static const struct boot_params *zero_page(const struct gmem *gm)
{
	return (const struct boot_params *)gpa(gm, LAYOUT_ZERO_PAGE_ADDR,
					       sizeof(struct boot_params));
}

static void setup_elf_zero_page(void **state)
{
	struct guests *g = *state;
	struct kernel_image ki = kernel_at(2 * MIB, UINT64_MAX);
	struct initrd_image rd = { .addr = 0x3000000, .size = 0x12345 };
	const struct boot_params *bp = zero_page(&g->small);
	const char *cmdline = "console=ttyS0 reboot=k panic=1";

	memset(gpa(&g->small, LAYOUT_ZERO_PAGE_ADDR, 0x1000), 0xa5, 0x1000);
	assert_int_equal(boot_x86__setup(&g->small, &ki, cmdline, &rd), 0);
	assert_string_equal((const char *)gpa(&g->small, LAYOUT_CMDLINE_ADDR, 1), cmdline);
	assert_int_equal(bp->hdr.boot_flag, 0xaa55);
	assert_int_equal(bp->hdr.header, 0x53726448);
	assert_int_equal(bp->hdr.type_of_loader, 0xff);
	assert_int_equal(bp->hdr.cmd_line_ptr, LAYOUT_CMDLINE_ADDR);
	assert_int_equal(bp->hdr.cmdline_size, LAYOUT_CMDLINE_MAX - 1);
	assert_int_equal(bp->hdr.ramdisk_image, 0x3000000);
	assert_int_equal(bp->hdr.ramdisk_size, 0x12345);
	assert_int_equal(bp->ext_ramdisk_image, 0);
	assert_int_equal(bp->ext_ramdisk_size, 0);
	assert_int_equal(bp->ext_cmd_line_ptr, 0);
	assert_int_equal(bp->hdr.setup_sects, 0); /* stale bytes are cleared */
	assert_int_equal(bp->screen_info.orig_x, 0);
	check_zero_page_e820(bp, small_e820, ARRAY_SIZE(small_e820));
}

static void setup_elf_zero_page_high_ram(void **state)
{
	struct guests *g = *state;
	struct kernel_image ki = kernel_at(2 * MIB, UINT64_MAX);
	const struct boot_params *bp = zero_page(&g->big);

	assert_int_equal(boot_x86__setup(&g->big, &ki, "", NULL), 0);
	assert_int_equal(bp->hdr.ramdisk_image, 0);
	assert_int_equal(bp->hdr.ramdisk_size, 0);
	assert_int_equal(*gpa(&g->big, LAYOUT_CMDLINE_ADDR, 1), 0);
	check_zero_page_e820(bp, big_e820, ARRAY_SIZE(big_e820));
}

/* The bzImage's own setup header, with the loader's fields filled in. */
static void setup_bzimage_zero_page(void **state)
{
	struct guests *g = *state;
	struct initrd_image rd = { 0 };
	struct boot_params expect;
	const struct boot_params *bp = zero_page(&g->small);
	struct kernel_image ki;
	struct image im;

	build_bzimage(&im);
	assert_int_equal(load_image(&g->small, &im, im.len, &ki), 0);
	assert_int_equal(load_initrd(&g->small, &ki, 0x2800, &rd), 0);
	assert_int_equal(boot_x86__setup(&g->small, &ki, "quiet", &rd), 0);

	memset(&expect, 0, sizeof(expect));
	memcpy((uint8_t *)&expect + BOOT_SETUP_HDR_OFFSET, im.b + BOOT_SETUP_HDR_OFFSET,
	       BZ_HDR_END - BOOT_SETUP_HDR_OFFSET);
	expect.hdr.type_of_loader = 0xff;
	expect.hdr.cmd_line_ptr = LAYOUT_CMDLINE_ADDR;
	expect.hdr.ramdisk_image = (uint32_t)rd.addr;
	expect.hdr.ramdisk_size = 0x2800;
	assert_memory_equal(&bp->hdr, &expect.hdr, BZ_HDR_END - BOOT_SETUP_HDR_OFFSET);
	assert_int_equal(rd.addr, SMALL_RAM - 0x3000);
	check_zero_page_e820(bp, small_e820, ARRAY_SIZE(small_e820));
}

static void check_pvh_memmap(const struct gmem *gm, const struct hvm_start_info_v1 *si,
			     const struct e820_entry *e, unsigned int n)
{
	struct hvm_memmap_entry_v1 m;

	assert_int_equal(si->memmap_paddr, LAYOUT_PVH_MEMMAP_ADDR);
	assert_int_equal(si->memmap_entries, n);
	for (unsigned int i = 0; i < n; i++) {
		assert_int_equal(gmem__read(gm, si->memmap_paddr + i * sizeof(m), &m, sizeof(m)),
				 0);
		assert_int_equal(m.addr, e[i].addr);
		assert_int_equal(m.size, e[i].size);
		assert_int_equal(m.type, e[i].type);
		assert_int_equal(m.reserved, 0);
	}
}

static void setup_pvh_start_info(void **state)
{
	struct guests *g = *state;
	struct kernel_image ki = kernel_at(2 * MIB, UINT64_MAX);
	struct initrd_image rd = { .addr = 0x3ffd000, .size = 0x2345 };
	struct hvm_start_info_v1 si;
	struct hvm_modlist_entry_v1 mod;

	ki.format = KERNEL_FORMAT_PVH;
	assert_int_equal(boot_x86__setup(&g->small, &ki, "console=hvc0", &rd), 0);
	assert_int_equal(gmem__read(&g->small, LAYOUT_PVH_INFO_ADDR, &si, sizeof(si)), 0);
	assert_int_equal(si.magic, 0x336ec578);
	assert_int_equal(si.version, 1);
	assert_int_equal(si.flags, 0);
	assert_int_equal(si.cmdline_paddr, LAYOUT_CMDLINE_ADDR);
	assert_string_equal((const char *)gpa(&g->small, si.cmdline_paddr, 1), "console=hvc0");
	assert_int_equal(si.nr_modules, 1);
	assert_int_equal(si.modlist_paddr, LAYOUT_PVH_MODLIST_ADDR);
	assert_int_equal(gmem__read(&g->small, si.modlist_paddr, &mod, sizeof(mod)), 0);
	assert_int_equal(mod.paddr, 0x3ffd000);
	assert_int_equal(mod.size, 0x2345);
	assert_int_equal(mod.cmdline_paddr, 0);
	check_pvh_memmap(&g->small, &si, small_e820, ARRAY_SIZE(small_e820));
	/* the three structures do not overlap */
	assert_true(LAYOUT_PVH_INFO_ADDR + sizeof(si) <= LAYOUT_PVH_MODLIST_ADDR);
	assert_true(LAYOUT_PVH_MODLIST_ADDR + sizeof(mod) <= LAYOUT_PVH_MEMMAP_ADDR);
	assert_true(LAYOUT_PVH_MEMMAP_ADDR + LAYOUT_PVH_MEMMAP_MAX * 24 <= LAYOUT_ZERO_PAGE_ADDR);
}

static void setup_pvh_without_initrd(void **state)
{
	struct guests *g = *state;
	struct kernel_image ki = kernel_at(2 * MIB, UINT64_MAX);
	struct initrd_image rd = { .addr = 0x3000000, .size = 0 };
	struct hvm_start_info_v1 si;

	ki.format = KERNEL_FORMAT_PVH;
	memset(gpa(&g->big, LAYOUT_PVH_INFO_ADDR, 0x1000), 0xa5, 0x1000);
	assert_int_equal(boot_x86__setup(&g->big, &ki, "", &rd), 0);
	assert_int_equal(gmem__read(&g->big, LAYOUT_PVH_INFO_ADDR, &si, sizeof(si)), 0);
	assert_int_equal(si.magic, 0x336ec578);
	assert_int_equal(si.nr_modules, 0);
	assert_int_equal(si.modlist_paddr, 0);
	assert_int_equal(si.rsdp_paddr, 0);
	assert_int_equal(si.reserved, 0);
	check_pvh_memmap(&g->big, &si, big_e820, ARRAY_SIZE(big_e820));
	assert_int_equal(boot_x86__setup(&g->big, &ki, "", NULL), 0);
}

static void setup_cmdline_limits(void **state)
{
	struct guests *g = *state;
	struct kernel_image ki = kernel_at(2 * MIB, UINT64_MAX);
	char *s = malloc(LAYOUT_CMDLINE_MAX + 2);

	assert_non_null(s);
	memset(s, 'x', LAYOUT_CMDLINE_MAX + 1);
	s[LAYOUT_CMDLINE_MAX + 1] = '\0';
	error__clear();
	expect_error(boot_x86__setup(&g->small, &ki, s, NULL), -EINVAL, "at most 2047");
	s[LAYOUT_CMDLINE_MAX] = '\0';
	expect_error(boot_x86__setup(&g->small, &ki, s, NULL), -EINVAL, "is 2048 bytes");
	s[LAYOUT_CMDLINE_MAX - 1] = '\0';
	assert_int_equal(boot_x86__setup(&g->small, &ki, s, NULL), 0);
	assert_int_equal(strlen((const char *)gpa(&g->small, LAYOUT_CMDLINE_ADDR, 1)),
			 LAYOUT_CMDLINE_MAX - 1);
	/* a bzImage's own, smaller limit */
	ki.format = KERNEL_FORMAT_BZIMAGE;
	ki.cmdline_max = 256;
	s[256] = '\0';
	expect_error(boot_x86__setup(&g->small, &ki, s, NULL), -EINVAL, "at most 255");
	s[255] = '\0';
	assert_int_equal(boot_x86__setup(&g->small, &ki, s, NULL), 0);
	free(s);
}

/* The boot structures need RAM up to the end of the command line. */
static void setup_tiny_guest(void **state)
{
	const struct {
		uint64_t ram;
		int ret;
	} cases[] = {
		{ 0x1000, -EFAULT }, { 0x10000, -EFAULT }, { 0x20000, -EFAULT }, { 0x21000, 0 }
	};
	struct kernel_image ki = kernel_at(2 * MIB, UINT64_MAX);

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		for (int pvh = 0; pvh < 2; pvh++) {
			struct gmem gm;
			int ret;

			ki.format = pvh ? KERNEL_FORMAT_PVH : KERNEL_FORMAT_ELF;
			guest_map(&gm, cases[i].ram);
			error__clear();
			ret = boot_x86__setup(&gm, &ki, "console=ttyS0", NULL);
			if (ret != cases[i].ret || (ret && !strstr(error__get(), "too small")))
				fail_msg("%llu bytes, pvh %d: %d \"%s\"",
					 (unsigned long long)cases[i].ram, pvh, ret, error__get());
			guest_unmap(&gm);
		}
	}
}

static uint64_t read_u64(const struct gmem *gm, uint64_t addr)
{
	uint64_t v;

	assert_int_equal(gmem__read(gm, addr, &v, sizeof(v)), 0);
	return v;
}

static void setup_gdt_and_page_tables(void **state)
{
	struct guests *g = *state;
	struct kernel_image ki = kernel_at(2 * MIB, UINT64_MAX);

	assert_int_equal(boot_x86__setup(&g->small, &ki, "", NULL), 0);
	assert_int_equal(read_u64(&g->small, LAYOUT_GDT_ADDR), 0);
	assert_int_equal(read_u64(&g->small, LAYOUT_GDT_ADDR + 0x08), 0x00cf9b000000ffffULL);
	assert_int_equal(read_u64(&g->small, LAYOUT_GDT_ADDR + 0x10), 0x00af9b000000ffffULL);
	assert_int_equal(read_u64(&g->small, LAYOUT_GDT_ADDR + 0x18), 0x00cf93000000ffffULL);
	assert_int_equal(read_u64(&g->small, LAYOUT_GDT_ADDR + 0x20), 0x00008b0000000067ULL);
	assert_int_equal(read_u64(&g->small, LAYOUT_PML4_ADDR), LAYOUT_PDPTE_ADDR | 3);
	assert_int_equal(read_u64(&g->small, LAYOUT_PDPTE_ADDR), LAYOUT_PDE_ADDR | 3);
	for (uint64_t i = 0; i < 512; i++)
		assert_int_equal(read_u64(&g->small, LAYOUT_PDE_ADDR + i * 8), (i << 21) | 0x83);
}

/* ---- registers ---- */

/* The descriptor the selector names in the GDT in guest memory matches the segment. */
static void check_segment_in_gdt(const struct gmem *gm, const struct kvm_segment *s)
{
	uint64_t d = read_u64(gm, LAYOUT_GDT_ADDR + s->selector);

	assert_true(s->selector < 5 * 8);
	assert_int_equal((d >> 40) & 0xf, s->type);
	assert_int_equal((d >> 44) & 1, s->s);
	assert_int_equal((d >> 47) & 1, s->present);
	assert_int_equal((d >> 53) & 1, s->l);
	assert_int_equal((d >> 54) & 1, s->db);
	assert_int_equal((d >> 55) & 1, s->g);
}

static void regs_64bit(void **state)
{
	struct guests *g = *state;
	struct kernel_image ki = kernel_at(2 * MIB, UINT64_MAX);
	struct kvm_sregs sregs;
	struct kvm_regs regs;

	ki.entry = 0x1000000;
	assert_int_equal(boot_x86__setup(&g->small, &ki, "", NULL), 0);
	memset(&regs, 0xcc, sizeof(regs));
	memset(&sregs, 0, sizeof(sregs));
	boot_x86__regs(&ki, &regs, &sregs);
	assert_int_equal(regs.rip, 0x1000000);
	assert_int_equal(regs.rsi, LAYOUT_ZERO_PAGE_ADDR);
	assert_int_equal(regs.rbx, 0);
	assert_int_equal(regs.rflags, 2);
	assert_int_equal(sregs.cs.selector, 0x10);
	assert_int_equal(sregs.cs.l, 1);
	assert_int_equal(sregs.cs.db, 0);
	assert_int_equal(sregs.ds.selector, 0x18);
	assert_int_equal(sregs.ss.selector, 0x18);
	assert_int_equal(sregs.tr.selector, 0x20);
	assert_int_equal(sregs.cr0 & 0x80000001, 0x80000001);
	assert_int_equal(sregs.cr3, LAYOUT_PML4_ADDR);
	assert_int_equal(sregs.cr4 & 0x20, 0x20);
	assert_int_equal(sregs.efer & 0x500, 0x500);
	assert_int_equal(sregs.gdt.base, LAYOUT_GDT_ADDR);
	assert_int_equal(sregs.gdt.limit, 5 * 8 - 1);
	check_segment_in_gdt(&g->small, &sregs.cs);
	check_segment_in_gdt(&g->small, &sregs.ds);
	check_segment_in_gdt(&g->small, &sregs.ss);
	/* a bzImage enters the same way */
	ki.format = KERNEL_FORMAT_BZIMAGE;
	ki.entry = 0x100200;
	boot_x86__regs(&ki, &regs, &sregs);
	assert_int_equal(regs.rip, 0x100200);
	assert_int_equal(sregs.cs.selector, 0x10);
	assert_int_equal(regs.rsi, LAYOUT_ZERO_PAGE_ADDR);
}

static void regs_pvh(void **state)
{
	struct guests *g = *state;
	struct kernel_image ki = kernel_at(2 * MIB, UINT64_MAX);
	struct kvm_sregs sregs;
	struct kvm_regs regs;

	ki.format = KERNEL_FORMAT_PVH;
	ki.entry = PVH_ENTRY;
	assert_int_equal(boot_x86__setup(&g->small, &ki, "", NULL), 0);
	memset(&regs, 0xcc, sizeof(regs));
	memset(&sregs, 0xcc, sizeof(sregs));
	boot_x86__regs(&ki, &regs, &sregs);
	assert_int_equal(regs.rip, PVH_ENTRY);
	assert_int_equal(regs.rbx, LAYOUT_PVH_INFO_ADDR);
	assert_int_equal(regs.rsi, 0);
	assert_int_equal(regs.rflags, 2);
	assert_int_equal(sregs.cs.selector, 0x08);
	assert_int_equal(sregs.cs.l, 0);
	assert_int_equal(sregs.cs.db, 1);
	assert_int_equal(sregs.cs.base, 0);
	assert_int_equal(sregs.cs.limit, 0xffffffff);
	assert_int_equal(sregs.ds.selector, 0x18);
	assert_int_equal(sregs.cr0 & 0x80000001, 1); /* PE, no paging */
	assert_int_equal(sregs.cr4, 0);
	assert_int_equal(sregs.efer, 0);
	assert_int_equal(sregs.tr.type, 0xb);
	check_segment_in_gdt(&g->small, &sregs.cs);
	check_segment_in_gdt(&g->small, &sregs.ds);
	check_segment_in_gdt(&g->small, &sregs.es);
}

/* ---- corpus for tests/fuzz/fuzz_kernel.c ---- */

static void write_seed(const char *dir, const char *name, const void *data, size_t len)
{
	char path[PATH_MAX];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

static void write_fuzz_seeds(const char *dir)
{
	struct image im;

	build_elf(&im, NOTE_NONE);
	write_seed(dir, "elf", im.b, im.len);
	build_elf(&im, NOTE_PVH4);
	write_seed(dir, "pvh4", im.b, im.len);
	build_elf(&im, NOTE_PVH8);
	write_seed(dir, "pvh8", im.b, im.len);
	build_bzimage(&im);
	write_seed(dir, "bzimage", im.b, im.len);
	build_bzimage_sects0(&im);
	write_seed(dir, "bzimage_sects0", im.b, im.len);
	for (size_t i = 0; i < ARRAY_SIZE(bad_elves); i += 8) {
		char name[32];

		build_elf(&im, NOTE_NONE);
		apply(&im, bad_elves[i].p, ARRAY_SIZE(bad_elves[i].p));
		snprintf(name, sizeof(name), "bad_elf_%zu", i);
		write_seed(dir, name, im.b, im.len);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(elf_without_pvh_note),
		cmocka_unit_test(elf_with_pvh_note),
		cmocka_unit_test(elf_pvh_note_in_second_note_segment),
		cmocka_unit_test(elf_several_segments),
		cmocka_unit_test(elf_segment_at_region_ends),
		cmocka_unit_test(elf_rejected),
		cmocka_unit_test(elf_truncated_at_every_length),
		cmocka_unit_test(elf_64bit_entry_above_identity_map),
		cmocka_unit_test(kernel_not_regular_file),
		cmocka_unit_test(kernel_empty_or_tiny),
		cmocka_unit_test(bzimage_good),
		cmocka_unit_test(bzimage_defaults),
		cmocka_unit_test(bzimage_setup_header_length),
		cmocka_unit_test(bzimage_rejected),
		cmocka_unit_test(bzimage_init_size_fills_ram),
		cmocka_unit_test(bzimage_truncated_setup),
		cmocka_unit_test(bzimage_truncated_protected_mode_part),
		cmocka_unit_test(bzimage_entry_beyond_code),
		cmocka_unit_test(bzimage_cmdline_size_max),
		cmocka_unit_test(initrd_placement),
		cmocka_unit_test(initrd_rejected),
		cmocka_unit_test(initrd_not_regular_file),
		cmocka_unit_test(initrd_after_bzimage),
		cmocka_unit_test(setup_elf_zero_page),
		cmocka_unit_test(setup_elf_zero_page_high_ram),
		cmocka_unit_test(setup_bzimage_zero_page),
		cmocka_unit_test(setup_pvh_start_info),
		cmocka_unit_test(setup_pvh_without_initrd),
		cmocka_unit_test(setup_cmdline_limits),
		cmocka_unit_test(setup_tiny_guest),
		cmocka_unit_test(setup_gdt_and_page_tables),
		cmocka_unit_test(regs_64bit),
		cmocka_unit_test(regs_pvh),
	};

	if (getenv("EMBER_FUZZ_SEED_DIR")) {
		write_fuzz_seeds(getenv("EMBER_FUZZ_SEED_DIR"));
		return 0;
	}

	return cmocka_run_group_tests_name("boot_x86", tests, setup_guests, teardown_guests);
}
