// SPDX-License-Identifier: Apache-2.0
#include "vmm/i8042.h"

#include <string.h>
#include <unistd.h>

#define SB_OUT_FULL 0x01
#define SB_SYSTEM 0x04
#define SB_LAST_CMD 0x08
#define SB_KBD_ENABLED 0x10
#define SB_AUX_DATA 0x20

#define CB_KBD_INT 0x01
#define CB_SYSTEM 0x04
#define CB_KBD_DISABLE 0x10
#define CB_AUX_DISABLE 0x20
#define CB_POST_OK 0x40 /* translate */

#define CMD_READ_CTRL 0x20
#define CMD_WRITE_CTRL 0x60
#define CMD_DISABLE_AUX 0xa7
#define CMD_ENABLE_AUX 0xa8
#define CMD_TEST_AUX 0xa9
#define CMD_SELF_TEST 0xaa
#define CMD_TEST_KBD 0xab
#define CMD_DISABLE_KBD 0xad
#define CMD_ENABLE_KBD 0xae
#define CMD_READ_OUTP 0xd0
#define CMD_WRITE_OUTP 0xd1
#define CMD_WRITE_KBD_BUF 0xd2
#define CMD_WRITE_AUX_BUF 0xd3
#define CMD_WRITE_AUX 0xd4
#define CMD_RESET_CPU 0xfe

#define KBD_ACK 0xfa
#define KBD_RESET 0xff
#define KBD_RESET_OK 0xaa

static void pulse_irq(struct i8042 *k)
{
	uint64_t one = 1;
	ssize_t r;

	if (k->irq_fd < 0 || !(k->ctrl & CB_KBD_INT))
		return;
	r = write(k->irq_fd, &one, sizeof(one));
	(void)r;
}

static void push(struct i8042 *k, uint8_t byte)
{
	if (k->count == I8042_BUF)
		return;
	k->buf[(k->head + k->count) % I8042_BUF] = byte;
	k->count++;
	k->status |= SB_OUT_FULL;
	k->status &= (uint8_t)~SB_AUX_DATA;
	pulse_irq(k);
}

/* The AUX loopback: the byte comes back as if the mouse port had sent it. */
static void push_aux(struct i8042 *k, uint8_t byte)
{
	if (k->count)
		return;
	push(k, byte);
	k->status |= SB_AUX_DATA;
}

static uint8_t pop(struct i8042 *k)
{
	uint8_t b;

	if (!k->count)
		return 0;
	b = k->buf[k->head];
	k->head = (k->head + 1) % I8042_BUF;
	k->count--;
	if (!k->count)
		k->status &= (uint8_t)~SB_OUT_FULL;
	else
		pulse_irq(k);
	return b;
}

void i8042__init(struct i8042 *k, int irq_fd, void (*reset)(void *opaque), void *opaque)
{
	memset(k, 0, sizeof(*k));
	pthread_mutex_init(&k->lock, NULL);
	k->status = SB_SYSTEM | SB_KBD_ENABLED;
	k->ctrl = CB_POST_OK | CB_SYSTEM | CB_KBD_INT;
	k->outp = 0x01; /* bit 0 high: the CPU is not held in reset */
	k->irq_fd = irq_fd;
	k->reset = reset;
	k->reset_opaque = opaque;
}

void i8042__destroy(struct i8042 *k)
{
	pthread_mutex_destroy(&k->lock);
}

static void cpu_reset(struct i8042 *k)
{
	k->resets++;
	if (k->reset)
		k->reset(k->reset_opaque);
}

static void command(struct i8042 *k, uint8_t cmd)
{
	k->status |= SB_LAST_CMD;
	switch (cmd) {
	case CMD_READ_CTRL:
		push(k, k->ctrl);
		break;
	case CMD_WRITE_CTRL:
	case CMD_WRITE_OUTP:
	case CMD_WRITE_KBD_BUF:
	case CMD_WRITE_AUX_BUF:
	case CMD_WRITE_AUX:
		k->pending = cmd;
		break;
	case CMD_DISABLE_AUX:
		k->ctrl |= CB_AUX_DISABLE;
		break;
	case CMD_ENABLE_AUX:
		k->ctrl &= (uint8_t)~CB_AUX_DISABLE;
		break;
	case CMD_READ_OUTP:
		push(k, k->outp);
		break;
	case CMD_SELF_TEST:
		push(k, 0x55);
		break;
	case CMD_TEST_KBD:
	case CMD_TEST_AUX:
		push(k, 0x00);
		break;
	case CMD_DISABLE_KBD:
		k->ctrl |= CB_KBD_DISABLE;
		k->status &= (uint8_t)~SB_KBD_ENABLED;
		break;
	case CMD_ENABLE_KBD:
		k->ctrl &= (uint8_t)~CB_KBD_DISABLE;
		k->status |= SB_KBD_ENABLED;
		break;
	case CMD_RESET_CPU:
		cpu_reset(k);
		break;
	default:
		/* 0xf0-0xff pulse output lines; bit 0 low pulses the CPU reset line */
		if (cmd >= 0xf0 && !(cmd & 0x01))
			cpu_reset(k);
		break;
	}
}

static void data_write(struct i8042 *k, uint8_t v)
{
	uint8_t cmd = k->pending;

	k->pending = 0;
	k->status &= (uint8_t)~SB_LAST_CMD;
	switch (cmd) {
	case CMD_WRITE_CTRL:
		k->ctrl = v;
		break;
	case CMD_WRITE_OUTP:
		k->outp = v;
		if (!(v & 0x01))
			cpu_reset(k);
		break;
	case CMD_WRITE_KBD_BUF:
		push(k, v);
		break;
	case CMD_WRITE_AUX_BUF:
		push_aux(k, v);
		break;
	case CMD_WRITE_AUX:
		/* no mouse is connected: the byte goes nowhere and nothing answers */
		break;
	default:
		/* a command to the keyboard itself: acknowledge it */
		push(k, KBD_ACK);
		if (v == KBD_RESET)
			push(k, KBD_RESET_OK);
		break;
	}
}

static void data_read(void *opaque, uint64_t offset, uint8_t *data, uint32_t len)
{
	struct i8042 *k = opaque;

	(void)offset;
	memset(data, 0, len);
	pthread_mutex_lock(&k->lock);
	data[0] = pop(k);
	pthread_mutex_unlock(&k->lock);
}

static void data_write_op(void *opaque, uint64_t offset, const uint8_t *data, uint32_t len)
{
	struct i8042 *k = opaque;

	(void)offset;
	(void)len;
	pthread_mutex_lock(&k->lock);
	data_write(k, data[0]);
	pthread_mutex_unlock(&k->lock);
}

static void cmd_read(void *opaque, uint64_t offset, uint8_t *data, uint32_t len)
{
	struct i8042 *k = opaque;

	(void)offset;
	memset(data, 0, len);
	pthread_mutex_lock(&k->lock);
	data[0] = k->status;
	pthread_mutex_unlock(&k->lock);
}

static void cmd_write(void *opaque, uint64_t offset, const uint8_t *data, uint32_t len)
{
	struct i8042 *k = opaque;

	(void)offset;
	(void)len;
	pthread_mutex_lock(&k->lock);
	command(k, data[0]);
	pthread_mutex_unlock(&k->lock);
}

const struct bus_dev_ops i8042__data_ops = { .read = data_read, .write = data_write_op };
const struct bus_dev_ops i8042__cmd_ops = { .read = cmd_read, .write = cmd_write };
