// SPDX-License-Identifier: Apache-2.0
/*
 * bench/vsock_harness: Ember's virtio-vsock (src/virtio/vsock.c, vsock_stream.c,
 * vsock_conn.c, vsock_packet.c) with its Unix-socket bridge, without a guest. The host
 * plays the guest's driver and a host application, so the figures are the device model's.
 *
 * The device is set up as Ember sets it up: a KVM VM with memslots and an irqchip, no vCPU
 * (tests/support/fake_vm.c), virtio_vsock__create() listening on a uds_path in a temporary
 * directory, and its events on an event loop on its own thread: the VMM thread. Three
 * threads then:
 *
 *   VMM thread   Ember's device: the queues, the listening socket, the host sockets.
 *   driver       (the main thread) the guest: virtio-mmio init through the transport's
 *                registers (VERSION_1 and EVENT_IDX), a vsock stream as Linux 6.1's
 *                virtio_transport_common.c runs it: rx buffers of a 44-byte header and a
 *                4 KiB buffer (two descriptors), packets of at most 4 KiB of payload,
 *                buf_alloc 256 KiB, a CREDIT_UPDATE when the free space the host last heard
 *                of falls under 64 KiB, a CREDIT_UPDATE for every CREDIT_REQUEST. Its
 *                application consumes at once. It sleeps on the device's irqfd (taken back
 *                from KVM) when there is nothing to do, as a halted vCPU waits for the
 *                interrupt, and kicks through the queues' ioeventfds.
 *   host         a host application on the Unix sockets, blocking I/O, 64 KiB at a time.
 *
 *   h2g       the host connects to uds_path, "CONNECT 5000\n", reads "OK <port>\n", then
 *             writes; the guest answers the REQUEST and sinks the stream.
 *   g2h       the guest connects to host port 6000; the host listens on uds_path_6000,
 *             accepts and sinks.
 *   pingpong  as h2g, then the host writes --msg bytes (64) and waits for them back; the
 *             guest echoes every byte it gets. One message in flight; RTT per message.
 *
 * --mode socketpair is the peer, not Ember: the same traffic between the same two
 * application threads (host and driver thread) over a Unix socket pair, the guest side
 * reading and writing 64 KiB at a time (or the message, for pingpong): the ceiling of the
 * bridge, which ends in such a socket on the host side anyway.
 *
 * Prints one JSON object on stdout.
 *
 *   vsock_harness --test h2g|g2h|pingpong [--mode ember|socketpair] [--runtime S]
 *                 [--ramp S] [--msg BYTES] [--pkt BYTES] [--rx-buf BYTES]
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "virtio/vsock.h"
#include "vmm/layout.h"
#include "vmm/log.h"
#include "vmm/vm_config.h"

#include "fake_virtio.h"
#include "fake_vm.h"
#include "virtio_mmio_regs.h"

#define FEATURES ((1ULL << VIRTIO_F_VERSION_1) | (1ULL << VIRTIO_F_EVENT_IDX))
#define MEM_BYTES (64ULL << 20)
#define RING_GPA 0x10000ULL	/* rx, tx, event rings */
#define RX_GPA 0x100000ULL	/* rx slots: header, then payload at +PAYLOAD_OFF */
#define TX_GPA 0x1000000ULL	/* tx slots, the same */
#define EV_GPA 0x3000000ULL	/* event buffers */
#define PAYLOAD_OFF 64
#define QSIZE 256
#define SLOTS (QSIZE / 2) /* two descriptors a packet */
#define PAGE 4096
#define GUEST_CID 3
#define GUEST_PORT 5000	     /* the guest listens here (h2g, pingpong) */
#define GUEST_SRC_PORT 49152 /* the guest's port for g2h */
#define HOST_PORT 6000	     /* the host listens on uds_path_6000 (g2h) */
#define BUF_ALLOC (256U * 1024U)
#define LINUX_MAX_PKT (64U * 1024U) /* VIRTIO_VSOCK_MAX_PKT_BUF_SIZE */
#define APP_CHUNK (64U * 1024U)
#define MAX_MSG 4096
#define MAX_RTTS (4U << 20)
#define STALL_NS (5ULL * 1000000000ULL)
#define DEV_BASE LAYOUT_VIRTIO_MMIO_START
#define DEV_GSI LAYOUT_VIRTIO_IRQ_FIRST

/* the header's fields (virtio 1.2, 5.10.6), little-endian offsets */
#define H_SRC_CID 0
#define H_DST_CID 8
#define H_SRC_PORT 16
#define H_DST_PORT 20
#define H_LEN 24
#define H_TYPE 28
#define H_OP 30
#define H_FLAGS 32
#define H_BUF_ALLOC 36
#define H_FWD_CNT 40

enum test { T_H2G, T_G2H, T_PINGPONG };

struct opts {
	enum test test;
	bool pair;
	double runtime_s;
	double ramp_s;
	uint32_t msg;	 /* pingpong message */
	uint32_t pkt;	 /* the largest payload the guest puts in a packet */
	uint32_t rx_buf; /* the payload buffer of each rx buffer */
};

/* The guest's one connection, as Linux's virtio_vsock_sock keeps it. */
struct guest_conn {
	uint32_t local_port, peer_port; /* the guest's, the host's */
	bool established;
	bool ended; /* RST or SHUTDOWN from the host */
	uint32_t peer_buf_alloc, peer_fwd_cnt;
	uint32_t tx_cnt;
	uint32_t fwd_cnt;
	uint32_t last_fwd_cnt; /* fwd_cnt as the host last heard it */
	bool owe_request, owe_response, owe_credit;
	uint8_t echo[MAX_MSG * 4];
	uint32_t echo_len;
};

struct harness {
	struct opts o;
	char dir[64];
	char uds_path[96];
	char host_path[108];

	struct fake_vm vm;
	struct virtio_vsock *v;
	struct fake_vring rings[3];
	int irq_fd;
	uint32_t rx_stride, tx_stride;
	uint16_t tx_free; /* tx slots */
	struct guest_conn g;

	/* the driver's counters */
	uint64_t kicks, irq_waits, rx_pkts, rx_rw, rx_credit_updates, rx_credit_requests;
	uint64_t tx_pkts, tx_credit_updates, bad_packets;

	/* shared with the host thread */
	pthread_t host;
	bool host_running;
	clockid_t host_clock;
	int host_fd;	/* the host application's socket (atomic) */
	int listen_fd;	/* g2h: uds_path_6000 */
	int pair[2];	/* socketpair mode */
	bool stop;	/* atomic */
	bool measuring; /* atomic: the host records round trips */
	uint64_t bytes; /* atomic: stream bytes the receiving side took */
	uint64_t round_trips; /* atomic */
	uint64_t *rtt_ns;
	uint32_t nr_rtt; /* written by the host thread only while measuring */
	char host_error[160];
};

struct sample {
	uint64_t ns, bytes, round_trips;
	uint64_t proc_cpu_ns, driver_cpu_ns, vmm_cpu_ns, host_cpu_ns;
	uint64_t interrupts, kicks, irq_waits;
	uint64_t dev_rx_pkts, dev_tx_pkts;
	uint64_t rx_credit_updates, rx_credit_requests, tx_credit_updates;
};

static uint64_t clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* ---- the host application ---- */

static void host_fail(struct harness *h, const char *what, int err)
{
	if (!__atomic_load_n(&h->stop, __ATOMIC_RELAXED))
		snprintf(h->host_error, sizeof(h->host_error), "host: %s: %s", what,
			 err ? strerror(err) : "end of stream");
}

/* All of len bytes to (out) or from fd, blocking: 0 or -errno (-EPIPE at the end). */
static int xfer_full(int fd, void *p, size_t len, bool out)
{
	uint8_t *b = p;

	while (len) {
		ssize_t k = out ? send(fd, b, len, MSG_NOSIGNAL) : read(fd, b, len);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return k < 0 ? -errno : -EPIPE;
		b += k;
		len -= (size_t)k;
	}
	return 0;
}

/* host -> guest: connect to uds_path and ask for the guest's port. */
static int host_connect(struct harness *h)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	char line[32], c = 0;
	size_t n = 0;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), ret;

	if (fd < 0)
		return -errno;
	memcpy(a.sun_path, h->uds_path, strlen(h->uds_path) + 1);
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		ret = -errno;
		goto err_close;
	}
	n = (size_t)snprintf(line, sizeof(line), "CONNECT %u\n", GUEST_PORT);
	ret = xfer_full(fd, line, n, true);
	/* the reply a byte at a time: nothing after its '\n' is ours to take */
	for (n = 0; !ret && c != '\n' && n < sizeof(line) - 1; n++) {
		ret = xfer_full(fd, &c, 1, false);
		line[n] = c;
	}
	if (!ret && (c != '\n' || strncmp(line, "OK ", 3)))
		ret = -EPROTO;
	if (ret)
		goto err_close;
	return fd;
err_close:
	close(fd);
	return ret;
}

static int host_open(struct harness *h)
{
	int fd;

	if (h->o.pair)
		return h->pair[0];
	if (h->o.test != T_G2H)
		return host_connect(h);
	do
		fd = accept4(h->listen_fd, NULL, NULL, SOCK_CLOEXEC);
	while (fd < 0 && errno == EINTR);
	return fd < 0 ? -errno : fd;
}

static void host_stream_out(struct harness *h, int fd)
{
	static uint8_t chunk[APP_CHUNK];

	memset(chunk, 0x5a, sizeof(chunk));
	while (!__atomic_load_n(&h->stop, __ATOMIC_RELAXED)) {
		int ret = xfer_full(fd, chunk, sizeof(chunk), true);

		if (ret) {
			host_fail(h, "write", -ret);
			return;
		}
	}
}

static void host_stream_in(struct harness *h, int fd)
{
	static uint8_t buf[APP_CHUNK];

	while (!__atomic_load_n(&h->stop, __ATOMIC_RELAXED)) {
		ssize_t k = read(fd, buf, sizeof(buf));

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			host_fail(h, "read", k < 0 ? errno : 0);
			return;
		}
		__atomic_add_fetch(&h->bytes, (uint64_t)k, __ATOMIC_RELAXED);
	}
}

static void host_pingpong(struct harness *h, int fd)
{
	uint8_t msg[MAX_MSG], back[MAX_MSG];
	uint64_t seq = 0;

	while (!__atomic_load_n(&h->stop, __ATOMIC_RELAXED)) {
		uint64_t t0, t1;
		int ret;

		memset(msg, (int)(seq++ & 0xff), h->o.msg);
		t0 = clock_ns(CLOCK_MONOTONIC);
		ret = xfer_full(fd, msg, h->o.msg, true);
		if (!ret)
			ret = xfer_full(fd, back, h->o.msg, false);
		t1 = clock_ns(CLOCK_MONOTONIC);
		if (ret) {
			host_fail(h, "ping-pong", -ret);
			return;
		}
		if (memcmp(msg, back, h->o.msg)) {
			host_fail(h, "ping-pong: the echo differs", EBADMSG);
			return;
		}
		if (__atomic_load_n(&h->measuring, __ATOMIC_ACQUIRE) && h->nr_rtt < MAX_RTTS)
			h->rtt_ns[h->nr_rtt++] = t1 - t0;
		__atomic_add_fetch(&h->round_trips, 1, __ATOMIC_RELAXED);
	}
}

static void *host_thread(void *arg)
{
	struct harness *h = arg;
	int fd = host_open(h);

	if (fd < 0) {
		host_fail(h, "connect", -fd);
		return NULL;
	}
	__atomic_store_n(&h->host_fd, fd, __ATOMIC_RELEASE);
	if (h->o.test == T_H2G)
		host_stream_out(h, fd);
	else if (h->o.test == T_G2H)
		host_stream_in(h, fd);
	else
		host_pingpong(h, fd);
	return NULL;
}

/* ---- the device, as vm.c sets it up ---- */

static int make_paths(struct harness *h)
{
	snprintf(h->dir, sizeof(h->dir), "/tmp/vsock_harness.XXXXXX");
	if (!mkdtemp(h->dir))
		return error__set(-errno, "mkdtemp: %s", strerror(errno));
	snprintf(h->uds_path, sizeof(h->uds_path), "%s/v.sock", h->dir);
	snprintf(h->host_path, sizeof(h->host_path), "%s_%u", h->uds_path, HOST_PORT);
	return 0;
}

static int listen_host(struct harness *h)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };

	memcpy(a.sun_path, h->host_path, strlen(h->host_path) + 1);
	h->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (h->listen_fd < 0 || bind(h->listen_fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    listen(h->listen_fd, 16) < 0)
		return error__set(-errno, "%s: %s", h->host_path, strerror(errno));
	return 0;
}

static int setup_device(struct harness *h)
{
	struct vsock_config cfg = { .guest_cid = GUEST_CID, .uds_path = h->uds_path };
	int ret;

	ret = fake_vm__create(&h->vm, MEM_BYTES);
	if (ret)
		return ret;
	ret = virtio_vsock__create(&h->v, &cfg, h->vm.vm_fd, &h->vm.mem.gm, DEV_BASE, DEV_GSI);
	if (ret)
		return ret;
	/* the driver sleeps on the interrupt: the irqfd comes back from KVM to us */
	ret = fake_vm__take_irqfd(&h->vm, h->v->t.irq_fd, DEV_GSI);
	if (ret)
		return ret;
	h->irq_fd = h->v->t.irq_fd;
	ret = virtio_vsock__watch(h->v, &h->vm.loop);
	if (ret)
		return ret;
	ret = fake_vm__start(&h->vm);
	if (ret)
		return ret;
	for (unsigned int q = 0; q < 3; q++)
		fake_vring__init(&h->rings[q], &h->vm.mem, RING_GPA + q * FAKE_VRING_BYTES, QSIZE,
				 true);
	return fake_virtio__start(&h->v->t, VIRTIO_ID_VSOCK, FEATURES, h->rings, 3);
}

/* ---- the guest's packets ---- */

static uint64_t rx_slot(const struct harness *h, unsigned int s)
{
	return RX_GPA + (uint64_t)s * h->rx_stride;
}

static uint64_t tx_slot(const struct harness *h, unsigned int s)
{
	return TX_GPA + (uint64_t)s * h->tx_stride;
}

static int kick(struct harness *h, uint16_t q)
{
	if (!fake_vring__publish(&h->rings[q]))
		return 0;
	h->kicks++;
	return fake_virtio__kick(&h->v->t, q);
}

static void post_rx(struct harness *h, unsigned int s)
{
	uint64_t gpas[2] = { rx_slot(h, s), rx_slot(h, s) + PAYLOAD_OFF };
	uint32_t lens[2] = { 44, h->o.rx_buf };

	fake_vring__add(&h->rings[VSOCK_RXQ], gpas, lens, 2, true);
}

static int post_buffers(struct harness *h)
{
	uint64_t ev = EV_GPA;
	uint32_t ev_len = 4;

	for (unsigned int s = 0; s < SLOTS; s++)
		post_rx(h, s);
	fake_vring__add(&h->rings[VSOCK_EVQ], &ev, &ev_len, 1, true); /* as Linux fills it */
	for (unsigned int q = 0; q < 3; q++)
		fake_vring__want_interrupt(&h->rings[q]);
	h->tx_free = SLOTS;
	for (unsigned int s = 0; s < SLOTS; s++)
		memset(fake_gmem__ptr(&h->vm.mem, tx_slot(h, s) + PAYLOAD_OFF, h->o.pkt), 0xa5,
		       h->o.pkt);
	return kick(h, VSOCK_RXQ) ?: kick(h, VSOCK_EVQ);
}

/* One packet on the tx ring: a header and, with len, the payload already in the slot. */
static void send_pkt(struct harness *h, uint16_t op, uint32_t len, uint32_t flags)
{
	struct fake_vring *r = &h->rings[VSOCK_TXQ];
	struct fake_gmem *m = &h->vm.mem;
	struct guest_conn *g = &h->g;
	unsigned int s = r->next_desc / 2;
	uint64_t at = tx_slot(h, s), gpas[2] = { at, at + PAYLOAD_OFF };
	uint32_t lens[2] = { 44, len };

	fake_gmem__put64(m, at + H_SRC_CID, GUEST_CID);
	fake_gmem__put64(m, at + H_DST_CID, VSOCK_HOST_CID);
	fake_gmem__put32(m, at + H_SRC_PORT, g->local_port);
	fake_gmem__put32(m, at + H_DST_PORT, g->peer_port);
	fake_gmem__put32(m, at + H_LEN, len);
	fake_gmem__put16(m, at + H_TYPE, VSOCK_TYPE_STREAM);
	fake_gmem__put16(m, at + H_OP, op);
	fake_gmem__put32(m, at + H_FLAGS, flags);
	fake_gmem__put32(m, at + H_BUF_ALLOC, BUF_ALLOC);
	fake_gmem__put32(m, at + H_FWD_CNT, g->fwd_cnt);
	fake_vring__add(r, gpas, lens, len ? 2 : 1, false);
	r->next_desc = (uint16_t)((s * 2 + 2) % QSIZE); /* a slot is two descriptors */
	h->tx_free--;
	h->tx_pkts++;
	g->last_fwd_cnt = g->fwd_cnt; /* every packet tells the host our credit */
	g->tx_cnt += len;
	if (op == VSOCK_OP_CREDIT_UPDATE)
		h->tx_credit_updates++;
}

static uint32_t peer_credit(const struct guest_conn *g)
{
	uint32_t in_flight = g->tx_cnt - g->peer_fwd_cnt;

	return in_flight > g->peer_buf_alloc ? 0 : g->peer_buf_alloc - in_flight;
}

/* RW packets: the echo (pingpong), or the stream (g2h), within the host's credit. */
static unsigned int send_data(struct harness *h)
{
	struct guest_conn *g = &h->g;
	unsigned int n = 0;

	while (g->established && !g->ended && h->tx_free) {
		uint32_t len = h->o.test == T_G2H ? h->o.pkt : g->echo_len, credit = peer_credit(g);

		len = len < h->o.pkt ? len : h->o.pkt;
		len = len < credit ? len : credit;
		if (!len)
			break;
		if (h->o.test == T_PINGPONG) {
			uint8_t *p = fake_gmem__ptr(&h->vm.mem,
						    tx_slot(h, h->rings[VSOCK_TXQ].next_desc / 2) +
							    PAYLOAD_OFF,
						    len);

			memcpy(p, g->echo, len);
			memmove(g->echo, g->echo + len, g->echo_len - len);
			g->echo_len -= len;
		}
		send_pkt(h, VSOCK_OP_RW, len, 0);
		n++;
	}
	return n;
}

/* What the guest owes, then data; one kick for the lot. */
static int tx_pump(struct harness *h, unsigned int *sent)
{
	struct guest_conn *g = &h->g;
	unsigned int n = 0;

	if (g->owe_request && h->tx_free) {
		g->owe_request = false;
		send_pkt(h, VSOCK_OP_REQUEST, 0, 0);
		n++;
	}
	if (g->owe_response && h->tx_free) {
		g->owe_response = false;
		g->established = true;
		send_pkt(h, VSOCK_OP_RESPONSE, 0, 0);
		n++;
	}
	n += send_data(h);
	/* Linux: a credit update once the free space the host knows of is under 64 KiB */
	if (BUF_ALLOC - (g->fwd_cnt - g->last_fwd_cnt) < LINUX_MAX_PKT)
		g->owe_credit = true;
	if (g->owe_credit && g->established && h->tx_free) {
		g->owe_credit = false;
		send_pkt(h, VSOCK_OP_CREDIT_UPDATE, 0, 0);
		n++;
	}
	*sent = n;
	return n ? kick(h, VSOCK_TXQ) : 0;
}

static unsigned int tx_reap(struct harness *h)
{
	unsigned int n = 0;
	uint32_t id, len;

	while (fake_vring__next_used(&h->rings[VSOCK_TXQ], &id, &len)) {
		h->tx_free++;
		n++;
	}
	return n;
}

static void rx_packet(struct harness *h, uint64_t at, uint32_t used_len)
{
	struct fake_gmem *m = &h->vm.mem;
	struct guest_conn *g = &h->g;
	uint16_t op = fake_gmem__get16(m, at + H_OP);
	uint32_t len = fake_gmem__get32(m, at + H_LEN);
	uint32_t src_port = fake_gmem__get32(m, at + H_SRC_PORT);

	h->rx_pkts++;
	if (fake_gmem__get64(m, at + H_DST_CID) != GUEST_CID ||
	    fake_gmem__get32(m, at + H_DST_PORT) != g->local_port ||
	    used_len != 44 + (op == VSOCK_OP_RW ? len : 0) || len > h->o.rx_buf) {
		h->bad_packets++;
		return;
	}
	if (op == VSOCK_OP_REQUEST && !g->established) {
		g->peer_port = src_port;
		g->owe_response = true;
	} else if (src_port != g->peer_port) {
		h->bad_packets++;
		return;
	}
	g->peer_buf_alloc = fake_gmem__get32(m, at + H_BUF_ALLOC);
	g->peer_fwd_cnt = fake_gmem__get32(m, at + H_FWD_CNT);
	switch (op) {
	case VSOCK_OP_RESPONSE:
		g->established = true;
		break;
	case VSOCK_OP_RW:
		h->rx_rw++;
		if (h->o.test == T_PINGPONG && g->echo_len + len <= sizeof(g->echo)) {
			memcpy(g->echo + g->echo_len, fake_gmem__ptr(m, at + PAYLOAD_OFF, len),
			       len);
			g->echo_len += len;
		} else if (h->o.test == T_PINGPONG) {
			h->bad_packets++;
		} else {
			__atomic_add_fetch(&h->bytes, len, __ATOMIC_RELAXED);
		}
		g->fwd_cnt += len; /* the application took it at once */
		break;
	case VSOCK_OP_CREDIT_UPDATE:
		h->rx_credit_updates++;
		break;
	case VSOCK_OP_CREDIT_REQUEST:
		h->rx_credit_requests++;
		g->owe_credit = true;
		break;
	case VSOCK_OP_REQUEST:
		break;
	default: /* SHUTDOWN, RST: the host went away */
		g->ended = true;
		break;
	}
}

static unsigned int rx_reap(struct harness *h)
{
	struct fake_vring *r = &h->rings[VSOCK_RXQ];
	unsigned int n = 0;
	uint32_t id, len;

	while (fake_vring__next_used(r, &id, &len)) {
		if (id != r->next_desc || id % 2) {
			h->bad_packets++; /* rx buffers come back in order */
			return n;
		}
		rx_packet(h, rx_slot(h, id / 2), len);
		post_rx(h, id / 2);
		n++;
	}
	return n;
}

static bool used_pending(const struct harness *h, unsigned int q)
{
	const struct fake_vring *r = &h->rings[q];

	return fake_gmem__load16_acquire(r->mem, r->used + 2) != r->last_used;
}

/* Nothing to do: ask for an interrupt on both rings and sleep on the irqfd. */
static void wait_irq(struct harness *h)
{
	struct pollfd p = { .fd = h->irq_fd, .events = POLLIN };
	uint64_t n;
	ssize_t r;

	fake_vring__want_interrupt(&h->rings[VSOCK_RXQ]);
	fake_vring__want_interrupt(&h->rings[VSOCK_TXQ]);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (used_pending(h, VSOCK_RXQ) || used_pending(h, VSOCK_TXQ))
		return;
	h->irq_waits++;
	if (poll(&p, 1, 10) == 1)
		r = read(h->irq_fd, &n, sizeof(n));
	(void)r;
}

static int driver_step(struct harness *h)
{
	unsigned int got = rx_reap(h), sent = 0;
	int ret;

	got += tx_reap(h);
	ret = kick(h, VSOCK_RXQ); /* the buffers reposted */
	if (!ret)
		ret = tx_pump(h, &sent);
	if (ret)
		return ret;
	if (h->bad_packets)
		return error__set(-EPROTO, "the device sent a packet the guest did not expect");
	if (h->g.ended)
		return error__set(-ECONNRESET, "the host side ended the connection");
	if (!got && !sent)
		wait_irq(h);
	return 0;
}

/* ---- the peer: the guest application on its end of the socket pair ---- */

static int pair_step(struct harness *h)
{
	static uint8_t buf[APP_CHUNK];
	int fd = h->pair[1], ret = 0;
	ssize_t k;

	switch (h->o.test) {
	case T_H2G:
		k = read(fd, buf, sizeof(buf));
		if (k <= 0 && !(k < 0 && errno == EINTR))
			return error__set(k < 0 ? -errno : -EPIPE, "pair read");
		if (k > 0)
			__atomic_add_fetch(&h->bytes, (uint64_t)k, __ATOMIC_RELAXED);
		return 0;
	case T_G2H:
		ret = xfer_full(fd, buf, sizeof(buf), true);
		break;
	case T_PINGPONG:
		ret = xfer_full(fd, buf, h->o.msg, false);
		if (!ret)
			ret = xfer_full(fd, buf, h->o.msg, true);
		break;
	}
	return ret ? error__set(ret, "pair: %s", strerror(-ret)) : 0;
}

/* ---- the run ---- */

static void take_sample(struct harness *h, struct sample *s)
{
	clockid_t vmm;

	s->ns = clock_ns(CLOCK_MONOTONIC);
	s->bytes = __atomic_load_n(&h->bytes, __ATOMIC_RELAXED);
	s->round_trips = __atomic_load_n(&h->round_trips, __ATOMIC_RELAXED);
	s->proc_cpu_ns = clock_ns(CLOCK_PROCESS_CPUTIME_ID);
	s->driver_cpu_ns = clock_ns(CLOCK_THREAD_CPUTIME_ID);
	s->vmm_cpu_ns = h->v && !fake_vm__vmm_clock(&h->vm, &vmm) ? clock_ns(vmm) : 0;
	s->host_cpu_ns = h->host_running ? clock_ns(h->host_clock) : 0;
	s->interrupts = h->v ? h->v->t.m.interrupts : 0;
	s->dev_rx_pkts = h->v ? h->v->m.rx_packets_count : 0;
	s->dev_tx_pkts = h->v ? h->v->m.tx_packets_count : 0;
	s->kicks = h->kicks;
	s->irq_waits = h->irq_waits;
	s->rx_credit_updates = h->rx_credit_updates;
	s->rx_credit_requests = h->rx_credit_requests;
	s->tx_credit_updates = h->tx_credit_updates;
}

static uint64_t progress(struct harness *h)
{
	return __atomic_load_n(&h->bytes, __ATOMIC_RELAXED) +
	       __atomic_load_n(&h->round_trips, __ATOMIC_RELAXED);
}

static int run(struct harness *h, struct sample *a, struct sample *b)
{
	uint64_t t0 = clock_ns(CLOCK_MONOTONIC), last = 0, last_progress = t0;
	uint64_t start = t0 + (uint64_t)(h->o.ramp_s * 1e9);
	uint64_t end = start + (uint64_t)(h->o.runtime_s * 1e9);
	bool measuring = false;
	int ret;

	for (;;) {
		uint64_t now = clock_ns(CLOCK_MONOTONIC);

		if (!measuring && now >= start) {
			take_sample(h, a);
			__atomic_store_n(&h->measuring, true, __ATOMIC_RELEASE);
			measuring = true;
		}
		if (now >= end)
			break;
		if (*h->host_error)
			return error__set(-EIO, "%s", h->host_error);
		if (progress(h) != last) {
			last = progress(h);
			last_progress = now;
		} else if (now - last_progress > STALL_NS) {
			return error__set(-ETIMEDOUT, "no progress for %llu s",
					  STALL_NS / 1000000000ULL);
		}
		ret = h->o.pair ? pair_step(h) : driver_step(h);
		if (ret)
			return ret;
	}
	__atomic_store_n(&h->measuring, false, __ATOMIC_RELEASE);
	take_sample(h, b);
	return b->bytes + b->round_trips == a->bytes + a->round_trips
		       ? error__set(-EIO, "nothing went through")
		       : 0;
}

static int start_host(struct harness *h)
{
	int ret = pthread_create(&h->host, NULL, host_thread, h);

	if (ret)
		return error__set(-ret, "pthread_create: %s", strerror(ret));
	h->host_running = true;
	ret = pthread_getcpuclockid(h->host, &h->host_clock);
	return ret ? error__set(-ret, "pthread_getcpuclockid: %s", strerror(ret)) : 0;
}

/* The host thread may sleep in a blocking call: its socket is shut down under it. */
static void stop_host(struct harness *h)
{
	int fd;

	if (!h->host_running)
		return;
	__atomic_store_n(&h->stop, true, __ATOMIC_RELAXED);
	fd = __atomic_load_n(&h->host_fd, __ATOMIC_ACQUIRE);
	if (fd >= 0)
		shutdown(fd, SHUT_RDWR);
	if (h->listen_fd >= 0)
		shutdown(h->listen_fd, SHUT_RDWR);
	if (h->pair[1] >= 0)
		shutdown(h->pair[1], SHUT_RDWR);
	pthread_join(h->host, NULL);
	h->host_running = false;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static double pct_us(const struct harness *h, double p)
{
	size_t i = (size_t)(p * (double)(h->nr_rtt - 1) + 0.5);

	return (double)h->rtt_ns[i] / 1e3;
}

static void print_rtt(struct harness *h)
{
	double sum = 0;

	if (h->o.test != T_PINGPONG || !h->nr_rtt) {
		printf("\"round_trips\": 0, \"rtt_us_median\": null, \"rtt_us_p10\": null, "
		       "\"rtt_us_p90\": null, \"rtt_us_p99\": null, \"rtt_us_mean\": null, ");
		return;
	}
	qsort(h->rtt_ns, h->nr_rtt, sizeof(h->rtt_ns[0]), cmp_u64);
	for (uint32_t i = 0; i < h->nr_rtt; i++)
		sum += (double)h->rtt_ns[i];
	printf("\"round_trips\": %u, \"rtt_us_median\": %.3f, \"rtt_us_p10\": %.3f, "
	       "\"rtt_us_p90\": %.3f, \"rtt_us_p99\": %.3f, \"rtt_us_mean\": %.3f, ",
	       h->nr_rtt, pct_us(h, 0.5), pct_us(h, 0.1), pct_us(h, 0.9), pct_us(h, 0.99),
	       sum / h->nr_rtt / 1e3);
}

#define D(f) ((unsigned long long)(b->f - a->f))

static void print_result(struct harness *h, const struct sample *a, const struct sample *b)
{
	static const char *const names[] = { "h2g", "g2h", "pingpong" };
	double secs = (double)(b->ns - a->ns) / 1e9, bytes = (double)(b->bytes - a->bytes);
	bool stream = h->o.test != T_PINGPONG;

	printf("{\"mode\": \"%s\", \"test\": \"%s\", \"msg\": %u, \"pkt\": %u, \"rx_buf\": %u, "
	       "\"seconds\": %.4f, \"bytes\": %.0f, ",
	       h->o.pair ? "socketpair" : "ember", names[h->o.test], h->o.msg, h->o.pkt,
	       h->o.rx_buf, secs, bytes);
	if (stream)
		printf("\"mib_s\": %.2f, \"gbit_s\": %.4f, ", bytes / secs / 1048576.0,
		       bytes * 8 / secs / 1e9);
	else
		printf("\"mib_s\": null, \"gbit_s\": null, ");
	print_rtt(h);
	printf("\"proc_cpu_s\": %.4f, \"driver_cpu_s\": %.4f, \"device_cpu_s\": %.4f, "
	       "\"host_cpu_s\": %.4f, \"interrupts\": %llu, \"kicks\": %llu, \"irq_waits\": %llu, "
	       "\"device_rx_packets\": %llu, \"device_tx_packets\": %llu, "
	       "\"guest_credit_updates_sent\": %llu, \"credit_updates_received\": %llu, "
	       "\"credit_requests_received\": %llu, \"bad_packets\": %llu, \"conns_killed\": %llu}\n",
	       (double)(b->proc_cpu_ns - a->proc_cpu_ns) / 1e9,
	       (double)(b->driver_cpu_ns - a->driver_cpu_ns) / 1e9,
	       (double)(b->vmm_cpu_ns - a->vmm_cpu_ns) / 1e9,
	       (double)(b->host_cpu_ns - a->host_cpu_ns) / 1e9, D(interrupts), D(kicks),
	       D(irq_waits), D(dev_rx_pkts), D(dev_tx_pkts), D(tx_credit_updates),
	       D(rx_credit_updates), D(rx_credit_requests), (unsigned long long)h->bad_packets,
	       (unsigned long long)(h->v ? h->v->m.conns_killed : 0));
}

/* ---- options ---- */

static int parse_opt(struct opts *o, int c, const char *arg)
{
	switch (c) {
	case 'T':
		o->test = !strcmp(arg, "h2g") ? T_H2G : !strcmp(arg, "g2h") ? T_G2H : T_PINGPONG;
		return o->test != T_PINGPONG || !strcmp(arg, "pingpong") ? 0 : -EINVAL;
	case 'm':
		o->pair = !strcmp(arg, "socketpair");
		return o->pair || !strcmp(arg, "ember") ? 0 : -EINVAL;
	case 't':
		o->runtime_s = strtod(arg, NULL);
		return 0;
	case 'p':
		o->ramp_s = strtod(arg, NULL);
		return 0;
	case 's':
		o->msg = (uint32_t)strtoul(arg, NULL, 0);
		return 0;
	case 'k':
		o->pkt = (uint32_t)strtoul(arg, NULL, 0);
		return 0;
	case 'b':
		o->rx_buf = (uint32_t)strtoul(arg, NULL, 0);
		return 0;
	default:
		return -EINVAL;
	}
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
	static const struct option longs[] = {
		{ "test", required_argument, NULL, 'T' },   { "mode", required_argument, NULL, 'm' },
		{ "runtime", required_argument, NULL, 't' }, { "ramp", required_argument, NULL, 'p' },
		{ "msg", required_argument, NULL, 's' },    { "pkt", required_argument, NULL, 'k' },
		{ "rx-buf", required_argument, NULL, 'b' }, { NULL, 0, NULL, 0 },
	};
	bool have_test = false;
	int c;

	*o = (struct opts){
		.runtime_s = 2, .ramp_s = 0.3, .msg = 64, .pkt = PAGE, .rx_buf = PAGE
	};
	while ((c = getopt_long(argc, argv, "", longs, NULL)) != -1) {
		if (parse_opt(o, c, optarg))
			return error__set(-EINVAL, "bad option; usage: see bench/vsock_harness.c");
		have_test |= c == 'T';
	}
	if (!have_test)
		return error__set(-EINVAL, "--test is required");
	if (!o->msg || o->msg > MAX_MSG || o->runtime_s <= 0 || o->ramp_s < 0)
		return error__set(-EINVAL, "--msg must be 1..%u, --runtime above 0", MAX_MSG);
	if (o->pkt < 1 || o->pkt > LINUX_MAX_PKT || o->rx_buf < 1 || o->rx_buf > LINUX_MAX_PKT)
		return error__set(-EINVAL, "--pkt and --rx-buf must be 1..%u", LINUX_MAX_PKT);
	return 0;
}

static int setup(struct harness *h)
{
	int ret;

	h->rx_stride = (PAYLOAD_OFF + h->o.rx_buf + PAGE - 1) & ~(PAGE - 1U);
	h->tx_stride = (PAYLOAD_OFF + h->o.pkt + PAGE - 1) & ~(PAGE - 1U);
	if (h->o.test == T_PINGPONG && !(h->rtt_ns = malloc(MAX_RTTS * sizeof(uint64_t))))
		return -ENOMEM;
	if (h->o.pair) {
		if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, h->pair) < 0)
			return error__set(-errno, "socketpair: %s", strerror(errno));
		return start_host(h);
	}
	ret = make_paths(h);
	if (!ret && h->o.test == T_G2H)
		ret = listen_host(h);
	if (!ret)
		ret = setup_device(h);
	if (!ret)
		ret = post_buffers(h);
	if (ret)
		return ret;
	if (h->o.test == T_G2H) {
		h->g = (struct guest_conn){ .local_port = GUEST_SRC_PORT, .peer_port = HOST_PORT,
					    .owe_request = true };
	} else {
		h->g = (struct guest_conn){ .local_port = GUEST_PORT };
	}
	return start_host(h);
}

static void teardown(struct harness *h)
{
	stop_host(h);
	if (h->v)
		fake_virtio__write(&h->v->t, R_STATUS, 0); /* reset: the device drops its streams */
	fake_vm__stop(&h->vm);
	if (h->v)
		virtio_vsock__destroy(h->v);
	fake_vm__destroy(&h->vm);
	if (h->host_fd >= 0 && !h->o.pair)
		close(h->host_fd);
	for (int i = 0; i < 2; i++)
		if (h->pair[i] >= 0)
			close(h->pair[i]);
	if (h->listen_fd >= 0)
		close(h->listen_fd);
	if (*h->dir) {
		unlink(h->host_path);
		unlink(h->uds_path);
		rmdir(h->dir);
	}
	free(h->rtt_ns);
}

int main(int argc, char **argv)
{
	struct harness *h = calloc(1, sizeof(*h));
	struct sample a = { 0 }, b = { 0 };
	int ret;

	if (!h)
		return 1;
	h->vm = (struct fake_vm){ .kvm_fd = -1, .vm_fd = -1, .stop_h.fd = -1, .loop.epfd = -1 };
	h->irq_fd = h->host_fd = h->listen_fd = h->pair[0] = h->pair[1] = -1;
	log__set_level(LOG_LEVEL_WARN);
	ret = parse_opts(argc, argv, &h->o);
	if (!ret)
		ret = setup(h);
	if (!ret)
		ret = run(h, &a, &b);
	if (ret)
		fprintf(stderr, "vsock_harness: %s\n", *error__get() ? error__get() : strerror(-ret));
	stop_host(h);
	if (!ret)
		print_result(h, &a, &b);
	teardown(h);
	free(h);
	return ret ? 1 : 0;
}
