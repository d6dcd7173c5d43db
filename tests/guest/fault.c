// SPDX-License-Identifier: Apache-2.0
/*
 * fault: raises #UD on purpose, to check the runtime's exception path: the fault is
 * reported, this test fails, the summary follows and the guest exits as asked.
 */
#include "guest.h"

const char *test_fault(void)
{
	__asm__ volatile("ud2");
	return "still running after ud2";
}
