/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The jailer's one error slot: a failing function names what it was doing
 * ("writing /sys/fs/cgroup/cpu/ember/a1/cpu.bogus") and returns -errno; main() prints
 * "ember-jailer: step 6 (cgroups): writing ...: No such file or directory".
 */
#ifndef EMBER_JAIL_ERROR_H
#define EMBER_JAIL_ERROR_H

/* Records what failed; returns err (a negative errno) so that a caller can
 * `return jail_error__set(-errno, "opening %s", path);`. The first error wins until
 * jail_error__clear(): an error met while unwinding does not hide the one that caused it. */
int jail_error__set(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
const char *jail_error__msg(void);
void jail_error__clear(void);

#endif
