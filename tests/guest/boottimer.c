// SPDX-License-Identifier: Apache-2.0
/* boottimer: Firecracker's boot-complete signal, byte 123 at the start of the MMIO gap. */
#include "guest.h"

#define BOOT_TIMER_ADDR MMIO_GAP_START
#define BOOT_TIMER_MAGIC 123

const char *test_boottimer(void)
{
	mmio_write8(BOOT_TIMER_ADDR, BOOT_TIMER_MAGIC);
	return NULL;
}
