// SPDX-License-Identifier: Apache-2.0
/* The few libc functions the guest needs; gcc may also call memset/memcpy on its own. */
#include "guest.h"

void *memset(void *dst, int c, size_t n)
{
	void *d = dst;

	if (!(((uintptr_t)dst | n) & 7) && !c) {
		n /= 8;
		__asm__ volatile("rep stosq" : "+D"(d), "+c"(n) : "a"(0UL) : "memory");
		return dst;
	}
	__asm__ volatile("rep stosb" : "+D"(d), "+c"(n) : "a"(c) : "memory");
	return dst;
}

void *memcpy(void *dst, const void *src, size_t n)
{
	void *d = dst;

	__asm__ volatile("rep movsb" : "+D"(d), "+S"(src), "+c"(n) : : "memory");
	return dst;
}

int memcmp(const void *a, const void *b, size_t n)
{
	const unsigned char *x = a, *y = b;

	for (size_t i = 0; i < n; i++) {
		if (x[i] != y[i])
			return x[i] < y[i] ? -1 : 1;
	}
	return 0;
}

/* A word at a time once aligned: with ring 0 emulated, each instruction costs ~1 us. */
size_t strnlen(const char *s, size_t max)
{
	typedef uint64_t __attribute__((may_alias)) word_t;
	const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
	size_t n = 0;

	for (; n < max && ((uintptr_t)(s + n) & 7); n++) {
		if (!s[n])
			return n;
	}
	for (; max - n >= 8; n += 8) {
		uint64_t w = *(const word_t *)(s + n);

		if ((w - ones) & ~w & highs)
			break;
	}
	while (n < max && s[n])
		n++;
	return n;
}

size_t strlen(const char *s)
{
	return strnlen(s, SIZE_MAX);
}

bool str_has_prefix(const char *s, const char *prefix)
{
	while (*prefix) {
		if (*s++ != *prefix++)
			return false;
	}
	return true;
}

static int digit_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return 99;
}

bool parse_uint(const char *s, size_t len, uint64_t max, uint64_t *out)
{
	unsigned int base = 10;
	uint64_t v = 0;

	if (len > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		s += 2;
		len -= 2;
	}
	if (!len)
		return false;
	for (size_t i = 0; i < len; i++) {
		int d = digit_value(s[i]);

		if (d >= (int)base || v > (max - (uint64_t)d) / base)
			return false;
		v = v * base + (uint64_t)d;
	}
	*out = v;
	return true;
}
