// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests for src/vmm/memory.c (the RAM layout around the MMIO gap and gmem__ptr, the one
 * door into guest memory) and for the e820 map boot_x86__e820() derives from the layout.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>

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

/* ---- memory__layout ---- */

static const struct {
	uint64_t bytes;
	unsigned int nr;
	uint64_t low_size, high_size;
} layouts[] = {
	{ 0x1000, 1, 0x1000, 0 },
	{ 0xa0000, 1, 0xa0000, 0 },
	{ MIB, 1, MIB, 0 },
	{ 64 * MIB, 1, 64 * MIB, 0 },
	{ GAP_START - 0x1000, 1, GAP_START - 0x1000, 0 },
	{ GAP_START, 1, GAP_START, 0 },
	{ GAP_START + 0x1000, 2, GAP_START, 0x1000 },
	{ 4 * GIB, 2, GAP_START, 4 * GIB - GAP_START },
	{ 64 * GIB, 2, GAP_START, 64 * GIB - GAP_START },
	{ 1024 * GIB, 2, GAP_START, 1024 * GIB - GAP_START },
};

static void layout_sizes(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(layouts); i++) {
		struct gmem gm;

		memset(&gm, 0xcc, sizeof(gm));
		assert_int_equal(memory__layout(&gm, layouts[i].bytes), 0);
		assert_int_equal(gm.nr_regions, layouts[i].nr);
		assert_int_equal(gm.ram_size, layouts[i].bytes);
		assert_int_equal(gm.regions[0].gpa, 0);
		assert_int_equal(gm.regions[0].size, layouts[i].low_size);
		assert_null(gm.regions[0].host);
		assert_null(gm.regions[1].host);
		assert_int_equal(gmem__low_end(&gm), layouts[i].low_size);
		if (layouts[i].nr == 2) {
			assert_int_equal(gm.regions[1].gpa, GAP_END);
			assert_int_equal(gm.regions[1].size, layouts[i].high_size);
		}
		assert_int_equal(gm.regions[0].size + gm.regions[1].size * (gm.nr_regions - 1),
				 layouts[i].bytes);
	}
}

static void layout_rejects(void **state)
{
	static const uint64_t bad[] = { 0, 1, 0xfff, 0x1001, 0x1800, 64 * MIB + 1, GAP_START + 1,
					4 * GIB - 1, UINT64_MAX };

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		struct gmem gm;

		assert_int_equal(memory__layout(&gm, bad[i]), -EINVAL);
		assert_int_equal(gm.nr_regions, 0);
	}
}

/*
 * A region must not wrap past 2^64: its end is computed as gpa + size everywhere.
 * FAILS: memory__layout accepts any 4 KiB multiple, and for more than 2^64 - 0x30000000
 * bytes the high region [4 GiB, 4 GiB + size) wraps (its e820 entry too). Not reachable
 * through the config (VM_MAX_MEM_MIB is 1 TiB), but the function's contract does not say so.
 */
static void layout_never_wraps(void **state)
{
	static const uint64_t sizes[] = { 0ULL - 0x1000, 0ULL - 0x30000000 + 0x1000, 1ULL << 63 };

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(sizes); i++) {
		struct gmem gm;
		uint64_t end;

		if (memory__layout(&gm, sizes[i]))
			continue;
		for (unsigned int r = 0; r < gm.nr_regions; r++) {
			if (__builtin_add_overflow(gm.regions[r].gpa, gm.regions[r].size, &end) &&
			    end != 0)
				fail_msg("%#llx bytes: region %u [%#llx, +%#llx) wraps",
					 (unsigned long long)sizes[i], r,
					 (unsigned long long)gm.regions[r].gpa,
					 (unsigned long long)gm.regions[r].size);
		}
	}
}

/* ---- gmem__ptr, gmem__read, gmem__write ---- */

/* 3.25 GiB + 8 KiB of sparse RAM: [0, 3.25 GiB) and [4 GiB, 4 GiB + 8 KiB). */
#define SPLIT_RAM (GAP_START + 0x2000)

static int setup_split(void **state)
{
	static struct gmem gm;

	if (memory__map(&gm, SPLIT_RAM))
		return -1;
	*state = &gm;
	return 0;
}

static int teardown_split(void **state)
{
	memory__unmap(*state);
	return 0;
}

static void ptr_bounds(void **state)
{
	const struct gmem *gm = *state;
	uint8_t *lo = gm->regions[0].host, *hi = gm->regions[1].host;
	const struct {
		uint64_t gpa, len;
		uint8_t *expect;
	} cases[] = {
		{ 0, 1, lo },
		{ 0, GAP_START, lo },
		{ 0, GAP_START + 1, NULL },
		{ 0x1234, 0, NULL },		 /* len 0 */
		{ 0, 0, NULL },
		{ GAP_START - 1, 1, lo + GAP_START - 1 }, /* last byte */
		{ GAP_START - 8, 8, lo + GAP_START - 8 },
		{ GAP_START - 1, 2, NULL },	 /* straddles the end */
		{ GAP_START, 1, NULL },		 /* one past: the gap */
		{ GAP_START + 0x1000, 4, NULL }, /* inside the gap */
		{ GAP_END - 1, 1, NULL },
		{ GAP_END - 1, 2, NULL },	 /* gap into high RAM */
		{ GAP_START - 0x10, GAP_END - GAP_START + 0x20, NULL }, /* across the gap */
		{ GAP_END, 1, hi },		 /* first byte of high RAM */
		{ GAP_END, 0x2000, hi },
		{ GAP_END + 0x1fff, 1, hi + 0x1fff },
		{ GAP_END + 0x1fff, 2, NULL },
		{ GAP_END + 0x2000, 1, NULL },
		{ UINT64_MAX - 1, 4, NULL },	 /* wraps */
		{ UINT64_MAX, 1, NULL },
		{ UINT64_MAX, 2, NULL },
		{ 1, UINT64_MAX, NULL },
		{ 0, UINT64_MAX, NULL },
		{ GAP_END, UINT64_MAX, NULL },
		{ 0x1000, 0ULL - 0x1000, NULL }, /* ends exactly at 2^64 */
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		void *p = gmem__ptr(gm, cases[i].gpa, cases[i].len);

		if (p != cases[i].expect)
			fail_msg("gmem__ptr(%#llx, %#llx) = %p, expected %p",
				 (unsigned long long)cases[i].gpa, (unsigned long long)cases[i].len,
				 p, (void *)cases[i].expect);
	}
}

static void read_write(void **state)
{
	const struct gmem *gm = *state;
	uint8_t buf[16], out[16];

	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(0xa0 + i);
	assert_int_equal(gmem__write(gm, GAP_START - 16, buf, 16), 0);
	assert_memory_equal(gm->regions[0].host + GAP_START - 16, buf, 16);
	memset(out, 0, sizeof(out));
	assert_int_equal(gmem__read(gm, GAP_START - 16, out, 16), 0);
	assert_memory_equal(out, buf, 16);
	assert_int_equal(gmem__write(gm, GAP_END + 0x1ff0, buf, 16), 0);
	assert_memory_equal(gm->regions[1].host + 0x1ff0, buf, 16);

	/* refused accesses leave both sides alone */
	memset(out, 0x5a, sizeof(out));
	assert_int_equal(gmem__read(gm, GAP_START - 8, out, 16), -EFAULT);
	assert_int_equal(gmem__read(gm, UINT64_MAX - 7, out, 16), -EFAULT);
	assert_int_equal(gmem__read(gm, 0, out, 0), -EFAULT);
	for (size_t i = 0; i < sizeof(out); i++)
		assert_int_equal(out[i], 0x5a);
	assert_int_equal(gmem__write(gm, GAP_END + 0x1ff8, out, 16), -EFAULT);
	assert_memory_equal(gm->regions[1].host + 0x1ff0, buf, 16);
	assert_int_equal(gmem__write(gm, GAP_START, out, 1), -EFAULT);
}

/* Regions without a host mapping are not guest memory yet. */
static void ptr_unmapped(void **state)
{
	struct gmem gm;
	uint8_t byte;

	(void)state;
	assert_int_equal(memory__layout(&gm, 64 * MIB), 0);
	assert_null(gmem__ptr(&gm, 0, 1));
	assert_int_equal(gmem__read(&gm, 0, &byte, 1), -EFAULT);
	memset(&gm, 0, sizeof(gm));
	assert_null(gmem__ptr(&gm, 0, 1));
	assert_int_equal(gmem__low_end(&gm), 0);
}

static void map_and_unmap(void **state)
{
	struct gmem gm;

	(void)state;
	assert_int_equal(memory__map(&gm, 2 * MIB), 0);
	assert_int_equal(gm.nr_regions, 1);
	assert_non_null(gm.regions[0].host);
	gm.regions[0].host[2 * MIB - 1] = 7;
	assert_int_equal(*(uint8_t *)gmem__ptr(&gm, 2 * MIB - 1, 1), 7);
	memory__unmap(&gm);
	assert_null(gm.regions[0].host);
	assert_null(gmem__ptr(&gm, 0, 1));
	memory__unmap(&gm); /* twice is harmless */
	assert_int_equal(memory__map(&gm, 0x1234), -EINVAL);
	assert_int_equal(memory__map(&gm, 0), -EINVAL);
}

/* ---- boot_x86__e820 ---- */

#define RAM E820_RAM
#define RSV E820_RESERVED
#define EBDA LAYOUT_EBDA_START
#define HIMEM LAYOUT_HIMEM_START
#define EBDA_LEN (LAYOUT_LOWMEM_END - LAYOUT_EBDA_START)

static const struct {
	uint64_t bytes;
	unsigned int n;
	struct e820_entry e[4];
} e820_cases[] = {
	{ 0x1000, 1, { { 0, 0x1000, RAM } } },
	{ 0x9f000, 1, { { 0, 0x9f000, RAM } } },
	{ 0xa0000, 2, { { 0, EBDA, RAM }, { EBDA, EBDA_LEN, RSV } } },
	{ 0xc0000, 2, { { 0, EBDA, RAM }, { EBDA, EBDA_LEN, RSV } } },
	{ MIB, 2, { { 0, EBDA, RAM }, { EBDA, EBDA_LEN, RSV } } },
	{ MIB + 0x1000, 3, { { 0, EBDA, RAM }, { EBDA, EBDA_LEN, RSV }, { HIMEM, 0x1000, RAM } } },
	{ 64 * MIB, 3, { { 0, EBDA, RAM }, { EBDA, EBDA_LEN, RSV }, { HIMEM, 63 * MIB, RAM } } },
	{ GAP_START,
	  3,
	  { { 0, EBDA, RAM }, { EBDA, EBDA_LEN, RSV }, { HIMEM, GAP_START - HIMEM, RAM } } },
	{ GAP_START + 0x1000,
	  4,
	  { { 0, EBDA, RAM },
	    { EBDA, EBDA_LEN, RSV },
	    { HIMEM, GAP_START - HIMEM, RAM },
	    { GAP_END, 0x1000, RAM } } },
	{ 4 * GIB,
	  4,
	  { { 0, EBDA, RAM },
	    { EBDA, EBDA_LEN, RSV },
	    { HIMEM, GAP_START - HIMEM, RAM },
	    { GAP_END, 4 * GIB - GAP_START, RAM } } },
	{ 256 * GIB,
	  4,
	  { { 0, EBDA, RAM },
	    { EBDA, EBDA_LEN, RSV },
	    { HIMEM, GAP_START - HIMEM, RAM },
	    { GAP_END, 256 * GIB - GAP_START, RAM } } },
};

static void e820_layouts(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(e820_cases); i++) {
		struct e820_entry e[8];
		struct gmem gm;
		unsigned int n;
		uint64_t ram = 0;

		memset(e, 0xcc, sizeof(e));
		assert_int_equal(memory__layout(&gm, e820_cases[i].bytes), 0);
		n = boot_x86__e820(&gm, e, 8);
		if (n != e820_cases[i].n)
			fail_msg("%#llx bytes: %u entries, expected %u",
				 (unsigned long long)e820_cases[i].bytes, n, e820_cases[i].n);
		for (unsigned int k = 0; k < n; k++) {
			assert_int_equal(e[k].addr, e820_cases[i].e[k].addr);
			assert_int_equal(e[k].size, e820_cases[i].e[k].size);
			assert_int_equal(e[k].type, e820_cases[i].e[k].type);
			/* sorted, no overlap, and RAM only where the layout has RAM */
			if (k)
				assert_true(e[k].addr >= e[k - 1].addr + e[k - 1].size);
			if (e[k].type == RAM) {
				assert_true(e[k].addr + e[k].size <= e820_cases[i].bytes ||
					    e[k].addr >= GAP_END);
				ram += e[k].size;
			}
		}
		assert_int_equal(e[n].type, 0xcccccccc); /* nothing written past n */
		assert_true(ram <= e820_cases[i].bytes);
	}
}

static void e820_max(void **state)
{
	struct e820_entry e[4];
	struct gmem gm;

	(void)state;
	assert_int_equal(memory__layout(&gm, 4 * GIB), 0);
	for (unsigned int max = 0; max <= 4; max++) {
		memset(e, 0xcc, sizeof(e));
		assert_int_equal(boot_x86__e820(&gm, e, max), max);
		for (unsigned int k = max; k < 4; k++)
			assert_int_equal(e[k].type, 0xcccccccc);
	}
	memset(&gm, 0, sizeof(gm));
	assert_int_equal(boot_x86__e820(&gm, e, 4), 0);
}

/* ---- the pages Ember writes, for Diff snapshots ---- */

static bool bit(const uint64_t *bm, uint64_t pg)
{
	return bm[pg / 64] & (1ULL << (pg % 64));
}

static void dirty_tracking(void **state)
{
	struct gmem gm;
	uint64_t bm[2][(64 * MIB / 4096 + 63) / 64];
	struct iovec iov[2];
	uint8_t *p;

	(void)state;
	assert_int_equal(memory__map(&gm, 64 * MIB), 0);
	/* not tracking: nothing recorded, nothing breaks */
	gmem__mark_dirty(&gm, gm.regions[0].host, 4096);
	assert_int_equal(memory__track_dirty(&gm), 0);
	memset(bm, 0, sizeof(bm));
	memory__take_dirty(&gm, 0, bm[0]);
	for (size_t w = 0; w < ARRAY_SIZE(bm[0]); w++)
		assert_int_equal(bm[0][w], 0);
	/* one byte, a write across a page boundary, gmem__write, an iovec list cut at len */
	p = gmem__ptr(&gm, 5 * 4096 + 7, 1);
	gmem__mark_dirty(&gm, p, 1);
	gmem__mark_dirty(&gm, gmem__ptr(&gm, 9 * 4096 - 2, 4), 4);
	assert_int_equal(gmem__write(&gm, 20 * 4096, "x", 1), 0);
	iov[0] = (struct iovec){ gmem__ptr(&gm, 30 * 4096, 4096), 4096 };
	iov[1] = (struct iovec){ gmem__ptr(&gm, 40 * 4096, 8192), 8192 };
	gmem__mark_dirty_iov(&gm, iov, 2, 4096 + 10); /* only the first page of iov[1] */
	/* a pointer outside guest memory, a length past its end: ignored */
	gmem__mark_dirty(&gm, bm, 8);
	gmem__mark_dirty(&gm, gm.regions[0].host + 64 * MIB - 4096, 8192);
	memory__take_dirty(&gm, 0, bm[0]);
	for (uint64_t pg = 0; pg < 64 * MIB / 4096; pg++) {
		bool want = pg == 5 || pg == 8 || pg == 9 || pg == 20 || pg == 30 || pg == 40;

		assert_int_equal(bit(bm[0], pg), want);
	}
	/* taking clears */
	memory__take_dirty(&gm, 0, bm[1]);
	for (size_t w = 0; w < ARRAY_SIZE(bm[1]); w++)
		assert_int_equal(bm[1][w], 0);
	memory__unmap(&gm);
	assert_null(gm.regions[0].dirty);
}

/* ---- backings: THP, KSM, 2 MiB huge pages ---- */

static void backing_thp_and_ksm(void **state)
{
	struct memory_backing b = { .huge = MEMORY_HUGE_THP, .ksm = true };
	struct gmem gm;

	(void)state;
	assert_int_equal(memory__map_backed(&gm, 64 * MIB, &b, false), 0);
	assert_int_equal((uintptr_t)gm.regions[0].host % MEMORY_HUGE_2M_BYTES, 0);
	assert_false(gm.huge_2m);
	memset(gm.regions[0].host, 0x5a, 64 * MIB); /* all of it is there to use */
	memory__unmap(&gm);
}

static void backing_2m(void **state)
{
	struct memory_backing b = { .huge = MEMORY_HUGE_2M };
	struct gmem gm;
	int ret;

	(void)state;
	assert_int_equal(memory__map_backed(&gm, 3 * MIB, &b, false), -EINVAL);
	assert_non_null(strstr(error__get(), "multiple of 2"));
	ret = memory__map_backed(&gm, 64 * MIB, &b, false);
	if (ret) { /* no huge pages reserved on this host: the error says how many it needs */
		assert_int_equal(ret, -ENOMEM);
		assert_non_null(strstr(error__get(), "needs 32 huge pages of 2 MiB"));
		assert_non_null(strstr(error__get(), "nr_hugepages"));
		return;
	}
	assert_true(gm.huge_2m);
	memset(gm.regions[0].host, 0x5a, 64 * MIB);
	memory__unmap(&gm);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(layout_sizes),
		cmocka_unit_test(layout_rejects),
		cmocka_unit_test(layout_never_wraps),
		cmocka_unit_test_setup_teardown(ptr_bounds, setup_split, teardown_split),
		cmocka_unit_test_setup_teardown(read_write, setup_split, teardown_split),
		cmocka_unit_test(ptr_unmapped),
		cmocka_unit_test(map_and_unmap),
		cmocka_unit_test(e820_layouts),
		cmocka_unit_test(e820_max),
		cmocka_unit_test(dirty_tracking),
		cmocka_unit_test(backing_thp_and_ksm),
		cmocka_unit_test(backing_2m),
	};

	return cmocka_run_group_tests_name("memory", tests, NULL, NULL);
}
