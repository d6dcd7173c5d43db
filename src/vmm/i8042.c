// SPDX-License-Identifier: Apache-2.0
#include "vmm/i8042.h"

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>

#include "vmm/log.h"
#include "vmm/snapshot_file.h"

#define SB_OUT_FULL 0x01
#define SB_SYSTEM 0x04
#define SB_LAST_CMD 0x08
#define SB_KBD_ENABLED 0x10

#define CB_KBD_INT 0x01
#define CB_SYSTEM 0x04
#define CB_KBD_DISABLE 0x10
#define CB_AUX_DISABLE 0x20
#define CB_POST_OK 0x40 /* translate to scan code set 1 */

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
#define CMD_RESET_CPU 0xfe

#define AUX_TEST_NO_PORT 0x02

#define KBD_ACK 0xfa
#define KBD_RESEND 0xfe
#define KBD_ECHO 0xee
#define KBD_RESET_OK 0xaa
#define KBD_CMD_SET_LEDS 0xed
#define KBD_CMD_ECHO 0xee
#define KBD_CMD_SCANCODE_SET 0xf0
#define KBD_CMD_GET_ID 0xf2
#define KBD_CMD_TYPEMATIC 0xf3
#define KBD_CMD_RESET 0xff
#define KBD_ID 0xab
#define KBD_ID2 0x83	   /* an MF2 keyboard */
#define KBD_ID2_XLATE 0x41 /* the same, as the controller translates it */
#define KBD_SET2 0x02
#define KBD_SET2_XLATE 0x41

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
	if (k->count == I8042_BUF) {
		k->m.missed_write_count++;
		return;
	}
	k->buf[(k->head + k->count) % I8042_BUF] = byte;
	k->count++;
	k->status |= SB_OUT_FULL;
	pulse_irq(k);
}

static uint8_t pop(struct i8042 *k)
{
	uint8_t b;

	if (!k->count) {
		k->m.missed_read_count++;
		return 0;
	}
	k->m.read_count++;
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

void i8042__send_ctrl_alt_del(struct i8042 *k)
{
	/* scan code set 1, which the controller hands out when it translates (CTR bit 6) */
	static const uint8_t set1[] = { 0x1d, 0x38, 0xe0, 0x53, 0xe0, 0xd3, 0xb8, 0x9d };
	/* scan code set 2, what the keyboard itself sends */
	static const uint8_t set2[] = { 0x14, 0x11, 0xe0, 0x71, 0xe0, 0xf0,
					0x71, 0xf0, 0x11, 0xf0, 0x14 };
	bool translate;

	pthread_mutex_lock(&k->lock);
	translate = k->ctrl & CB_POST_OK;
	for (size_t i = 0; i < (translate ? sizeof(set1) : sizeof(set2)); i++)
		push(k, translate ? set1[i] : set2[i]);
	pthread_mutex_unlock(&k->lock);
}

void i8042__destroy(struct i8042 *k)
{
	pthread_mutex_destroy(&k->lock);
}

static void cpu_reset(struct i8042 *k)
{
	k->m.reset_count++;
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
		push(k, 0x00);
		break;
	case CMD_TEST_AUX:
		/* there is no mouse port: its clock line reads stuck, so Linux skips it */
		push(k, AUX_TEST_NO_PORT);
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

static bool translating(const struct i8042 *k)
{
	return k->ctrl & CB_POST_OK;
}

/* The keyboard's answer to a command byte (or to a command's data byte). */
static void keyboard(struct i8042 *k, uint8_t v)
{
	uint8_t cmd = k->kbd_pending;

	k->kbd_pending = 0;
	if (cmd == KBD_CMD_SCANCODE_SET && v == 0) {
		push(k, KBD_ACK);
		push(k, translating(k) ? KBD_SET2_XLATE : KBD_SET2);
		return;
	}
	if (cmd) { /* the data byte of LEDs, typematic rate, scan code set */
		push(k, KBD_ACK);
		return;
	}
	switch (v) {
	case KBD_CMD_SET_LEDS:
	case KBD_CMD_TYPEMATIC:
	case KBD_CMD_SCANCODE_SET:
		k->kbd_pending = v;
		push(k, KBD_ACK);
		break;
	case KBD_CMD_GET_ID:
		push(k, KBD_ACK);
		push(k, KBD_ID);
		push(k, translating(k) ? KBD_ID2_XLATE : KBD_ID2);
		break;
	case KBD_CMD_ECHO:
		push(k, KBD_ECHO);
		break;
	case KBD_CMD_RESET:
		push(k, KBD_ACK);
		push(k, KBD_RESET_OK);
		break;
	default:
		/* 0xf4-0xfd: enable, disable, defaults, key types: all acknowledged */
		push(k, v >= 0xf4 ? KBD_ACK : KBD_RESEND);
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
	default:
		keyboard(k, v);
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
	k->m.write_count++;
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

/* ---- snapshots ---- */

int i8042__save(const struct i8042 *k, struct snapshot_file_writer *w)
{
	const uint8_t regs[] = { k->status, k->ctrl, k->outp, k->pending, k->kbd_pending };

	snapshot_file__begin_section(w, SNAPSHOT_SECTION_I8042, SNAPSHOT_FILE_MUST_UNDERSTAND);
	snapshot_file__put_bytes(w, regs, sizeof(regs));
	snapshot_file__put_u8(w, (uint8_t)k->count);
	for (unsigned int i = 0; i < k->count; i++)
		snapshot_file__put_u8(w, k->buf[(k->head + i) % I8042_BUF]);
	return snapshot_file__end_section(w);
}

enum { KR_STATUS, KR_CTRL, KR_OUTP, KR_PENDING, KR_KBD_PENDING, KR_NR };

static bool valid_pending(uint8_t cmd)
{
	return !cmd || cmd == CMD_WRITE_CTRL || cmd == CMD_WRITE_OUTP || cmd == CMD_WRITE_KBD_BUF;
}

static bool valid_kbd_pending(uint8_t cmd)
{
	return !cmd || cmd == KBD_CMD_SET_LEDS || cmd == KBD_CMD_TYPEMATIC ||
	       cmd == KBD_CMD_SCANCODE_SET;
}

static int check_saved(const uint8_t *regs, uint8_t count)
{
	if (count > I8042_BUF)
		return error__set(-EINVAL, "i8042: the snapshot's output buffer holds %u bytes, "
				  "more than its %u", count, I8042_BUF);
	if (!valid_pending(regs[KR_PENDING]) || !valid_kbd_pending(regs[KR_KBD_PENDING]))
		return error__set(-EINVAL, "i8042: the snapshot waits for the data byte of "
				  "commands 0x%02x and 0x%02x, which take none",
				  regs[KR_PENDING], regs[KR_KBD_PENDING]);
	if (!(regs[KR_STATUS] & SB_OUT_FULL) != !count)
		return error__set(-EINVAL, "i8042: the snapshot's status 0x%02x does not match its "
				  "%u bytes of output", regs[KR_STATUS], count);
	return 0;
}

int i8042__restore(struct i8042 *k, const struct snapshot_file_reader *r)
{
	struct snapshot_file_section sec;
	struct snapshot_file_cursor c;
	const uint8_t *buf = NULL;
	uint8_t regs[KR_NR], count = 0;
	int ret = snapshot_file__find(r, SNAPSHOT_SECTION_I8042, &sec);

	if (ret)
		return error__set(-EINVAL, "i8042: the snapshot has no i8042 section");
	snapshot_file__cursor(&sec, &c);
	ret = snapshot_file__get_bytes(&c, regs, sizeof(regs));
	if (!ret)
		ret = snapshot_file__get_u8(&c, &count);
	if (!ret)
		ret = check_saved(regs, count);
	if (!ret && count)
		ret = snapshot_file__get_ptr(&c, count, &buf);
	if (!ret)
		ret = snapshot_file__expect_end(&c);
	if (ret)
		return ret;
	pthread_mutex_lock(&k->lock);
	k->status = regs[KR_STATUS];
	k->ctrl = regs[KR_CTRL];
	k->outp = regs[KR_OUTP];
	k->pending = regs[KR_PENDING];
	k->kbd_pending = regs[KR_KBD_PENDING];
	k->head = 0;
	k->count = count;
	if (count)
		memcpy(k->buf, buf, count);
	pthread_mutex_unlock(&k->lock);
	return 0;
}
