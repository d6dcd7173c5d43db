// SPDX-License-Identifier: Apache-2.0
/*
 * The serial console on COM1 and a small printf. Ring-0 guest code may be emulated by the
 * hypervisor (~1 us an instruction, ~10 us a port exit), so output is sent in runs, not by
 * the byte: one LSR poll for THRE per FIFO-full (16 bytes), then one `rep outsb` for the
 * run, and the formatter scans literal text in a tight loop. Lines are written whole under
 * a spinlock shared by all CPUs.
 */
#include "guest.h"

#define COM1 0x3f8
#define UART_THR 0
#define UART_IER 1
#define UART_FCR 2
#define UART_LCR 3
#define UART_LSR 5
#define UART_LCR_8N1 0x03
#define UART_FCR_ENABLE_CLEAR 0x07
#define UART_LSR_THRE 0x20
#define UART_FIFO_SIZE 16
/* Several ms of polling, then write anyway. */
#define THRE_POLLS 1000

static uint32_t lock_word;
/* Bytes the transmit FIFO takes before the next LSR poll; guarded by the lock. */
static unsigned int tx_room;

struct sink {
	char *buf; /* NULL: the UART */
	size_t size;
	size_t len;
};

void console__init(void)
{
	outb(COM1 + UART_IER, 0);
	outb(COM1 + UART_LCR, UART_LCR_8N1);
	outb(COM1 + UART_FCR, UART_FCR_ENABLE_CLEAR);
	tx_room = 0;
}

void console__lock(void)
{
	while (__atomic_exchange_n(&lock_word, 1, __ATOMIC_ACQUIRE)) {
		while (__atomic_load_n(&lock_word, __ATOMIC_RELAXED))
			cpu_relax();
	}
}

void console__unlock(void)
{
	__atomic_store_n(&lock_word, 0, __ATOMIC_RELEASE);
}

void console__write(const char *s, size_t len)
{
	while (len) {
		size_t n;

		if (!tx_room) {
			for (unsigned int i = 0; i < THRE_POLLS; i++) {
				if (inb(COM1 + UART_LSR) & UART_LSR_THRE)
					break;
			}
			tx_room = UART_FIFO_SIZE;
		}
		n = len < tx_room ? len : tx_room;
		tx_room -= (unsigned int)n;
		len -= n;
		__asm__ volatile("rep outsb" : "+S"(s), "+c"(n) : "d"(COM1 + UART_THR) : "memory");
	}
}

void console__putc(char c)
{
	console__write(&c, 1);
}

static void put(struct sink *s, const char *p, size_t n)
{
	if (!s->buf) {
		console__write(p, n);
	} else if (s->len < s->size) {
		size_t room = s->size - 1 - s->len;

		memcpy(s->buf + s->len, p, n < room ? n : room);
	}
	s->len += n;
}

static void put_padded(struct sink *s, const char *str, size_t n, int width, bool left, char pad)
{
	int fill = width > (int)n ? width - (int)n : 0;

	if (!left) {
		/* Zero padding goes after a sign. */
		if (pad == '0' && n && *str == '-') {
			put(s, str++, 1);
			n--;
		}
		while (fill-- > 0)
			put(s, &pad, 1);
	}
	put(s, str, n);
	while (left && fill-- > 0)
		put(s, " ", 1);
}

static size_t utoa(char *buf, uint64_t v, unsigned int base, bool neg)
{
	char tmp[24];
	size_t n = 0, len = 0;

	do {
		tmp[n++] = "0123456789abcdef"[v % base];
		v /= base;
	} while (v);
	if (neg)
		buf[len++] = '-';
	while (n)
		buf[len++] = tmp[--n];
	return len;
}

/* The integer argument for a conversion with length modifier `lmod` (0 none, 'H' hh, 'h',
 * 'l', 'L' ll, 'z'), as 64 bits; `is_signed` sign-extends. */
static uint64_t int_arg(va_list *ap, char lmod, bool is_signed)
{
	switch (lmod) {
	case 'l':
	case 'L':
	case 'z':
		return va_arg(*ap, uint64_t);
	default:
		break;
	}
	if (is_signed) {
		int64_t v = va_arg(*ap, int);

		if (lmod == 'H')
			v = (signed char)v;
		else if (lmod == 'h')
			v = (short)v;
		return (uint64_t)v;
	}
	uint32_t u = va_arg(*ap, unsigned int);

	if (lmod == 'H')
		u = (unsigned char)u;
	else if (lmod == 'h')
		u = (unsigned short)u;
	return u;
}

static char parse_length(const char **fmt)
{
	char c = **fmt;

	if (c == 'h' || c == 'l') {
		(*fmt)++;
		if (**fmt == c) {
			(*fmt)++;
			return c == 'h' ? 'H' : 'L';
		}
		return c;
	}
	if (c == 'z') {
		(*fmt)++;
		return 'z';
	}
	return 0;
}

static int parse_number(const char **fmt, va_list *ap)
{
	int v = 0;

	if (**fmt == '*') {
		(*fmt)++;
		return va_arg(*ap, int);
	}
	while (**fmt >= '0' && **fmt <= '9')
		v = v * 10 + (*(*fmt)++ - '0');
	return v;
}

static void format_one(struct sink *s, const char **fmtp, va_list *ap)
{
	const char *fmt = *fmtp;
	bool left = false, is_signed;
	char pad = ' ', lmod, num[24];
	int width, prec = -1;
	uint64_t v;

	for (;; fmt++) {
		if (*fmt == '-')
			left = true;
		else if (*fmt == '0')
			pad = '0';
		else
			break;
	}
	width = parse_number(&fmt, ap);
	if (*fmt == '.') {
		fmt++;
		prec = parse_number(&fmt, ap);
	}
	lmod = parse_length(&fmt);
	switch (*fmt) {
	case 'c':
		num[0] = (char)va_arg(*ap, int);
		put_padded(s, num, 1, width, left, ' ');
		break;
	case 's': {
		const char *str = va_arg(*ap, const char *);
		if (!str)
			str = "(null)";
		put_padded(s, str, strnlen(str, prec < 0 ? SIZE_MAX : (size_t)prec), width, left,
			   ' ');
		break;
	}
	case 'd':
	case 'i':
	case 'u':
	case 'x':
		is_signed = *fmt == 'd' || *fmt == 'i';
		v = int_arg(ap, lmod, is_signed);
		if (is_signed && (int64_t)v < 0)
			put_padded(s, num, utoa(num, -v, 10, true), width, left, pad);
		else
			put_padded(s, num, utoa(num, v, *fmt == 'x' ? 16 : 10, false), width,
				   left, pad);
		break;
	case 'p':
		put(s, "0x", 2);
		put_padded(s, num, utoa(num, (uintptr_t)va_arg(*ap, void *), 16, false), 0,
			   false, ' ');
		break;
	case '%':
		put(s, "%", 1);
		break;
	default:
		put(s, "%", 1);
		if (!*fmt)
			fmt--;
		else
			put(s, fmt, 1);
	}
	*fmtp = fmt + 1;
}

static void format(struct sink *s, const char *fmt, va_list ap)
{
	va_list aq;

	va_copy(aq, ap);
	while (*fmt) {
		const char *text = fmt;

		while (*fmt && *fmt != '%')
			fmt++;
		if (fmt != text)
			put(s, text, (size_t)(fmt - text));
		if (*fmt) {
			fmt++;
			format_one(s, &fmt, &aq);
		}
	}
	va_end(aq);
}

int vsnformat(char *buf, size_t size, const char *fmt, va_list ap)
{
	struct sink s = { .buf = buf, .size = size };

	format(&s, fmt, ap);
	if (size)
		buf[s.len < size ? s.len : size - 1] = 0;
	return (int)s.len;
}

int snformat(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnformat(buf, size, fmt, ap);
	va_end(ap);
	return n;
}

void report(const char *fmt, ...)
{
	struct sink s = { 0 };
	va_list ap;

	va_start(ap, fmt);
	console__lock();
	console__write(GUEST_PREFIX, sizeof(GUEST_PREFIX) - 1);
	format(&s, fmt, ap);
	console__putc('\n');
	console__unlock();
	va_end(ap);
}
