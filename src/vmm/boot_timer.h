/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Firecracker's boot timer: the guest writes byte 123 at the first byte of the MMIO gap
 * when it has booted, and Ember logs the time since the process started.
 */
#ifndef EMBER_VMM_BOOT_TIMER_H
#define EMBER_VMM_BOOT_TIMER_H

#include <stdint.h>

#include "vmm/bus.h"

#define BOOT_TIMER_MAGIC 123

struct boot_timer {
	uint64_t origin_wall_us; /* what the boot time counts from, µs since process start */
	uint64_t signals;	 /* how many times the guest signalled */
	uint64_t first_wall_us;	 /* the first boot time, from origin */
	uint64_t first_cpu_us;
};

extern const struct bus_dev_ops boot_timer__ops;

#endif
