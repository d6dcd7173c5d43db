// SPDX-License-Identifier: Apache-2.0
/* Dropping the eBPF capabilities for a while (unprivileged.h). */
#include "unprivileged.h"

#include <errno.h>
#include <linux/capability.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef CAP_PERFMON
#define CAP_PERFMON 38
#endif
#ifndef CAP_BPF
#define CAP_BPF 39
#endif

static int caps_get(struct __user_cap_data_struct d[2])
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };

	return syscall(SYS_capget, &h, d) ? -errno : 0;
}

static int caps_set(const struct __user_cap_data_struct d[2])
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };

	return syscall(SYS_capset, &h, d) ? -errno : 0;
}

static void clear(struct __user_cap_data_struct d[2], unsigned int cap)
{
	d[cap / 32].effective &= ~(1u << (cap % 32));
}

int unprivileged__begin(struct unprivileged *u)
{
	struct __user_cap_data_struct d[2];
	int ret = caps_get(d);

	if (ret)
		return ret;
	u->effective[0] = d[0].effective;
	u->effective[1] = d[1].effective;
	clear(d, CAP_BPF);
	clear(d, CAP_NET_ADMIN);
	clear(d, CAP_SYS_ADMIN);
	clear(d, CAP_PERFMON);
	return caps_set(d);
}

int unprivileged__end(const struct unprivileged *u)
{
	struct __user_cap_data_struct d[2];
	int ret = caps_get(d);

	if (ret)
		return ret;
	d[0].effective = u->effective[0];
	d[1].effective = u->effective[1];
	return caps_set(d);
}
