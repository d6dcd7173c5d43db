// SPDX-License-Identifier: Apache-2.0
/*
 * smp: finds the processors in the Intel MP table (MultiProcessor Specification 1.4),
 * starts every enabled AP with INIT-SIPI-SIPI through the xAPIC, and checks they all
 * come up. Each AP prints "cpu apic=<id> up", counts itself in and halts.
 */
#include "guest.h"

#define BDA_EBDA_SEGMENT 0x40e
#define BDA_BASE_MEMORY_KIB 0x413
#define EBDA_DEFAULT 0x9fc00
#define BIOS_ROM_START 0xf0000
#define BIOS_ROM_END 0x100000
#define MPF_SIGNATURE 0x5f504d5f /* "_MP_" */
#define MPC_SIGNATURE 0x504d4350 /* "PCMP" */
#define MP_PROCESSOR 0
#define MP_IOAPIC 2
#define MP_ENTRY_TYPES 5
#define MP_CPU_ENABLED 0x01
#define MAX_CPUS 256

#define LAPIC_ICR_LOW 0x300
#define LAPIC_ICR_HIGH 0x310
#define LAPIC_ICR_BUSY (1U << 12)
#define ICR_INIT_ASSERT 0x00004500
#define ICR_STARTUP 0x00004600
#define ICR_POLLS 1000
/* How long the boot CPU waits for the APs, in TSC cycles: about a second. A spin count
 * would not do: `pause` alone takes from nanoseconds to microseconds (when it exits). */
#define AP_WAIT_TSC_CYCLES 3000000000ULL

struct mp_floating_pointer {
	uint32_t signature;
	uint32_t config_paddr;
	uint8_t length; /* in 16-byte units */
	uint8_t spec_rev;
	uint8_t checksum;
	uint8_t features[5];
} __attribute__((packed));

struct mp_config_header {
	uint32_t signature;
	uint16_t length;
	uint8_t spec_rev;
	uint8_t checksum;
	char oem_id[8];
	char product_id[12];
	uint32_t oem_table_paddr;
	uint16_t oem_table_size;
	uint16_t entry_count;
	uint32_t lapic_paddr;
	uint16_t ext_length;
	uint8_t ext_checksum;
	uint8_t reserved;
} __attribute__((packed));

struct mp_processor {
	uint8_t type;
	uint8_t apic_id;
	uint8_t apic_version;
	uint8_t flags;
	uint32_t signature;
	uint32_t features;
	uint32_t reserved[2];
} __attribute__((packed));

struct mp_ioapic {
	uint8_t type;
	uint8_t id;
	uint8_t version;
	uint8_t flags;
	uint32_t paddr;
} __attribute__((packed));

struct mp_info {
	uint32_t lapic_paddr;
	unsigned int nr_cpus;
	uint8_t cpu_apic_ids[MAX_CPUS];
	bool has_ioapic;
	uint8_t ioapic_id;
	uint32_t ioapic_paddr;
};

uint64_t ap_stacks_base;
uint32_t ap_next_index;
static uint32_t cpus_up;

/* The byte sum, 8 bytes at a time in 16-bit lanes kept mod 256: a byte loop would cost
 * ~5 instructions a byte, at ~1 us each when ring 0 is emulated. */
static uint8_t checksum(uint64_t paddr, size_t len)
{
	typedef uint64_t __attribute__((may_alias)) word_t;
	const uint64_t lanes = 0x00ff00ff00ff00ffULL;
	const uint8_t *p = (const uint8_t *)(uintptr_t)paddr;
	uint64_t acc = 0;
	uint8_t sum = 0;
	size_t i = 0;

	for (; len - i >= 8; i += 8) {
		uint64_t w = *(const word_t *)(p + i);

		acc = (acc + (w & lanes) + ((w >> 8) & lanes)) & lanes;
	}
	for (; i < len; i++)
		sum += p[i];
	return (uint8_t)(sum + acc + (acc >> 16) + (acc >> 32) + (acc >> 48));
}

/* 0 when [start, end) has no floating pointer; *bad is set if one fails its checksum. */
static uint64_t scan(uint64_t start, uint64_t end, bool *bad)
{
	for (uint64_t p = start; p + sizeof(struct mp_floating_pointer) <= end; p += 16) {
		const struct mp_floating_pointer *mpf = (const void *)(uintptr_t)p;

		if (mpf->signature != MPF_SIGNATURE)
			continue;
		if (!mpf->length || checksum(p, mpf->length * 16U)) {
			*bad = true;
			continue;
		}
		return p;
	}
	return 0;
}

/* Where MP spec 1.4 section 4 says to look, and 0x9fc00 since there is no BIOS to set
 * up the BDA. The BIOS ROM area is last: without a BIOS, every read there may exit. */
static uint64_t find_floating_pointer(bool *bad)
{
	uint64_t ebda = (uint64_t)*(volatile uint16_t *)BDA_EBDA_SEGMENT << 4;
	uint64_t base_kib = *(volatile uint16_t *)BDA_BASE_MEMORY_KIB;
	uint64_t found = 0;

	if (ebda)
		found = scan(ebda, ebda + 1024, bad);
	if (!found)
		found = scan(EBDA_DEFAULT, EBDA_DEFAULT + 1024, bad);
	if (!found && base_kib > 1 && base_kib <= 640)
		found = scan((base_kib - 1) * 1024, base_kib * 1024, bad);
	if (!found)
		found = scan(BIOS_ROM_START, BIOS_ROM_END, bad);
	return found;
}

/* Walks the entries up to the table's length, as Linux does: some tables (QEMU's qboot)
 * leave entry_count at 0. */
static const char *parse_entries(const struct mp_config_header *h, struct mp_info *mp)
{
	const uint8_t *p = (const uint8_t *)(h + 1), *end = (const uint8_t *)h + h->length;

	for (unsigned int i = 0; p < end; i++) {
		size_t size = *p == MP_PROCESSOR ? sizeof(struct mp_processor) : 8;

		if (*p >= MP_ENTRY_TYPES)
			return fail("MP table entry %u has unknown type %u", i, *p);
		if ((size_t)(end - p) < size)
			return fail("MP table entry %u runs past the table", i);
		if (*p == MP_PROCESSOR) {
			const struct mp_processor *cpu = (const void *)p;

			if ((cpu->flags & MP_CPU_ENABLED) && mp->nr_cpus < MAX_CPUS)
				mp->cpu_apic_ids[mp->nr_cpus++] = cpu->apic_id;
		} else if (*p == MP_IOAPIC && !mp->has_ioapic) {
			const struct mp_ioapic *io = (const void *)p;

			mp->has_ioapic = true;
			mp->ioapic_id = io->id;
			mp->ioapic_paddr = io->paddr;
		}
		p += size;
	}
	return NULL;
}

static const char *read_mptable(struct mp_info *mp)
{
	const struct mp_floating_pointer *mpf;
	const struct mp_config_header *h;
	bool bad = false;
	uint64_t found;

	found = find_floating_pointer(&bad);
	if (!found)
		return bad ? "bad MP floating pointer checksum" : "no MP floating pointer";
	mpf = (const void *)(uintptr_t)found;
	if (!mpf->config_paddr)
		return fail("MP floating pointer at 0x%llx has no config table (default config %u)",
			    (unsigned long long)found, mpf->features[0]);
	h = (const void *)(uintptr_t)mpf->config_paddr;
	if (h->signature != MPC_SIGNATURE)
		return fail("no PCMP signature at 0x%x", mpf->config_paddr);
	if (h->length < sizeof(*h))
		return fail("bad MP config table length %u", h->length);
	if (checksum(mpf->config_paddr, h->length))
		return "bad MP config table checksum";
	mp->lapic_paddr = h->lapic_paddr;
	return parse_entries(h, mp);
}

static void send_ipi(uint32_t lapic, unsigned int apic_id, uint32_t command)
{
	for (unsigned int i = 0; i < ICR_POLLS; i++) {
		if (!(mmio_read32(lapic + LAPIC_ICR_LOW) & LAPIC_ICR_BUSY))
			break;
	}
	mmio_write32(lapic + LAPIC_ICR_HIGH, apic_id << 24);
	mmio_write32(lapic + LAPIC_ICR_LOW, command);
}

/* No delays between the IPIs: a VMM's virtual CPUs need none, and they cost much. */
static const char *start_aps(const struct mp_info *mp, unsigned int nr_aps)
{
	uint32_t sipi = ICR_STARTUP | (AP_TRAMPOLINE_ADDR >> 12);
	void *stacks = memory__alloc((size_t)nr_aps * AP_STACK_SIZE);

	if (!stacks)
		return "no memory for AP stacks";
	memcpy((void *)AP_TRAMPOLINE_ADDR, ap_trampoline,
	       (size_t)(ap_trampoline_end - ap_trampoline));
	ap_stacks_base = (uintptr_t)stacks;
	__atomic_store_n(&ap_next_index, 0, __ATOMIC_RELEASE);
	for (unsigned int i = 0; i < mp->nr_cpus; i++) {
		unsigned int id = mp->cpu_apic_ids[i];

		if (id == boot_cpu_apic_id)
			continue;
		send_ipi(mp->lapic_paddr, id, ICR_INIT_ASSERT);
		send_ipi(mp->lapic_paddr, id, sipi);
		send_ipi(mp->lapic_paddr, id, sipi);
	}
	return NULL;
}

const char *test_smp(void)
{
	struct mp_info mp = { 0 };
	unsigned int nr_aps = 0, up;
	const char *why;

	why = read_mptable(&mp);
	if (why)
		return why;
	if (mp.has_ioapic)
		report("mptable cpus=%u ioapic=%u@0x%x", mp.nr_cpus, mp.ioapic_id, mp.ioapic_paddr);
	else
		report("mptable cpus=%u ioapic=none", mp.nr_cpus);
	for (unsigned int i = 0; i < mp.nr_cpus; i++)
		nr_aps += mp.cpu_apic_ids[i] != boot_cpu_apic_id;
	__atomic_store_n(&cpus_up, 1, __ATOMIC_RELEASE);
	if (nr_aps) {
		why = start_aps(&mp, nr_aps);
		if (why)
			return why;
	}
	for (uint64_t start = rdtsc(); rdtsc() - start < AP_WAIT_TSC_CYCLES;) {
		if (__atomic_load_n(&cpus_up, __ATOMIC_ACQUIRE) >= nr_aps + 1)
			break;
		cpu_relax();
	}
	up = __atomic_load_n(&cpus_up, __ATOMIC_ACQUIRE);
	report("smp cpus=%u expected=%u", up, mp.nr_cpus);
	if (up != mp.nr_cpus)
		return fail("%u of %u CPUs came up", up, mp.nr_cpus);
	return NULL;
}

void ap_main(void)
{
	report("cpu apic=%u up", cpu_apic_id());
	__atomic_add_fetch(&cpus_up, 1, __ATOMIC_RELEASE);
	cpu_halt();
}
