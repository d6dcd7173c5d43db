// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests for src/vmm/cpuid.c: per-vCPU CPUID from a synthetic KVM_GET_SUPPORTED_CPUID
 * result, for Intel and AMD, 1 to 32 vCPUs, with and without SMT.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "vmm/cpuid.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define SIG KVM_CPUID_FLAG_SIGNIFCANT_INDEX

#define HYPERVISOR (1U << 31)
#define HTT (1U << 28)
#define CMP_LEGACY (1U << 1)

/* cache descriptors for leaf 4: type | level << 5 | self-initialising, plus junk above */
#define L1D (0x1c000000 | 1 << 5 | 1 | 0x100)
#define L1I (0x1c000000 | 1 << 5 | 2 | 0x100)
#define L2 (0x1c000000 | 2 << 5 | 3 | 0x100)
#define L3 (0x1c03c000 | 3 << 5 | 3 | 0x100)

enum vendor { INTEL, AMD };

static const struct kvm_cpuid_entry2 base_entries[] = {
	{ .function = 0, .eax = 0x1f }, /* vendor filled in by make_base() */
	{ .function = 1, .eax = 0x906ea, .ebx = 0x07100800, .ecx = 0x7ffafbbf, .edx = 0x0fabfbff },
	{ .function = 4, .index = 0, .flags = SIG, .eax = L1D, .ebx = 0x01c0003f, .ecx = 0x3f },
	{ .function = 4, .index = 1, .flags = SIG, .eax = L1I, .ebx = 0x01c0003f, .ecx = 0x3f },
	{ .function = 4, .index = 2, .flags = SIG, .eax = L2, .ebx = 0x00c0003f, .ecx = 0x3ff },
	{ .function = 4, .index = 3, .flags = SIG, .eax = L3, .ebx = 0x03c0003f, .ecx = 0x2fff },
	{ .function = 4, .index = 4, .flags = SIG, .eax = 0xfc000000 }, /* no cache: left alone */
	{ .function = 0xb, .index = 0, .flags = SIG, .eax = 9, .ebx = 9, .ecx = 0x100, .edx = 9 },
	{ .function = 0xb, .index = 1, .flags = SIG, .eax = 9, .ebx = 9, .ecx = 0x201, .edx = 9 },
	{ .function = 0xb, .index = 2, .flags = SIG, .eax = 9, .ebx = 9, .ecx = 0x002, .edx = 9 },
	{ .function = 0x80000000, .eax = 0x80000021 },
	{ .function = 0x80000001, .ecx = 0x00000121, .edx = 0x2c100800 },
	{ .function = 0x80000008, .eax = 0x3030, .ecx = 0xffffffff },
	{ .function = 0x8000001e, .eax = 7, .ebx = 0x107, .ecx = 0x100, .edx = 9 },
};

static struct kvm_cpuid2 *make_base(enum vendor v)
{
	size_t size = sizeof(struct kvm_cpuid2) + sizeof(base_entries);
	struct kvm_cpuid2 *c = calloc(1, size);

	assert_non_null(c);
	c->nent = ARRAY_SIZE(base_entries);
	memcpy(c->entries, base_entries, sizeof(base_entries));
	if (v == INTEL) {
		c->entries[0].ebx = 0x756e6547; /* "GenuineIntel" */
		c->entries[0].edx = 0x49656e69;
		c->entries[0].ecx = 0x6c65746e;
	} else {
		c->entries[0].ebx = 0x68747541; /* "AuthenticAMD" */
		c->entries[0].edx = 0x69746e65;
		c->entries[0].ecx = 0x444d4163;
	}
	return c;
}

static const struct kvm_cpuid_entry2 *entry(struct kvm_cpuid2 *c, uint32_t fn, uint32_t idx)
{
	const struct kvm_cpuid_entry2 *e = cpuid__find(c, fn, idx);

	assert_non_null(e);
	return e;
}

static uint32_t order(uint32_t n)
{
	uint32_t o = 0;

	while ((1U << o) < n)
		o++;
	return o;
}

static void check_leaf1(struct kvm_cpuid2 *c, uint32_t n, uint32_t i)
{
	const struct kvm_cpuid_entry2 *e = entry(c, 1, 0);

	assert_int_equal(e->ebx >> 24, i);			/* initial APIC id */
	assert_int_equal((e->ebx >> 16) & 0xff, n);		/* logical processors */
	assert_int_equal(e->ebx & 0xffff, 0x0800);		/* CLFLUSH size etc. kept */
	assert_int_equal(e->ecx, base_entries[1].ecx | HYPERVISOR); /* the rest kept */
	assert_int_equal(e->eax, base_entries[1].eax);
	assert_int_equal(e->edx & ~HTT, base_entries[1].edx & ~HTT);
	assert_int_equal(!!(e->edx & HTT), n > 1);
}

static void check_leaf4(struct kvm_cpuid2 *c, uint32_t n, uint32_t threads)
{
	for (uint32_t idx = 0; idx < 4; idx++) {
		const struct kvm_cpuid_entry2 *e = entry(c, 4, idx);
		uint32_t sharing = idx == 3 ? n : threads;

		assert_int_equal(e->eax >> 26, n / threads - 1); /* cores in the package - 1 */
		assert_int_equal((e->eax >> 14) & 0xfff, sharing - 1);
		assert_int_equal(e->eax & 0x3fff, base_entries[2 + idx].eax & 0x3fff);
		assert_int_equal(e->ebx, base_entries[2 + idx].ebx);
	}
	assert_int_equal(entry(c, 4, 4)->eax, 0xfc000000);
}

static void check_leaf_b(struct kvm_cpuid2 *c, uint32_t n, uint32_t threads, uint32_t i)
{
	const struct kvm_cpuid_entry2 *smt = entry(c, 0xb, 0), *core = entry(c, 0xb, 1),
				      *end = entry(c, 0xb, 2);

	assert_int_equal(smt->eax, order(threads));
	assert_int_equal(smt->ebx, threads);
	assert_int_equal(smt->ecx, 0x100);
	assert_int_equal(core->eax, order(n));
	assert_int_equal(core->ebx, n);
	assert_int_equal(core->ecx, 0x201);
	assert_int_equal(end->eax, 0);
	assert_int_equal(end->ebx, 0);
	assert_int_equal(end->ecx, 2);
	assert_int_equal(smt->edx, i);
	assert_int_equal(core->edx, i);
	assert_int_equal(end->edx, i);
	/* the shifts describe a consistent x2APIC id layout */
	assert_true(core->eax >= smt->eax);
	assert_true(i >> core->eax == 0);
}

static void check_amd(struct kvm_cpuid2 *c, uint32_t n, uint32_t threads, uint32_t i)
{
	const struct kvm_cpuid_entry2 *e8 = entry(c, 0x80000008, 0), *e1e = entry(c, 0x8000001e, 0);

	assert_int_equal(e8->ecx & 0xff, n - 1);
	assert_int_equal((e8->ecx >> 12) & 0xf, order(n));
	assert_int_equal(e8->ecx & ~0xf0ffU, 0xffffffff & ~0xf0ffU);
	assert_int_equal(e8->eax, 0x3030);
	assert_int_equal(e1e->eax, i);
	assert_int_equal((e1e->ebx >> 8) & 0xff, threads - 1);
	assert_int_equal(e1e->ebx & 0xff, i / threads); /* core id */
	assert_int_equal(e1e->ecx, 0);
	assert_int_equal(!!(entry(c, 0x80000001, 0)->ecx & CMP_LEGACY), n > 1);
	assert_int_equal(entry(c, 0x80000001, 0)->ecx & ~CMP_LEGACY, 0x121);
}

static void check_amd_untouched(struct kvm_cpuid2 *c)
{
	assert_memory_equal(entry(c, 0x80000001, 0), &base_entries[11], sizeof(base_entries[0]));
	assert_memory_equal(entry(c, 0x80000008, 0), &base_entries[12], sizeof(base_entries[0]));
	assert_memory_equal(entry(c, 0x8000001e, 0), &base_entries[13], sizeof(base_entries[0]));
}

static void topologies(enum vendor v)
{
	static const uint32_t counts[] = { 1, 2, 3, 4, 6, 8, 16, 32 };
	struct kvm_cpuid2 *base = make_base(v);
	struct kvm_cpuid2 *pristine = make_base(v);

	for (size_t k = 0; k < ARRAY_SIZE(counts); k++) {
		for (uint32_t smt = 0; smt < 2; smt++) {
			uint32_t n = counts[k];
			struct cpu_topology t = { n, smt && n > 1 && !(n & 1) ? 2 : 1 };

			for (uint32_t i = 0; i < n; i++) {
				struct kvm_cpuid2 *c = cpuid__for_vcpu(base, &t, i);

				assert_non_null(c);
				assert_int_equal(c->nent, base->nent);
				check_leaf1(c, n, i);
				check_leaf4(c, n, t.threads_per_core);
				check_leaf_b(c, n, t.threads_per_core, i);
				if (v == AMD)
					check_amd(c, n, t.threads_per_core, i);
				else
					check_amd_untouched(c);
				assert_memory_equal(&c->entries[0], &base->entries[0],
						    sizeof(c->entries[0]));
				free(c);
			}
		}
	}
	/* the base array KVM gave us is never modified */
	assert_memory_equal(base, pristine,
			    sizeof(*base) + base->nent * sizeof(base->entries[0]));
	free(base);
	free(pristine);
}

static void intel_topologies(void **state)
{
	(void)state;
	topologies(INTEL);
}

static void amd_topologies(void **state)
{
	(void)state;
	topologies(AMD);
}

/* Hygon is AMD for topology purposes. */
static void hygon_is_amd(void **state)
{
	struct kvm_cpuid2 *base = make_base(AMD), *c;
	struct cpu_topology t = { 4, 1 };

	(void)state;
	base->entries[0].ebx = 0x6f677948; /* "HygonGenuine" */
	base->entries[0].edx = 0x6e65476e;
	base->entries[0].ecx = 0x656e6975;
	c = cpuid__for_vcpu(base, &t, 3);
	assert_non_null(c);
	check_amd(c, 4, 1, 3);
	free(c);
	free(base);
}

/* A base without the optional leaves: nothing to adjust, nothing breaks. */
static void sparse_base(void **state)
{
	struct kvm_cpuid2 *base = make_base(AMD), *c;
	struct cpu_topology t = { 2, 2 };

	(void)state;
	base->nent = 2; /* leaves 0 and 1 only */
	c = cpuid__for_vcpu(base, &t, 1);
	assert_non_null(c);
	assert_int_equal(c->nent, 2);
	check_leaf1(c, 2, 1);
	assert_null(cpuid__find(c, 0x80000008, 0));
	free(c);
	base->nent = 0;
	c = cpuid__for_vcpu(base, &t, 0);
	assert_non_null(c);
	assert_int_equal(c->nent, 0);
	free(c);
	free(base);
}

static void find(void **state)
{
	struct kvm_cpuid2 *c = make_base(INTEL);

	(void)state;
	assert_ptr_equal(cpuid__find(c, 4, 2), &c->entries[4]);
	assert_ptr_equal(cpuid__find(c, 0xb, 1), &c->entries[8]);
	assert_null(cpuid__find(c, 4, 5));
	assert_null(cpuid__find(c, 0xb, 3));
	assert_null(cpuid__find(c, 7, 0));
	/* without KVM_CPUID_FLAG_SIGNIFCANT_INDEX the index does not matter */
	assert_ptr_equal(cpuid__find(c, 1, 0), &c->entries[1]);
	assert_ptr_equal(cpuid__find(c, 1, 7), &c->entries[1]);
	free(c);
}

static void order_values(void **state)
{
	static const struct {
		uint32_t n, order;
	} cases[] = {
		{ 0, 0 },   { 1, 0 },	{ 2, 1 },   { 3, 2 },	  { 4, 2 },   { 5, 3 },	  { 8, 3 },
		{ 9, 4 },   { 32, 5 },	{ 33, 6 },  { 255, 8 },	  { 256, 8 }, { 0x80000000U, 31 },
		{ 0xffffffffU, 31 },
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
		assert_int_equal(cpuid__order(cases[i].n), cases[i].order);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(intel_topologies),
		cmocka_unit_test(amd_topologies),
		cmocka_unit_test(hygon_is_amd),
		cmocka_unit_test(sparse_base),
		cmocka_unit_test(find),
		cmocka_unit_test(order_values),
	};

	return cmocka_run_group_tests_name("cpuid", tests, NULL, NULL);
}
