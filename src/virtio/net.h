/* SPDX-License-Identifier: Apache-2.0 */
/*
 * virtio-net: one network interface on a TAP (net_tap.c), on the virtio-mmio transport.
 * Two queues, RX (0) and TX (1), both served on the VMM thread's epoll loop: TX on the
 * queue's kick, RX when the TAP is readable. Frames go between the TAP and guest memory
 * with no copy: TX gathers a chain's buffers (the guest's 12-byte virtio_net_hdr_v1, then
 * the frame) into an iovec and writev()s it; RX readv()s into the guest's receive buffers,
 * over as many chains as a 64 KiB frame could need with MRG_RXBUF. Only when the guest has
 * given too few buffers for the largest frame does a frame go through a bounce buffer
 * (the TAP cannot tell a frame's size before it is read). Token buckets from rx_rate_limiter
 * and tx_rate_limiter hold frames back until a timerfd says they may go.
 */
#ifndef EMBER_VIRTIO_NET_H
#define EMBER_VIRTIO_NET_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "virtio/antispoof_rules.h"
#include "virtio/mmio.h"
#include "virtio/net_bpf.h"
#include "virtio/net_tap.h"
#include "virtio/rate_limiter.h"
#include "vmm/metrics.h"
#include "vmm/vm_config.h"

#define VIRTIO_ID_NET 1

/* Feature bits (virtio 1.2, 5.1.3) */
#define VIRTIO_NET_F_CSUM 0
#define VIRTIO_NET_F_GUEST_CSUM 1
#define VIRTIO_NET_F_MAC 5
#define VIRTIO_NET_F_GUEST_TSO4 7
#define VIRTIO_NET_F_GUEST_TSO6 8
#define VIRTIO_NET_F_GUEST_ECN 9
#define VIRTIO_NET_F_GUEST_UFO 10
#define VIRTIO_NET_F_HOST_TSO4 11
#define VIRTIO_NET_F_HOST_TSO6 12
#define VIRTIO_NET_F_HOST_ECN 13
#define VIRTIO_NET_F_HOST_UFO 14
#define VIRTIO_NET_F_MRG_RXBUF 15
#define VIRTIO_NET_F_STATUS 16
#define VIRTIO_NET_BIT(name) (1ULL << VIRTIO_NET_F_##name)

#define NET_QUEUE_RX 0
#define NET_QUEUE_TX 1
#define NET_QUEUES 2
/* The config space: mac[6], status (le16, VIRTIO_NET_S_LINK_UP). */
#define NET_CONFIG_SIZE 8
#define VIRTIO_NET_S_LINK_UP 1

/* virtio_net_hdr_v1: flags, gso_type, hdr_len, gso_size, csum_start, csum_offset,
 * num_buffers */
#define NET_HDR_BYTES NET_TAP_VNET_HDR_BYTES
#define NET_HDR_NUM_BUFFERS 10 /* the offset of le16 num_buffers */
#define NET_HDR_F_DATA_VALID 2
/* The largest frame, header included: 64 KiB of GSO frame and an Ethernet header
 * (Firecracker's MAX_BUFFER_SIZE). */
#define NET_FRAME_MAX 65562

/* virtio_net__update()'s changed bits: the same values as CONFIG_CHANGED_* (api/config.h) */
#define NET_CHANGED_RX_RATE_LIMITER 0x4u
#define NET_CHANGED_TX_RATE_LIMITER 0x8u

/* Firecracker's "net" (NetDeviceMetrics, less tap_write_agg); rx_bounced_frames is Ember's:
 * frames that came through the bounce buffer instead of straight into guest memory; and so
 * are tx_antispoof_*_drops: the guest's frames anti-spoofing dropped, by reason (net_bpf.h),
 * whether the tc filter dropped them (after Ember wrote them: they count in tx_packets_count
 * too) or Ember itself (they never reach the TAP, and do not). */
/* clang-format off */
#define NET_METRICS(X)                                                                             \
	X(activate_fails) X(cfg_fails) X(mac_address_updates) X(no_rx_avail_buffer)                \
	X(no_tx_avail_buffer) X(event_fails) X(rx_queue_event_count)                               \
	X(rx_event_rate_limiter_count) X(rx_rate_limiter_throttled) X(rx_tap_event_count)          \
	X(rx_bytes_count) X(rx_packets_count) X(rx_fails) X(rx_count) X(tap_read_fails)            \
	X(tap_write_fails) X(tx_bytes_count) X(tx_malformed_frames) X(tx_fails) X(tx_count)        \
	X(tx_packets_count) X(tx_partial_reads) X(tx_queue_event_count)                            \
	X(tx_rate_limiter_event_count) X(tx_rate_limiter_throttled) X(tx_spoofed_mac_count)        \
	X(tx_remaining_reqs_count) X(rx_bounced_frames) X(tx_antispoof_mac_drops)                 \
	X(tx_antispoof_ip_drops) X(tx_antispoof_other_drops)
/* clang-format on */
METRICS_STRUCT(net_metrics, NET_METRICS);

/* ---- RX buffers: chains taken from the RX queue and not used yet ---- */

/* TX frames sent per kick; then the device kicks itself, so that the loop serves the others */
#define NET_TX_BATCH 128

/*
 * readv() takes at most UIO_MAXIOV (1024) buffers, and RX adds one of its own after the
 * guest's: a byte that only a frame too big for them reaches (the TAP truncates a frame to
 * the buffers it is given and says nothing). A chain has at most VIRTQ_CHAIN_MAX.
 */
#define NET_RX_IOV_MAX 1023
#define NET_RX_IOV_STORE (NET_RX_IOV_MAX + VIRTQ_CHAIN_MAX)

struct net_rx_chain {
	uint16_t head;
	uint16_t niov;
	uint32_t len; /* its writable bytes */
};

/*
 * A FIFO of chains, oldest first, and their buffers as one contiguous iovec (host pointers
 * from gmem__ptr() with each buffer's exact length), so that the first chains of a frame
 * can go to one readv(). A chain that is taken stays here until a frame uses it: there is no
 * way to give a chain back to the avail ring.
 */
struct net_rx_bufs {
	struct net_rx_chain chains[VIRTQ_MAX_SIZE]; /* a ring */
	unsigned int first, nr;
	struct iovec iov[NET_RX_IOV_STORE + 1]; /* [iov_first, iov_first + iov_nr), + sentinel */
	unsigned int iov_first, iov_nr;
	uint64_t bytes; /* the chains' writable bytes, in total */
};

enum net_rx_held {
	NET_RX_HELD_NONE,
	NET_RX_HELD_GUEST,  /* a frame read into the first chains, waiting for tokens */
	NET_RX_HELD_BOUNCE, /* a frame in the bounce buffer, waiting for buffers or tokens */
};

struct virtio_net {
	struct virtio_mmio t;
	char id[VM_DEVICE_ID_MAX + 1]; /* iface_id */
	bool has_mac;
	uint8_t mac[6];
	struct net_tap tap;
	struct net_bpf bpf; /* anti-spoofing, when the config asks for it */
	struct event_handler tap_h; /* the TAP fd: EPOLLIN while RX can take frames, EPOLLOUT
				       while a TX frame waits for room */
	uint32_t tap_events;	    /* what tap_h is registered for */
	bool tap_gone;		    /* the TAP went away (EPOLLERR): out of the loop */
	struct event_loop *loop;
	uint64_t features; /* negotiated, at activation */
	bool active;

	/* RX */
	struct net_rx_bufs rx;
	enum net_rx_held held;
	uint32_t held_len;
	uint8_t *bounce; /* NET_FRAME_MAX + 1 bytes (the last one catches a truncation) */
	uint8_t sentinel;
	bool rx_starved; /* waiting for an RX kick: the guest has no (or too few) buffers */
	struct rate_limiter rx_rl;
	struct event_handler rx_rl_h;

	/* TX: the frame in hand, parked while it waits for tokens or for room in the TAP */
	struct iovec tx_iov[VIRTQ_CHAIN_MAX + 1]; /* + 1: the checked copy of its start */
	unsigned int tx_niov;
	uint16_t tx_head;
	uint32_t tx_len;
	bool tx_pending; /* a frame is in hand */
	bool tx_charged; /* its tokens are taken */
	bool tx_blocked; /* the TAP said EAGAIN: waiting for EPOLLOUT */
	struct rate_limiter tx_rl;
	struct event_handler tx_rl_h;

	/*
	 * Anti-spoofing enforced here, in the TX path, when the tc filter could not be attached
	 * for lack of privilege: each frame's first bytes are copied into tx_hdr, checked there
	 * against as_rules, and sent from there (the guest cannot change them in between).
	 */
	bool antispoof;
	uint8_t tx_hdr[NET_HDR_BYTES + ANTISPOOF_HDR_MAX];
	struct antispoof_rules as_rules;
	uint64_t as_drops[ANTISPOOF_REASONS];

	struct vq_chain chain; /* scratch for virtq__pop() */
	struct net_metrics m;
};

/*
 * Opens cfg's TAP and sets up the device at base with interrupt gsi. The caller puts t on
 * the MMIO bus (virtio_mmio__bus_ops, &n->t) and calls virtio_net__watch(). 0 or -errno with
 * error__set().
 *
 * With anti_spoofing, the tc filter goes on the TAP (net_bpf__attach()); if that fails for
 * lack of privilege (a jailed Ember has no CAP_BPF nor CAP_NET_ADMIN), the device checks
 * the same rules itself in its TX path; any other failure fails the create. One log line
 * says which enforcement runs, and why.
 */
int virtio_net__create(struct virtio_net **out, const struct net_config *cfg, int vm_fd,
		       const struct gmem *gm, uint64_t base, uint32_t gsi);
/*
 * Without KVM, for unit tests and harnesses: the device on fd (see net_tap__adopt(), which
 * takes fd over) with a transport without KVM (virtio_mmio__init() with vm_fd -1), whose
 * kicks and interrupt are plain eventfds registered nowhere: the test kicks queue q by
 * writing t.kicks[q].h.fd and reads t.irq_fd. anti_spoofing is as for virtio_net__create()
 * on a TAP named host_dev_name: without the privilege, the device enforces it itself.
 */
int virtio_net__create_detached(struct virtio_net **out, const struct net_config *cfg, int fd,
				const struct gmem *gm);
/*
 * Registers the queue kicks, the TAP and the rate limiters' timers with the VMM loop. The
 * TAP stays registered; its interest changes with the device's state (event_loop__mod).
 */
int virtio_net__watch(struct virtio_net *n, struct event_loop *loop);
/*
 * PATCH /network-interfaces/{id}: cfg's rate limiters replace the old ones for the
 * NET_CHANGED_* bits in changed; a held frame is looked at again at once. 0 or -errno with
 * error__set(), and then nothing changed.
 */
int virtio_net__update(struct virtio_net *n, const struct net_config *cfg, unsigned int changed);
struct snapshot_file_writer;
struct snapshot_file_reader;

/*
 * Snapshots, with the VM paused, on the VMM thread (net_persist.c): its virtio-mmio,
 * virtio-net and two rate-limiter sections (docs/snapshot-format.md).
 *
 * save changes nothing in the running device. The RX chains it holds (taken from the
 * ring, not used) are given back in the file: the RX queue's next available index is saved
 * moved back by their number, so the restored device takes them again. A received frame
 * held back (waiting for tokens or buffers) is not saved: the restored guest never gets
 * it, as if the network had lost it. A TX frame in hand (waiting for tokens or for room in
 * the TAP) is given back the same way, and the restored device sends it.
 *
 * restore: on a device just created from the same interface config (its TAP the override's,
 * if any; before the vCPUs run, before or after virtio_net__watch()): the guest MAC must be
 * the snapshot's, and so must the rate limiters' buckets (-EINVAL with a message
 * otherwise); then the transport and queues are as they were and a started device sets
 * its TAP's offloads again. 0 or -errno with error__set().
 */
int virtio_net__save(struct virtio_net *n, struct snapshot_file_writer *w);
int virtio_net__restore(struct virtio_net *n, const struct snapshot_file_reader *r);
/* Brings the counters kept outside the device (the anti-spoofing filter's) into n->m. */
void virtio_net__sync_metrics(struct virtio_net *n);
void virtio_net__destroy(struct virtio_net *n);

/* ---- the RX buffer FIFO, exported for the unit tests ---- */

void virtio_net__rx_clear(struct net_rx_bufs *b);
/* No room for another chain (the ring, or NET_RX_IOV_MAX buffers held). */
bool virtio_net__rx_full(const struct net_rx_bufs *b);
/*
 * Appends a chain taken from the RX queue: 0, -ENOSPC when full, or -EINVAL if it breaks a
 * rule: a device-readable buffer, fewer writable bytes than the header, a buffer outside
 * guest memory.
 */
int virtio_net__rx_add(struct net_rx_bufs *b, const struct gmem *gm, const struct vq_chain *c);
/*
 * How many buffers, from the first, one readv() needs to hold target bytes, without
 * splitting a chain and with at most NET_RX_IOV_MAX buffers; *chains gets the number of
 * chains. 0 when the chains held do not reach target that way.
 */
unsigned int virtio_net__rx_span(const struct net_rx_bufs *b, uint64_t target,
				 unsigned int *chains);
/*
 * A frame of bytes bytes filled the chains in order: each chain's used length in lens (one
 * per chain used), and the number of chains used (num_buffers). 0 if bytes > b->bytes.
 */
unsigned int virtio_net__rx_split(const struct net_rx_bufs *b, uint64_t bytes, uint32_t *lens);
/* Copies len bytes into the chains' buffers at byte offset off; -EINVAL past their end. */
int virtio_net__rx_write(const struct net_rx_bufs *b, uint64_t off, const void *src, size_t len);
/* Drops the first k chains (a frame used them). */
void virtio_net__rx_consume(struct net_rx_bufs *b, unsigned int k);

#endif
