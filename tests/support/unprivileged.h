/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Running a piece of a test as a jailed Ember runs: without the capabilities that load and
 * attach eBPF programs (CAP_BPF, CAP_NET_ADMIN, CAP_SYS_ADMIN, CAP_PERFMON), so that the
 * code under test meets the kernel's own EPERM rather than a fake one. Only the effective
 * set changes: the permitted set keeps them, and unprivileged__end() raises them again.
 * Harmless when the test runs without them anyway.
 */
#ifndef EMBER_TESTS_UNPRIVILEGED_H
#define EMBER_TESTS_UNPRIVILEGED_H

#include <stdint.h>

struct unprivileged {
	uint32_t effective[2]; /* as it was, for unprivileged__end() */
};

/* Drops the capabilities from the effective set. 0 or -errno. */
int unprivileged__begin(struct unprivileged *u);
/* The effective set as it was before unprivileged__begin(). 0 or -errno. */
int unprivileged__end(const struct unprivileged *u);

#endif
