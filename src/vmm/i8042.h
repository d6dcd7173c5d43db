/* SPDX-License-Identifier: Apache-2.0 */
/*
 * An i8042 keyboard controller with a keyboard and no mouse port: it answers Linux's
 * controller and keyboard probes at once (no probe waits for a timeout), its CPU-reset
 * command (what `reboot=k` uses) ends the VM cleanly, and it can type Ctrl-Alt-Del.
 */
#ifndef EMBER_VMM_I8042_H
#define EMBER_VMM_I8042_H

#include <pthread.h>
#include <stdint.h>

#include "vmm/bus.h"
#include "vmm/metrics.h"

#define I8042_BUF 16

struct i8042 {
	pthread_mutex_t lock;
	uint8_t status;
	uint8_t ctrl;	     /* the controller command byte */
	uint8_t outp;	     /* the output port */
	uint8_t pending;     /* a controller command waiting for its data byte */
	uint8_t kbd_pending; /* a keyboard command waiting for its data byte */
	uint8_t buf[I8042_BUF];
	unsigned int head, count;
	int irq_fd; /* eventfd bound to IRQ 1; -1: none */
	void (*reset)(void *opaque);
	void *reset_opaque;
	struct i8042_metrics m;
};

/* i8042 lives at two ports, 0x60 and 0x64; register the same ops for both. */
extern const struct bus_dev_ops i8042__data_ops;
extern const struct bus_dev_ops i8042__cmd_ops;

struct snapshot_file_writer;
struct snapshot_file_reader;

void i8042__init(struct i8042 *k, int irq_fd, void (*reset)(void *opaque), void *opaque);
void i8042__destroy(struct i8042 *k);
/*
 * Snapshots (docs/snapshot-format.md, the i8042 section), with the VM paused: the status,
 * command byte, output port, the commands waiting for a data byte and the output buffer.
 * restore checks every field (-EINVAL with a message for a state the controller cannot be
 * in) before it changes anything. 0 or -errno with error__set().
 */
int i8042__save(const struct i8042 *k, struct snapshot_file_writer *w);
int i8042__restore(struct i8042 *k, const struct snapshot_file_reader *r);
/* Queues the scancodes of Ctrl-Alt-Del pressed and released, and raises IRQ 1. */
void i8042__send_ctrl_alt_del(struct i8042 *k);

#endif
