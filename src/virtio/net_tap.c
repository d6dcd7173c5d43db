// SPDX-License-Identifier: Apache-2.0
#include "virtio/net_tap.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "virtio/net.h"
#include "vmm/log.h"

static const char *hint(int err, bool dev_node)
{
	if (dev_node)
		return err == ENOENT ? " (no TUN/TAP driver: modprobe tun)" : "";
	switch (err) {
	case EPERM:
	case EACCES:
		return " (create the TAP for Ember's user first, `ip tuntap add dev NAME mode tap "
		       "user USER`, or run Ember with CAP_NET_ADMIN)";
	case EBUSY:
		return " (another process has it open)";
	case EINVAL:
		return " (is it a TUN device rather than a TAP?)";
	default:
		return "";
	}
}

static int fail(struct net_tap *tap, int err, const char *iface_id, const char *dev_name,
		const char *what)
{
	if (tap->fd >= 0)
		close(tap->fd);
	tap->fd = -1;
	return error__set(-err, "network interface %s: tap %s: %s: %s%s", iface_id, dev_name, what,
			  strerror(err), hint(err, !strcmp(what, "/dev/net/tun")));
}

static int set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -errno;
	return 0;
}

int net_tap__open(struct net_tap *tap, const char *iface_id, const char *dev_name)
{
	struct ifreq ifr;
	int hdr = NET_TAP_VNET_HDR_BYTES;
	size_t len = strlen(dev_name);

	memset(tap, 0, sizeof(*tap));
	tap->fd = -1;
	if (!len || len >= IFNAMSIZ)
		return error__set(-EINVAL,
				  "network interface %s: tap %s: a TAP name is 1 to %d bytes long",
				  iface_id, dev_name, IFNAMSIZ - 1);
	tap->fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (tap->fd < 0)
		return fail(tap, errno, iface_id, dev_name, "/dev/net/tun");
	memset(&ifr, 0, sizeof(ifr));
	memcpy(ifr.ifr_name, dev_name, len);
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
	if (ioctl(tap->fd, TUNSETIFF, &ifr) < 0)
		return fail(tap, errno, iface_id, dev_name, "TUNSETIFF");
	if (ioctl(tap->fd, TUNSETVNETHDRSZ, &hdr) < 0)
		return fail(tap, errno, iface_id, dev_name, "TUNSETVNETHDRSZ");
	/* the kernel's name, NUL-terminated (IFNAMSIZ includes the NUL) */
	memcpy(tap->name, ifr.ifr_name, IFNAMSIZ);
	tap->name[IFNAMSIZ - 1] = '\0';
	tap->is_tap = true;
	return 0;
}

int net_tap__adopt(struct net_tap *tap, int fd, const char *name)
{
	int ret = set_nonblock(fd);

	memset(tap, 0, sizeof(*tap));
	tap->fd = fd;
	snprintf(tap->name, sizeof(tap->name), "%s", name);
	return ret;
}

unsigned int net_tap__offloads(uint64_t f)
{
	unsigned int flags = 0;

	if (!(f & VIRTIO_NET_BIT(GUEST_CSUM)))
		return 0;
	flags |= TUN_F_CSUM;
	if (f & VIRTIO_NET_BIT(GUEST_TSO4))
		flags |= TUN_F_TSO4;
	if (f & VIRTIO_NET_BIT(GUEST_TSO6))
		flags |= TUN_F_TSO6;
	if ((f & VIRTIO_NET_BIT(GUEST_ECN)) && (flags & (TUN_F_TSO4 | TUN_F_TSO6)))
		flags |= TUN_F_TSO_ECN;
	if (f & VIRTIO_NET_BIT(GUEST_UFO))
		flags |= TUN_F_UFO;
	return flags;
}

int net_tap__set_offloads(struct net_tap *tap, const char *iface_id, uint64_t virtio_features)
{
	unsigned int flags = net_tap__offloads(virtio_features);
	int err;

	if (!tap->is_tap)
		return 0;
	if (!ioctl(tap->fd, TUNSETOFFLOAD, flags))
		return 0;
	err = errno;
	/* UFO went away from Linux in 4.14 and came back as a flag that is accepted again */
	if (err == EINVAL && (flags & TUN_F_UFO) &&
	    !ioctl(tap->fd, TUNSETOFFLOAD, flags & ~(unsigned int)TUN_F_UFO)) {
		log_debug("network interface %s: tap %s: no UFO offload", iface_id, tap->name);
		return 0;
	}
	return error__set(-err, "network interface %s: tap %s: TUNSETOFFLOAD 0x%x: %s", iface_id,
			  tap->name, flags, strerror(err));
}

void net_tap__close(struct net_tap *tap)
{
	if (tap->fd >= 0)
		close(tap->fd);
	tap->fd = -1;
}
