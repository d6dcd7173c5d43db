/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Step 6: the jail's cgroups, v1 or v2, found from /proc/mounts. For each hierarchy a
 * --cgroup file needs, <hierarchy>/<parent-cgroup>/<id> is made; every value is written,
 * then the jailer's pid (Ember's, after the exec) goes into cgroup.procs.
 */
#ifndef EMBER_JAIL_CGROUP_H
#define EMBER_JAIL_CGROUP_H

#include <limits.h>
#include <stdbool.h>

#include "jail/jail_args.h"

#define JAIL_CGROUP_MAX_HIER 16
#define JAIL_CGROUP_MAX_DEPTH 16

struct jail_cgroup_hier {
	char mnt[PATH_MAX];  /* /sys/fs/cgroup/cpu */
	char dir[PATH_MAX];  /* /sys/fs/cgroup/cpu/ember/<id> */
	int mnt_fd;	     /* the hierarchy's root, opened: usable after pivot_root() */
	bool cpuset;	     /* v1 cpuset: cpus and mems are copied down from the parent */
	bool attached;	     /* our pid is in it */
	/* the directories made, relative to mnt, in the order they were made */
	char made[JAIL_CGROUP_MAX_DEPTH][PATH_MAX];
	int n_made;
};

struct jail_cgroups {
	struct jail_cgroup_hier hier[JAIL_CGROUP_MAX_HIER];
	int n;
};

/* 0, or -errno with jail_error__set() naming the file and what was being done. */
int jail_cgroup__setup(struct jail_cgroups *cg, const struct jail_args *a);
/* Moves the process back to the hierarchies' roots and removes what setup made. */
void jail_cgroup__remove(struct jail_cgroups *cg);

#endif
