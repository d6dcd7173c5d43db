/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The debug-exit port (off unless --debug-exit): the byte the guest writes becomes Ember's
 * exit code. For test guests and benchmarks, like QEMU's isa-debug-exit.
 */
#ifndef EMBER_VMM_DEBUG_EXIT_H
#define EMBER_VMM_DEBUG_EXIT_H

#include <stdint.h>

#include "vmm/bus.h"

struct debug_exit {
	void (*exit)(void *opaque, uint8_t code);
	void *opaque;
};

extern const struct bus_dev_ops debug_exit__ops;

#endif
