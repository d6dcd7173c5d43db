/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What a dynamically linked exec-file needs inside the jail: its ELF interpreter
 * (PT_INTERP) and the shared libraries it and they need (DT_NEEDED, recursively), found the
 * way ld.so finds them (DT_RUNPATH, then the system directories). Firecracker's jailer
 * copies only the binary, because Firecracker is linked statically; Ember links cJSON,
 * liburing and libbpf from Debian, which ship no static cJSON, so the jailer copies these
 * too. A static exec-file needs nothing and gets nothing.
 */
#ifndef EMBER_JAIL_ELF_H
#define EMBER_JAIL_ELF_H

#include <limits.h>

#define JAIL_ELF_MAX_DEPS 48

struct jail_elf_deps {
	int n;
	char path[JAIL_ELF_MAX_DEPS][PATH_MAX]; /* absolute host paths, the interpreter first */
};

/* 0, or -errno with jail_error__set(): not an ELF64 file, a library not found, too many. */
int jail_elf__deps(const char *exec_file, struct jail_elf_deps *deps);

#endif
