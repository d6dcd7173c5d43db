// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests for src/vmm/mptable.c: the MP floating pointer and configuration table are
 * parsed back from guest memory the way Linux's mpparse.c reads them.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#include <cmocka.h>

#include "vmm/boot_x86.h"
#include "vmm/layout.h"
#include "vmm/memory.h"
#include "vmm/mptable.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define GUEST_RAM (2ULL << 20)
#define CANARY 0xa5

#define MPF_LEN 16
#define MPC_HDR_LEN 44
#define ENTRY_CPU 0
#define ENTRY_BUS 1
#define ENTRY_IOAPIC 2
#define ENTRY_INTSRC 3
#define ENTRY_LINTSRC 4
#define IRQ_INT 0
#define IRQ_NMI 1
#define IRQ_EXTINT 3

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)get16(p) | (uint32_t)get16(p + 2) << 16;
}

/* What the table says, entry by entry. */
struct parsed {
	uint32_t nr_cpus, nr_bsp, nr_bus, nr_ioapic, nr_intsrc, nr_lint;
	uint8_t apic_ids[256];
	uint8_t bsp_id;
	uint8_t ioapic_id;
	uint32_t ioapic_addr;
	int irq_pin[32]; /* ISA IRQ -> IOAPIC pin, -1: none */
	int extint_pin;	 /* pin with the ExtINT source, -1: none */
	int lint_nmi, lint_extint;
	uint64_t end; /* guest address just past the table */
};

static void parse_entries(const uint8_t *p, const uint8_t *end, struct parsed *t)
{
	while (p < end) {
		switch (p[0]) {
		case ENTRY_CPU:
			assert_true(p[3] & 0x01); /* enabled */
			t->apic_ids[t->nr_cpus++] = p[1];
			if (p[3] & 0x02) {
				t->nr_bsp++;
				t->bsp_id = p[1];
			}
			p += 20;
			break;
		case ENTRY_BUS:
			assert_memory_equal(p + 2, "ISA   ", 6);
			t->nr_bus++;
			p += 8;
			break;
		case ENTRY_IOAPIC:
			t->nr_ioapic++;
			t->ioapic_id = p[1];
			assert_true(p[3] & 0x01);
			t->ioapic_addr = get32(p + 4);
			p += 8;
			break;
		case ENTRY_INTSRC:
			assert_int_equal(p[6], t->ioapic_id);
			t->nr_intsrc++;
			if (p[1] == IRQ_EXTINT)
				t->extint_pin = p[7];
			else if (p[1] == IRQ_INT && p[5] < 32)
				t->irq_pin[p[5]] = p[7];
			p += 8;
			break;
		case ENTRY_LINTSRC:
			assert_int_equal(p[6], 0xff); /* every local APIC */
			if (p[1] == IRQ_NMI)
				t->lint_nmi = p[7];
			else if (p[1] == IRQ_EXTINT)
				t->lint_extint = p[7];
			t->nr_lint++;
			p += 8;
			break;
		default:
			fail_msg("unknown MP entry type %u", p[0]);
		}
	}
	assert_ptr_equal(p, end);
}

static void parse(const struct gmem *gm, struct parsed *t)
{
	const uint8_t *mpf = gmem__ptr(gm, LAYOUT_MPTABLE_ADDR, MPF_LEN), *mpc;
	uint32_t phys;
	uint16_t len;

	memset(t, 0, sizeof(*t));
	memset(t->irq_pin, 0xff, sizeof(t->irq_pin));
	t->extint_pin = t->lint_nmi = t->lint_extint = -1;
	assert_non_null(mpf);
	assert_memory_equal(mpf, "_MP_", 4);
	assert_int_equal(LAYOUT_MPTABLE_ADDR % 16, 0);
	assert_int_equal(mpf[8], 1); /* length in 16-byte units */
	assert_int_equal(mpf[9], 4); /* MP spec 1.4 */
	assert_int_equal(mptable__checksum(mpf, MPF_LEN), 0);
	assert_int_equal(mpf[11], 0); /* no default configuration: the table follows */
	phys = get32(mpf + 4);
	mpc = gmem__ptr(gm, phys, MPC_HDR_LEN);
	assert_non_null(mpc);
	assert_memory_equal(mpc, "PCMP", 4);
	len = get16(mpc + 4);
	assert_int_equal(mpc[6], 4);
	assert_non_null(gmem__ptr(gm, phys, len));
	assert_int_equal(mptable__checksum(mpc, len), 0);
	assert_int_equal(get32(mpc + 36), LAYOUT_LAPIC_ADDR);
	parse_entries(mpc + MPC_HDR_LEN, mpc + len, t);
	assert_int_equal(get16(mpc + 34), /* the entry count */
			 t->nr_cpus + t->nr_bus + t->nr_ioapic + t->nr_intsrc + t->nr_lint);
	t->end = phys + len;
}

struct guest {
	struct gmem gm;
};

static int setup_guest(void **state)
{
	static struct guest g;

	if (memory__map(&g.gm, GUEST_RAM))
		return -1;
	*state = &g;
	return 0;
}

static int teardown_guest(void **state)
{
	struct guest *g = *state;

	memory__unmap(&g->gm);
	return 0;
}

static void fill_low_memory(const struct gmem *gm)
{
	memset(gmem__ptr(gm, 0, LAYOUT_HIMEM_START), CANARY, LAYOUT_HIMEM_START);
}

static void tables_for_1_to_32_vcpus(void **state)
{
	struct guest *g = *state;

	for (uint32_t n = 1; n <= 32; n++) {
		struct parsed t;

		fill_low_memory(&g->gm);
		assert_int_equal(mptable__write(&g->gm, n), 0);
		parse(&g->gm, &t);
		assert_int_equal(t.nr_cpus, n);
		assert_int_equal(t.nr_bsp, 1);
		assert_int_equal(t.bsp_id, 0);
		for (uint32_t i = 0; i < n; i++)
			assert_int_equal(t.apic_ids[i], i);
		assert_int_equal(t.nr_bus, 1);
		assert_int_equal(t.nr_ioapic, 1);
		assert_int_equal(t.ioapic_id, n);
		assert_int_equal(t.ioapic_addr, LAYOUT_IOAPIC_ADDR);
		assert_int_equal(t.extint_pin, 0);
		assert_int_equal(t.irq_pin[0], 2); /* the PIT, like every PC chipset */
		assert_int_equal(t.irq_pin[2], -1);
		for (int irq = 1; irq <= MPTABLE_MAX_IRQ; irq++) {
			if (irq != 2)
				assert_int_equal(t.irq_pin[irq], irq);
		}
		assert_int_equal(t.lint_extint, 0);
		assert_int_equal(t.lint_nmi, 1);
		assert_int_equal(t.nr_intsrc, 1 + MPTABLE_MAX_IRQ); /* ExtINT, IRQ 0, 1, 3..23 */
		/* exactly mptable__size() bytes, all below 640 KiB */
		assert_int_equal(t.end, LAYOUT_MPTABLE_ADDR + mptable__size(n));
		assert_true(t.end <= LAYOUT_LOWMEM_END);
		/* nothing around the table is touched */
		assert_int_equal(*(uint8_t *)gmem__ptr(&g->gm, LAYOUT_MPTABLE_ADDR - 1, 1), CANARY);
		for (uint64_t a = t.end; a < LAYOUT_LOWMEM_END; a++)
			assert_int_equal(*(uint8_t *)gmem__ptr(&g->gm, a, 1), CANARY);
	}
}

/* The table sits in memory the e820 map reserves, never in RAM the guest may reuse. */
static void table_is_reserved_in_e820(void **state)
{
	struct guest *g = *state;
	struct e820_entry e[8];
	unsigned int n = boot_x86__e820(&g->gm, e, 8);
	uint64_t end = LAYOUT_MPTABLE_ADDR + mptable__size(32);
	bool covered = false;

	for (unsigned int i = 0; i < n; i++) {
		uint64_t e_end = e[i].addr + e[i].size;

		if (e[i].type == E820_RAM)
			assert_true(end <= e[i].addr || LAYOUT_MPTABLE_ADDR >= e_end);
		else if (LAYOUT_MPTABLE_ADDR >= e[i].addr && end <= e_end)
			covered = true;
	}
	assert_true(covered);
}

static void rejects_bad_counts(void **state)
{
	struct guest *g = *state;
	static const uint32_t bad[] = { 0, 255, 256, 1000, UINT32_MAX };

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		fill_low_memory(&g->gm);
		assert_int_equal(mptable__write(&g->gm, bad[i]), -EINVAL);
		for (uint64_t a = LAYOUT_MPTABLE_ADDR; a < LAYOUT_LOWMEM_END; a++)
			assert_int_equal(*(uint8_t *)gmem__ptr(&g->gm, a, 1), CANARY);
	}
}

/* The EBDA kilobyte holds at most (1024 - 284) / 20 = 37 CPU entries. */
static void largest_table_that_fits(void **state)
{
	struct guest *g = *state;
	struct parsed t;
	uint32_t max = 0;

	for (uint32_t n = 1; n <= 254; n++) {
		if (LAYOUT_MPTABLE_ADDR + mptable__size(n) <= LAYOUT_LOWMEM_END)
			max = n;
	}
	assert_true(max >= 32);
	fill_low_memory(&g->gm);
	assert_int_equal(mptable__write(&g->gm, max), 0);
	parse(&g->gm, &t);
	assert_int_equal(t.nr_cpus, max);
	assert_true(t.end <= LAYOUT_LOWMEM_END);
	assert_int_equal(mptable__write(&g->gm, max + 1), -EINVAL);
}

static void guest_too_small(void **state)
{
	struct gmem gm;

	(void)state;
	assert_int_equal(memory__map(&gm, 0x9f000), 0);
	assert_int_equal(mptable__write(&gm, 1), -EFAULT);
	memory__unmap(&gm);
	assert_int_equal(memory__map(&gm, 0xa0000), 0);
	assert_int_equal(mptable__write(&gm, 32), 0);
	memory__unmap(&gm);
}

static void checksum(void **state)
{
	static const uint8_t zero[4] = { 0 }, wrap[3] = { 0x80, 0x80, 0x01 };

	(void)state;
	assert_int_equal(mptable__checksum(zero, 0), 0);
	assert_int_equal(mptable__checksum(zero, sizeof(zero)), 0);
	assert_int_equal(mptable__checksum(wrap, sizeof(wrap)), 1);
	assert_int_equal(mptable__size(1) + 20 * 31, mptable__size(32));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(tables_for_1_to_32_vcpus),
		cmocka_unit_test(table_is_reserved_in_e820),
		cmocka_unit_test(rejects_bad_counts),
		cmocka_unit_test(largest_table_that_fits),
		cmocka_unit_test(guest_too_small),
		cmocka_unit_test(checksum),
	};

	return cmocka_run_group_tests_name("mptable", tests, setup_guest, teardown_guest);
}
