/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Per-thread seccomp filters (docs/seccomp.md). The filters are compiled BPF, built from
 * resources/seccomp/x86_64.json by build/ember-seccompiler at build time and carried in
 * the ember binary; --seccomp-filter FILE replaces them with a file of the same format
 * (seccomp_format.h), --no-seccomp turns them off. Each thread installs its own before it
 * handles untrusted input: the API thread as it starts, each vCPU thread as it starts, the
 * VMM thread once the VM is built and its vCPU threads exist (a thread inherits its
 * creator's filter, so the VMM thread's must come after them). Ember does no rule parsing
 * at run time: it checks the file's framing and hands the programs to the kernel.
 */
#ifndef EMBER_JAIL_SECCOMP_H
#define EMBER_JAIL_SECCOMP_H

#include <linux/filter.h>
#include <stdbool.h>
#include <stddef.h>

#include "jail/seccomp_format.h"

struct seccomp_filters {
	struct sock_filter *insns[SECCOMP_THREADS]; /* each malloc()ed */
	unsigned int len[SECCOMP_THREADS];
};

/*
 * Checks and copies a compiled file's filters. Every thread type must have exactly one
 * filter. 0, or -EINVAL with error__set() naming what is wrong (and out is left empty).
 */
int seccomp__parse(struct seccomp_filters *out, const void *data, size_t size);
void seccomp__free(struct seccomp_filters *f);

/*
 * The process's choice, made once by main before any thread starts: the built-in filters
 * (path NULL), a compiled file's, or none (disabled). 0 or -errno with error__set().
 */
int seccomp__init(bool disabled, const char *path);
/* The thread type's filter, on the calling thread (with no_new_privs); 0 when disabled. */
int seccomp__apply(enum seccomp_thread t);
/* The built-in file (for tests and reports). */
const void *seccomp__builtin(size_t *size);
const char *seccomp__thread_name(enum seccomp_thread t);

#endif
