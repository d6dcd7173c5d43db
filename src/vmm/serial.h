/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A 16550A UART (COM1). Output goes to a file descriptor; input is pushed in by the VMM
 * thread (from stdin when it is a tty). Interrupts are edge pulses on an irqfd.
 *
 * Output is buffered: one write(2) per line instead of one per byte, which is what a
 * console-heavy boot spends its exits on. The buffer is written out at a newline, when it
 * is full, when the guest writes IER (Linux's 8250 driver does at the end of every console
 * write and transmit burst), and otherwise by the VMM thread soon after: the first byte
 * into an empty buffer signals out_kick_fd, and the VMM thread calls serial__flush() a
 * few milliseconds later.
 */
#ifndef EMBER_VMM_SERIAL_H
#define EMBER_VMM_SERIAL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "vmm/bus.h"
#include "vmm/metrics.h"

#define SERIAL_RX_FIFO 1024
#define SERIAL_OUT_BUF 4096

struct serial {
	pthread_mutex_t lock;
	uint8_t ier, lcr, mcr, msr, scr, dll, dlm, fcr;
	uint8_t thre_pending; /* a THR-empty interrupt is waiting to be read from IIR */
	uint8_t rx[SERIAL_RX_FIFO];
	unsigned int rx_head, rx_count;
	int out_fd;	 /* -1: output discarded */
	int irq_fd;	 /* eventfd bound to the UART's GSI; -1: none */
	int rx_ready_fd; /* eventfd signalled when the RX FIFO has room again; -1: none */
	int rx_was_full;
	int out_kick_fd; /* eventfd: output is waiting in out_buf; -1: none */
	uint8_t out_buf[SERIAL_OUT_BUF];
	size_t out_len;
	struct uart_metrics m; /* write_count: bytes out; read_count: bytes the guest read */
};

extern const struct bus_dev_ops serial__ops;

struct snapshot_file_writer;
struct snapshot_file_reader;

void serial__init(struct serial *s, int out_fd, int irq_fd, int rx_ready_fd);
/* Where to signal that output waits (see above); -1 to flush at every byte. */
void serial__set_out_kick(struct serial *s, int out_kick_fd);
/* Writes out what the buffer holds. */
void serial__flush(struct serial *s);
/* Queues guest input; returns how many bytes fitted (the rest must be retried later). */
size_t serial__input(struct serial *s, const uint8_t *buf, size_t len);
size_t serial__rx_space(struct serial *s);
/*
 * Snapshots (docs/snapshot-format.md, the serial section), with the VM paused: the
 * registers, the pending THR-empty interrupt and the receive FIFO (input the guest has not
 * read). Output still in out_buf is the host's, not the guest's: it is not saved (the
 * running Ember writes it out as usual). restore checks every field (-EINVAL with a message
 * for a value the UART cannot hold) before it changes anything. 0 or -errno with
 * error__set().
 */
int serial__save(const struct serial *s, struct snapshot_file_writer *w);
int serial__restore(struct serial *s, const struct snapshot_file_reader *r);
void serial__destroy(struct serial *s);

#endif
