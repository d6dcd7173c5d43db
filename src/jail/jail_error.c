// SPDX-License-Identifier: Apache-2.0
#include "jail/jail_error.h"

#include <stdarg.h>
#include <stdio.h>

static char msg[1024];

int jail_error__set(int err, const char *fmt, ...)
{
	va_list ap;

	if (msg[0])
		return err;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return err;
}

const char *jail_error__msg(void)
{
	return msg;
}

void jail_error__clear(void)
{
	msg[0] = '\0';
}
