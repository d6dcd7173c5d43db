// SPDX-License-Identifier: Apache-2.0
/* The Uffd restore backend; see snapshot_uffd.h. */
#include "vmm/snapshot_uffd.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include "vmm/log.h"

#define PAGE 4096

static int open_uffd(void)
{
	/* page removals (a balloon's) reach the handler as events, as in Firecracker */
	struct uffdio_api api = { .api = UFFD_API, .features = UFFD_FEATURE_EVENT_REMOVE };
	int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);

	if (fd < 0)
		return error__set(-errno, "mem_backend Uffd: userfaultfd: %s%s", strerror(errno),
				  errno == EPERM ? " (see /proc/sys/vm/unprivileged_userfaultfd)" : "");
	if (ioctl(fd, UFFDIO_API, &api)) {
		int ret = error__set(-errno, "mem_backend Uffd: UFFDIO_API: %s", strerror(errno));

		close(fd);
		return ret;
	}
	return fd;
}

static int register_regions(int fd, const struct gmem *gm)
{
	for (unsigned int i = 0; i < gm->nr_regions; i++) {
		struct uffdio_register reg = {
			.range = { .start = (uint64_t)(uintptr_t)gm->regions[i].host,
				   .len = gm->regions[i].size },
			.mode = UFFDIO_REGISTER_MODE_MISSING,
		};

		if (ioctl(fd, UFFDIO_REGISTER, &reg))
			return error__set(-errno, "mem_backend Uffd: UFFDIO_REGISTER: %s",
					  strerror(errno));
		if (!(reg.ioctls & (1ULL << _UFFDIO_COPY)))
			return error__set(-EOPNOTSUPP, "mem_backend Uffd: the kernel offers no "
					  "UFFDIO_COPY on guest memory");
	}
	return 0;
}

/*
 * Firecracker's message: a JSON array, a region each - where it is in this process, how
 * large, where in the memory file, and the page size (in both of Firecracker's spellings:
 * older versions call it page_size_kib and put bytes in it).
 */
static int layout_json(const struct gmem *gm, const uint64_t *offsets, char *buf, size_t size)
{
	unsigned long long page = gm->huge_2m ? MEMORY_HUGE_2M_BYTES : PAGE;
	size_t n = 0;

	n += (size_t)snprintf(buf + n, size - n, "[");
	for (unsigned int i = 0; i < gm->nr_regions && n < size; i++)
		n += (size_t)snprintf(buf + n, size - n,
				      "%s{\"base_host_virt_addr\":%llu,\"size\":%llu,\"offset\":%llu,"
				      "\"page_size\":%llu,\"page_size_kib\":%llu}",
				      i ? "," : "",
				      (unsigned long long)(uintptr_t)gm->regions[i].host,
				      (unsigned long long)gm->regions[i].size,
				      (unsigned long long)offsets[i], page, page);
	if (n < size)
		n += (size_t)snprintf(buf + n, size - n, "]");
	return n < size ? (int)n : -ENOSPC;
}

static int send_to_handler(const char *path, int uffd, const char *msg, size_t len)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	char ctl[CMSG_SPACE(sizeof(int))] = { 0 };
	struct iovec iov = { (void *)msg, len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl,
			     .msg_controllen = sizeof(ctl) };
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
	int fd, ret = 0;

	if (strlen(path) >= sizeof(a.sun_path))
		return error__set(-ENAMETOOLONG, "mem_backend Uffd: the socket path is too long");
	memcpy(a.sun_path, path, strlen(path) + 1);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &uffd, sizeof(int));
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return error__set(-errno, "mem_backend Uffd: socket: %s", strerror(errno));
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)))
		ret = error__set(-errno, "mem_backend Uffd: no page-fault handler at %s: %s", path,
				 strerror(errno));
	else if (sendmsg(fd, &mh, MSG_NOSIGNAL) != (ssize_t)len)
		ret = error__set(-EIO, "mem_backend Uffd: sending to the handler at %s: %s", path,
				 strerror(errno));
	close(fd);
	return ret;
}

int snapshot_uffd__map(struct gmem *gm, uint64_t mem_bytes, const struct memory_backing *b,
		       const uint64_t *offsets, const char *socket_path)
{
	char msg[1024];
	int uffd, ret, len;

	ret = memory__map_backed(gm, mem_bytes, b, true);
	if (ret)
		return ret;
	uffd = open_uffd();
	if (uffd < 0) {
		memory__unmap(gm);
		return uffd;
	}
	gm->uffd = uffd;
	gm->has_uffd = true;
	gm->lazy = true;
	ret = register_regions(uffd, gm);
	if (!ret) {
		len = layout_json(gm, offsets, msg, sizeof(msg));
		ret = len < 0 ? error__set(len, "mem_backend Uffd: the layout is too long")
			      : send_to_handler(socket_path, uffd, msg, (size_t)len);
	}
	if (ret)
		memory__unmap(gm);
	return ret;
}
