/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The compiled seccomp filters' file format: what build/ember-seccompiler writes from
 * resources/seccomp/x86_64.json (built into ember) or from a user's rules (for
 * --seccomp-filter), and what src/jail/seccomp.c reads. All integers little-endian.
 *
 *   magic      8 bytes  "EMBERSC1"
 *   count      u32      the number of filters that follow (one per thread type, <= 8)
 *   count times:
 *     name     16 bytes the thread type, NUL-padded: "api", "vmm" or "vcpu"
 *     len      u32      instructions in the program (1 to 4096, BPF_MAXINSNS)
 *     insns    len * 8  struct sock_filter: u16 code, u8 jt, u8 jf, u32 k
 *
 * Nothing may follow the last program.
 */
#ifndef EMBER_JAIL_SECCOMP_FORMAT_H
#define EMBER_JAIL_SECCOMP_FORMAT_H

#define SECCOMP_FILE_MAGIC "EMBERSC1"
#define SECCOMP_FILE_MAGIC_LEN 8
#define SECCOMP_FILE_NAME_LEN 16
#define SECCOMP_FILE_MAX_FILTERS 8
#define SECCOMP_FILE_MAX_INSNS 4096
#define SECCOMP_FILE_INSN_BYTES 8

/* The thread types, each with a filter of its own. */
enum seccomp_thread {
	SECCOMP_THREAD_API,
	SECCOMP_THREAD_VMM,
	SECCOMP_THREAD_VCPU,
	SECCOMP_THREADS,
};

#define SECCOMP_THREAD_NAMES { "api", "vmm", "vcpu" }

#endif
