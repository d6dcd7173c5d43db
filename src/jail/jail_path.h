/* SPDX-License-Identifier: Apache-2.0 */
/* Paths built with printf formats, refused (not cut) when they do not fit. */
#ifndef EMBER_JAIL_PATH_H
#define EMBER_JAIL_PATH_H

#include <stddef.h>

/* 0, or -ENAMETOOLONG with jail_error__set() when the result needs more than size bytes. */
int jail_path__fmt(char *out, size_t size, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
