// SPDX-License-Identifier: Apache-2.0
#include "vmm/serial.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "vmm/log.h"
#include "vmm/snapshot_file.h"

/* register offsets */
#define REG_DATA 0 /* RBR/THR, or DLL with DLAB */
#define REG_IER 1  /* or DLM with DLAB */
#define REG_IIR 2  /* FCR on write */
#define REG_LCR 3
#define REG_MCR 4
#define REG_LSR 5
#define REG_MSR 6
#define REG_SCR 7

#define IER_RDA 0x01
#define IER_THRE 0x02
#define IER_MASK 0x0f
#define IIR_NONE 0x01
#define IIR_THRE 0x02
#define IIR_RDA 0x04
#define IIR_FIFO 0xc0
#define FCR_ENABLE 0x01
#define FCR_CLEAR_RX 0x02
#define LCR_DLAB 0x80
#define LSR_DR 0x01
#define LSR_THRE 0x20
#define LSR_TEMT 0x40
#define MCR_DTR 0x01
#define MCR_RTS 0x02
#define MCR_OUT1 0x04
#define MCR_OUT2 0x08
#define MCR_LOOP 0x10
#define MSR_CTS 0x10
#define MSR_DSR 0x20
#define MSR_RI 0x40
#define MSR_DCD 0x80
/* what a connected terminal shows: DCD, DSR, CTS */
#define MSR_DEFAULT (MSR_DCD | MSR_DSR | MSR_CTS)

static void pulse_irq(struct serial *s)
{
	uint64_t one = 1;
	ssize_t r;

	if (s->irq_fd < 0)
		return;
	r = write(s->irq_fd, &one, sizeof(one));
	(void)r;
}

void serial__init(struct serial *s, int out_fd, int irq_fd, int rx_ready_fd)
{
	memset(s, 0, sizeof(*s));
	pthread_mutex_init(&s->lock, NULL);
	s->out_fd = out_fd;
	s->out_kick_fd = -1;
	s->irq_fd = irq_fd;
	s->rx_ready_fd = rx_ready_fd;
	s->msr = MSR_DEFAULT;
	s->mcr = MCR_OUT2;
	s->dll = 0x0c; /* 9600 baud */
}

void serial__destroy(struct serial *s)
{
	pthread_mutex_destroy(&s->lock);
}

static void flush_locked(struct serial *s)
{
	size_t off = 0;
	ssize_t r;

	while (off < s->out_len) {
		r = write(s->out_fd, s->out_buf + off, s->out_len - off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		off += (size_t)r;
	}
	s->m.write_count += off;
	s->m.missed_write_count += s->out_len - off;
	if (off)
		s->m.flush_count++;
	s->out_len = 0;
}

static void write_out(struct serial *s, uint8_t byte)
{
	if (s->out_fd < 0)
		return;
	s->out_buf[s->out_len++] = byte;
	if (byte == '\n' || s->out_len == SERIAL_OUT_BUF || s->out_kick_fd < 0) {
		flush_locked(s);
	} else if (s->out_len == 1) {
		uint64_t one = 1;
		ssize_t r = write(s->out_kick_fd, &one, sizeof(one));

		(void)r;
	}
}

void serial__flush(struct serial *s)
{
	pthread_mutex_lock(&s->lock);
	flush_locked(s);
	pthread_mutex_unlock(&s->lock);
}

void serial__set_out_kick(struct serial *s, int out_kick_fd)
{
	s->out_kick_fd = out_kick_fd;
}

static void rx_push(struct serial *s, uint8_t byte)
{
	if (s->rx_count == SERIAL_RX_FIFO)
		return;
	s->rx[(s->rx_head + s->rx_count) % SERIAL_RX_FIFO] = byte;
	s->rx_count++;
	if (s->rx_count == SERIAL_RX_FIFO)
		s->rx_was_full = 1;
}

/* Tells the VMM thread, which stopped feeding input when the FIFO filled, to go on. */
static void rx_drained(struct serial *s)
{
	uint64_t one = 1;
	ssize_t r;

	if (!s->rx_was_full || s->rx_count > SERIAL_RX_FIFO / 2)
		return;
	s->rx_was_full = 0;
	if (s->rx_ready_fd < 0)
		return;
	r = write(s->rx_ready_fd, &one, sizeof(one));
	(void)r;
}

static uint8_t rx_pop(struct serial *s)
{
	uint8_t b;

	if (!s->rx_count) {
		s->m.missed_read_count++;
		return 0;
	}
	s->m.read_count++;
	b = s->rx[s->rx_head];
	s->rx_head = (s->rx_head + 1) % SERIAL_RX_FIFO;
	s->rx_count--;
	rx_drained(s);
	return b;
}

static uint8_t iir(struct serial *s)
{
	uint8_t fifo = (s->fcr & FCR_ENABLE) ? IIR_FIFO : 0;

	if ((s->ier & IER_RDA) && s->rx_count)
		return fifo | IIR_RDA;
	if ((s->ier & IER_THRE) && s->thre_pending)
		return fifo | IIR_THRE;
	return fifo | IIR_NONE;
}

static uint8_t loop_msr(struct serial *s)
{
	uint8_t m = 0;

	if (s->mcr & MCR_RTS)
		m |= MSR_CTS;
	if (s->mcr & MCR_DTR)
		m |= MSR_DSR;
	if (s->mcr & MCR_OUT1)
		m |= MSR_RI;
	if (s->mcr & MCR_OUT2)
		m |= MSR_DCD;
	return m;
}

static uint8_t read_reg(struct serial *s, uint64_t reg)
{
	uint8_t v;

	switch (reg) {
	case REG_DATA:
		if (s->lcr & LCR_DLAB)
			return s->dll;
		return rx_pop(s);
	case REG_IER:
		return (s->lcr & LCR_DLAB) ? s->dlm : s->ier;
	case REG_IIR:
		v = iir(s);
		/* reading IIR acknowledges a THR-empty interrupt */
		if ((v & 0x0f) == IIR_THRE)
			s->thre_pending = 0;
		return v;
	case REG_LCR:
		return s->lcr;
	case REG_MCR:
		return s->mcr;
	case REG_LSR:
		return LSR_THRE | LSR_TEMT | (s->rx_count ? LSR_DR : 0);
	case REG_MSR:
		return (s->mcr & MCR_LOOP) ? loop_msr(s) : s->msr;
	default:
		return s->scr;
	}
}

static void transmit(struct serial *s, uint8_t byte)
{
	if (s->mcr & MCR_LOOP) {
		rx_push(s, byte);
		if (s->ier & IER_RDA)
			pulse_irq(s);
	} else {
		write_out(s, byte);
	}
	/* the byte is gone at once: THR is empty again */
	if (s->ier & IER_THRE) {
		s->thre_pending = 1;
		pulse_irq(s);
	}
}

static void write_ier(struct serial *s, uint8_t v)
{
	uint8_t old = s->ier;

	/* Linux writes IER at the end of each console write and transmit burst */
	flush_locked(s);
	s->ier = v & IER_MASK;
	/* enabling the THR-empty interrupt while THR is empty raises it at once */
	if ((s->ier & IER_THRE) && !(old & IER_THRE)) {
		s->thre_pending = 1;
		pulse_irq(s);
	}
	if ((s->ier & IER_RDA) && !(old & IER_RDA) && s->rx_count)
		pulse_irq(s);
}

static void write_reg(struct serial *s, uint64_t reg, uint8_t v)
{
	switch (reg) {
	case REG_DATA:
		if (s->lcr & LCR_DLAB)
			s->dll = v;
		else
			transmit(s, v);
		break;
	case REG_IER:
		if (s->lcr & LCR_DLAB)
			s->dlm = v;
		else
			write_ier(s, v);
		break;
	case REG_IIR:
		s->fcr = v;
		if (v & FCR_CLEAR_RX) {
			s->rx_head = s->rx_count = 0;
			rx_drained(s);
		}
		break;
	case REG_LCR:
		s->lcr = v;
		break;
	case REG_MCR:
		s->mcr = v & 0x1f;
		break;
	case REG_LSR:
	case REG_MSR:
		break; /* read-only */
	default:
		s->scr = v;
		break;
	}
}

static void serial_read(void *opaque, uint64_t offset, uint8_t *data, uint32_t len)
{
	struct serial *s = opaque;

	memset(data, 0, len);
	pthread_mutex_lock(&s->lock);
	data[0] = read_reg(s, offset);
	pthread_mutex_unlock(&s->lock);
}

static void serial_write(void *opaque, uint64_t offset, const uint8_t *data, uint32_t len)
{
	struct serial *s = opaque;

	(void)len;
	pthread_mutex_lock(&s->lock);
	write_reg(s, offset, data[0]);
	pthread_mutex_unlock(&s->lock);
}

const struct bus_dev_ops serial__ops = {
	.read = serial_read,
	.write = serial_write,
};

size_t serial__rx_space(struct serial *s)
{
	size_t space;

	pthread_mutex_lock(&s->lock);
	space = SERIAL_RX_FIFO - s->rx_count;
	pthread_mutex_unlock(&s->lock);
	return space;
}

size_t serial__input(struct serial *s, const uint8_t *buf, size_t len)
{
	size_t n = 0;

	pthread_mutex_lock(&s->lock);
	while (n < len && s->rx_count < SERIAL_RX_FIFO)
		rx_push(s, buf[n++]);
	if (n && (s->ier & IER_RDA))
		pulse_irq(s);
	pthread_mutex_unlock(&s->lock);
	return n;
}

/* ---- snapshots ---- */

/* The vCPUs are parked and only the VMM thread feeds input: nothing changes meanwhile. */
int serial__save(const struct serial *s, struct snapshot_file_writer *w)
{
	const uint8_t regs[] = { s->ier, s->lcr, s->mcr, s->msr, s->scr,
				 s->dll, s->dlm, s->fcr, s->thre_pending };

	snapshot_file__begin_section(w, SNAPSHOT_SECTION_SERIAL, SNAPSHOT_FILE_MUST_UNDERSTAND);
	snapshot_file__put_bytes(w, regs, sizeof(regs));
	snapshot_file__put_u32(w, s->rx_count);
	for (unsigned int i = 0; i < s->rx_count; i++)
		snapshot_file__put_u8(w, s->rx[(s->rx_head + i) % SERIAL_RX_FIFO]);
	return snapshot_file__end_section(w);
}

enum { SR_IER, SR_LCR, SR_MCR, SR_MSR, SR_SCR, SR_DLL, SR_DLM, SR_FCR, SR_THRE, SR_NR };

int serial__restore(struct serial *s, const struct snapshot_file_reader *r)
{
	struct snapshot_file_section sec;
	struct snapshot_file_cursor c;
	const uint8_t *rx = NULL;
	uint8_t regs[SR_NR];
	uint32_t count = 0;
	int ret = snapshot_file__find(r, SNAPSHOT_SECTION_SERIAL, &sec);

	if (ret)
		return error__set(-EINVAL, "serial: the snapshot has no serial section");
	snapshot_file__cursor(&sec, &c);
	ret = snapshot_file__get_bytes(&c, regs, sizeof(regs));
	if (!ret)
		ret = snapshot_file__get_u32(&c, &count);
	if (!ret && count > SERIAL_RX_FIFO)
		return error__set(-EINVAL, "serial: the snapshot's receive FIFO holds %u bytes, "
				  "more than its %u", count, SERIAL_RX_FIFO);
	if (!ret && count)
		ret = snapshot_file__get_ptr(&c, count, &rx);
	if (!ret)
		ret = snapshot_file__expect_end(&c);
	if (ret)
		return ret;
	if ((regs[SR_IER] & ~IER_MASK) || (regs[SR_MCR] & ~0x1f) || regs[SR_THRE] > 1)
		return error__set(-EINVAL, "serial: the snapshot's IER 0x%02x, MCR 0x%02x or "
				  "THR-empty flag %u are not ones a 16550A holds",
				  regs[SR_IER], regs[SR_MCR], regs[SR_THRE]);
	pthread_mutex_lock(&s->lock);
	s->ier = regs[SR_IER];
	s->lcr = regs[SR_LCR];
	s->mcr = regs[SR_MCR];
	s->msr = regs[SR_MSR];
	s->scr = regs[SR_SCR];
	s->dll = regs[SR_DLL];
	s->dlm = regs[SR_DLM];
	s->fcr = regs[SR_FCR];
	s->thre_pending = regs[SR_THRE];
	s->rx_head = 0;
	s->rx_count = count;
	if (count)
		memcpy(s->rx, rx, count);
	s->rx_was_full = count == SERIAL_RX_FIFO;
	pthread_mutex_unlock(&s->lock);
	return 0;
}
