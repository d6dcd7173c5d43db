// SPDX-License-Identifier: Apache-2.0
/* libFuzzer target: config__parse() on arbitrary bytes, which carry no NUL terminator. */
#include <stddef.h>
#include <stdint.h>

#include "api/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vm_config cfg;

	config__init(&cfg);
	config__parse(&cfg, (const char *)data, size);
	config__free(&cfg);
	return 0;
}
