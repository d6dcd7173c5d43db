/* SPDX-License-Identifier: Apache-2.0 */
/*
 * UTF-8 validation for untrusted text (RFC 3629: no overlong forms, no surrogates, nothing
 * above U+10FFFF).
 */
#ifndef EMBER_API_UTF8_H
#define EMBER_API_UTF8_H

#include <stddef.h>

/* The offset of the first byte that is not valid UTF-8, or len when all of it is. */
size_t utf8__check(const char *s, size_t len);

#endif
