// SPDX-License-Identifier: Apache-2.0
#include "jail/jail_path.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>

#include "jail/jail_error.h"

int jail_path__fmt(char *out, size_t size, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(out, size, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= size)
		return jail_error__set(-ENAMETOOLONG, "a path longer than %zu bytes: %.80s...",
				       size - 1, out);
	return 0;
}
