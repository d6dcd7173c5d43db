/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A minimal i8042 keyboard controller: enough for Linux's probe, and its CPU-reset command
 * (what `reboot=k` uses) ends the VM cleanly.
 */
#ifndef EMBER_VMM_I8042_H
#define EMBER_VMM_I8042_H

#include <pthread.h>
#include <stdint.h>

#include "vmm/bus.h"

#define I8042_BUF 16

struct i8042 {
	pthread_mutex_t lock;
	uint8_t status;
	uint8_t ctrl;	    /* the controller command byte */
	uint8_t outp;	    /* the output port */
	uint8_t pending;    /* a command waiting for its data byte */
	uint8_t buf[I8042_BUF];
	unsigned int head, count;
	int irq_fd; /* eventfd bound to IRQ 1; -1: none */
	void (*reset)(void *opaque);
	void *reset_opaque;
	uint64_t resets;
};

/* i8042 lives at two ports, 0x60 and 0x64; register the same ops for both. */
extern const struct bus_dev_ops i8042__data_ops;
extern const struct bus_dev_ops i8042__cmd_ops;

void i8042__init(struct i8042 *k, int irq_fd, void (*reset)(void *opaque), void *opaque);
void i8042__destroy(struct i8042 *k);

#endif
