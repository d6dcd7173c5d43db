// SPDX-License-Identifier: Apache-2.0
/*
 * counter: counts in memory for ever, and prints "counter <n>" each COUNTER_STEP counts.
 * For snapshots (tests/api/test_snapshot.py): a restored guest must go on from the count it
 * had, not from zero, and print every step once. Never returns; the host stops it.
 */
#include "guest.h"

#define COUNTER_STEP 2000

static volatile uint64_t count;

const char *test_counter(void)
{
	for (;;) {
		count++;
		if (count % COUNTER_STEP == 0)
			report("counter %llu", (unsigned long long)count);
	}
	return NULL;
}
