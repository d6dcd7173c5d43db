// SPDX-License-Identifier: Apache-2.0
#include "vmm/cpuid.h"

#include <stdlib.h>
#include <string.h>

#define LEAF1_ECX_HYPERVISOR (1U << 31)
#define LEAF1_EDX_HTT (1U << 28)
#define TOPO_LEVEL_SMT 1
#define TOPO_LEVEL_CORE 2

uint32_t cpuid__order(uint32_t n)
{
	uint32_t o = 0;

	while ((1U << o) < n && o < 31)
		o++;
	return o;
}

struct kvm_cpuid_entry2 *cpuid__find(struct kvm_cpuid2 *c, uint32_t function, uint32_t index)
{
	for (uint32_t i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 *e = &c->entries[i];

		if (e->function != function)
			continue;
		if (!(e->flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX) || e->index == index)
			return e;
	}
	return NULL;
}

static bool is_amd(struct kvm_cpuid2 *c)
{
	struct kvm_cpuid_entry2 *e = cpuid__find(c, 0, 0);

	/* "AuthenticAMD" or "HygonGenuine": EBX "Auth" / "Hygo" */
	return e && (e->ebx == 0x68747541 || e->ebx == 0x6f677948);
}

static void set_leaf1(struct kvm_cpuid_entry2 *e, const struct cpu_topology *t, uint32_t apic)
{
	uint32_t logical = t->nr_vcpus > 255 ? 255 : t->nr_vcpus;

	e->ebx = (apic << 24) | (logical << 16) | (e->ebx & 0xffff);
	e->ecx |= LEAF1_ECX_HYPERVISOR;
	if (t->nr_vcpus > 1)
		e->edx |= LEAF1_EDX_HTT;
	else
		e->edx &= ~LEAF1_EDX_HTT;
}

static void set_leaf4(struct kvm_cpuid_entry2 *e, const struct cpu_topology *t)
{
	uint32_t cores = t->nr_vcpus / t->threads_per_core;
	uint32_t level = (e->eax >> 5) & 0x7;
	uint32_t sharing = level >= 3 ? t->nr_vcpus : t->threads_per_core;

	if (!(e->eax & 0x1f)) /* no cache at this index */
		return;
	e->eax &= 0x3fff;
	e->eax |= ((cores - 1) & 0x3f) << 26;
	e->eax |= ((sharing - 1) & 0xfff) << 14;
}

/* leaves 0xb and 0x1f: the x2APIC topology, SMT level then core level */
static void set_topology_leaf(struct kvm_cpuid_entry2 *e, const struct cpu_topology *t,
			      uint32_t apic)
{
	uint32_t smt_shift = cpuid__order(t->threads_per_core);
	uint32_t pkg_shift = cpuid__order(t->nr_vcpus);

	e->edx = apic;
	switch (e->index) {
	case 0:
		e->eax = smt_shift;
		e->ebx = t->threads_per_core;
		e->ecx = (TOPO_LEVEL_SMT << 8) | e->index;
		break;
	case 1:
		e->eax = pkg_shift > smt_shift ? pkg_shift : smt_shift;
		e->ebx = t->nr_vcpus;
		e->ecx = (TOPO_LEVEL_CORE << 8) | e->index;
		break;
	default:
		e->eax = 0;
		e->ebx = 0;
		e->ecx = e->index;
		break;
	}
}

/* AMD's cache topology, 0x8000001d: how many logical processors share each cache */
static void set_amd_cache_leaf(struct kvm_cpuid_entry2 *e, const struct cpu_topology *t)
{
	uint32_t level = (e->eax >> 5) & 0x7;
	uint32_t sharing = level >= 3 ? t->nr_vcpus : t->threads_per_core;

	if (!(e->eax & 0x1f))
		return;
	e->eax &= ~(0xfffU << 14);
	e->eax |= ((sharing - 1) & 0xfff) << 14;
}

static void set_amd_leaves(struct kvm_cpuid2 *c, const struct cpu_topology *t, uint32_t apic)
{
	struct kvm_cpuid_entry2 *e;
	uint32_t smt_shift = cpuid__order(t->threads_per_core);

	e = cpuid__find(c, 0x80000008, 0);
	if (e) {
		e->ecx &= ~0xf0ffU;
		e->ecx |= ((t->nr_vcpus - 1) & 0xff) | (cpuid__order(t->nr_vcpus) << 12);
	}
	e = cpuid__find(c, 0x8000001e, 0);
	if (e) {
		e->eax = apic;
		e->ebx = ((t->threads_per_core - 1) << 8) | (apic >> smt_shift);
		e->ecx = 0;
		e->edx = 0;
	}
	for (uint32_t i = 0; i < c->nent; i++) {
		if (c->entries[i].function == 0x8000001d)
			set_amd_cache_leaf(&c->entries[i], t);
	}
	e = cpuid__find(c, 0x80000001, 0);
	if (e) {
		/* CmpLegacy: more than one core and no HTT-style enumeration */
		if (t->nr_vcpus > 1)
			e->ecx |= 1U << 1;
		else
			e->ecx &= ~(1U << 1);
	}
}

struct kvm_cpuid2 *cpuid__for_vcpu(const struct kvm_cpuid2 *base, const struct cpu_topology *t,
				   uint32_t index)
{
	size_t size = sizeof(*base) + base->nent * sizeof(base->entries[0]);
	struct kvm_cpuid2 *c = malloc(size);
	uint32_t apic = index;

	if (!c)
		return NULL;
	memcpy(c, base, size);
	for (uint32_t i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 *e = &c->entries[i];

		switch (e->function) {
		case 1:
			set_leaf1(e, t, apic);
			break;
		case 4:
			set_leaf4(e, t);
			break;
		case 0xb:
		case 0x1f:
			set_topology_leaf(e, t, apic);
			break;
		default:
			break;
		}
	}
	if (is_amd(c))
		set_amd_leaves(c, t, apic);
	return c;
}
