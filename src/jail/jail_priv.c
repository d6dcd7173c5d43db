// SPDX-License-Identifier: Apache-2.0
#include "jail/jail_priv.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "jail/jail_error.h"

int jail_priv__sanitize(void)
{
	/* a closed stdin/stdout/stderr would be taken by the next open(): fill it first */
	for (int fd = 0; fd < 3; fd++) {
		if (fcntl(fd, F_GETFD) < 0 && errno == EBADF &&
		    open("/dev/null", O_RDWR) != fd)
			return jail_error__set(-EBADF, "fd %d is closed and /dev/null cannot take it",
					       fd);
	}
	if (syscall(SYS_close_range, 3U, ~0U, 0U)) {
		/* before Linux 5.9: close them one by one */
		for (long fd = 3, max = sysconf(_SC_OPEN_MAX); fd < max; fd++)
			close((int)fd);
	}
	if (clearenv())
		return jail_error__set(-ENOMEM, "clearing the environment");
	umask(022);
	return 0;
}

int jail_priv__join_netns(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return jail_error__set(-errno, "opening --netns %s", path);
	if (setns(fd, CLONE_NEWNET)) {
		int err = errno;

		close(fd);
		return jail_error__set(-err, "setns(%s, CLONE_NEWNET)", path);
	}
	close(fd);
	return 0;
}

int jail_priv__set_rlimits(const struct jail_args *a)
{
	struct rlimit rl = { JAIL_DEFAULT_NOFILE, JAIL_DEFAULT_NOFILE };

	if (!a->n_rlimits && setrlimit(RLIMIT_NOFILE, &rl))
		return jail_error__set(-errno, "setrlimit no-file=%d", JAIL_DEFAULT_NOFILE);
	for (int i = 0; i < a->n_rlimits; i++) {
		rl.rlim_cur = rl.rlim_max = a->rlimits[i].value;
		if (setrlimit(a->rlimits[i].resource, &rl))
			return jail_error__set(-errno, "setrlimit %s=%llu", a->rlimits[i].name,
					       (unsigned long long)a->rlimits[i].value);
	}
	return 0;
}

int jail_priv__daemonize(int null_fd)
{
	if (setsid() < 0)
		return jail_error__set(-errno,
				       "setsid (the jailer must not be a process group leader; "
				       "start it from a shell, or fork before exec)");
	for (int fd = 0; fd < 3; fd++) {
		if (dup2(null_fd, fd) < 0)
			return jail_error__set(-errno, "redirecting fd %d to /dev/null", fd);
	}
	return 0;
}

/* Every capability out of the bounding set: no exec can ever get one back. */
static int drop_bounding_set(void)
{
	for (int cap = 0; cap < 64; cap++) {
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)) {
			if (errno == EINVAL)
				return 0; /* past the kernel's last capability */
			return jail_error__set(-errno, "PR_CAPBSET_DROP %d", cap);
		}
	}
	return 0;
}

static int clear_caps(void)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[2] = { 0 };

	if (syscall(SYS_capset, &hdr, data))
		return jail_error__set(-errno, "capset (all empty)");
	if (syscall(SYS_capget, &hdr, data))
		return jail_error__set(-errno, "capget");
	for (int i = 0; i < 2; i++) {
		if (data[i].effective || data[i].permitted || data[i].inheritable)
			return jail_error__set(-EPERM, "capabilities left after capset");
	}
	return 0;
}

int jail_priv__drop(uid_t uid, gid_t gid)
{
	int ret;

	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) && errno != EINVAL)
		return jail_error__set(-errno, "clearing the ambient capabilities");
	ret = drop_bounding_set();
	if (ret)
		return ret;
	if (setgroups(0, NULL))
		return jail_error__set(-errno, "setgroups(0)");
	if (setresgid(gid, gid, gid))
		return jail_error__set(-errno, "setresgid %u", gid);
	if (setresuid(uid, uid, uid))
		return jail_error__set(-errno, "setresuid %u", uid);
	/* setresuid() from root cleared permitted and effective; inheritable stays */
	ret = clear_caps();
	if (ret)
		return ret;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
		return jail_error__set(-errno, "PR_SET_NO_NEW_PRIVS");
	if (getuid() != uid || geteuid() != uid || getgid() != gid || getegid() != gid)
		return jail_error__set(-EPERM, "still not uid %u gid %u", uid, gid);
	return 0;
}
