// SPDX-License-Identifier: Apache-2.0
/* Unit tests for src/vmm/bus.c: registration, lookup and dispatch of PIO/MMIO ranges. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "vmm/bus.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* A device that records the last access it saw. */
struct probe {
	unsigned int reads, writes;
	uint64_t offset;
	uint32_t len;
	uint8_t data[8];
};

static void probe_read(void *opaque, uint64_t offset, uint8_t *data, uint32_t len)
{
	struct probe *p = opaque;

	p->reads++;
	p->offset = offset;
	p->len = len;
	for (uint32_t i = 0; i < len; i++)
		data[i] = (uint8_t)(offset + i);
}

static void probe_write(void *opaque, uint64_t offset, const uint8_t *data, uint32_t len)
{
	struct probe *p = opaque;

	p->writes++;
	p->offset = offset;
	p->len = len;
	memcpy(p->data, data, len < 8 ? len : 8);
}

static const struct bus_dev_ops probe_ops = { .read = probe_read, .write = probe_write };
static const struct bus_dev_ops write_only_ops = { .write = probe_write };
static const struct bus_dev_ops read_only_ops = { .read = probe_read };

static int reg(struct bus *b, uint64_t base, uint64_t len, struct probe *p)
{
	return bus__register(b, base, len, &probe_ops, p, "probe");
}

static void register_and_overlap(void **state)
{
	const struct {
		uint64_t base, len;
		int ret;
	} cases[] = {
		{ 0xf0, 0x10, 0 },	   /* adjacent below */
		{ 0x110, 0x10, 0 },	   /* adjacent above */
		{ 0x10f, 1, -EEXIST },	   /* last byte */
		{ 0x100, 1, -EEXIST },	   /* first byte */
		{ 0xef, 2, -EEXIST },	   /* into the one below */
		{ 0x105, 2, -EEXIST },	   /* inside */
		{ 0x0, 0x1000, -EEXIST },  /* covering all */
		{ 0xff, 0x12, -EEXIST },   /* covering one */
		{ 0x100, 0x10, -EEXIST },  /* identical */
		{ 0x120, 0, -EINVAL },	   /* empty */
		{ UINT64_MAX, 2, -EINVAL }, /* wraps */
		{ 2, UINT64_MAX, -EINVAL },
		{ UINT64_MAX, 1, 0 },	   /* the very last address */
		{ 0, 1, 0 },		   /* the very first */
		{ 1, 0xef, 0 },		   /* fills [1, 0xf0) exactly */
		{ 0x120, UINT64_MAX - 0x120, 0 }, /* up to, not including, UINT64_MAX */
		{ 0x121, 1, -EEXIST },
	};
	struct probe p = { 0 };
	struct bus b;

	(void)state;
	bus__init(&b, "pio");
	assert_string_equal(b.name, "pio");
	assert_int_equal(reg(&b, 0x100, 0x10, &p), 0);
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		int ret = reg(&b, cases[i].base, cases[i].len, &p);

		if (ret != cases[i].ret)
			fail_msg("register [%#llx, +%#llx): %d, expected %d",
				 (unsigned long long)cases[i].base,
				 (unsigned long long)cases[i].len, ret, cases[i].ret);
	}
	/* kept sorted and disjoint */
	for (unsigned int i = 1; i < b.nr; i++)
		assert_true(b.ranges[i].base > b.ranges[i - 1].base + (b.ranges[i - 1].len - 1));
	assert_int_equal(b.nr, 7);
	bus__destroy(&b);
	assert_int_equal(b.nr, 0);
	assert_null(b.ranges);
}

static void frozen(void **state)
{
	struct probe p = { 0 };
	struct bus b;
	uint8_t v = 0;

	(void)state;
	bus__init(&b, "mmio");
	assert_int_equal(reg(&b, 0x1000, 0x1000, &p), 0);
	bus__freeze(&b);
	assert_int_equal(reg(&b, 0x3000, 0x1000, &p), -EBUSY);
	assert_int_equal(reg(&b, 0x1000, 0x1000, &p), -EBUSY);
	assert_int_equal(b.nr, 1);
	/* lookups still work */
	assert_true(bus__read(&b, 0x1004, &v, 1));
	assert_int_equal(v, 4);
	bus__destroy(&b);
}

/* 1000 ranges of 8 bytes, 16 apart, registered in a scrambled order. */
#define MANY 1000

static void find_many(void **state)
{
	struct probe p = { 0 };
	struct bus b;

	(void)state;
	bus__init(&b, "pio");
	for (unsigned int i = 0; i < MANY; i++) {
		unsigned int k = (i * 617) % MANY; /* 617 is prime to 1000: a permutation */

		assert_int_equal(reg(&b, 0x10000 + k * 16ULL, 8, &p), 0);
	}
	assert_int_equal(b.nr, MANY);
	for (unsigned int i = 1; i < b.nr; i++)
		assert_true(b.ranges[i].base > b.ranges[i - 1].base);
	for (uint64_t a = 0x10000 - 32; a < 0x10000 + MANY * 16ULL + 32; a++) {
		const struct bus_range *r = bus__find(&b, a, 1);
		bool inside = a >= 0x10000 && a < 0x10000 + MANY * 16ULL && (a & 0xf) < 8;

		if (!inside) {
			assert_null(r);
			continue;
		}
		assert_non_null(r);
		assert_int_equal(r->base, a & ~0xfULL);
		/* a 4-byte access fits when it ends inside the range */
		if ((a & 0xf) <= 4)
			assert_ptr_equal(bus__find(&b, a, 4), r);
		else
			assert_null(bus__find(&b, a, 4));
	}
	assert_null(bus__find(&b, 0, 1));
	assert_null(bus__find(&b, UINT64_MAX, 1));
	bus__destroy(&b);
}

static void find_edges(void **state)
{
	struct probe p = { 0 };
	struct bus b;

	(void)state;
	bus__init(&b, "mmio");
	assert_null(bus__find(&b, 0, 1)); /* empty bus */
	assert_int_equal(reg(&b, 0x10, 0x10, &p), 0);
	assert_int_equal(reg(&b, 0x20, 0x10, &p), 0); /* adjacent */
	assert_int_equal(reg(&b, UINT64_MAX - 3, 4, &p), 0);
	assert_null(bus__find(&b, 0x10, 0));
	assert_int_equal(bus__find(&b, 0x1f, 1)->base, 0x10);
	assert_null(bus__find(&b, 0x1f, 2)); /* straddles into the next range */
	assert_null(bus__find(&b, 0x1e, 4));
	assert_int_equal(bus__find(&b, 0x20, 8)->base, 0x20);
	assert_int_equal(bus__find(&b, UINT64_MAX - 3, 4)->base, UINT64_MAX - 3);
	assert_int_equal(bus__find(&b, UINT64_MAX, 1)->base, UINT64_MAX - 3);
	assert_null(bus__find(&b, UINT64_MAX, 2)); /* wraps */
	assert_null(bus__find(&b, UINT64_MAX - 1, 8));
	bus__destroy(&b);
}

static void dispatch(void **state)
{
	struct probe p = { 0 };
	uint8_t data[8];
	struct bus b;

	(void)state;
	bus__init(&b, "pio");
	assert_int_equal(reg(&b, 0x3f8, 8, &p), 0);
	assert_true(bus__read(&b, 0x3fa, data, 2));
	assert_int_equal(p.reads, 1);
	assert_int_equal(p.offset, 2);
	assert_int_equal(p.len, 2);
	assert_int_equal(data[0], 2);
	assert_int_equal(data[1], 3);
	data[0] = 0x41;
	assert_true(bus__write(&b, 0x3f8, data, 1));
	assert_int_equal(p.writes, 1);
	assert_int_equal(p.offset, 0);
	assert_int_equal(p.data[0], 0x41);
	assert_int_equal(b.unassigned_reads, 0);
	assert_int_equal(b.unassigned_writes, 0);
	bus__destroy(&b);
}

/* Accesses nobody owns, or that run past a range's end, read all ones and reach no device. */
static void unassigned(void **state)
{
	const struct {
		uint64_t addr;
		uint32_t len;
	} cases[] = {
		{ 0x3f7, 1 }, { 0x400, 1 }, { 0x3ff, 2 }, { 0x3fe, 4 }, { 0x3fc, 8 }, { 0x3f7, 2 },
		{ UINT64_MAX, 4 },
	};
	struct probe p = { 0 };
	struct bus b;

	(void)state;
	bus__init(&b, "pio");
	assert_int_equal(reg(&b, 0x3f8, 8, &p), 0);
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		uint8_t data[8] = { 0 };

		assert_false(bus__read(&b, cases[i].addr, data, cases[i].len));
		for (uint32_t k = 0; k < cases[i].len; k++)
			assert_int_equal(data[k], 0xff);
		for (uint32_t k = cases[i].len; k < 8; k++)
			assert_int_equal(data[k], 0); /* nothing past len */
		assert_false(bus__write(&b, cases[i].addr, data, cases[i].len));
	}
	assert_int_equal(p.reads, 0);
	assert_int_equal(p.writes, 0);
	assert_int_equal(b.unassigned_reads, ARRAY_SIZE(cases));
	assert_int_equal(b.unassigned_writes, ARRAY_SIZE(cases));
	bus__destroy(&b);
}

/* A device without a read (or write) handler: that direction is unassigned. */
static void one_way_devices(void **state)
{
	struct probe p = { 0 };
	uint8_t v = 0x12;
	struct bus b;

	(void)state;
	bus__init(&b, "pio");
	assert_int_equal(bus__register(&b, 0xf4, 1, &write_only_ops, &p, "exit"), 0);
	assert_int_equal(bus__register(&b, 0x80, 1, &read_only_ops, &p, "ro"), 0);
	assert_false(bus__read(&b, 0xf4, &v, 1));
	assert_int_equal(v, 0xff);
	assert_true(bus__write(&b, 0xf4, &v, 1));
	assert_false(bus__write(&b, 0x80, &v, 1));
	assert_true(bus__read(&b, 0x80, &v, 1));
	assert_int_equal(p.reads, 1);
	assert_int_equal(p.writes, 1);
	assert_int_equal(b.unassigned_reads, 1);
	assert_int_equal(b.unassigned_writes, 1);
	bus__destroy(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(register_and_overlap),
		cmocka_unit_test(frozen),
		cmocka_unit_test(find_many),
		cmocka_unit_test(find_edges),
		cmocka_unit_test(dispatch),
		cmocka_unit_test(unassigned),
		cmocka_unit_test(one_way_devices),
	};

	return cmocka_run_group_tests_name("bus", tests, NULL, NULL);
}
