// SPDX-License-Identifier: Apache-2.0
/*
 * unassigned: writes to and reads from I/O ports and MMIO addresses no device owns. The
 * values read are only printed: the test passes if the guest is still running after.
 */
#include "guest.h"

#define WRITE_VALUE 0x5a5a5a5a5a5a5a5aULL

struct access {
	uint64_t addr;
	unsigned int width; /* bytes */
};

static const struct access ports[] = {
	{ 0x510, 2 },  /* QEMU's fw_cfg selector */
	{ 0x1234, 1 },
	{ 0xcf8, 4 },  /* PCI configuration address ... */
	{ 0xcfc, 4 },  /* ... and data */
	{ 0x2f8, 1 },  /* COM2 */
	{ 0x2f9, 1 },
	{ 0x2fa, 1 },
	{ 0x2fb, 1 },
	{ 0x2fc, 1 },
	{ 0x2fd, 1 },
	{ 0x2fe, 1 },
	{ 0x2ff, 1 },
	{ 0x80, 1 },   /* POST codes */
};

/* In the MMIO gap, away from the boot timer and the virtio-mmio windows. */
static const struct access mmio[] = {
	{ 0xd0800000, 4 },
	{ 0xe0000000, 8 },
	{ 0xfed00000, 1 }, /* where an HPET would be */
	{ 0xfed00004, 4 },
};

static uint64_t port_rw(uint16_t port, unsigned int width)
{
	switch (width) {
	case 1:
		outb(port, (uint8_t)WRITE_VALUE);
		return inb(port);
	case 2:
		outw(port, (uint16_t)WRITE_VALUE);
		return inw(port);
	default:
		outl(port, (uint32_t)WRITE_VALUE);
		return inl(port);
	}
}

static uint64_t mmio_rw(uint64_t addr, unsigned int width)
{
	switch (width) {
	case 1:
		mmio_write8(addr, (uint8_t)WRITE_VALUE);
		return mmio_read8(addr);
	case 4:
		mmio_write32(addr, (uint32_t)WRITE_VALUE);
		return mmio_read32(addr);
	default:
		mmio_write64(addr, WRITE_VALUE);
		return mmio_read64(addr);
	}
}

const char *test_unassigned(void)
{
	for (unsigned int i = 0; i < ARRAY_SIZE(ports); i++) {
		uint64_t v = port_rw((uint16_t)ports[i].addr, ports[i].width);

		report("unassigned port 0x%llx read 0x%llx", (unsigned long long)ports[i].addr,
		       (unsigned long long)v);
	}
	for (unsigned int i = 0; i < ARRAY_SIZE(mmio); i++) {
		uint64_t v = mmio_rw(mmio[i].addr, mmio[i].width);

		report("unassigned mmio 0x%llx read 0x%llx", (unsigned long long)mmio[i].addr,
		       (unsigned long long)v);
	}
	return NULL;
}
