// SPDX-License-Identifier: Apache-2.0
#include "vmm/debug_exit.h"

#include <string.h>

static void dbg_read(void *opaque, uint64_t offset, uint8_t *data, uint32_t len)
{
	(void)opaque;
	(void)offset;
	memset(data, 0, len);
}

static void dbg_write(void *opaque, uint64_t offset, const uint8_t *data, uint32_t len)
{
	struct debug_exit *d = opaque;

	(void)offset;
	(void)len;
	d->exit(d->opaque, data[0]);
}

const struct bus_dev_ops debug_exit__ops = { .read = dbg_read, .write = dbg_write };
