/* SPDX-License-Identifier: Apache-2.0 */
/* The jailer's command line: Firecracker's jailer options, then `--` and Ember's own. */
#ifndef EMBER_JAIL_ARGS_H
#define EMBER_JAIL_ARGS_H

#include <stdbool.h>
#include <sys/resource.h>
#include <sys/types.h>

#define JAIL_ID_MAX 64
#define JAIL_MAX_CGROUPS 32
#define JAIL_MAX_RLIMITS 8
#define JAIL_DEFAULT_BASE "/srv/jailer"
#define JAIL_DEFAULT_NOFILE 2048 /* Firecracker's no-file bound when none is given */

struct jail_cgroup_arg {
	char file[128]; /* "cpu.shares" */
	const char *value;
};

struct jail_rlimit {
	int resource; /* RLIMIT_FSIZE, RLIMIT_NOFILE */
	const char *name;
	rlim_t value;
};

enum jail_action { JAIL_RUN, JAIL_HELP, JAIL_VERSION };

struct jail_args {
	enum jail_action action;
	const char *id;
	const char *exec_file;
	const char *exec_name; /* the last component of exec_file */
	const char *chroot_base;
	const char *netns;
	const char *parent_cgroup; /* default: exec_name */
	uid_t uid;
	gid_t gid;
	bool daemonize;
	bool new_pid_ns;
	int cgroup_version;
	struct jail_cgroup_arg cgroups[JAIL_MAX_CGROUPS];
	int n_cgroups;
	struct jail_rlimit rlimits[JAIL_MAX_RLIMITS];
	int n_rlimits;
	char **exec_args; /* after `--` */
	int n_exec_args;
};

extern const char jail_args__usage[];

/* 0, or -EINVAL with jail_error__set() naming the bad argument. The id is checked later,
 * by jail_args__check_id(), as step 2. */
int jail_args__parse(int argc, char **argv, struct jail_args *a);
/* Firecracker's rule: 1 to 64 of [A-Za-z0-9-]. */
int jail_args__check_id(const char *id);

#endif
