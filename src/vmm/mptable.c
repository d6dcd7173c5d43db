// SPDX-License-Identifier: Apache-2.0
#include "vmm/mptable.h"

#include <errno.h>
#include <string.h>

#include "vmm/layout.h"
#include "vmm/log.h"

#define MP_SPEC_REV 4
#define MP_APIC_VERSION 0x14
#define MP_IOAPIC_VERSION 0x11
#define MP_CPU_ENABLED 0x01
#define MP_CPU_BSP 0x02
#define MP_ENTRY_CPU 0
#define MP_ENTRY_BUS 1
#define MP_ENTRY_IOAPIC 2
#define MP_ENTRY_INTSRC 3
#define MP_ENTRY_LINTSRC 4
#define MP_IRQ_INT 0
#define MP_IRQ_NMI 1
#define MP_IRQ_EXTINT 3

struct mpf_intel {
	char signature[4];
	uint32_t physptr;
	uint8_t length;
	uint8_t specification;
	uint8_t checksum;
	uint8_t feature[5];
} __attribute__((packed));

struct mpc_table {
	char signature[4];
	uint16_t length;
	uint8_t spec;
	uint8_t checksum;
	char oem[8];
	char productid[12];
	uint32_t oemptr;
	uint16_t oemsize;
	uint16_t oemcount;
	uint32_t lapic;
	uint32_t reserved;
} __attribute__((packed));

struct mpc_cpu {
	uint8_t type;
	uint8_t apicid;
	uint8_t apicver;
	uint8_t cpuflag;
	uint32_t cpufeature;
	uint32_t featureflag;
	uint32_t reserved[2];
} __attribute__((packed));

struct mpc_bus {
	uint8_t type;
	uint8_t busid;
	char bustype[6];
} __attribute__((packed));

struct mpc_ioapic {
	uint8_t type;
	uint8_t apicid;
	uint8_t apicver;
	uint8_t flags;
	uint32_t apicaddr;
} __attribute__((packed));

struct mpc_intsrc {
	uint8_t type;
	uint8_t irqtype;
	uint16_t irqflag;
	uint8_t srcbus;
	uint8_t srcbusirq;
	uint8_t dstapic;
	uint8_t dstirq;
} __attribute__((packed));

/* ExtINT on pin 0, ISA IRQ 0 (the PIT) on pin 2, IRQ n on pin n; IRQ 2 is the cascade. */
#define NR_INTSRC (1 + MPTABLE_MAX_IRQ)
#define NR_LINTSRC 2

uint64_t mptable__size(uint32_t nr_vcpus)
{
	return sizeof(struct mpf_intel) + sizeof(struct mpc_table) +
	       nr_vcpus * sizeof(struct mpc_cpu) + sizeof(struct mpc_bus) +
	       sizeof(struct mpc_ioapic) + (NR_INTSRC + NR_LINTSRC) * sizeof(struct mpc_intsrc);
}

uint8_t mptable__checksum(const void *p, uint64_t len)
{
	const uint8_t *b = p;
	uint8_t sum = 0;

	for (uint64_t i = 0; i < len; i++)
		sum = (uint8_t)(sum + b[i]);
	return sum;
}

static uint8_t *put_cpus(uint8_t *p, uint32_t nr_vcpus)
{
	for (uint32_t i = 0; i < nr_vcpus; i++) {
		struct mpc_cpu c = {
			.type = MP_ENTRY_CPU,
			.apicid = (uint8_t)i,
			.apicver = MP_APIC_VERSION,
			.cpuflag = MP_CPU_ENABLED | (i == 0 ? MP_CPU_BSP : 0),
			.cpufeature = 0x600,  /* family 6 */
			.featureflag = 0x201, /* FPU, APIC */
		};

		memcpy(p, &c, sizeof(c));
		p += sizeof(c);
	}
	return p;
}

static uint8_t *put_intsrc(uint8_t *p, uint8_t type, uint8_t irqtype, uint8_t srcirq,
			   uint8_t dstapic, uint8_t dstirq)
{
	struct mpc_intsrc s = {
		.type = type,
		.irqtype = irqtype,
		.srcbus = 0,
		.srcbusirq = srcirq,
		.dstapic = dstapic,
		.dstirq = dstirq,
	};

	memcpy(p, &s, sizeof(s));
	return p + sizeof(s);
}

static uint8_t *put_irqs(uint8_t *p, uint8_t ioapic_id)
{
	p = put_intsrc(p, MP_ENTRY_INTSRC, MP_IRQ_EXTINT, 0, ioapic_id, 0);
	p = put_intsrc(p, MP_ENTRY_INTSRC, MP_IRQ_INT, 0, ioapic_id, 2);
	for (uint8_t irq = 1; irq <= MPTABLE_MAX_IRQ; irq++) {
		if (irq == 2)
			continue;
		p = put_intsrc(p, MP_ENTRY_INTSRC, MP_IRQ_INT, irq, ioapic_id, irq);
	}
	/* LINT0 is ExtINT and LINT1 is NMI, on every local APIC */
	p = put_intsrc(p, MP_ENTRY_LINTSRC, MP_IRQ_EXTINT, 0, 0xff, 0);
	return put_intsrc(p, MP_ENTRY_LINTSRC, MP_IRQ_NMI, 0, 0xff, 1);
}

int mptable__write(const struct gmem *gm, uint32_t nr_vcpus)
{
	uint64_t size = mptable__size(nr_vcpus);
	uint8_t *base, *table, *p;
	struct mpf_intel mpf = { .signature = { '_', 'M', 'P', '_' } };
	struct mpc_table hdr = { .signature = { 'P', 'C', 'M', 'P' } };
	struct mpc_bus bus = { .type = MP_ENTRY_BUS, .bustype = { 'I', 'S', 'A', ' ', ' ', ' ' } };
	struct mpc_ioapic io = { .type = MP_ENTRY_IOAPIC,
				 .apicver = MP_IOAPIC_VERSION,
				 .flags = 1,
				 .apicaddr = (uint32_t)LAYOUT_IOAPIC_ADDR };

	if (!nr_vcpus || nr_vcpus > 254 || LAYOUT_MPTABLE_ADDR + size > LAYOUT_LOWMEM_END)
		return error__set(-EINVAL, "MP table: %u vCPUs do not fit", nr_vcpus);
	base = gmem__ptr(gm, LAYOUT_MPTABLE_ADDR, size);
	if (!base)
		return error__set(-EFAULT, "MP table: guest memory too small");
	memset(base, 0, size);
	table = base + sizeof(mpf);
	p = put_cpus(table + sizeof(hdr), nr_vcpus);
	memcpy(p, &bus, sizeof(bus));
	p += sizeof(bus);
	io.apicid = (uint8_t)nr_vcpus;
	memcpy(p, &io, sizeof(io));
	p = put_irqs(p + sizeof(io), io.apicid);

	hdr.length = (uint16_t)(p - table);
	hdr.spec = MP_SPEC_REV;
	memcpy(hdr.oem, "EMBER   ", 8);
	memcpy(hdr.productid, "MICROVM     ", 12);
	hdr.oemcount = (uint16_t)(nr_vcpus + 2 + NR_INTSRC + NR_LINTSRC);
	hdr.lapic = (uint32_t)LAYOUT_LAPIC_ADDR;
	memcpy(table, &hdr, sizeof(hdr));
	table[offsetof(struct mpc_table, checksum)] =
		(uint8_t)-mptable__checksum(table, hdr.length);

	mpf.physptr = (uint32_t)(LAYOUT_MPTABLE_ADDR + sizeof(mpf));
	mpf.length = 1;
	mpf.specification = MP_SPEC_REV;
	mpf.checksum = (uint8_t)-mptable__checksum(&mpf, sizeof(mpf));
	memcpy(base, &mpf, sizeof(mpf));
	return 0;
}
