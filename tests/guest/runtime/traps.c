// SPDX-License-Identifier: Apache-2.0
/*
 * Exceptions: entry.S's IDT sends vectors 0-31 here. The fault is reported; on the boot
 * CPU the running test fails and the guest exits as asked, an AP just halts.
 */
#include "guest.h"

void traps__handler(const struct trap_frame *f)
{
	static bool boot_cpu_trapped;
	unsigned int apic = cpu_apic_id();
	uint64_t cr2;
	char why[96];

	/* A fault while reporting a fault, or while exiting: stop at once. */
	if (apic == boot_cpu_apic_id &&
	    __atomic_exchange_n(&boot_cpu_trapped, true, __ATOMIC_RELAXED))
		guest__triple_fault();
	__asm__ volatile("mov %%cr2, %0" : "=r"(cr2));
	/* The fault may have hit inside the console code: take the lock regardless. */
	console__unlock();
	snformat(why, sizeof(why), "exception %llu error 0x%llx at rip 0x%llx cr2 0x%llx cpu %u",
		 (unsigned long long)f->vector, (unsigned long long)f->error,
		 (unsigned long long)f->rip, (unsigned long long)cr2, apic);
	report("%s", why);
	if (apic == boot_cpu_apic_id)
		guest__abort(why);
	cpu_halt();
}
