/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The TAP backend of virtio-net: a TAP device opened by name through /dev/net/tun with
 * IFF_TAP | IFF_NO_PI | IFF_VNET_HDR, non-blocking, whose frames carry a 12-byte
 * virtio_net_hdr_v1 in front (TUNSETVNETHDRSZ), so that the guest's header goes to the
 * TAP as it is and the TAP's header comes to the guest as it is: the device reads and
 * writes guest buffers straight, with readv() and writev().
 */
#ifndef EMBER_VIRTIO_NET_TAP_H
#define EMBER_VIRTIO_NET_TAP_H

#include <net/if.h>
#include <stdbool.h>
#include <stdint.h>

/* The vnet header the TAP reads and writes: sizeof(struct virtio_net_hdr_v1). */
#define NET_TAP_VNET_HDR_BYTES 12

struct net_tap {
	int fd;		     /* -1 when closed */
	bool is_tap;	     /* false for an adopted fd that is not a TAP (unit tests) */
	char name[IFNAMSIZ]; /* the TAP's name, as the kernel has it */
};

/*
 * Opens the TAP dev_name (at most IFNAMSIZ - 1 bytes) for network interface iface_id:
 * TUNSETIFF, TUNSETVNETHDRSZ and O_NONBLOCK. An existing TAP is attached; one that does
 * not exist is created (which needs CAP_NET_ADMIN) and goes away when closed. 0 or -errno,
 * with error__set("network interface <id>: tap <name>: ...").
 */
int net_tap__open(struct net_tap *tap, const char *iface_id, const char *dev_name);
/*
 * Uses fd (which it now owns) in place of a TAP: frames with their vnet header, one per
 * read or write, such as a SOCK_SEQPACKET socketpair in the unit tests. Offloads are not
 * set on it. Makes it non-blocking; 0 or -errno.
 */
int net_tap__adopt(struct net_tap *tap, int fd, const char *name);
/*
 * The TUN_F_* flags (TUNSETOFFLOAD) for what the guest's driver negotiated: what the TAP
 * may hand us, and so the guest, is what the guest can take. TSO and UFO need GUEST_CSUM,
 * as they do in the kernel (a TSO flag without TUN_F_CSUM is refused).
 */
unsigned int net_tap__offloads(uint64_t virtio_features);
/*
 * TUNSETOFFLOAD from the negotiated virtio features. A kernel that does not know UFO any
 * more gets the rest. 0 or -errno with error__set(). Nothing on an adopted fd.
 */
int net_tap__set_offloads(struct net_tap *tap, const char *iface_id, uint64_t virtio_features);
void net_tap__close(struct net_tap *tap);

#endif
