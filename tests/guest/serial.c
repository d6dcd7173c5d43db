// SPDX-License-Identifier: Apache-2.0
/*
 * serial: a fixed pattern the host compares byte for byte (docs/test-guest.md):
 *   "EMBER-GUEST: serial " + every printable ASCII byte 0x20..0x7e + "\n"
 *   2000 bytes, byte i = SERIAL_ALPHABET[i % 36], + "\n"
 *   "EMBER-GUEST: serial-end\n"
 */
#include "guest.h"

#define SERIAL_ALPHABET "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
#define SERIAL_LONG_LINE 2000

/* Bytes 0x20 to 0x7e in order, spelt out: a loop would cost ~1 us a byte. */
static const char printable[] = " !\"#$%&'()*+,-./0123456789:;<=>?@"
				"ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~";

_Static_assert(sizeof(printable) - 1 == 0x7f - 0x20, "not every printable byte");

const char *test_serial(void)
{
	static const char alphabet[] = SERIAL_ALPHABET, prefix[] = GUEST_PREFIX "serial ";
	const size_t period = sizeof(alphabet) - 1;
	size_t left = SERIAL_LONG_LINE;

	console__lock();
	console__write(prefix, sizeof(prefix) - 1);
	console__write(printable, sizeof(printable) - 1);
	console__putc('\n');
	for (; left >= period; left -= period)
		console__write(alphabet, period);
	console__write(alphabet, left);
	console__putc('\n');
	console__unlock();
	report("serial-end");
	return NULL;
}
