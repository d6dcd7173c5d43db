// SPDX-License-Identifier: Apache-2.0
/*
 * A test-only trigger for tests/security/test_seccomp.py, never part of ember: it installs
 * Ember's seccomp filter for one thread type (the built-in filters, or a file given with
 * --seccomp-filter, through the same src/jail/seccomp.c that ember uses) on a thread of that
 * type's kind, then makes one system call, and prints "survived" if it lives.
 *
 *   seccomp_trigger [--seccomp-filter FILE] THREAD CALL
 *
 * THREAD is api, vmm or vcpu; CALL one of the names below. A call the thread's filter
 * forbids kills the whole process with SIGSYS.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "jail/seccomp.h"
#include "vmm/log.h"

struct job {
	enum seccomp_thread t;
	const char *call;
	int ret;
};

static int call(const char *name)
{
	if (!strcmp(name, "write")) /* allowed everywhere */
		return write(1, "", 0) < 0 ? -1 : 0;
	if (!strcmp(name, "clock_gettime")) { /* the system call, as without a vDSO clock */
		struct timespec ts;

		return (int)syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &ts);
	}
	if (!strcmp(name, "getppid")) /* allowed nowhere */
		return (int)syscall(SYS_getppid);
	if (!strcmp(name, "execve")) {
		static char prog[] = "/bin/true";
		char *args[] = { prog, NULL };

		return (int)syscall(SYS_execve, prog, args, NULL);
	}
	if (!strcmp(name, "openat")) /* the VMM thread's, for PATCH of a drive */
		return (int)syscall(SYS_openat, AT_FDCWD, "/dev/null", O_RDONLY);
	if (!strcmp(name, "socket-inet")) /* AF_UNIX and AF_NETLINK only, on the VMM thread */
		return (int)syscall(SYS_socket, AF_INET, SOCK_STREAM, 0);
	if (!strcmp(name, "socket-unix"))
		return (int)syscall(SYS_socket, AF_UNIX, SOCK_STREAM, 0);
	if (!strcmp(name, "mmap-exec")) /* no thread may map executable memory */
		return syscall(SYS_mmap, NULL, 4096, PROT_READ | PROT_EXEC,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) == (long)MAP_FAILED ? -1 : 0;
	if (!strcmp(name, "mmap-rw"))
		return syscall(SYS_mmap, NULL, 4096, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) == (long)MAP_FAILED ? -1 : 0;
	if (!strcmp(name, "ioctl-kvm-run")) /* on a bad fd: the filter looks at the request */
		return (int)syscall(SYS_ioctl, -1, KVM_RUN, 0);
	if (!strcmp(name, "ioctl-kvm-create-vm")) /* nobody's, once the VM exists */
		return (int)syscall(SYS_ioctl, -1, KVM_CREATE_VM, 0);
	fprintf(stderr, "unknown call %s\n", name);
	return -2;
}

static void *run(void *arg)
{
	struct job *j = arg;

	j->ret = seccomp__apply(j->t);
	if (j->ret) {
		fprintf(stderr, "apply: %s\n", error__get());
		return NULL;
	}
	if (call(j->call) == -2)
		j->ret = -EINVAL;
	return NULL;
}

int main(int argc, char **argv)
{
	const char *filter = NULL;
	struct job j = { 0 };
	pthread_t th;
	int t;

	if (argc == 5 && !strcmp(argv[1], "--seccomp-filter")) {
		filter = argv[2];
		argv += 2;
		argc -= 2;
	}
	if (argc != 3) {
		fprintf(stderr, "usage: seccomp_trigger [--seccomp-filter FILE] THREAD CALL\n");
		return 2;
	}
	for (t = 0; t < SECCOMP_THREADS; t++) {
		if (!strcmp(argv[1], seccomp__thread_name(t)))
			break;
	}
	if (t == SECCOMP_THREADS || seccomp__init(false, filter)) {
		fprintf(stderr, "bad thread or filter: %s\n", error__get());
		return 2;
	}
	j.t = t;
	j.call = argv[2];
	/* the filter goes on a thread of its own, as in ember; the main thread stays free */
	if (pthread_create(&th, NULL, run, &j) || pthread_join(th, NULL))
		return 2;
	if (j.ret)
		return 2;
	printf("survived\n");
	return 0;
}
