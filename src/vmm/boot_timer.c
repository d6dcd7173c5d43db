// SPDX-License-Identifier: Apache-2.0
#include "vmm/boot_timer.h"

#include <string.h>

#include "vmm/log.h"

static void timer_read(void *opaque, uint64_t offset, uint8_t *data, uint32_t len)
{
	(void)opaque;
	(void)offset;
	memset(data, 0, len);
}

static void timer_write(void *opaque, uint64_t offset, const uint8_t *data, uint32_t len)
{
	struct boot_timer *t = opaque;
	uint64_t wall = log__wall_us_since_start() - t->origin_wall_us;
	uint64_t cpu = log__cpu_us_since_start();

	(void)len;
	if (offset != 0 || data[0] != BOOT_TIMER_MAGIC)
		return;
	if (!__atomic_fetch_add(&t->signals, 1, __ATOMIC_RELAXED)) {
		t->first_wall_us = wall;
		t->first_cpu_us = cpu;
	}
	log_info("Guest-boot-time = %llu us %llu ms, %llu CPU us %llu CPU ms",
		 (unsigned long long)wall, (unsigned long long)(wall / 1000),
		 (unsigned long long)cpu, (unsigned long long)(cpu / 1000));
}

const struct bus_dev_ops boot_timer__ops = { .read = timer_read, .write = timer_write };
