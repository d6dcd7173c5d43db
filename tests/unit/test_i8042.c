// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests for src/vmm/i8042.c: the controller as Linux's i8042 driver probes it, and the
 * two ways a guest resets the CPU through it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cmocka.h>

#include "vmm/bus.h"
#include "vmm/i8042.h"
#include "vmm/layout.h"

#define DATA LAYOUT_I8042_DATA_PORT
#define CMD LAYOUT_I8042_CMD_PORT

#define STR_OBF 0x01
#define STR_SYSFLAG 0x04
#define STR_CMDDAT 0x08
#define STR_KEYLOCK 0x10 /* set: the keyboard is not inhibited */

#define CTR_KBDINT 0x01
#define CTR_SYSFLAG 0x04
#define CTR_XLATE 0x40

struct kbc {
	struct i8042 k;
	struct bus bus;
	int irq;
	unsigned int resets;
};

static void on_reset(void *opaque)
{
	struct kbc *c = opaque;

	c->resets++;
}

static int setup_kbc(void **state)
{
	static struct kbc c;

	memset(&c, 0, sizeof(c));
	c.irq = eventfd(0, EFD_NONBLOCK);
	if (c.irq < 0)
		return -1;
	i8042__init(&c.k, c.irq, on_reset, &c);
	bus__init(&c.bus, "pio");
	if (bus__register(&c.bus, DATA, 1, &i8042__data_ops, &c.k, "i8042") ||
	    bus__register(&c.bus, CMD, 1, &i8042__cmd_ops, &c.k, "i8042"))
		return -1;
	*state = &c;
	return 0;
}

static int teardown_kbc(void **state)
{
	struct kbc *c = *state;

	bus__destroy(&c->bus);
	i8042__destroy(&c->k);
	close(c->irq);
	return 0;
}

static uint8_t in(struct kbc *c, uint16_t port)
{
	uint8_t v = 0xcc;

	assert_true(bus__read(&c->bus, port, &v, 1));
	return v;
}

static void out(struct kbc *c, uint16_t port, uint8_t v)
{
	assert_true(bus__write(&c->bus, port, &v, 1));
}

static uint64_t irqs(struct kbc *c)
{
	uint64_t n = 0;

	if (read(c->irq, &n, sizeof(n)) != sizeof(n))
		return 0;
	return n;
}

/* What i8042_command() does for a command with one result byte. */
static uint8_t command_result(struct kbc *c, uint8_t cmd)
{
	out(c, CMD, cmd);
	assert_int_equal(in(c, CMD) & STR_OBF, STR_OBF);
	return in(c, DATA);
}

static void power_on_state(void **state)
{
	struct kbc *c = *state;

	assert_int_equal(in(c, CMD), STR_SYSFLAG | STR_KEYLOCK);
	assert_int_equal(in(c, DATA), 0); /* nothing to read */
	assert_int_equal(in(c, CMD) & STR_OBF, 0);
	assert_int_equal(c->resets, 0);
	assert_int_equal(irqs(c), 0);
}

static void self_test(void **state)
{
	struct kbc *c = *state;

	assert_int_equal(command_result(c, 0xaa), 0x55);
	assert_int_equal(in(c, CMD) & STR_OBF, 0);
	assert_int_equal(command_result(c, 0xab), 0x00); /* keyboard interface test */
	/* no mouse port: the AUX interface test reports its clock line stuck (0x02) */
	assert_int_equal(command_result(c, 0xa9), 0x02);
	assert_int_equal(c->resets, 0);
}

static void command_byte(void **state)
{
	struct kbc *c = *state;

	assert_int_equal(command_result(c, 0x20), CTR_XLATE | CTR_SYSFLAG | CTR_KBDINT);
	out(c, CMD, 0x60);
	assert_int_equal(in(c, CMD) & STR_CMDDAT, STR_CMDDAT); /* last write was a command */
	out(c, DATA, 0x65);
	assert_int_equal(in(c, CMD) & STR_CMDDAT, 0);
	assert_int_equal(in(c, CMD) & STR_OBF, 0); /* a data byte for a command: no reply */
	assert_int_equal(command_result(c, 0x20), 0x65);
	assert_int_equal(c->resets, 0);
}

static void output_port(void **state)
{
	struct kbc *c = *state;

	assert_int_equal(command_result(c, 0xd0) & 0x01, 0x01);
	out(c, CMD, 0xd1);
	out(c, DATA, 0xdf); /* A20 on, reset line high */
	assert_int_equal(c->resets, 0);
	assert_int_equal(command_result(c, 0xd0), 0xdf);
	out(c, CMD, 0xd1);
	out(c, DATA, 0xde); /* bit 0 low: reset */
	assert_int_equal(c->resets, 1);
	assert_int_equal(c->k.m.reset_count, 1);
}

static void reset_command(void **state)
{
	struct kbc *c = *state;

	out(c, CMD, 0xfe);
	assert_int_equal(c->resets, 1);
	assert_int_equal(in(c, CMD) & STR_OBF, 0);
	/* the other pulse commands: bit 0 clear pulses reset, 0xff pulses nothing */
	out(c, CMD, 0xff);
	assert_int_equal(c->resets, 1);
	out(c, CMD, 0xf0);
	assert_int_equal(c->resets, 2);
	out(c, CMD, 0xf1);
	assert_int_equal(c->resets, 2);
}

static void reset_without_callback(void **state)
{
	struct i8042 k;
	uint8_t v = 0xfe;

	(void)state;
	i8042__init(&k, -1, NULL, NULL);
	i8042__cmd_ops.write(&k, 0, &v, 1);
	assert_int_equal(k.m.reset_count, 1);
	v = 0xaa;
	i8042__cmd_ops.write(&k, 0, &v, 1); /* no irq fd: fine */
	i8042__data_ops.read(&k, 0, &v, 1);
	assert_int_equal(v, 0x55);
	i8042__destroy(&k);
}

static void keyboard_commands(void **state)
{
	struct kbc *c = *state;

	out(c, DATA, 0xf4); /* enable scanning */
	assert_int_equal(in(c, CMD) & STR_OBF, STR_OBF);
	assert_int_equal(in(c, DATA), 0xfa);
	assert_int_equal(in(c, CMD) & STR_OBF, 0);
	out(c, DATA, 0xff); /* reset: ACK, then BAT passed */
	assert_int_equal(in(c, DATA), 0xfa);
	assert_int_equal(in(c, CMD) & STR_OBF, STR_OBF);
	assert_int_equal(in(c, DATA), 0xaa);
	assert_int_equal(in(c, CMD) & STR_OBF, 0);
	/* 0xd2: the next data byte comes back as if the keyboard sent it */
	out(c, CMD, 0xd2);
	out(c, DATA, 0x1c);
	assert_int_equal(in(c, DATA), 0x1c);
	assert_int_equal(c->resets, 0);
}

static void interrupts(void **state)
{
	struct kbc *c = *state;

	out(c, CMD, 0xaa);
	assert_int_equal(irqs(c), 1);
	in(c, DATA);
	/* two bytes queued: the second raises IRQ 1 again once the first is read */
	out(c, DATA, 0xff);
	assert_int_equal(irqs(c), 2);
	in(c, DATA);
	assert_int_equal(irqs(c), 1);
	in(c, DATA);
	assert_int_equal(irqs(c), 0);
	/* interrupts off in the command byte */
	out(c, CMD, 0x60);
	out(c, DATA, CTR_XLATE | CTR_SYSFLAG);
	out(c, CMD, 0xaa);
	assert_int_equal(irqs(c), 0);
	assert_int_equal(in(c, DATA), 0x55);
}

/* More replies than the buffer holds: the extra ones are dropped, nothing breaks. */
static void output_buffer_overflow(void **state)
{
	struct kbc *c = *state;

	for (unsigned int i = 0; i < 3 * I8042_BUF; i++)
		out(c, CMD, 0xaa);
	for (unsigned int i = 0; i < I8042_BUF; i++) {
		assert_int_equal(in(c, CMD) & STR_OBF, STR_OBF);
		assert_int_equal(in(c, DATA), 0x55);
	}
	assert_int_equal(in(c, CMD) & STR_OBF, 0);
	assert_int_equal(in(c, DATA), 0);
}

/* i8042_controller_check() and i8042_controller_init(), in order. */
static void linux_probe_sequence(void **state)
{
	struct kbc *c = *state;
	uint8_t ctr;
	int n = 0;

	while ((in(c, CMD) & STR_OBF) && n++ < 16) /* i8042_flush() */
		in(c, DATA);
	assert_int_equal(command_result(c, 0xaa), 0x55);
	ctr = command_result(c, 0x20);
	ctr &= (uint8_t)~CTR_KBDINT;
	out(c, CMD, 0x60);
	out(c, DATA, ctr);
	assert_int_equal(command_result(c, 0x20), ctr);
	out(c, CMD, 0x60);
	out(c, DATA, ctr | CTR_KBDINT);
	out(c, CMD, 0xae); /* enable the keyboard interface */
	assert_int_equal(in(c, CMD) & STR_KEYLOCK, STR_KEYLOCK);
	out(c, CMD, 0xad);
	assert_int_equal(in(c, CMD) & STR_KEYLOCK, 0);
	out(c, CMD, 0xae);
	assert_int_equal(c->resets, 0);
}

/* Reads everything the output buffer holds, the way the guest's IRQ handler would. */
static size_t drain(struct kbc *c, uint8_t *out_bytes, size_t max)
{
	size_t n = 0;

	while ((in(c, CMD) & STR_OBF) && n < max)
		out_bytes[n++] = in(c, DATA);
	return n;
}

/* atkbd's probe gets every answer at once, so it never waits for a timeout. */
static void keyboard_probe_answers(void **state)
{
	struct kbc *c = *state;
	uint8_t b[8];

	out(c, DATA, 0xf2); /* GETID, translated by default: ACK, 0xab, 0x41 */
	assert_int_equal(drain(c, b, sizeof(b)), 3);
	assert_int_equal(b[0], 0xfa);
	assert_int_equal(b[1], 0xab);
	assert_int_equal(b[2], 0x41);
	out(c, DATA, 0xed); /* set LEDs: ACK, then ACK for the data byte */
	assert_int_equal(drain(c, b, sizeof(b)), 1);
	out(c, DATA, 0x07);
	assert_int_equal(drain(c, b, sizeof(b)), 1);
	assert_int_equal(b[0], 0xfa);
	out(c, DATA, 0xf0); /* get the scan code set: set 2, translated */
	out(c, DATA, 0x00);
	assert_int_equal(drain(c, b, sizeof(b)), 3);
	assert_int_equal(b[2], 0x41);
	out(c, DATA, 0xee); /* echo */
	assert_int_equal(drain(c, b, sizeof(b)), 1);
	assert_int_equal(b[0], 0xee);
	out(c, DATA, 0x5a); /* not a keyboard command: resend */
	assert_int_equal(drain(c, b, sizeof(b)), 1);
	assert_int_equal(b[0], 0xfe);
}

/* SendCtrlAltDel: press Ctrl, Alt, Delete, release them, in scan code set 1. */
static void ctrl_alt_del(void **state)
{
	static const uint8_t want[] = { 0x1d, 0x38, 0xe0, 0x53, 0xe0, 0xd3, 0xb8, 0x9d };
	struct kbc *c = *state;
	uint8_t b[16];

	irqs(c);
	i8042__send_ctrl_alt_del(&c->k);
	assert_true(irqs(c) >= 1);
	assert_int_equal(drain(c, b, sizeof(b)), sizeof(want));
	assert_memory_equal(b, want, sizeof(want));
	assert_int_equal(c->resets, 0);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup_kbc, teardown_kbc)
	const struct CMUnitTest tests[] = {
		T(power_on_state),
		T(self_test),
		T(command_byte),
		T(output_port),
		T(reset_command),
		cmocka_unit_test(reset_without_callback),
		T(keyboard_commands),
		T(interrupts),
		T(output_buffer_overflow),
		T(linux_probe_sequence),
		T(keyboard_probe_answers),
		T(ctrl_alt_del),
	};
#undef T

	return cmocka_run_group_tests_name("i8042", tests, NULL, NULL);
}
