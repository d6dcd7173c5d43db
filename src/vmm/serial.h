/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A 16550A UART (COM1). Output goes to a file descriptor; input is pushed in by the VMM
 * thread (from stdin when it is a tty). Interrupts are edge pulses on an irqfd.
 */
#ifndef EMBER_VMM_SERIAL_H
#define EMBER_VMM_SERIAL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "vmm/bus.h"

#define SERIAL_RX_FIFO 1024

struct serial_metrics {
	uint64_t bytes_out;
	uint64_t bytes_in;
	uint64_t write_errors;
};

struct serial {
	pthread_mutex_t lock;
	uint8_t ier, lcr, mcr, msr, scr, dll, dlm, fcr;
	uint8_t thre_pending; /* a THR-empty interrupt is waiting to be read from IIR */
	uint8_t rx[SERIAL_RX_FIFO];
	unsigned int rx_head, rx_count;
	int out_fd;	     /* -1: output discarded */
	int irq_fd;	     /* eventfd bound to the UART's GSI; -1: none */
	int rx_ready_fd;     /* eventfd signalled when the RX FIFO has room again; -1: none */
	int rx_was_full;
	struct serial_metrics m;
};

extern const struct bus_dev_ops serial__ops;

void serial__init(struct serial *s, int out_fd, int irq_fd, int rx_ready_fd);
/* Queues guest input; returns how many bytes fitted (the rest must be retried later). */
size_t serial__input(struct serial *s, const uint8_t *buf, size_t len);
size_t serial__rx_space(struct serial *s);
void serial__destroy(struct serial *s);

#endif
