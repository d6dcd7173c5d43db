// SPDX-License-Identifier: Apache-2.0
/*
 * bench/net_harness: Ember's virtio-net (src/virtio/net.c, net_tap.c) on a real TAP, without
 * a guest. The host plays the guest's driver, so the figures are the device model's own.
 *
 * The device is set up as Ember sets it up: a KVM VM with an irqchip and memslots, no vCPU
 * (tests/support/fake_vm.c), virtio_net__create() on the TAP named by --tap (which opens
 * it, as Ember does, and sets its offloads from what the driver takes), and the device's
 * events on an event loop on its own thread: the VMM thread. The main thread is the driver:
 * it does the virtio-mmio init sequence through the transport's registers, taking the
 * features Linux 6.1 takes (MRG_RXBUF, EVENT_IDX, the checksum and TSO offloads), and kicks
 * through the queues' ioeventfds. KVM consumes the irqfd; the driver polls the used rings
 * and leaves interrupts on (used_event follows), so the device does its interrupt work as
 * for Linux.
 *
 *   tx: the driver keeps the TX ring full of frames of --size bytes (Ethernet header
 *       included, the 12-byte virtio-net header in front); the device writev()s them to
 *       the TAP, and the host's stack takes them (a destination MAC that is not the
 *       host's: dropped at once, as traffic to another machine would be). The TAP's own
 *       rx_packets counter checks that they all arrived.
 *   rx: a source thread sends frames of --size bytes into the TAP through an AF_PACKET
 *       socket bound to it (PACKET_QDISC_BYPASS), keeping at most --window frames ahead of
 *       what the consumer has taken (so the TAP's queue never drops); the device readv()s
 *       them into the RX buffers the driver posts (--rx-buf bytes each, 1536 as Linux's
 *       mergeable buffers for small frames), and the driver counts and reposts them.
 *   --tso: 64 KiB frames are TCP/IPv4 segments with a GSO header (gso_size 1448), which
 *       pass through the TAP whole because of the offloads the driver negotiated.
 *
 * --mode raw is the peer, not Ember: the same frames through a TAP fd opened the same way,
 * by one thread in a plain write() (tx) or read() (rx) loop: the ceiling of any userspace
 * backend on this TAP.
 *
 * Prints one JSON object on stdout.
 *
 *   net_harness --tap NAME --dir tx|rx --size BYTES [--mode ember|raw] [--tso]
 *               [--rx-buf BYTES] [--window N] [--runtime S] [--ramp S]
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <linux/if_packet.h>
#include <linux/if_tun.h>
#include <linux/virtio_net.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "virtio/net.h"
#include "vmm/layout.h"
#include "vmm/log.h"

#include "fake_virtio.h"
#include "fake_vm.h"
#include "virtio_mmio_regs.h"

#define F(x) VIRTIO_NET_BIT(x)
/* What Linux 6.1's virtio_net takes from Ember's offer */
#define LINUX_FEATURES                                                                             \
	(F(CSUM) | F(GUEST_CSUM) | F(GUEST_TSO4) | F(GUEST_TSO6) | F(GUEST_UFO) | F(HOST_TSO4) |   \
	 F(HOST_TSO6) | F(HOST_UFO) | F(MRG_RXBUF) | (1ULL << VIRTIO_F_VERSION_1) |                \
	 (1ULL << VIRTIO_F_EVENT_IDX) | (1ULL << VIRTIO_F_INDIRECT_DESC))

#define MEM_BYTES (64ULL << 20)
#define RING_GPA 0x10000ULL /* RX ring, then TX ring */
#define DATA_GPA 0x100000ULL
#define QSIZE 256
#define HDR NET_HDR_BYTES
#define ETHERTYPE_BENCH 0x88b5 /* IEEE local experimental: no protocol takes it */
#define TSO_MSS 1448
#define PAGE 4096
#define MAX_FRAME (64 * 1024)
#define DEV_BASE LAYOUT_VIRTIO_MMIO_START
#define DEV_GSI LAYOUT_VIRTIO_IRQ_FIRST
#define STALL_NS (5ULL * 1000000000ULL)

static const uint8_t dst_mac[6] = { 0x02, 0x00, 0x00, 0x00, 0x00, 0x01 };
static const uint8_t src_mac[6] = { 0x06, 0x00, 0xac, 0x10, 0x00, 0x02 };

struct opts {
	const char *tap;
	bool rx;
	bool raw;
	bool tso;
	uint32_t size;	 /* the Ethernet frame */
	uint32_t rx_buf; /* each posted RX buffer */
	unsigned int window;
	double runtime_s;
	double ramp_s;
};

struct harness {
	struct opts o;
	struct fake_vm vm;
	struct virtio_net *n;
	struct fake_vring rings[NET_QUEUES];
	uint8_t frame[HDR + MAX_FRAME]; /* the vnet header and the frame, as sent */
	uint32_t frame_len;		/* HDR + size */

	/* rx: the source thread and the consumer's count, which paces it */
	pthread_t source;
	bool source_running;
	int pkt_fd;
	uint64_t consumed;   /* frames the consumer took (atomic) */
	bool stop_source;    /* atomic */
	uint64_t sent;	     /* by the source */
	uint64_t send_fails; /* ENOBUFS and the like */
	clockid_t source_clock;

	/* the raw peer */
	int tap_fd;

	/* counters of the driver */
	uint64_t frames;
	uint64_t bytes;
	uint64_t kicks;
	uint64_t bad_frames;
	uint16_t tx_free;      /* TX descriptors free */
	unsigned int tx_descs; /* descriptors a TX frame takes */
};

struct sample {
	uint64_t ns;
	uint64_t frames;
	uint64_t bytes;
	uint64_t proc_cpu_ns;
	uint64_t driver_cpu_ns;
	uint64_t vmm_cpu_ns;
	uint64_t source_cpu_ns;
	uint64_t kicks;
	uint64_t interrupts;
};

static uint64_t clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* ---- the frames ---- */

static uint16_t ip_checksum(const uint8_t *p, size_t len)
{
	uint32_t sum = 0;

	for (size_t i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)p[i] << 8 | p[i + 1];
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

/* A TCP/IPv4 segment of size bytes with a GSO header, as a guest's TSO sends it. */
static void make_tso_frame(struct harness *h)
{
	struct virtio_net_hdr_v1 *vh = (struct virtio_net_hdr_v1 *)h->frame;
	uint8_t *f = h->frame + HDR, *ip = f + 14, *tcp = ip + 20;
	uint32_t ip_len = h->o.size - 14;

	memset(ip, 0, 40);
	vh->flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
	vh->gso_type = VIRTIO_NET_HDR_GSO_TCPV4;
	vh->hdr_len = htole16(14 + 20 + 20);
	vh->gso_size = htole16(TSO_MSS);
	vh->csum_start = htole16(14 + 20);
	vh->csum_offset = htole16(16);
	f[12] = 0x08;
	f[13] = 0x00;
	ip[0] = 0x45;
	ip[2] = (uint8_t)(ip_len >> 8);
	ip[3] = (uint8_t)ip_len;
	ip[6] = 0x40; /* DF */
	ip[8] = 64;
	ip[9] = 6; /* TCP */
	memcpy(ip + 12, (const uint8_t[]){ 10, 0, 0, 2, 10, 0, 0, 3 }, 8);
	ip[10] = (uint8_t)(ip_checksum(ip, 20) >> 8);
	ip[11] = (uint8_t)ip_checksum(ip, 20);
	tcp[0] = 0x30; /* ports 12345 -> 5001 */
	tcp[1] = 0x39;
	tcp[2] = 0x13;
	tcp[3] = 0x89;
	tcp[12] = 5 << 4;
	tcp[13] = 0x18; /* PSH, ACK */
	tcp[14] = 0xff;
	tcp[15] = 0xff;
}

static void make_frame(struct harness *h)
{
	uint8_t *f = h->frame + HDR;

	memset(h->frame, 0, sizeof(h->frame));
	for (uint32_t i = 14; i < h->o.size; i++)
		f[i] = (uint8_t)(i * 7);
	memcpy(f, dst_mac, 6);
	memcpy(f + 6, src_mac, 6);
	if (h->o.tso) {
		make_tso_frame(h);
	} else {
		f[12] = ETHERTYPE_BENCH >> 8;
		f[13] = ETHERTYPE_BENCH & 0xff;
	}
	h->frame_len = HDR + h->o.size;
}

/* ---- the device, as vm.c sets it up ---- */

static int setup_device(struct harness *h)
{
	struct net_config cfg = { .iface_id = (char *)"eth0", .host_dev_name = (char *)h->o.tap };
	int ret;

	ret = fake_vm__create(&h->vm, MEM_BYTES);
	if (ret)
		return ret;
	ret = virtio_net__create(&h->n, &cfg, h->vm.vm_fd, &h->vm.mem.gm, DEV_BASE, DEV_GSI);
	if (ret)
		return ret;
	ret = virtio_net__watch(h->n, &h->vm.loop);
	if (ret)
		return error__set(ret, "virtio_net__watch: %s", strerror(-ret));
	ret = fake_vm__start(&h->vm);
	if (ret)
		return ret;
	for (unsigned int q = 0; q < NET_QUEUES; q++)
		fake_vring__init(&h->rings[q], &h->vm.mem, RING_GPA + q * FAKE_VRING_BYTES, QSIZE,
				 true);
	return fake_virtio__start(&h->n->t, VIRTIO_ID_NET, LINUX_FEATURES, h->rings, NET_QUEUES);
}

/* The peer: the TAP opened as Ember opens it, with the offloads Ember would set. */
static int open_tap(struct harness *h)
{
	struct ifreq ifr = { .ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR };
	int hdr = HDR;

	h->tap_fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC | O_NONBLOCK);
	if (h->tap_fd < 0)
		return error__set(-errno, "/dev/net/tun: %s", strerror(errno));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", h->o.tap);
	if (ioctl(h->tap_fd, TUNSETIFF, &ifr) < 0 || ioctl(h->tap_fd, TUNSETVNETHDRSZ, &hdr) < 0 ||
	    ioctl(h->tap_fd, TUNSETOFFLOAD, net_tap__offloads(LINUX_FEATURES)) < 0)
		return error__set(-errno, "tap %s: %s", h->o.tap, strerror(errno));
	return 0;
}

/* ---- tx ---- */

/* TX frames live in slot i of their own: header and frame, a page apart per 4 KiB. */
static uint64_t slot_gpa(const struct harness *h, unsigned int i)
{
	return DATA_GPA + (uint64_t)i * ((h->frame_len + PAGE - 1) & ~(PAGE - 1ULL));
}

/* A small frame is one buffer (Linux pushes the header into the skb's headroom); a TSO
 * frame is the header with the protocol headers, then a page per 4 KiB of payload. */
static unsigned int frame_layout(const struct harness *h, unsigned int slot, uint64_t *gpas,
				 uint32_t *lens)
{
	uint64_t at = slot_gpa(h, slot);
	uint32_t first = h->o.tso ? HDR + 54 : h->frame_len, left = h->frame_len - first;
	unsigned int n = 1;

	gpas[0] = at;
	lens[0] = first;
	for (at += first; left; n++) {
		lens[n] = left < PAGE ? left : PAGE;
		gpas[n] = at;
		at += lens[n];
		left -= lens[n];
	}
	return n;
}

static int tx_prepare(struct harness *h)
{
	uint64_t gpas[VIRTQ_CHAIN_MAX];
	uint32_t lens[VIRTQ_CHAIN_MAX];

	h->tx_descs = frame_layout(h, 0, gpas, lens);
	h->tx_free = QSIZE;
	if (slot_gpa(h, QSIZE) > MEM_BYTES)
		return error__set(-EINVAL, "frames do not fit in guest memory");
	for (unsigned int s = 0; s < QSIZE / h->tx_descs; s++)
		memcpy(fake_gmem__ptr(&h->vm.mem, slot_gpa(h, s), h->frame_len), h->frame,
		       h->frame_len);
	return 0;
}

static int tx_fill(struct harness *h)
{
	struct fake_vring *r = &h->rings[NET_QUEUE_TX];
	uint64_t gpas[VIRTQ_CHAIN_MAX];
	uint32_t lens[VIRTQ_CHAIN_MAX];

	while (h->tx_free >= h->tx_descs) {
		unsigned int slot = r->next_desc / h->tx_descs;

		frame_layout(h, slot, gpas, lens);
		fake_vring__add(r, gpas, lens, h->tx_descs, false);
		if (r->next_desc + h->tx_descs > QSIZE)
			r->next_desc = 0; /* frames do not wrap round the table */
		h->tx_free = (uint16_t)(h->tx_free - h->tx_descs);
	}
	if (fake_vring__publish(r)) {
		h->kicks++;
		return fake_virtio__kick(&h->n->t, NET_QUEUE_TX);
	}
	return 0;
}

static unsigned int tx_reap(struct harness *h)
{
	struct fake_vring *r = &h->rings[NET_QUEUE_TX];
	unsigned int n = 0;
	uint32_t id, len;

	while (fake_vring__next_used(r, &id, &len)) {
		h->tx_free = (uint16_t)(h->tx_free + h->tx_descs);
		h->frames++;
		h->bytes += h->o.size;
		n++;
	}
	fake_vring__want_interrupt(r);
	return n;
}

/* ---- rx ---- */

static int rx_post_all(struct harness *h)
{
	struct fake_vring *r = &h->rings[NET_QUEUE_RX];

	for (unsigned int i = 0; i < QSIZE; i++) {
		uint64_t gpa = DATA_GPA + (uint64_t)i * ((h->o.rx_buf + PAGE - 1) & ~(PAGE - 1ULL));

		fake_vring__add(r, &gpa, &h->o.rx_buf, 1, true);
	}
	fake_vring__want_interrupt(r);
	if (fake_vring__publish(r))
		return fake_virtio__kick(&h->n->t, NET_QUEUE_RX);
	return 0;
}

/* Takes used RX buffers: a frame's first tells how many it has (num_buffers). */
static unsigned int rx_reap(struct harness *h)
{
	struct fake_vring *r = &h->rings[NET_QUEUE_RX];
	static unsigned int left; /* buffers of the current frame still to come */
	static uint32_t frame_bytes;
	static bool ours;
	unsigned int n = 0;
	uint32_t id, len;

	while (fake_vring__next_used(r, &id, &len)) {
		uint64_t gpa =
			DATA_GPA + (uint64_t)id * ((h->o.rx_buf + PAGE - 1) & ~(PAGE - 1ULL));

		if (!left) {
			const uint8_t *b = fake_gmem__ptr(&h->vm.mem, gpa, HDR + 14);

			left = b[NET_HDR_NUM_BUFFERS] | b[NET_HDR_NUM_BUFFERS + 1] << 8;
			left = left ? left : 1;
			ours = !memcmp(b + HDR + 6, src_mac, 6);
			frame_bytes = 0;
		}
		frame_bytes += len;
		if (!--left) {
			if (ours && frame_bytes == h->frame_len) {
				h->frames++;
				h->bytes += h->o.size;
				n++;
			} else if (ours) {
				h->bad_frames++;
			}
		}
		/* the buffer goes straight back, as Linux refills */
		fake_vring__add(r, &gpa, &h->o.rx_buf, 1, true);
	}
	fake_vring__want_interrupt(r);
	if (fake_vring__publish(r)) {
		h->kicks++;
		fake_virtio__kick(&h->n->t, NET_QUEUE_RX);
	}
	if (n)
		__atomic_store_n(&h->consumed, h->frames, __ATOMIC_RELEASE);
	return n;
}

static int open_packet_socket(struct harness *h)
{
	struct sockaddr_ll sll = { .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL) };
	int one = 1;

	h->pkt_fd = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, 0);
	if (h->pkt_fd < 0)
		return error__set(-errno, "AF_PACKET: %s", strerror(errno));
	sll.sll_ifindex = (int)if_nametoindex(h->o.tap);
	if (!sll.sll_ifindex || bind(h->pkt_fd, (struct sockaddr *)&sll, sizeof(sll)) < 0 ||
	    setsockopt(h->pkt_fd, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof(one)) < 0)
		return error__set(-errno, "AF_PACKET on %s: %s", h->o.tap, strerror(errno));
	/* TSO frames go with their GSO header, so the stack keeps them whole */
	if (h->o.tso && setsockopt(h->pkt_fd, SOL_PACKET, PACKET_VNET_HDR, &one, sizeof(one)) < 0)
		return error__set(-errno, "PACKET_VNET_HDR: %s", strerror(errno));
	return 0;
}

static void *source_thread(void *arg)
{
	struct harness *h = arg;
	uint8_t tso_hdr[sizeof(struct virtio_net_hdr)];
	struct iovec iov[2] = { { tso_hdr, sizeof(tso_hdr) }, { h->frame + HDR, h->o.size } };
	/* the frame's own protocol: the GSO checks want skb->protocol to match the header */
	struct sockaddr_ll to = { .sll_family = AF_PACKET,
				  .sll_protocol = htons(h->o.tso ? ETH_P_IP : ETHERTYPE_BENCH),
				  .sll_ifindex = (int)if_nametoindex(h->o.tap),
				  .sll_halen = 6 };
	struct msghdr msg = { .msg_name = &to,
			      .msg_namelen = sizeof(to),
			      .msg_iov = iov + !h->o.tso,
			      .msg_iovlen = h->o.tso ? 2 : 1 };

	memcpy(to.sll_addr, dst_mac, 6);
	/* PACKET_VNET_HDR takes struct virtio_net_hdr: the v1 header without num_buffers */
	memcpy(tso_hdr, h->frame, sizeof(tso_hdr));
	while (!__atomic_load_n(&h->stop_source, __ATOMIC_RELAXED)) {
		if (h->sent - __atomic_load_n(&h->consumed, __ATOMIC_ACQUIRE) >= h->o.window) {
			sched_yield();
			continue;
		}
		if (sendmsg(h->pkt_fd, &msg, 0) < 0)
			h->send_fails++;
		else
			h->sent++;
	}
	return NULL;
}

static int start_source(struct harness *h)
{
	int ret = open_packet_socket(h);

	if (ret)
		return ret;
	ret = pthread_create(&h->source, NULL, source_thread, h);
	if (ret)
		return error__set(-ret, "pthread_create: %s", strerror(ret));
	h->source_running = true;
	ret = pthread_getcpuclockid(h->source, &h->source_clock);
	return ret ? error__set(-ret, "pthread_getcpuclockid: %s", strerror(ret)) : 0;
}

static void stop_source(struct harness *h)
{
	if (!h->source_running)
		return;
	__atomic_store_n(&h->stop_source, true, __ATOMIC_RELAXED);
	pthread_join(h->source, NULL);
	h->source_running = false;
}

/* ---- the raw peer: one thread, one TAP fd ---- */

static int raw_step(struct harness *h)
{
	static uint8_t buf[HDR + MAX_FRAME + 64];
	ssize_t r;

	if (!h->o.rx) {
		do
			r = write(h->tap_fd, h->frame, h->frame_len);
		while (r < 0 && errno == EAGAIN);
		if (r != (ssize_t)h->frame_len)
			return error__set(r < 0 ? -errno : -EIO, "tap write: %s", strerror(errno));
		h->frames++;
		h->bytes += h->o.size;
		return 0;
	}
	r = read(h->tap_fd, buf, sizeof(buf));
	if (r < 0 && (errno == EAGAIN || errno == EINTR)) {
		sched_yield(); /* let the source run */
		return 0;
	}
	if (r < 0)
		return error__set(-errno, "tap read: %s", strerror(errno));
	if (!memcmp(buf + HDR + 6, src_mac, 6)) {
		if (r == (ssize_t)h->frame_len) {
			h->frames++;
			h->bytes += h->o.size;
			__atomic_store_n(&h->consumed, h->frames, __ATOMIC_RELEASE);
		} else {
			h->bad_frames++;
		}
	}
	return 0;
}

/* ---- the run ---- */

static void take_sample(struct harness *h, struct sample *s)
{
	clockid_t vmm;

	s->ns = clock_ns(CLOCK_MONOTONIC);
	s->frames = h->frames;
	s->bytes = h->bytes;
	s->kicks = h->kicks;
	s->proc_cpu_ns = clock_ns(CLOCK_PROCESS_CPUTIME_ID);
	s->driver_cpu_ns = clock_ns(CLOCK_THREAD_CPUTIME_ID);
	s->vmm_cpu_ns = !h->o.raw && !fake_vm__vmm_clock(&h->vm, &vmm) ? clock_ns(vmm) : 0;
	s->source_cpu_ns = h->source_running ? clock_ns(h->source_clock) : 0;
	s->interrupts = h->n ? h->n->t.m.interrupts : 0;
}

static int step(struct harness *h, unsigned int *idle)
{
	unsigned int got;
	int ret;

	if (h->o.raw)
		return raw_step(h);
	if (h->o.rx) {
		got = rx_reap(h);
	} else {
		got = tx_reap(h);
		ret = tx_fill(h);
		if (ret)
			return ret;
	}
	if (got) {
		*idle = 0;
		return 0;
	}
	if (!(++*idle & 63))
		sched_yield(); /* let the VMM thread or the source run here */
	else
		__builtin_ia32_pause();
	return 0;
}

static int run(struct harness *h, struct sample *a, struct sample *b)
{
	uint64_t t0 = clock_ns(CLOCK_MONOTONIC), last_frames = 0, last_progress = t0;
	uint64_t start = t0 + (uint64_t)(h->o.ramp_s * 1e9);
	uint64_t end = start + (uint64_t)(h->o.runtime_s * 1e9);
	bool measuring = false;
	unsigned int idle = 0;
	int ret;

	for (uint64_t i = 0;; i++) {
		if (!(i & 255)) {
			uint64_t now = clock_ns(CLOCK_MONOTONIC);

			if (!measuring && now >= start) {
				take_sample(h, a);
				measuring = true;
			}
			if (now >= end)
				break;
			if (h->frames != last_frames) {
				last_frames = h->frames;
				last_progress = now;
			} else if (now - last_progress > STALL_NS) {
				return error__set(-ETIMEDOUT, "no frame for %llu s",
						  STALL_NS / 1000000000ULL);
			}
		}
		ret = step(h, &idle);
		if (ret)
			return ret;
	}
	take_sample(h, b);
	if (b->frames == a->frames)
		return error__set(-EIO, "no frame went through (%llu sends failed)",
				  (unsigned long long)h->send_fails);
	return 0;
}

/* The TAP's rx_packets: frames written to its fd that reached the host's stack. */
static uint64_t tap_stat(const char *tap, const char *name)
{
	char path[128];
	unsigned long long v = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/sys/class/net/%s/statistics/%s", tap, name);
	f = fopen(path, "r");
	if (!f)
		return 0;
	if (fscanf(f, "%llu", &v) != 1)
		v = 0;
	fclose(f);
	return v;
}

static void print_result(const struct harness *h, const struct sample *a, const struct sample *b,
			 uint64_t tap_delta)
{
	double secs = (double)(b->ns - a->ns) / 1e9, frames = (double)(b->frames - a->frames);
	double bytes = (double)(b->bytes - a->bytes);
	double driver = (double)(b->driver_cpu_ns - a->driver_cpu_ns) / 1e9;
	double source = (double)(b->source_cpu_ns - a->source_cpu_ns) / 1e9;
	double vmm = (double)(b->vmm_cpu_ns - a->vmm_cpu_ns) / 1e9;
	double proc = (double)(b->proc_cpu_ns - a->proc_cpu_ns) / 1e9;
	const struct net_metrics *m = h->n ? &h->n->m : NULL;

	printf("{\"mode\": \"%s\", \"dir\": \"%s\", \"size\": %u, \"tso\": %s, \"rx_buf\": %u, "
	       "\"seconds\": %.4f, \"frames\": %.0f, \"bytes\": %.0f, \"pps\": %.1f, "
	       "\"gbit_s\": %.4f, \"proc_cpu_s\": %.4f, \"driver_cpu_s\": %.4f, "
	       "\"source_cpu_s\": %.4f, \"vmm_thread_cpu_s\": %.4f, \"device_cpu_s\": %.4f, "
	       "\"kicks\": %llu, \"interrupts\": %llu, \"bad_frames\": %llu, \"sent\": %llu, "
	       "\"send_fails\": %llu, \"tap_counter_delta\": %llu, \"tx_packets\": %llu, "
	       "\"rx_packets\": %llu, \"rx_bounced\": %llu, \"tx_blocked\": %llu, "
	       "\"no_rx_avail_buffer\": %llu}\n",
	       h->o.raw ? "raw" : "ember", h->o.rx ? "rx" : "tx", h->o.size,
	       h->o.tso ? "true" : "false", h->o.rx_buf, secs, frames, bytes, frames / secs,
	       bytes * 8 / secs / 1e9, proc, driver, source, vmm,
	       h->o.raw ? driver : proc - driver - source,
	       (unsigned long long)(b->kicks - a->kicks),
	       (unsigned long long)(b->interrupts - a->interrupts),
	       (unsigned long long)h->bad_frames, (unsigned long long)h->sent,
	       (unsigned long long)h->send_fails, (unsigned long long)tap_delta,
	       (unsigned long long)(m ? m->tx_packets_count : 0),
	       (unsigned long long)(m ? m->rx_packets_count : 0),
	       (unsigned long long)(m ? m->rx_bounced_frames : 0),
	       (unsigned long long)(m ? m->tx_remaining_reqs_count : 0),
	       (unsigned long long)(m ? m->no_rx_avail_buffer : 0));
}

/* ---- options ---- */

static int parse_opt(struct opts *o, int c, const char *arg)
{
	switch (c) {
	case 'T':
		o->tap = arg;
		return 0;
	case 'd':
		o->rx = !strcmp(arg, "rx");
		return o->rx || !strcmp(arg, "tx") ? 0 : -EINVAL;
	case 'm':
		o->raw = !strcmp(arg, "raw");
		return o->raw || !strcmp(arg, "ember") ? 0 : -EINVAL;
	case 's':
		o->size = (uint32_t)strtoul(arg, NULL, 0);
		return 0;
	case 'g':
		o->tso = true;
		return 0;
	case 'b':
		o->rx_buf = (uint32_t)strtoul(arg, NULL, 0);
		return 0;
	case 'w':
		o->window = (unsigned int)strtoul(arg, NULL, 0);
		return 0;
	case 't':
		o->runtime_s = strtod(arg, NULL);
		return 0;
	case 'p':
		o->ramp_s = strtod(arg, NULL);
		return 0;
	default:
		return -EINVAL;
	}
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
	static const struct option longs[] = {
		{ "tap", required_argument, NULL, 'T' },
		{ "dir", required_argument, NULL, 'd' },
		{ "mode", required_argument, NULL, 'm' },
		{ "size", required_argument, NULL, 's' },
		{ "tso", no_argument, NULL, 'g' },
		{ "rx-buf", required_argument, NULL, 'b' },
		{ "window", required_argument, NULL, 'w' },
		{ "runtime", required_argument, NULL, 't' },
		{ "ramp", required_argument, NULL, 'p' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	*o = (struct opts){
		.size = 64, .rx_buf = 1536, .window = 256, .runtime_s = 2, .ramp_s = 0.3
	};
	while ((c = getopt_long(argc, argv, "", longs, NULL)) != -1) {
		if (parse_opt(o, c, optarg))
			return error__set(-EINVAL, "bad option; usage: see bench/net_harness.c");
	}
	if (!o->tap)
		return error__set(-EINVAL, "--tap is required");
	if (o->size < 60 || o->size > MAX_FRAME || (o->tso && o->size < 54 + TSO_MSS + 1))
		return error__set(-EINVAL, "--size must be 60..65536 (with --tso, > 1 MSS)");
	if (o->rx_buf < HDR + 14 || o->rx_buf > 65562 || o->window < 1 || o->runtime_s <= 0)
		return error__set(-EINVAL, "bad --rx-buf, --window or --runtime");
	if (!o->rx && HDR + o->size > 14 * PAGE && !o->tso)
		return error__set(-EINVAL, "large TX frames need --tso");
	return 0;
}

int main(int argc, char **argv)
{
	struct harness *h = calloc(1, sizeof(*h));
	struct sample a = { 0 }, b = { 0 };
	uint64_t tap0 = 0;
	int ret;

	if (!h)
		return 1;
	h->vm = (struct fake_vm){ .kvm_fd = -1, .vm_fd = -1, .stop_h.fd = -1, .loop.epfd = -1 };
	h->pkt_fd = h->tap_fd = -1;
	log__set_level(LOG_LEVEL_WARN);
	ret = parse_opts(argc, argv, &h->o);
	if (!ret) {
		make_frame(h);
		ret = h->o.raw ? open_tap(h) : setup_device(h);
	}
	if (!ret && !h->o.raw)
		ret = h->o.rx ? rx_post_all(h) : tx_prepare(h);
	if (!ret && h->o.rx)
		ret = start_source(h);
	tap0 = tap_stat(h->o.tap ? h->o.tap : "", h->o.rx ? "tx_packets" : "rx_packets");
	if (!ret)
		ret = run(h, &a, &b);
	stop_source(h);
	if (!ret) {
		usleep(100000); /* what is in flight lands */
		if (h->n)
			fake_virtio__write(&h->n->t, R_STATUS,
					   0); /* reset: the device drops its queues */
		fake_vm__stop(&h->vm);
		print_result(h, &a, &b,
			     tap_stat(h->o.tap, h->o.rx ? "tx_packets" : "rx_packets") - tap0);
	} else {
		fprintf(stderr, "net_harness: %s\n", *error__get() ? error__get() : strerror(-ret));
	}
	fake_vm__stop(&h->vm);
	if (h->n)
		virtio_net__destroy(h->n);
	fake_vm__destroy(&h->vm);
	if (h->pkt_fd >= 0)
		close(h->pkt_fd);
	if (h->tap_fd >= 0)
		close(h->tap_fd);
	ret = ret || h->bad_frames;
	free(h);
	return ret;
}
