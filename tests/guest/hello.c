// SPDX-License-Identifier: Apache-2.0
/* hello: always passes; the smallest test, for boot and exit checks. */
#include "guest.h"

const char *test_hello(void)
{
	return NULL;
}
