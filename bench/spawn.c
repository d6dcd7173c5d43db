// SPDX-License-Identifier: Apache-2.0
/*
 * bench/spawn: runs a command with stdout on a pipe and prints, as one JSON object, the
 * microseconds from just before fork() to the first byte on stdout and to the exit, the
 * peak RSS of the child (KiB, from wait4) and its exit code. The child's stdout bytes are
 * counted and discarded. A small C parent keeps its own RSS, which a child inherits until
 * exec, below any VMM's.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000ULL + (uint64_t)ts.tv_nsec / 1000ULL;
}

int main(int argc, char **argv)
{
	int fds[2], status;
	uint64_t t0, first = 0, total = 0;
	struct rusage ru;
	char buf[4096];
	ssize_t n;
	pid_t pid;

	if (argc < 2) {
		fprintf(stderr, "usage: spawn COMMAND [ARGS...]\n");
		return 2;
	}
	if (pipe(fds) < 0)
		return 2;
	t0 = now_us();
	pid = fork();
	if (pid < 0)
		return 2;
	if (pid == 0) {
		dup2(fds[1], STDOUT_FILENO);
		close(fds[0]);
		close(fds[1]);
		execvp(argv[1], argv + 1);
		_exit(127);
	}
	close(fds[1]);
	while ((n = read(fds[0], buf, sizeof(buf))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			break;
		if (!total)
			first = now_us() - t0;
		total += (uint64_t)n;
	}
	if (wait4(pid, &status, 0, &ru) < 0)
		return 2;
	printf("{\"first_byte_us\": %llu, \"exit_us\": %llu, \"maxrss_kib\": %ld, "
	       "\"stdout_bytes\": %llu, \"code\": %d}\n",
	       (unsigned long long)first, (unsigned long long)(now_us() - t0), ru.ru_maxrss,
	       (unsigned long long)total,
	       WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
	return 0;
}
