// SPDX-License-Identifier: Apache-2.0
#include "api/utf8.h"

#include <stdint.h>

/* The length of the sequence that starts with lead byte c, and its first continuation
 * byte's allowed range; 0 for a byte that cannot start one. */
static unsigned int sequence(uint8_t c, uint8_t *lo, uint8_t *hi)
{
	*lo = 0x80;
	*hi = 0xbf;
	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		return 2;
	if (c >= 0xe0 && c <= 0xef) {
		if (c == 0xe0)
			*lo = 0xa0; /* no overlong forms */
		if (c == 0xed)
			*hi = 0x9f; /* no surrogates */
		return 3;
	}
	if (c >= 0xf0 && c <= 0xf4) {
		if (c == 0xf0)
			*lo = 0x90;
		if (c == 0xf4)
			*hi = 0x8f; /* nothing above U+10FFFF */
		return 4;
	}
	return 0;
}

size_t utf8__check(const char *s, size_t len)
{
	const uint8_t *p = (const uint8_t *)s;
	size_t i = 0;

	while (i < len) {
		uint8_t lo, hi;
		unsigned int n = sequence(p[i], &lo, &hi);

		if (!n || n > len - i)
			return i;
		for (unsigned int k = 1; k < n; k++) {
			uint8_t c = p[i + k];

			if (c < (k == 1 ? lo : 0x80) || c > (k == 1 ? hi : 0xbf))
				return i;
		}
		i += n;
	}
	return len;
}
