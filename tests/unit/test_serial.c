// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests for src/vmm/serial.c: the 16550A as Linux's 8250 driver probes and drives it.
 * The UART sits on a real bus at COM1; its interrupt and "RX room" lines are real eventfds
 * and its output is a pipe.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cmocka.h>

#include "vmm/bus.h"
#include "vmm/layout.h"
#include "vmm/serial.h"

#define COM1 LAYOUT_COM1_PORT
#define RBR 0
#define THR 0
#define DLL 0
#define IER 1
#define DLM 1
#define IIR 2
#define FCR 2
#define LCR 3
#define MCR 4
#define LSR 5
#define MSR 6
#define SCR 7

#define IER_RDI 0x01
#define IER_THRI 0x02
#define IIR_NO_INT 0x01
#define IIR_THRI 0x02
#define IIR_RDI 0x04
#define IIR_ID 0x0f
#define IIR_FIFO 0xc0
#define LSR_DR 0x01
#define LSR_THRE 0x20
#define LSR_TEMT 0x40
#define MCR_DTR 0x01
#define MCR_RTS 0x02
#define MCR_OUT1 0x04
#define MCR_OUT2 0x08
#define MCR_LOOP 0x10
#define LCR_DLAB 0x80

struct uart {
	struct serial s;
	struct bus bus;
	int irq;      /* eventfd */
	int rx_ready; /* eventfd */
	int out[2];   /* pipe: the UART writes out[1], the test reads out[0] */
};

static int setup_uart(void **state)
{
	static struct uart u;

	u.irq = eventfd(0, EFD_NONBLOCK);
	u.rx_ready = eventfd(0, EFD_NONBLOCK);
	if (u.irq < 0 || u.rx_ready < 0 || pipe2(u.out, O_NONBLOCK))
		return -1;
	serial__init(&u.s, u.out[1], u.irq, u.rx_ready);
	bus__init(&u.bus, "pio");
	if (bus__register(&u.bus, COM1, 8, &serial__ops, &u.s, "serial"))
		return -1;
	*state = &u;
	return 0;
}

static int teardown_uart(void **state)
{
	struct uart *u = *state;

	bus__destroy(&u->bus);
	serial__destroy(&u->s);
	close(u->irq);
	close(u->rx_ready);
	close(u->out[0]);
	if (u->out[1] >= 0)
		close(u->out[1]);
	return 0;
}

static uint8_t in(struct uart *u, unsigned int reg)
{
	uint8_t v = 0xcc;

	assert_true(bus__read(&u->bus, COM1 + reg, &v, 1));
	return v;
}

static void out(struct uart *u, unsigned int reg, uint8_t v)
{
	assert_true(bus__write(&u->bus, COM1 + reg, &v, 1));
}

/* How many times an eventfd was signalled since the last call. */
static uint64_t events(int fd)
{
	uint64_t n = 0;

	if (read(fd, &n, sizeof(n)) != sizeof(n))
		return 0;
	return n;
}

static size_t drain(int fd, uint8_t *buf, size_t len)
{
	ssize_t n = read(fd, buf, len);

	return n > 0 ? (size_t)n : 0;
}

/* ---- what Linux's autoconfig() does ---- */

static void power_on_state(void **state)
{
	struct uart *u = *state;

	assert_int_equal(in(u, IER), 0);
	assert_int_equal(in(u, IIR), IIR_NO_INT);
	assert_int_equal(in(u, LCR), 0);
	assert_int_equal(in(u, LSR), LSR_THRE | LSR_TEMT);
	assert_int_equal(in(u, MSR) & 0xb0, 0xb0); /* DCD, DSR, CTS: a terminal is there */
	assert_int_equal(events(u->irq), 0);
}

static void scratch_register(void **state)
{
	struct uart *u = *state;
	static const uint8_t values[] = { 0x00, 0x55, 0xaa, 0xff, 0x5a };

	for (size_t i = 0; i < sizeof(values); i++) {
		out(u, SCR, values[i]);
		assert_int_equal(in(u, SCR), values[i]);
	}
}

static void ier_readback(void **state)
{
	struct uart *u = *state;

	/* autoconfig: IER 0 reads 0, IER 0x0f reads 0x0f; the upper bits do not stick */
	out(u, IER, 0);
	assert_int_equal(in(u, IER) & 0x0f, 0);
	out(u, IER, 0x0f);
	assert_int_equal(in(u, IER) & 0x0f, 0x0f);
	out(u, IER, 0xff);
	assert_int_equal(in(u, IER), 0x0f);
	out(u, IER, 0);
	assert_int_equal(in(u, IER), 0);
	events(u->irq);
}

static void loopback_msr(void **state)
{
	struct uart *u = *state;
	const struct {
		uint8_t mcr, msr;
	} cases[] = {
		{ MCR_LOOP | MCR_OUT2 | MCR_RTS, 0x90 }, /* autoconfig's check: DCD | CTS */
		{ MCR_LOOP, 0x00 },
		{ MCR_LOOP | MCR_DTR, 0x20 },
		{ MCR_LOOP | MCR_OUT1, 0x40 },
		{ MCR_LOOP | 0x0f, 0xf0 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		out(u, MCR, cases[i].mcr);
		assert_int_equal(in(u, MCR), cases[i].mcr);
		assert_int_equal(in(u, MSR) & 0xf0, cases[i].msr);
	}
	out(u, MCR, MCR_OUT2);
	assert_int_equal(in(u, MSR) & 0xb0, 0xb0);
}

static void loopback_data(void **state)
{
	struct uart *u = *state;
	uint8_t buf[8];

	out(u, MCR, MCR_LOOP | MCR_OUT2);
	out(u, THR, 'x');
	out(u, THR, 'y');
	assert_int_equal(in(u, LSR) & LSR_DR, LSR_DR);
	assert_int_equal(in(u, RBR), 'x');
	assert_int_equal(in(u, RBR), 'y');
	assert_int_equal(in(u, LSR) & LSR_DR, 0);
	assert_int_equal(drain(u->out[0], buf, sizeof(buf)), 0); /* nothing left the UART */
	assert_int_equal(u->s.m.write_count, 0);
	out(u, MCR, MCR_OUT2);
	out(u, THR, 'z');
	assert_int_equal(drain(u->out[0], buf, sizeof(buf)), 1);
	assert_int_equal(buf[0], 'z');
	assert_int_equal(in(u, LSR) & LSR_DR, 0);
}

static void fifo_enable(void **state)
{
	struct uart *u = *state;

	out(u, FCR, 0x01);
	assert_int_equal(in(u, IIR) & IIR_FIFO, IIR_FIFO); /* 16550A */
	assert_int_equal(in(u, IIR), IIR_FIFO | IIR_NO_INT);
	out(u, FCR, 0x07); /* enable and clear both FIFOs, as the driver does */
	assert_int_equal(in(u, IIR) & IIR_FIFO, IIR_FIFO);
	out(u, FCR, 0);
	assert_int_equal(in(u, IIR) & IIR_FIFO, 0);
}

static void divisor_latch(void **state)
{
	struct uart *u = *state;
	uint8_t buf[4];

	out(u, IER, IER_RDI);
	out(u, LCR, LCR_DLAB | 0x03);
	out(u, DLL, 0x01); /* 115200 baud */
	out(u, DLM, 0x00);
	assert_int_equal(in(u, DLL), 0x01);
	assert_int_equal(in(u, DLM), 0x00);
	out(u, DLM, 0x12);
	assert_int_equal(in(u, DLM), 0x12);
	out(u, LCR, 0x03);
	assert_int_equal(in(u, LCR), 0x03);
	/* the divisor writes did not reach THR or IER */
	assert_int_equal(in(u, IER), IER_RDI);
	assert_int_equal(drain(u->out[0], buf, sizeof(buf)), 0);
	out(u, LCR, LCR_DLAB);
	assert_int_equal(in(u, DLL), 0x01);
	assert_int_equal(in(u, DLM), 0x12);
	out(u, LCR, 0x03);
	out(u, IER, 0);
}

/* ---- interrupts ---- */

static void thre_interrupt_on_enable(void **state)
{
	struct uart *u = *state;

	events(u->irq);
	out(u, IER, IER_THRI);
	assert_int_equal(events(u->irq), 1);
	assert_int_equal(in(u, IIR) & IIR_ID, IIR_THRI);
	/* reading IIR acknowledged it */
	assert_int_equal(in(u, IIR) & IIR_ID, IIR_NO_INT);
	/* writing IER again without a 0 -> 1 change raises nothing new */
	out(u, IER, IER_THRI);
	assert_int_equal(events(u->irq), 0);
	assert_int_equal(in(u, IIR) & IIR_ID, IIR_NO_INT);
	out(u, IER, 0);
}

/* serial8250_do_startup()'s UART_BUG_THRE test: THRE must reassert when re-enabled. */
static void thre_reasserts(void **state)
{
	struct uart *u = *state;
	uint8_t iir1, iir2;

	out(u, IER, IER_THRI);
	iir1 = in(u, IIR);
	out(u, IER, 0);
	out(u, IER, IER_THRI);
	iir2 = in(u, IIR);
	out(u, IER, 0);
	assert_int_equal(iir1 & IIR_NO_INT, 0);
	assert_int_equal(iir2 & IIR_NO_INT, 0);
	events(u->irq);
}

static void thre_interrupt_on_write(void **state)
{
	struct uart *u = *state;
	uint8_t buf[4];

	out(u, IER, IER_THRI);
	assert_int_equal(in(u, IIR) & IIR_ID, IIR_THRI);
	events(u->irq);
	out(u, THR, 'a');
	assert_int_equal(events(u->irq), 1);
	assert_int_equal(in(u, IIR) & IIR_ID, IIR_THRI);
	assert_int_equal(in(u, IIR) & IIR_ID, IIR_NO_INT);
	/* THRE pending, then disabled: IIR no longer reports it */
	out(u, THR, 'b');
	out(u, IER, 0);
	assert_int_equal(in(u, IIR) & IIR_ID, IIR_NO_INT);
	events(u->irq);
	out(u, THR, 'c');
	assert_int_equal(events(u->irq), 0);
	assert_int_equal(drain(u->out[0], buf, sizeof(buf)), 3);
}

static void rx_interrupt(void **state)
{
	struct uart *u = *state;

	events(u->irq);
	out(u, IER, IER_RDI);
	assert_int_equal(events(u->irq), 0); /* nothing received yet */
	assert_int_equal(serial__input(&u->s, (const uint8_t *)"hi", 2), 2);
	assert_int_equal(events(u->irq), 1);
	assert_int_equal(in(u, LSR), LSR_THRE | LSR_TEMT | LSR_DR);
	/* reading IIR does not acknowledge RX data: only reading the data does */
	assert_int_equal(in(u, IIR) & IIR_ID, IIR_RDI);
	assert_int_equal(in(u, IIR) & IIR_ID, IIR_RDI);
	assert_int_equal(in(u, RBR), 'h');
	assert_int_equal(in(u, IIR) & IIR_ID, IIR_RDI);
	assert_int_equal(in(u, RBR), 'i');
	assert_int_equal(in(u, IIR) & IIR_ID, IIR_NO_INT);
	assert_int_equal(in(u, LSR) & LSR_DR, 0);
	assert_int_equal(in(u, RBR), 0); /* empty */
	out(u, IER, 0);
	assert_int_equal(u->s.m.read_count, 2);
	assert_int_equal(u->s.m.missed_read_count, 1);
}

static void rx_interrupt_on_late_enable(void **state)
{
	struct uart *u = *state;

	events(u->irq);
	assert_int_equal(serial__input(&u->s, (const uint8_t *)"k", 1), 1);
	assert_int_equal(events(u->irq), 0);
	assert_int_equal(in(u, IIR) & IIR_ID, IIR_NO_INT);
	out(u, IER, IER_RDI);
	assert_int_equal(events(u->irq), 1);
	assert_int_equal(in(u, RBR), 'k');
	out(u, IER, 0);
}

/* RX data outranks THR empty; once the data is read THRE shows. */
static void iir_priority(void **state)
{
	struct uart *u = *state;

	assert_int_equal(serial__input(&u->s, (const uint8_t *)"z", 1), 1);
	out(u, IER, IER_RDI | IER_THRI);
	assert_int_equal(in(u, IIR) & IIR_ID, IIR_RDI);
	assert_int_equal(in(u, RBR), 'z');
	assert_int_equal(in(u, IIR) & IIR_ID, IIR_THRI);
	assert_int_equal(in(u, IIR) & IIR_ID, IIR_NO_INT);
	out(u, IER, 0);
	events(u->irq);
}

/* ---- data paths ---- */

static void output_byte_exact(void **state)
{
	struct uart *u = *state;
	uint8_t buf[512];
	uint64_t before = u->s.m.write_count;

	for (unsigned int i = 0; i < 256; i++)
		out(u, THR, (uint8_t)i);
	assert_int_equal(drain(u->out[0], buf, sizeof(buf)), 256);
	for (unsigned int i = 0; i < 256; i++)
		assert_int_equal(buf[i], i);
	assert_int_equal(u->s.m.write_count - before, 256);
	/* a wide access writes its low byte only */
	{
		uint8_t wide[4] = { 'A', 'B', 'C', 'D' };

		assert_true(bus__write(&u->bus, COM1 + THR, wide, 4));
		assert_int_equal(drain(u->out[0], buf, sizeof(buf)), 1);
		assert_int_equal(buf[0], 'A');
		/* and a wide read returns one register, zero-extended */
		out(u, LCR, 0x03);
		memset(wide, 0xcc, sizeof(wide));
		assert_true(bus__read(&u->bus, COM1 + LCR, wide, 4));
		assert_int_equal(wide[0], 0x03);
		assert_int_equal(wide[1] | wide[2] | wide[3], 0);
	}
}

static void output_errors(void **state)
{
	struct uart *u = *state;
	struct serial s;
	int p[2];

	(void)u;
	serial__init(&s, -1, -1, -1); /* output discarded, no IRQ */
	serial__ops.write(&s, THR, (const uint8_t *)"x", 1);
	assert_int_equal(s.m.write_count, 0);
	assert_int_equal(s.m.missed_write_count, 0);
	serial__destroy(&s);
	/* a reader that went away: counted, never fatal */
	signal(SIGPIPE, SIG_IGN);
	assert_int_equal(pipe(p), 0);
	close(p[0]);
	serial__init(&s, p[1], -1, -1);
	serial__ops.write(&s, THR, (const uint8_t *)"x", 1);
	assert_int_equal(s.m.missed_write_count, 1);
	assert_int_equal(s.m.write_count, 0);
	serial__destroy(&s);
	close(p[1]);
}

static void input_fifo_full(void **state)
{
	struct uart *u = *state;
	uint8_t buf[SERIAL_RX_FIFO + 500];

	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i * 13);
	events(u->rx_ready);
	assert_int_equal(serial__rx_space(&u->s), SERIAL_RX_FIFO);
	assert_int_equal(serial__input(&u->s, buf, sizeof(buf)), SERIAL_RX_FIFO);
	assert_int_equal(serial__rx_space(&u->s), 0);
	assert_int_equal(serial__input(&u->s, buf, 1), 0);
	/* no signal until the guest has drained half */
	for (unsigned int i = 0; i < SERIAL_RX_FIFO / 2 - 1; i++)
		assert_int_equal(in(u, RBR), (uint8_t)(i * 13));
	assert_int_equal(events(u->rx_ready), 0);
	assert_int_equal(in(u, RBR), (uint8_t)((SERIAL_RX_FIFO / 2 - 1) * 13));
	assert_int_equal(events(u->rx_ready), 1);
	assert_int_equal(serial__rx_space(&u->s), SERIAL_RX_FIFO / 2);
	/* once */
	for (unsigned int i = SERIAL_RX_FIFO / 2; i < SERIAL_RX_FIFO; i++)
		assert_int_equal(in(u, RBR), (uint8_t)(i * 13));
	assert_int_equal(events(u->rx_ready), 0);
	assert_int_equal(in(u, LSR) & LSR_DR, 0);
	/* the FIFO wraps around correctly */
	assert_int_equal(serial__input(&u->s, buf + 7, 700), 700);
	for (unsigned int i = 0; i < 700; i++)
		assert_int_equal(in(u, RBR), buf[7 + i]);
}

/*
 * The guest resets its FIFO (FCR bit 1: Linux does on every open of the port) while the
 * host is waiting for room: the VMM must hear that there is room again, or stdin stays
 * disarmed for good (main.c arms it again only on rx_ready_fd). FAILS: only rx_pop()
 * signals rx_ready_fd.
 */
static void fifo_clear_signals_room(void **state)
{
	struct uart *u = *state;
	uint8_t buf[SERIAL_RX_FIFO];

	memset(buf, 'q', sizeof(buf));
	events(u->rx_ready);
	assert_int_equal(serial__input(&u->s, buf, sizeof(buf)), SERIAL_RX_FIFO);
	out(u, FCR, 0x07);
	assert_int_equal(in(u, LSR) & LSR_DR, 0);
	assert_int_equal(serial__rx_space(&u->s), SERIAL_RX_FIFO);
	assert_int_equal(events(u->rx_ready), 1);
}

/*
 * The same stall when the guest filled the FIFO itself in loopback mode: the VMM sees no
 * space, stops reading stdin, and nothing ever signals rx_ready_fd. FAILS.
 */
static void loopback_fill_signals_room(void **state)
{
	struct uart *u = *state;

	events(u->rx_ready);
	out(u, MCR, MCR_LOOP);
	for (unsigned int i = 0; i < SERIAL_RX_FIFO; i++)
		out(u, THR, 'l');
	assert_int_equal(serial__rx_space(&u->s), 0);
	out(u, MCR, MCR_OUT2);
	for (unsigned int i = 0; i < SERIAL_RX_FIFO; i++)
		assert_int_equal(in(u, RBR), 'l');
	assert_int_equal(events(u->rx_ready), 1);
}

/*
 * With an out_kick eventfd, output is written a line at a time: at a newline, at an IER
 * write (the end of Linux's console writes), or when the VMM thread calls serial__flush()
 * after the kick that the first buffered byte sent.
 */
static void output_buffered_by_line(void **state)
{
	struct uart *u = *state;
	int kick = eventfd(0, EFD_NONBLOCK);
	uint8_t buf[64];

	assert_true(kick >= 0);
	serial__set_out_kick(&u->s, kick);
	out(u, THR, 'a');
	out(u, THR, 'b');
	assert_int_equal(drain(u->out[0], buf, sizeof(buf)), 0);
	assert_int_equal(events(kick), 1); /* once, for the first byte */
	out(u, THR, '\n');
	assert_int_equal(drain(u->out[0], buf, sizeof(buf)), 3);
	assert_memory_equal(buf, "ab\n", 3);
	out(u, THR, '$');
	out(u, IER, 0);
	assert_int_equal(drain(u->out[0], buf, sizeof(buf)), 1);
	out(u, THR, '#');
	assert_int_equal(events(kick), 2);
	serial__flush(&u->s);
	assert_int_equal(drain(u->out[0], buf, sizeof(buf)), 1);
	assert_int_equal(buf[0], '#');
	serial__flush(&u->s); /* nothing left */
	assert_int_equal(drain(u->out[0], buf, sizeof(buf)), 0);
	assert_int_equal(u->s.m.write_count, 5);
	serial__set_out_kick(&u->s, -1);
	close(kick);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup_uart, teardown_uart)
	const struct CMUnitTest tests[] = {
		T(power_on_state),
		T(scratch_register),
		T(ier_readback),
		T(loopback_msr),
		T(loopback_data),
		T(fifo_enable),
		T(divisor_latch),
		T(thre_interrupt_on_enable),
		T(thre_reasserts),
		T(thre_interrupt_on_write),
		T(rx_interrupt),
		T(rx_interrupt_on_late_enable),
		T(iir_priority),
		T(output_byte_exact),
		T(output_errors),
		T(input_fifo_full),
		T(fifo_clear_signals_room),
		T(loopback_fill_signals_room),
		T(output_buffered_by_line),
	};
#undef T

	return cmocka_run_group_tests_name("serial", tests, NULL, NULL);
}
