/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The jail's file system: <chroot-base-dir>/<exec-name>/<id>/root holding a copy of the
 * exec-file (and, for a dynamically linked one, its loader and libraries), entered with a
 * private mount namespace and pivot_root(), with the device nodes Ember needs.
 */
#ifndef EMBER_JAIL_FS_H
#define EMBER_JAIL_FS_H

#include <limits.h>
#include <stdbool.h>
#include <sys/types.h>

#include "jail/jail_args.h"

#define JAIL_FS_MAX_MADE 16

struct jail_dev {
	const char *path; /* inside the jail */
	bool optional;	  /* the host may not have it (/dev/userfaultfd before Linux 6.1) */
	bool present;
	dev_t rdev;
};

struct jail_fs {
	char exec_dir[PATH_MAX]; /* <base>/<exec-name> */
	char root[PATH_MAX];	 /* <base>/<exec-name>/<id>/root */
	const char *id;
	/* <base>/<exec-name>, opened before the jail is entered: the jail can still be
	 * removed through it after pivot_root() */
	int exec_dir_fd;
	int host_root_fd;
	bool made_id_dir;
	/* the directories above the jail that this jailer made, to remove if it fails */
	char made[JAIL_FS_MAX_MADE][PATH_MAX];
	int n_made;
	struct jail_dev devs[3];
};

/* Step 3: makes the jail and copies the exec-file (and what it needs) into it. -EEXIST if
 * <id> exists already: a second jail with the same id is refused. */
int jail_fs__create(struct jail_fs *fs, const struct jail_args *a);
/* Removes what jail_fs__create() made (before or after the jail was entered). */
void jail_fs__remove(struct jail_fs *fs);
/* Step 7: a private mount namespace whose root is the jail; the host's root is detached. */
int jail_fs__enter(struct jail_fs *fs);
/* Step 8, inside the jail: /dev/kvm, /dev/net/tun, /dev/userfaultfd for uid:gid, and the
 * jail's root and /run owned by uid:gid. */
int jail_fs__make_devices(struct jail_fs *fs, uid_t uid, gid_t gid);
/* --new-pid-ns: writes /<exec-name>.pid inside the jail. */
int jail_fs__write_pid(const char *exec_name, pid_t pid);

#endif
