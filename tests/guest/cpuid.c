// SPDX-License-Identifier: Apache-2.0
/* cpuid: what the VMM's CPUID says about vendor, hypervisor, APIC id and logical count. */
#include "guest.h"

#define CPUID_HYPERVISOR_BIT (1U << 31)
#define CPUID_HYPERVISOR_LEAF 0x40000000

/* 12 bytes of three registers; non-printable bytes end the string. */
static void regs_to_string(char out[13], uint32_t a, uint32_t b, uint32_t c)
{
	uint32_t regs[3] = { a, b, c };

	memcpy(out, regs, 12);
	out[12] = 0;
	for (int i = 0; i < 12; i++) {
		if (out[i] < 0x21 || out[i] > 0x7e) {
			out[i] = 0;
			break;
		}
	}
}

const char *test_cpuid(void)
{
	char vendor[13], signature[13] = "";
	uint32_t r[4], hv;

	cpuid(0, 0, r);
	regs_to_string(vendor, r[1], r[3], r[2]);
	cpuid(1, 0, r);
	hv = !!(r[2] & CPUID_HYPERVISOR_BIT);
	if (hv) {
		uint32_t h[4];

		cpuid(CPUID_HYPERVISOR_LEAF, 0, h);
		regs_to_string(signature, h[1], h[2], h[3]);
	}
	report("cpuid vendor=%s hypervisor=%u apic=%u logical=%u%s%s", vendor, hv, r[1] >> 24,
	       (r[1] >> 16) & 0xff, hv ? " signature=" : "", signature);
	return NULL;
}
