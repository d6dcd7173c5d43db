// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer target: seccomp__parse(), which reads a --seccomp-filter file (a file that the
 * operator names, but that may come from anywhere). A file it accepts has one program for
 * each thread type, each 1 to 4096 instructions long, and nothing else.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "jail/seccomp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct seccomp_filters f;
	size_t insns = 0;

	if (seccomp__parse(&f, data, size))
		return 0;
	for (int t = 0; t < SECCOMP_THREADS; t++) {
		if (!f.insns[t] || !f.len[t] || f.len[t] > SECCOMP_FILE_MAX_INSNS)
			abort();
		insns += f.len[t];
	}
	if (size != SECCOMP_FILE_MAGIC_LEN + 4 +
			    SECCOMP_THREADS * (SECCOMP_FILE_NAME_LEN + 4) +
			    insns * SECCOMP_FILE_INSN_BYTES)
		abort();
	seccomp__free(&f);
	return 0;
}
