// SPDX-License-Identifier: Apache-2.0
/*
 * ember-jailer: Firecracker's jailer for Ember (docs/jailer.md). main() runs the twelve
 * steps in Firecracker's order; a failing step is reported as
 *     ember-jailer: step 6 (cgroups): writing /sys/fs/cgroup/cpu/ember/a1/cpu.bogus: No such
 *     file or directory
 * and what the earlier steps made (the jail directory, the cgroups) is removed before the
 * jailer exits 1. After the exec the jail stays, as with Firecracker: the caller removes
 * it (and the cgroups) when Ember has exited.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "jail/jail_args.h"
#include "jail/jail_cgroup.h"
#include "jail/jail_error.h"
#include "jail/jail_fs.h"
#include "jail/jail_priv.h"
#include "vmm/cli.h" /* EMBER_VERSION only: the jailer links none of Ember's code */

enum step {
	STEP_SANITIZE = 1,
	STEP_ID,
	STEP_CHROOT,
	STEP_NETNS,
	STEP_RLIMITS,
	STEP_CGROUPS,
	STEP_MOUNT_NS,
	STEP_DEVICES,
	STEP_DAEMONIZE,
	STEP_PID_NS,
	STEP_PRIVILEGES,
	STEP_EXEC,
};

static const char *const step_names[] = {
	[STEP_SANITIZE] = "fds and environment",
	[STEP_ID] = "id",
	[STEP_CHROOT] = "chroot",
	[STEP_NETNS] = "netns",
	[STEP_RLIMITS] = "rlimits",
	[STEP_CGROUPS] = "cgroups",
	[STEP_MOUNT_NS] = "mount namespace",
	[STEP_DEVICES] = "devices",
	[STEP_DAEMONIZE] = "daemonize",
	[STEP_PID_NS] = "pid namespace",
	[STEP_PRIVILEGES] = "privileges",
	[STEP_EXEC] = "exec",
};

struct jailer {
	struct jail_args args;
	struct jail_fs fs;
	struct jail_cgroups cg;
	bool fs_started;
	int report_fd; /* stderr as it was given (a pipe to the parent in a new pid ns) */
	int null_fd;
	bool in_child; /* the new pid namespace's first process: its parent cleans up */
};

static void report(struct jailer *j, enum step step, int err)
{
	char line[1400];
	int n;

	n = snprintf(line, sizeof(line), "ember-jailer: step %d (%s): %s: %s\n", (int)step,
		     step_names[step], jail_error__msg(), strerror(-err));
	if (n > (int)sizeof(line) - 1)
		n = (int)sizeof(line) - 1;
	if (write(j->report_fd, line, (size_t)n) < 0) {
		/* nowhere left to say it: the exit code still does */
	}
}

static void cleanup(struct jailer *j)
{
	jail_cgroup__remove(&j->cg);
	if (j->fs_started)
		jail_fs__remove(&j->fs);
	j->fs_started = false;
}

/* Steps 1 to 8: everything that is made, and can be unmade if a later step fails. */
static int build(struct jailer *j, enum step *step)
{
	const struct jail_args *a = &j->args;
	int ret;

	*step = STEP_SANITIZE;
	ret = jail_priv__sanitize();
	/* reports go to a copy of stderr: --daemonize points fd 2 at /dev/null later */
	j->report_fd = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3);
	if (j->report_fd < 0)
		j->report_fd = STDERR_FILENO;
	if (ret)
		return ret;
	*step = STEP_ID;
	ret = jail_args__check_id(a->id);
	if (ret)
		return ret;
	*step = STEP_CHROOT;
	j->fs_started = true;
	ret = jail_fs__create(&j->fs, a);
	if (ret)
		return ret;
	*step = STEP_NETNS;
	ret = a->netns ? jail_priv__join_netns(a->netns) : 0;
	if (ret)
		return ret;
	*step = STEP_RLIMITS;
	ret = jail_priv__set_rlimits(a);
	if (ret)
		return ret;
	*step = STEP_CGROUPS;
	ret = jail_cgroup__setup(&j->cg, a);
	if (ret)
		return ret;
	*step = STEP_MOUNT_NS;
	if (a->daemonize) {
		j->null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
		if (j->null_fd < 0)
			return jail_error__set(-errno, "opening /dev/null");
	}
	ret = jail_fs__enter(&j->fs);
	if (ret)
		return ret;
	*step = STEP_DEVICES;
	return jail_fs__make_devices(&j->fs, a->uid, a->gid);
}

/*
 * Step 10, the parent's side: Ember runs as pid 1 of a new pid namespace, in a child. The
 * child's reports come through a close-on-exec pipe: EOF with nothing read means the exec
 * happened. The parent then writes the child's pid to /<exec-name>.pid in the jail and
 * exits 0 (Firecracker's jailer does the same); on a failure it reaps the child, removes
 * the jail and exits 1.
 */
static int parent_wait(struct jailer *j, pid_t child, int rd)
{
	char buf[2048];
	ssize_t n, total = 0;
	int ret;

	while ((n = read(rd, buf, sizeof(buf))) > 0 || (n < 0 && errno == EINTR)) {
		if (n > 0 && write(j->report_fd, buf, (size_t)n) < 0) {
			/* the exit code says it */
		}
		total += n > 0 ? n : 0;
	}
	close(rd);
	if (total) {
		waitpid(child, NULL, 0);
		cleanup(j);
		return 1;
	}
	ret = jail_fs__write_pid(j->args.exec_name, child);
	if (ret) {
		report(j, STEP_PID_NS, ret);
		kill(child, SIGKILL);
		waitpid(child, NULL, 0);
		cleanup(j);
		return 1;
	}
	return 0;
}

/* Step 10: returns 0 in the child (which goes on), 1 + the exit code in the parent. */
static int new_pid_ns(struct jailer *j, int *parent_code)
{
	int p[2];
	pid_t pid;

	*parent_code = -1;
	if (pipe2(p, O_CLOEXEC))
		return jail_error__set(-errno, "pipe2");
	if (unshare(CLONE_NEWPID)) {
		close(p[0]);
		close(p[1]);
		return jail_error__set(-errno, "unshare(CLONE_NEWPID)");
	}
	pid = fork();
	if (pid < 0) {
		close(p[0]);
		close(p[1]);
		return jail_error__set(-errno, "fork into the new pid namespace");
	}
	if (pid == 0) {
		close(p[0]);
		j->report_fd = p[1];
		j->in_child = true;
		return 0;
	}
	close(p[1]);
	*parent_code = parent_wait(j, pid, p[0]);
	return 0;
}

static int exec_ember(struct jailer *j)
{
	const struct jail_args *a = &j->args;
	char path[PATH_MAX];
	char *envp[] = { NULL }; /* the environment was emptied in step 1 */
	char **argv = calloc((size_t)a->n_exec_args + 4, sizeof(*argv));
	int n = 0;

	if (!argv)
		return jail_error__set(-ENOMEM, "argv");
	snprintf(path, sizeof(path), "/%s", a->exec_name);
	argv[n++] = (char *)a->exec_name;
	argv[n++] = (char *)"--id";
	argv[n++] = (char *)a->id;
	for (int i = 0; i < a->n_exec_args; i++)
		argv[n++] = a->exec_args[i];
	argv[n] = NULL;
	execve(path, argv, envp);
	free(argv);
	return jail_error__set(-errno, "execve %s in the jail", path);
}

/* Steps 9 to 12. Returns the exit code (only the --new-pid-ns parent returns 0). */
static int launch(struct jailer *j)
{
	const struct jail_args *a = &j->args;
	enum step step = STEP_DAEMONIZE;
	int ret = a->daemonize ? jail_priv__daemonize(j->null_fd) : 0, code;

	if (j->null_fd >= 0)
		close(j->null_fd);
	if (!ret && a->new_pid_ns) {
		step = STEP_PID_NS;
		ret = new_pid_ns(j, &code);
		if (!ret && code >= 0)
			return code;
	}
	if (!ret) {
		step = STEP_PRIVILEGES;
		ret = jail_priv__drop(a->uid, a->gid);
	}
	if (!ret) {
		step = STEP_EXEC;
		ret = exec_ember(j);
	}
	report(j, step, ret);
	if (!j->in_child)
		cleanup(j);
	return 1;
}

int main(int argc, char **argv)
{
	static struct jailer j = { .report_fd = STDERR_FILENO, .null_fd = -1 };
	enum step step;
	int ret;

	if (jail_args__parse(argc, argv, &j.args)) {
		fprintf(stderr, "ember-jailer: %s\n", jail_error__msg());
		return 1;
	}
	if (j.args.action == JAIL_HELP) {
		fputs(jail_args__usage, stdout);
		return 0;
	}
	if (j.args.action == JAIL_VERSION) {
		printf("ember-jailer %s\n", EMBER_VERSION);
		return 0;
	}
	ret = build(&j, &step);
	if (ret) {
		report(&j, step, ret);
		cleanup(&j);
		return 1;
	}
	return launch(&j);
}
