/* SPDX-License-Identifier: Apache-2.0 */
/* The jailer's process-wide steps: fds and environment, the netns, rlimits, daemonizing,
 * and dropping every privilege before the exec. */
#ifndef EMBER_JAIL_PRIV_H
#define EMBER_JAIL_PRIV_H

#include <sys/types.h>

#include "jail/jail_args.h"

/* Step 1: closes every fd above stderr, empties the environment, sets umask 022. */
int jail_priv__sanitize(void);
/* Step 4: setns() into the network namespace at path. */
int jail_priv__join_netns(const char *path);
/* Step 5: the --resource-limit values (soft = hard), no-file=2048 if none is given. */
int jail_priv__set_rlimits(const struct jail_args *a);
/* Step 9: setsid(), and stdin/stdout/stderr onto null_fd (/dev/null, opened before the
 * jail was entered). */
int jail_priv__daemonize(int null_fd);
/* Step 11: uid/gid with no supplementary groups, every capability set empty (bounding,
 * ambient, inheritable, permitted, effective), and no_new_privs. */
int jail_priv__drop(uid_t uid, gid_t gid);

#endif
