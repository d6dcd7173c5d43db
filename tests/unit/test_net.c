// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests for src/virtio/net.c and net_tap.c: virtio-net without KVM.
 *
 * The pure parts first: the TUN offload flags for negotiated features and the RX buffer
 * FIFO (span, split, header writes). Then the whole device through its transport, with a
 * fake guest memory and a tiny driver that plays the virtio-mmio registers through
 * virtio_mmio__bus_ops and lays out split rings the way Linux does. The device is
 * "detached" (virtio_net__create_detached): its kicks and interrupt are plain eventfds, and
 * its TAP is one end of a SOCK_SEQPACKET socketpair, so the test sees exactly the frames
 * (virtio_net_hdr_v1 first) that would go to and come from a TAP. Last, a real TAP, when
 * the test runs as root with /dev/net/tun.
 */
#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <linux/if_tun.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "virtio/net.h"
#include "vmm/event_loop.h"
#include "vmm/log.h"
#include "vmm/memory.h"

#include "fake_gmem.h"
#include "unprivileged.h"
#include "virtio_mmio_regs.h"

#define MEM (64ULL << 20)
#define TOUCHED (16ULL << 20) /* cleared before each test */
#define RXQ NET_QUEUE_RX
#define TXQ NET_QUEUE_TX
#define DATA 0x100000ULL
#define TABLE 0x20000ULL
#define QSIZE 256
#define HDR NET_HDR_BYTES

#define S_OK (VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK)

#define F(x) VIRTIO_NET_BIT(x)
#define F_V1 (1ULL << VIRTIO_F_VERSION_1)
#define F_EVENT_IDX (1ULL << VIRTIO_F_EVENT_IDX)
#define F_INDIRECT (1ULL << VIRTIO_F_INDIRECT_DESC)
/* What Linux 6.1 takes from Ember's offer */
#define LINUX_FEATURES                                                                             \
	(F_V1 | F(CSUM) | F(GUEST_CSUM) | F(GUEST_TSO4) | F(GUEST_TSO6) | F(GUEST_UFO) |           \
	 F(HOST_TSO4) | F(HOST_TSO6) | F(HOST_UFO) | F(MRG_RXBUF) | F_EVENT_IDX | F_INDIRECT)

static const uint8_t guest_mac[6] = { 0x06, 0x00, 0xac, 0x10, 0x00, 0x02 };

/* One queue as the fake driver keeps it. */
struct tq {
	uint64_t desc, avail, used;
	uint16_t size;
	uint16_t avail_idx;
	uint16_t next_desc;
	uint16_t last_used;
};

static struct {
	struct fake_gmem fg;
	uint64_t data;
	struct virtio_net *n;
	struct event_loop loop;
	int peer;
	struct tq q[2];
	struct net_config cfg;
} g;

/* ---- the fake guest ---- */

static uint64_t alloc_data(uint32_t len)
{
	uint64_t gpa = g.data;

	g.data += (len + 63) & ~63ULL;
	assert_true(g.data <= TOUCHED);
	return gpa;
}

/* ---- the fake driver: registers ---- */

static uint32_t rd(uint64_t off)
{
	uint32_t v = 0;

	virtio_mmio__bus_ops.read(&g.n->t, off, (uint8_t *)&v, 4);
	return v;
}

static void wr(uint64_t off, uint32_t v)
{
	virtio_mmio__bus_ops.write(&g.n->t, off, (const uint8_t *)&v, 4);
}

static void wr64(uint64_t off, uint64_t v)
{
	wr(off, (uint32_t)v);
	wr(off + 4, (uint32_t)(v >> 32));
}

static uint64_t offered(void)
{
	uint64_t f;

	wr(R_DEV_FEATURES_SEL, 0);
	f = rd(R_DEV_FEATURES);
	wr(R_DEV_FEATURES_SEL, 1);
	return f | (uint64_t)rd(R_DEV_FEATURES) << 32;
}

static void setup_queue(unsigned int i, uint16_t size)
{
	struct tq *q = &g.q[i];

	*q = (struct tq){ .desc = 0x1000 + 0x8000ULL * i, .size = size };
	q->avail = q->desc + 0x1000;
	q->used = q->desc + 0x2000;
	wr(R_QUEUE_SEL, i);
	wr(R_QUEUE_NUM, size);
	wr64(R_QUEUE_DESC, q->desc);
	wr64(R_QUEUE_DRIVER, q->avail);
	wr64(R_QUEUE_DEVICE, q->used);
	wr(R_QUEUE_READY, 1);
	assert_int_equal(rd(R_QUEUE_READY), 1);
}

/* The virtio-mmio init sequence (virtio 1.2, 3.1.1) with these features and queue sizes. */
static void drv_start_sized(uint64_t features, uint16_t rx_size, uint16_t tx_size)
{
	wr(R_STATUS, 0);
	wr(R_STATUS, VIRTIO_STATUS_ACKNOWLEDGE);
	wr(R_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	wr(R_DRV_FEATURES_SEL, 0);
	wr(R_DRV_FEATURES, (uint32_t)features);
	wr(R_DRV_FEATURES_SEL, 1);
	wr(R_DRV_FEATURES, (uint32_t)(features >> 32));
	wr(R_STATUS, S_OK);
	assert_int_equal(rd(R_STATUS), S_OK);
	setup_queue(RXQ, rx_size);
	setup_queue(TXQ, tx_size);
	wr(R_STATUS, S_OK | VIRTIO_STATUS_DRIVER_OK);
	assert_int_equal(rd(R_STATUS), S_OK | VIRTIO_STATUS_DRIVER_OK);
}

static void drv_start(uint64_t features)
{
	drv_start_sized(features, QSIZE, QSIZE);
}

static bool needs_reset(void)
{
	return rd(R_STATUS) & VIRTIO_STATUS_NEEDS_RESET;
}

/* ---- the fake driver: rings ---- */

static void publish(unsigned int qi, uint16_t head)
{
	struct tq *q = &g.q[qi];

	fake_gmem__put16(&g.fg, q->avail + 4 + 2ULL * (q->avail_idx % q->size), head);
	q->avail_idx++;
	fake_gmem__put16(&g.fg, q->avail + 2, q->avail_idx);
}

/* A chain of n direct descriptors at gpas[] with lens[]; published. Returns its head. */
static uint16_t add_chain_at(unsigned int qi, const uint64_t *gpas, const uint32_t *lens,
			     unsigned int n, bool write)
{
	struct tq *q = &g.q[qi];
	uint16_t head = q->next_desc;

	for (unsigned int k = 0; k < n; k++) {
		unsigned int i = (head + k) % q->size;
		uint16_t flags =
			(write ? VIRTQ_DESC_F_WRITE : 0) | (k + 1 < n ? VIRTQ_DESC_F_NEXT : 0);

		fake_gmem__set_desc(&g.fg, q->desc, i, gpas[k], lens[k], flags,
				    (uint16_t)((i + 1) % q->size));
	}
	q->next_desc = (uint16_t)((head + n) % q->size);
	publish(qi, head);
	return head;
}

/* An RX chain of n writable buffers; their addresses in gpas (if not NULL). */
static uint16_t rx_chain_add(const uint32_t *lens, unsigned int n, uint64_t *gpas)
{
	uint64_t a[VIRTQ_CHAIN_MAX];

	for (unsigned int k = 0; k < n; k++)
		a[k] = alloc_data(lens[k]);
	if (gpas)
		memcpy(gpas, a, n * sizeof(*a));
	return add_chain_at(RXQ, a, lens, n, true);
}

/* count one-buffer RX chains of len bytes, as Linux's mergeable buffers are. */
static void rx_bufs(unsigned int count, uint32_t len, uint64_t *gpas)
{
	for (unsigned int i = 0; i < count; i++)
		rx_chain_add(&len, 1, gpas ? &gpas[i] : NULL);
}

/* A TX chain holding frame: its first `split` bytes in one buffer, the rest in another. */
static uint16_t tx_add(const uint8_t *frame, uint32_t len, uint32_t split)
{
	uint64_t gpas[2];
	uint32_t lens[2] = { split, len - split };
	unsigned int n = split && split < len ? 2 : 1;

	if (n == 1)
		lens[0] = len;
	for (unsigned int k = 0; k < n; k++)
		gpas[k] = alloc_data(lens[k]);
	memcpy(g.fg.mem + gpas[0], frame, lens[0]);
	if (n == 2)
		memcpy(g.fg.mem + gpas[1], frame + split, lens[1]);
	return add_chain_at(TXQ, gpas, lens, n, false);
}

static uint16_t used_idx(unsigned int qi)
{
	return fake_gmem__get16(&g.fg, g.q[qi].used + 2);
}

/* The next used element: its id and len. */
static void next_used(unsigned int qi, uint32_t *id, uint32_t *len)
{
	struct tq *q = &g.q[qi];
	uint64_t at = q->used + 4 + 8ULL * (q->last_used % q->size);

	assert_int_not_equal(used_idx(qi), q->last_used);
	*id = fake_gmem__get32(&g.fg, at);
	*len = fake_gmem__get32(&g.fg, at + 4);
	q->last_used++;
}

/* ---- the loop and the peer ---- */

static void kick(unsigned int qi)
{
	uint64_t one = 1;

	assert_int_equal(write(g.n->t.kicks[qi].h.fd, &one, sizeof(one)), sizeof(one));
}

/* Runs the VMM loop until nothing is ready. */
static void pump(void)
{
	for (int i = 0; i < 10000 && event_loop__run_once(&g.loop, 0) > 0; i++)
		;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Runs the loop for up to ms, or until *until changes from start. */
static void pump_until(uint64_t ms, const uint64_t *until, uint64_t start)
{
	uint64_t end = now_ms() + ms;

	while (now_ms() < end && *until == start)
		event_loop__run_once(&g.loop, 10);
}

static uint64_t interrupts(void)
{
	return g.n->t.m.interrupts;
}

/* A frame with its header: hdr flags, then dst, src = guest_mac, type, payload pattern. */
static uint32_t make_frame(uint8_t *f, uint32_t len, uint8_t seed)
{
	memset(f, 0, HDR);
	memset(f + HDR, 0xff, 6);
	memcpy(f + HDR + 6, guest_mac, 6);
	f[HDR + 12] = 0x08;
	f[HDR + 13] = 0x00;
	for (uint32_t i = HDR + 14; i < len; i++)
		f[i] = (uint8_t)(i * 7 + seed);
	return len;
}

static void peer_send(const uint8_t *f, uint32_t len)
{
	assert_int_equal(send(g.peer, f, len, 0), (ssize_t)len);
}

static ssize_t peer_recv(uint8_t *buf, size_t len)
{
	return recv(g.peer, buf, len, MSG_DONTWAIT);
}

/* ---- fixtures ---- */

static int group_setup(void **state)
{
	(void)state;
	log__set_level(LOG_LEVEL_ERROR);
	return fake_gmem__create(&g.fg, MEM) ? -1 : 0;
}

static int group_teardown(void **state)
{
	(void)state;
	fake_gmem__destroy(&g.fg);
	return 0;
}

static void default_cfg(void)
{
	memset(&g.cfg, 0, sizeof(g.cfg));
	g.cfg.iface_id = (char *)"eth0";
	g.cfg.host_dev_name = (char *)"pair0";
	g.cfg.has_guest_mac = true;
	memcpy(g.cfg.guest_mac, guest_mac, 6);
}

static void device_up(void)
{
	int sv[2];

	memset(g.fg.mem, 0, TOUCHED);
	g.data = DATA;
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	g.peer = sv[1];
	assert_int_equal(virtio_net__create_detached(&g.n, &g.cfg, sv[0], &g.fg.gm), 0);
	assert_int_equal(event_loop__init(&g.loop), 0);
	assert_int_equal(virtio_net__watch(g.n, &g.loop), 0);
}

static int each(void **state)
{
	(void)state;
	default_cfg();
	device_up();
	return 0;
}

static int each_down(void **state)
{
	(void)state;
	virtio_net__destroy(g.n);
	g.n = NULL;
	close(g.peer);
	event_loop__destroy(&g.loop);
	return 0;
}

/* ---- net_tap__offloads ---- */

static void offloads_follow_guest_features(void **state)
{
	(void)state;
	assert_int_equal(net_tap__offloads(0), 0);
	assert_int_equal(net_tap__offloads(LINUX_FEATURES),
			 TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_UFO);
	assert_int_equal(net_tap__offloads(F(GUEST_CSUM)), TUN_F_CSUM);
	assert_int_equal(net_tap__offloads(F(GUEST_CSUM) | F(GUEST_TSO6)), TUN_F_CSUM | TUN_F_TSO6);
	/* HOST_* are what the guest sends: nothing to do with what the TAP hands us */
	assert_int_equal(net_tap__offloads(F(CSUM) | F(HOST_TSO4) | F(HOST_TSO6) | F(HOST_UFO)), 0);
	/* TSO and UFO without GUEST_CSUM (a driver that broke 5.1.3.1): none */
	assert_int_equal(net_tap__offloads(F(GUEST_TSO4) | F(GUEST_TSO6) | F(GUEST_UFO)), 0);
	/* ECN only with TSO */
	assert_int_equal(net_tap__offloads(F(GUEST_CSUM) | F(GUEST_ECN)), TUN_F_CSUM);
	assert_int_equal(net_tap__offloads(F(GUEST_CSUM) | F(GUEST_TSO4) | F(GUEST_ECN)),
			 TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO_ECN);
}

/* ---- the RX buffer FIFO ---- */

static struct net_rx_bufs fifo;
static struct vq_chain chain;

static void fifo_chain(uint16_t head, const uint32_t *lens, unsigned int n, bool write)
{
	chain.head = head;
	chain.nr = n;
	chain.readable = chain.writable = 0;
	for (unsigned int i = 0; i < n; i++) {
		chain.bufs[i] = (struct vq_buf){ alloc_data(lens[i]), lens[i], write };
		if (write)
			chain.writable += lens[i];
		else
			chain.readable += lens[i];
	}
}

static void fifo_add(uint16_t head, const uint32_t *lens, unsigned int n)
{
	fifo_chain(head, lens, n, true);
	assert_int_equal(virtio_net__rx_add(&fifo, &g.fg.gm, &chain), 0);
}

static void rx_fifo_span_and_split(void **state)
{
	const uint32_t one[] = { 1536 };
	const uint32_t three[] = { 100, 200, 300 };
	uint32_t lens[8];
	unsigned int chains;

	(void)state;
	g.data = DATA;
	virtio_net__rx_clear(&fifo);
	assert_int_equal(virtio_net__rx_span(&fifo, 1, &chains), 0);
	assert_int_equal(chains, 0);
	fifo_add(7, one, 1);
	fifo_add(9, three, 3);
	fifo_add(3, one, 1);
	assert_int_equal(fifo.nr, 3);
	assert_int_equal(fifo.bytes, 1536 + 600 + 1536);
	/* the first chain alone; the first two (1 + 3 buffers); all three; too much */
	assert_int_equal(virtio_net__rx_span(&fifo, 1536, &chains), 1);
	assert_int_equal(chains, 1);
	assert_int_equal(virtio_net__rx_span(&fifo, 1537, &chains), 4);
	assert_int_equal(chains, 2);
	assert_int_equal(virtio_net__rx_span(&fifo, 2137, &chains), 5);
	assert_int_equal(chains, 3);
	assert_int_equal(virtio_net__rx_span(&fifo, 3673, &chains), 0);
	/* a 2000-byte frame fills the first chain and 464 bytes of the second */
	assert_int_equal(virtio_net__rx_split(&fifo, 2000, lens), 2);
	assert_int_equal(lens[0], 1536);
	assert_int_equal(lens[1], 464);
	assert_int_equal(virtio_net__rx_split(&fifo, 12, lens), 1);
	assert_int_equal(lens[0], 12);
	assert_int_equal(virtio_net__rx_split(&fifo, 3672, lens), 3);
	assert_int_equal(virtio_net__rx_split(&fifo, 3673, lens), 0);
	/* consuming the first leaves the others, in order */
	virtio_net__rx_consume(&fifo, 1);
	assert_int_equal(fifo.nr, 2);
	assert_int_equal(fifo.bytes, 600 + 1536);
	assert_int_equal(fifo.chains[fifo.first].head, 9);
	assert_int_equal(virtio_net__rx_span(&fifo, 600, &chains), 3);
	virtio_net__rx_consume(&fifo, 5);
	assert_int_equal(fifo.nr, 0);
	assert_int_equal(fifo.bytes, 0);
	assert_int_equal(fifo.iov_nr, 0);
}

/* Header fields land at their offset whatever the buffers' boundaries. */
static void rx_fifo_write_across_buffers(void **state)
{
	const uint32_t lens[] = { 4, 7, 1, 100 };
	const uint8_t src[14] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14 };
	uint64_t base;

	(void)state;
	g.data = DATA;
	memset(g.fg.mem, 0, TOUCHED);
	virtio_net__rx_clear(&fifo);
	base = g.data;
	fifo_add(1, lens, 4);
	assert_int_equal(virtio_net__rx_write(&fifo, 0, src, sizeof(src)), 0);
	/* buffers are 64 bytes apart in the fake guest */
	assert_memory_equal(g.fg.mem + base, src, 4);
	assert_memory_equal(g.fg.mem + base + 64, src + 4, 7);
	assert_memory_equal(g.fg.mem + base + 128, src + 11, 1);
	assert_memory_equal(g.fg.mem + base + 192, src + 12, 2);
	/* num_buffers at 10..11 straddles the second and third buffers */
	assert_int_equal(virtio_net__rx_write(&fifo, 10, "\x34\x12", 2), 0);
	assert_int_equal(g.fg.mem[base + 64 + 6], 0x34);
	assert_int_equal(g.fg.mem[base + 128], 0x12);
	assert_int_equal(virtio_net__rx_write(&fifo, 111, src, 1), 0);
	assert_int_equal(virtio_net__rx_write(&fifo, 112, src, 1), -EINVAL);
	assert_int_equal(virtio_net__rx_write(&fifo, 100, src, 14), -EINVAL);
}

/* The driver's rules (5.1.6.3.1): only writable buffers, at least a header's worth. */
static void rx_fifo_rejects_bad_chains(void **state)
{
	const uint32_t small[] = { 11 };
	const uint32_t split[] = { 6, 6 };
	const uint32_t big[] = { 70000, 70000 };

	(void)state;
	g.data = DATA;
	virtio_net__rx_clear(&fifo);
	fifo_chain(1, small, 1, true);
	assert_int_equal(virtio_net__rx_add(&fifo, &g.fg.gm, &chain), -EINVAL);
	fifo_chain(1, split, 2, false);
	assert_int_equal(virtio_net__rx_add(&fifo, &g.fg.gm, &chain), -EINVAL);
	fifo_chain(1, split, 2, true);
	assert_int_equal(virtio_net__rx_add(&fifo, &g.fg.gm, &chain), 0);
	chain.bufs[0].gpa = MEM - 2; /* a buffer that leaves guest RAM */
	assert_int_equal(virtio_net__rx_add(&fifo, &g.fg.gm, &chain), -EINVAL);
	assert_int_equal(fifo.nr, 1);
	/* only what the largest frame could use is kept */
	fifo_chain(2, big, 2, true);
	assert_int_equal(virtio_net__rx_add(&fifo, &g.fg.gm, &chain), 0);
	assert_int_equal(fifo.nr, 2);
	assert_int_equal(fifo.bytes, 12 + NET_FRAME_MAX);
	assert_int_equal(fifo.iov_nr, 2 + 1);
}

/* NET_RX_IOV_MAX buffers, and the store compacts itself as chains come and go. */
static void rx_fifo_full_and_compaction(void **state)
{
	uint32_t lens[VIRTQ_CHAIN_MAX];
	unsigned int chains;

	(void)state;
	g.data = DATA;
	virtio_net__rx_clear(&fifo);
	for (unsigned int i = 0; i < VIRTQ_CHAIN_MAX; i++)
		lens[i] = 12;
	for (unsigned int i = 0; i < 4; i++)
		fifo_add((uint16_t)i, lens, VIRTQ_CHAIN_MAX);
	assert_true(virtio_net__rx_full(&fifo));
	assert_int_equal(virtio_net__rx_add(&fifo, &g.fg.gm, &chain), -ENOSPC);
	/* one readv takes 1023 of them and the sentinel: the first three chains, not four */
	assert_int_equal(virtio_net__rx_span(&fifo, 3 * 256 * 12, &chains), 768);
	assert_int_equal(chains, 3);
	assert_int_equal(virtio_net__rx_span(&fifo, 3 * 256 * 12 + 1, &chains), 0);
	for (unsigned int round = 0; round < 20; round++) {
		virtio_net__rx_consume(&fifo, 1);
		assert_false(virtio_net__rx_full(&fifo));
		fifo_add((uint16_t)(round + 4), lens, VIRTQ_CHAIN_MAX);
		assert_int_equal(fifo.iov_nr, 1024);
		assert_true(fifo.iov_first + fifo.iov_nr <= NET_RX_IOV_STORE);
		assert_int_equal(fifo.chains[fifo.first].head, round + 1);
	}
	/* the chain ring: 256 one-buffer chains at most */
	virtio_net__rx_clear(&fifo);
	for (unsigned int i = 0; i < VIRTQ_MAX_SIZE; i++)
		fifo_add((uint16_t)i, lens, 1);
	assert_true(virtio_net__rx_full(&fifo));
}

/* ---- the device: features and config space ---- */

static void features_and_config(void **state)
{
	uint64_t f;
	uint8_t b[8] = { 0 };
	uint16_t w;

	(void)state;
	assert_int_equal(rd(R_DEVICE_ID), VIRTIO_ID_NET);
	wr(R_QUEUE_SEL, 1);
	assert_int_equal(rd(R_QUEUE_NUM_MAX), 256);
	wr(R_QUEUE_SEL, 2);
	assert_int_equal(rd(R_QUEUE_NUM_MAX), 0);
	f = offered();
	assert_int_equal(f, LINUX_FEATURES | F(MAC));
	/* every offered feature's dependencies are offered (5.1.3.1) */
	if (f & (F(GUEST_TSO4) | F(GUEST_TSO6) | F(GUEST_UFO)))
		assert_true(f & F(GUEST_CSUM));
	if (f & (F(HOST_TSO4) | F(HOST_TSO6) | F(HOST_UFO)))
		assert_true(f & F(CSUM));
	/* the MAC, read a byte, a word or a dword at a time */
	for (unsigned int i = 0; i < 6; i++)
		virtio_mmio__bus_ops.read(&g.n->t, R_CONFIG + i, &b[i], 1);
	assert_memory_equal(b, guest_mac, 6);
	virtio_mmio__bus_ops.read(&g.n->t, R_CONFIG + 4, (uint8_t *)&w, 2);
	assert_int_equal(w, guest_mac[4] | guest_mac[5] << 8);
	virtio_mmio__bus_ops.read(&g.n->t, R_CONFIG + 6, (uint8_t *)&w, 2);
	assert_int_equal(w, VIRTIO_NET_S_LINK_UP);
	/* past the config space: zeros */
	memset(b, 0xaa, sizeof(b));
	virtio_mmio__bus_ops.read(&g.n->t, R_CONFIG + 6, b, 4);
	assert_int_equal(b[0] | b[1] | b[2] | b[3], 0);
	/* a driver write to the config space changes nothing and is counted */
	virtio_mmio__bus_ops.write(&g.n->t, R_CONFIG, (const uint8_t *)"\1\2\3\4", 4);
	virtio_mmio__bus_ops.read(&g.n->t, R_CONFIG, b, 4);
	assert_memory_equal(b, guest_mac, 4);
	assert_int_equal(g.n->m.cfg_fails, 1);
}

static void no_mac_no_mac_feature(void **state)
{
	uint8_t b[6];

	(void)state;
	each_down(NULL);
	g.cfg.has_guest_mac = false;
	device_up();
	assert_int_equal(offered(), LINUX_FEATURES);
	virtio_mmio__bus_ops.read(&g.n->t, R_CONFIG, b, 4);
	virtio_mmio__bus_ops.read(&g.n->t, R_CONFIG + 4, b + 4, 2);
	assert_memory_equal(b, "\0\0\0\0\0\0", 6);
}

/* A driver taking what was not offered does not get FEATURES_OK. */
static void features_not_offered(void **state)
{
	(void)state;
	wr(R_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	wr(R_DRV_FEATURES_SEL, 0);
	wr(R_DRV_FEATURES, (uint32_t)(F(MRG_RXBUF) | F(STATUS)));
	wr(R_DRV_FEATURES_SEL, 1);
	wr(R_DRV_FEATURES, 1); /* VERSION_1 */
	wr(R_STATUS, S_OK);
	assert_false(rd(R_STATUS) & VIRTIO_STATUS_FEATURES_OK);
}

/* ---- TX ---- */

static void tx_frames_reach_the_tap(void **state)
{
	uint8_t f[2000], got[4096];
	uint32_t id, len;
	uint16_t h1, h2;

	(void)state;
	drv_start(LINUX_FEATURES);
	make_frame(f, sizeof(f), 1);
	h1 = tx_add(f, 1500, HDR); /* header apart, as Linux without any_header_sg */
	h2 = tx_add(f, 2000, 0);   /* all in one */
	kick(TXQ);
	pump();
	assert_int_equal(peer_recv(got, sizeof(got)), 1500);
	assert_memory_equal(got, f, 1500);
	assert_int_equal(peer_recv(got, sizeof(got)), 2000);
	assert_memory_equal(got, f, 2000);
	assert_int_equal(peer_recv(got, sizeof(got)), -1);
	next_used(TXQ, &id, &len);
	assert_int_equal(id, h1);
	assert_int_equal(len, 0);
	next_used(TXQ, &id, &len);
	assert_int_equal(id, h2);
	assert_int_equal(g.n->m.tx_packets_count, 2);
	assert_int_equal(g.n->m.tx_bytes_count, 3500);
	assert_int_equal(g.n->m.tx_queue_event_count, 1);
	assert_int_equal(g.n->m.tx_spoofed_mac_count, 0);
	assert_int_equal(interrupts(), 1); /* one for the batch */
	assert_false(needs_reset());
}

static void tx_malformed_frames_dropped(void **state)
{
	uint8_t f[NET_FRAME_MAX + 1], got[100];
	uint32_t id, len;

	(void)state;
	drv_start(LINUX_FEATURES);
	make_frame(f, sizeof(f), 2);
	tx_add(f, HDR + 13, 0);		   /* shorter than an Ethernet header */
	tx_add(f, NET_FRAME_MAX + 1, 100); /* longer than the largest frame */
	tx_add(f, NET_FRAME_MAX, 100);	   /* the largest: goes (the peer sees its start) */
	kick(TXQ);
	pump();
	assert_int_equal(g.n->m.tx_malformed_frames, 2);
	assert_int_equal(g.n->m.tx_packets_count, 1);
	assert_int_equal(used_idx(TXQ), 3);
	for (int i = 0; i < 3; i++)
		next_used(TXQ, &id, &len);
	assert_int_equal(peer_recv(got, sizeof(got)), sizeof(got));
	assert_false(needs_reset());
}

static void tx_writable_buffer_breaks_the_rules(void **state)
{
	uint64_t gpa = alloc_data(100);
	uint32_t len = 100;

	(void)state;
	drv_start(LINUX_FEATURES);
	add_chain_at(TXQ, &gpa, &len, 1, true);
	kick(TXQ);
	pump();
	assert_true(needs_reset());
	assert_int_equal(g.n->t.m.needs_reset, 1);
	assert_int_equal(used_idx(TXQ), 0);
}

static void tx_spoofed_mac_counted(void **state)
{
	uint8_t f[200], got[200];

	(void)state;
	drv_start(LINUX_FEATURES);
	make_frame(f, sizeof(f), 3);
	f[HDR + 11] ^= 1;
	tx_add(f, sizeof(f), 0);
	kick(TXQ);
	pump();
	assert_int_equal(g.n->m.tx_spoofed_mac_count, 1);
	assert_int_equal(peer_recv(got, sizeof(got)), sizeof(got)); /* counted, not dropped */
}

/* The TAP (here the socket) is full: the frame waits for EPOLLOUT, then all go, in order. */
static void tx_waits_for_room(void **state)
{
	static uint8_t f[8000], got[8000];
	unsigned int sent = 0;

	int sndbuf = 32768;

	(void)state;
	assert_int_equal(setsockopt(g.n->tap.fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf)),
			 0);
	drv_start(LINUX_FEATURES);
	/* two descriptors each: 100 fill 200 of the 256 */
	for (unsigned int i = 0; i < 100; i++) {
		make_frame(f, sizeof(f), (uint8_t)i);
		tx_add(f, sizeof(f), HDR);
	}
	kick(TXQ);
	pump();
	assert_true(g.n->tx_blocked);
	assert_true(g.n->tap_events & EPOLLOUT);
	assert_true(used_idx(TXQ) < 100);
	while (sent < 100) {
		ssize_t r = peer_recv(got, sizeof(got));

		if (r < 0) {
			pump();
			continue;
		}
		assert_int_equal(r, sizeof(f));
		make_frame(f, sizeof(f), (uint8_t)sent);
		assert_memory_equal(got, f, sizeof(f));
		sent++;
	}
	pump();
	assert_int_equal(used_idx(TXQ), 100);
	assert_false(g.n->tx_blocked);
	assert_int_equal(g.n->m.tx_packets_count, 100);
}

/* More than a batch: the device lets the loop breathe, then comes back by itself. */
static void tx_long_queue_in_batches(void **state)
{
	uint8_t f[40], got[40];
	unsigned int n = 0;

	(void)state;
	drv_start(LINUX_FEATURES);
	make_frame(f, sizeof(f), 4);
	for (unsigned int i = 0; i < QSIZE; i++)
		tx_add(f, sizeof(f), 0);
	kick(TXQ);
	assert_int_equal(event_loop__run_once(&g.loop, 0), 1);
	assert_int_equal(used_idx(TXQ), NET_TX_BATCH);
	while (peer_recv(got, sizeof(got)) == (ssize_t)sizeof(f))
		n++;
	pump();
	while (peer_recv(got, sizeof(got)) == (ssize_t)sizeof(f))
		n++;
	assert_int_equal(n, QSIZE);
	assert_int_equal(used_idx(TXQ), QSIZE);
	assert_int_equal(g.n->m.tx_packets_count, QSIZE);
}

/* ---- RX ---- */

static void check_rx_frame(const uint64_t *gpas, uint32_t buf_len, const uint8_t *f, uint32_t len,
			   uint16_t num_buffers)
{
	uint32_t off = 0, k = 0;

	assert_int_equal(fake_gmem__get16(&g.fg, gpas[0] + NET_HDR_NUM_BUFFERS), num_buffers);
	/* the header as the TAP wrote it, less num_buffers; then the frame */
	assert_memory_equal(g.fg.mem + gpas[0], f, NET_HDR_NUM_BUFFERS);
	while (off < len) {
		uint32_t n = len - off < buf_len ? len - off : buf_len;

		if (off == 0)
			assert_memory_equal(g.fg.mem + gpas[k] + HDR, f + HDR, n - HDR);
		else
			assert_memory_equal(g.fg.mem + gpas[k], f + off, n);
		off += n;
		k++;
	}
}

/* Mergeable buffers: one readv over several chains; the frame takes three. */
static void rx_mergeable(void **state)
{
	uint64_t gpas[64];
	uint8_t f[4000];
	uint32_t id, len;

	(void)state;
	drv_start(LINUX_FEATURES);
	rx_bufs(50, 1536, gpas);
	kick(RXQ);
	pump();
	make_frame(f, sizeof(f), 5);
	f[0] = 1; /* NEEDS_CSUM, as the TAP would say */
	peer_send(f, sizeof(f));
	pump();
	assert_int_equal(used_idx(RXQ), 3);
	next_used(RXQ, &id, &len);
	assert_int_equal(id, 0);
	assert_int_equal(len, 1536);
	next_used(RXQ, &id, &len);
	assert_int_equal(id, 1);
	assert_int_equal(len, 1536);
	next_used(RXQ, &id, &len);
	assert_int_equal(id, 2);
	assert_int_equal(len, 4000 - 2 * 1536);
	check_rx_frame(gpas, 1536, f, sizeof(f), 3);
	assert_int_equal(g.fg.mem[gpas[0]], 1);
	assert_int_equal(g.n->m.rx_packets_count, 1);
	assert_int_equal(g.n->m.rx_bytes_count, 4000);
	assert_int_equal(g.n->m.rx_bounced_frames, 0);
	assert_int_equal(interrupts(), 1);
	/* the next frame starts at the fourth chain: the others were kept, not given back */
	make_frame(f, 100, 6);
	peer_send(f, 100);
	pump();
	next_used(RXQ, &id, &len);
	assert_int_equal(id, 3);
	assert_int_equal(len, 100);
	check_rx_frame(gpas + 3, 1536, f, 100, 1);
	assert_false(needs_reset());
}

/* Several frames in one wake-up: one interrupt. */
static void rx_batch_one_interrupt(void **state)
{
	uint8_t f[300];

	(void)state;
	drv_start(LINUX_FEATURES);
	rx_bufs(100, 1536, NULL);
	for (int i = 0; i < 10; i++) {
		make_frame(f, sizeof(f), (uint8_t)i);
		peer_send(f, sizeof(f));
	}
	pump();
	assert_int_equal(used_idx(RXQ), 10);
	assert_int_equal(g.n->m.rx_packets_count, 10);
	assert_int_equal(interrupts(), 1);
}

/* Without MRG_RXBUF: one chain a frame, the "big packets" chain of Linux. */
static void rx_without_mergeable(void **state)
{
	uint32_t lens[3] = { 1526, 4096, 4096 };
	uint64_t gpas[3];
	uint8_t f[5000];
	uint32_t id, len;
	uint16_t head;

	(void)state;
	drv_start(LINUX_FEATURES & ~F(MRG_RXBUF));
	head = rx_chain_add(lens, 3, gpas);
	make_frame(f, sizeof(f), 7);
	peer_send(f, sizeof(f));
	pump();
	assert_int_equal(used_idx(RXQ), 1);
	next_used(RXQ, &id, &len);
	assert_int_equal(id, head);
	assert_int_equal(len, 5000);
	assert_int_equal(fake_gmem__get16(&g.fg, gpas[0] + NET_HDR_NUM_BUFFERS), 1);
	assert_memory_equal(g.fg.mem + gpas[0] + HDR, f + HDR, 1526 - HDR);
	assert_memory_equal(g.fg.mem + gpas[1], f + 1526, 3474);
	assert_int_equal(g.n->rx.nr, 0); /* only what one frame needs is taken */
	/* a frame too big for the next chain is dropped, and the chain kept for the next */
	rx_chain_add(lens, 1, NULL);
	kick(RXQ); /* the device ran out and asked for one (EVENT_IDX) */
	peer_send(f, 1527);
	pump();
	assert_int_equal(g.n->m.rx_fails, 1);
	assert_int_equal(used_idx(RXQ), 1);
	peer_send(f, 1526); /* a frame that fits exactly is not taken for a truncated one */
	pump();
	assert_int_equal(used_idx(RXQ), 2);
	next_used(RXQ, &id, &len);
	assert_int_equal(len, 1526);
	assert_int_equal(g.n->m.rx_fails, 1);
}

/* No buffers: the TAP is left alone until the guest kicks the RX queue. */
static void rx_waits_for_buffers(void **state)
{
	uint64_t gpas[4];
	uint8_t f[500];
	uint32_t id, len;

	(void)state;
	drv_start(LINUX_FEATURES);
	make_frame(f, sizeof(f), 8);
	peer_send(f, sizeof(f));
	pump();
	assert_true(g.n->rx_starved);
	assert_int_equal(g.n->tap_events & EPOLLIN, 0);
	assert_int_equal(g.n->m.no_rx_avail_buffer, 1);
	/* nothing happens, however often the loop runs */
	pump();
	assert_int_equal(g.n->m.no_rx_avail_buffer, 1);
	assert_int_equal(g.n->m.rx_tap_event_count, 1);
	rx_bufs(4, 1536, gpas);
	kick(RXQ);
	pump();
	assert_int_equal(used_idx(RXQ), 1);
	next_used(RXQ, &id, &len);
	assert_int_equal(len, 500);
	check_rx_frame(gpas, 1536, f, sizeof(f), 1);
	/* with 4 buffers of 1536 the frame went through the bounce buffer */
	assert_int_equal(g.n->m.rx_bounced_frames, 1);
	assert_true(g.n->tap_events & EPOLLIN);
}

/* Fewer buffers than the largest frame: bounce, and wait for room when it does not fit. */
static void rx_bounce_waits_for_room(void **state)
{
	uint64_t gpas[8];
	uint8_t f[5000];
	uint32_t id, len;

	(void)state;
	drv_start(LINUX_FEATURES);
	rx_bufs(2, 1536, gpas);
	make_frame(f, sizeof(f), 9);
	peer_send(f, sizeof(f));
	pump();
	assert_int_equal(used_idx(RXQ), 0);
	assert_int_equal(g.n->held, NET_RX_HELD_BOUNCE);
	assert_true(g.n->rx_starved);
	rx_bufs(2, 1536, gpas + 2);
	kick(RXQ);
	pump();
	assert_int_equal(used_idx(RXQ), 4);
	for (int i = 0; i < 4; i++)
		next_used(RXQ, &id, &len);
	assert_int_equal(len, 5000 - 3 * 1536);
	check_rx_frame(gpas, 1536, f, sizeof(f), 4);
	assert_int_equal(g.n->held, NET_RX_HELD_NONE);
}

/* A queue too small for the frame: every chain is with the device, so the frame goes. */
static void rx_frame_that_can_never_fit(void **state)
{
	uint8_t f[5000];

	(void)state;
	drv_start_sized(LINUX_FEATURES, 2, QSIZE);
	rx_bufs(2, 1536, NULL);
	make_frame(f, sizeof(f), 10);
	peer_send(f, sizeof(f));
	make_frame(f, 200, 11);
	peer_send(f, 200);
	pump();
	assert_int_equal(g.n->m.rx_fails, 1);
	assert_int_equal(used_idx(RXQ), 1); /* the small one */
	assert_int_equal(g.n->m.rx_packets_count, 1);
}

/* Without GUEST_CSUM, flags is 0 whatever the TAP said (5.1.6.4.1). */
static void rx_flags_cleared_without_guest_csum(void **state)
{
	uint64_t gpa;
	uint8_t f[100];

	(void)state;
	drv_start(F_V1 | F(MRG_RXBUF));
	rx_bufs(1, 2048, &gpa);
	make_frame(f, sizeof(f), 12);
	f[0] = NET_HDR_F_DATA_VALID;
	peer_send(f, sizeof(f));
	pump();
	assert_int_equal(used_idx(RXQ), 1);
	assert_int_equal(g.fg.mem[gpa], 0);
	assert_int_equal(fake_gmem__get16(&g.fg, gpa + NET_HDR_NUM_BUFFERS), 1);
}

static void rx_readable_buffer_breaks_the_rules(void **state)
{
	uint64_t gpa = alloc_data(2048);
	uint32_t len = 2048;
	uint8_t f[100];

	(void)state;
	drv_start(LINUX_FEATURES);
	add_chain_at(RXQ, &gpa, &len, 1, false);
	make_frame(f, sizeof(f), 13);
	peer_send(f, sizeof(f));
	pump();
	assert_true(needs_reset());
	assert_int_equal(used_idx(RXQ), 0);
	/* and the TAP is not watched any more: no busy loop */
	assert_int_equal(g.n->tap_events, 0);
}

static void rx_tiny_buffer_breaks_the_rules(void **state)
{
	uint8_t f[100];

	(void)state;
	drv_start(LINUX_FEATURES);
	rx_bufs(1, 11, NULL);
	make_frame(f, sizeof(f), 14);
	peer_send(f, sizeof(f));
	pump();
	assert_true(needs_reset());
}

/* A reset drops what the device held; the driver starts again and all is well. */
static void reset_and_restart(void **state)
{
	uint64_t gpas[4];
	uint8_t f[300];
	uint32_t id, len;

	(void)state;
	drv_start(LINUX_FEATURES);
	rx_bufs(4, 1536, NULL);
	make_frame(f, sizeof(f), 15);
	peer_send(f, sizeof(f));
	pump();
	assert_int_equal(g.n->rx.nr, 3);
	wr(R_STATUS, 0);
	assert_int_equal(g.n->rx.nr, 0);
	assert_false(g.n->active);
	peer_send(f, sizeof(f)); /* waits in the TAP meanwhile */
	pump();
	assert_int_equal(g.n->tap_events, 0);
	memset(g.fg.mem, 0, TOUCHED); /* a new driver: rings from scratch */
	g.data = DATA;
	drv_start(LINUX_FEATURES);
	rx_bufs(4, 1536, gpas);
	kick(RXQ);
	pump();
	assert_int_equal(used_idx(RXQ), 1);
	next_used(RXQ, &id, &len);
	assert_int_equal(len, sizeof(f));
	check_rx_frame(gpas, 1536, f, sizeof(f), 1);
}

/* ---- rate limits ---- */

static void limit_ops(struct rate_limiter_config *c, uint64_t size, uint64_t refill_ms)
{
	memset(c, 0, sizeof(*c));
	c->has_ops = true;
	c->ops = (struct token_bucket_config){ size, 0, refill_ms };
}

static void tx_rate_limited(void **state)
{
	uint8_t f[100], got[100];

	(void)state;
	each_down(NULL);
	g.cfg.has_tx_rate_limiter = true;
	limit_ops(&g.cfg.tx_rate_limiter, 1, 100);
	device_up();
	drv_start(LINUX_FEATURES);
	make_frame(f, sizeof(f), 16);
	tx_add(f, sizeof(f), 0);
	tx_add(f, sizeof(f), 0);
	kick(TXQ);
	pump();
	assert_int_equal(used_idx(TXQ), 1);
	assert_int_equal(g.n->m.tx_rate_limiter_throttled, 1);
	assert_int_equal(peer_recv(got, sizeof(got)), sizeof(got));
	assert_int_equal(peer_recv(got, sizeof(got)), -1);
	pump_until(1000, &g.n->m.tx_packets_count, 1);
	assert_int_equal(used_idx(TXQ), 2);
	assert_int_equal(g.n->m.tx_rate_limiter_event_count, 1);
	assert_int_equal(peer_recv(got, sizeof(got)), sizeof(got));
}

/* An RX frame waits in the guest's buffers for its tokens; a PATCH lifts the limit. */
static void rx_rate_limited_and_patched(void **state)
{
	struct net_config patch;
	uint8_t f[100];

	(void)state;
	each_down(NULL);
	g.cfg.has_rx_rate_limiter = true;
	limit_ops(&g.cfg.rx_rate_limiter, 1, 60000);
	device_up();
	drv_start(LINUX_FEATURES);
	rx_bufs(60, 1536, NULL);
	make_frame(f, sizeof(f), 17);
	peer_send(f, sizeof(f));
	peer_send(f, sizeof(f));
	peer_send(f, sizeof(f));
	pump();
	assert_int_equal(used_idx(RXQ), 1);
	assert_int_equal(g.n->held, NET_RX_HELD_GUEST);
	assert_int_equal(g.n->m.rx_rate_limiter_throttled, 1);
	assert_int_equal(g.n->tap_events & EPOLLIN, 0);
	pump();
	assert_int_equal(used_idx(RXQ), 1);
	/* PATCH: no RX limit any more; the TX one stays as it is */
	patch = g.cfg;
	patch.has_rx_rate_limiter = false;
	assert_int_equal(virtio_net__update(g.n, &patch, NET_CHANGED_RX_RATE_LIMITER), 0);
	pump();
	assert_int_equal(used_idx(RXQ), 3);
	assert_int_equal(g.n->m.rx_packets_count, 3);
	/* and a limit comes back on a device that had none on TX */
	limit_ops(&patch.tx_rate_limiter, 5, 1000);
	patch.has_tx_rate_limiter = true;
	assert_int_equal(virtio_net__update(g.n, &patch, NET_CHANGED_TX_RATE_LIMITER), 0);
	assert_true(g.n->tx_rl_h.fd >= 0);
	assert_true(g.n->tx_rl.ops.enabled);
}

static void update_refuses_bad_limits(void **state)
{
	struct net_config patch = g.cfg;

	(void)state;
	patch.has_rx_rate_limiter = true;
	limit_ops(&patch.rx_rate_limiter, 10, 100);
	patch.has_tx_rate_limiter = true;
	limit_ops(&patch.tx_rate_limiter, 10, UINT64_MAX); /* refill_ns would not fit */
	assert_int_equal(
		virtio_net__update(g.n, &patch,
				   NET_CHANGED_RX_RATE_LIMITER | NET_CHANGED_TX_RATE_LIMITER),
		-EINVAL);
	assert_non_null(strstr(error__get(), "network interface eth0: tx_rate_limiter"));
	/* both or neither */
	assert_false(g.n->rx_rl.ops.enabled);
	assert_false(g.n->tx_rl.ops.enabled);
	assert_int_equal(virtio_net__update(g.n, &patch, NET_CHANGED_RX_RATE_LIMITER), 0);
	assert_true(g.n->rx_rl.ops.enabled);
}

/* ---- anti-spoofing enforced by the device itself ---- */

#define GUEST_IP "172.16.0.2"
#define IP_SRC_OFF (HDR + 14 + 12) /* an IPv4 frame's source address, header included */

/*
 * The device with anti_spoofing as a jailed Ember sets it up: without the eBPF capabilities,
 * so that net_bpf__attach() meets the kernel's own EPERM, and the device takes the rules.
 */
static int each_antispoof(void **state)
{
	struct unprivileged u;
	int sv[2], ret;

	(void)state;
	default_cfg();
	g.cfg.has_anti_spoofing = true;
	assert_int_equal(inet_pton(AF_INET, GUEST_IP, g.cfg.anti_spoofing.ipv4[0]), 1);
	g.cfg.anti_spoofing.nr_ipv4 = 1;
	memset(g.fg.mem, 0, TOUCHED);
	g.data = DATA;
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	g.peer = sv[1];
	assert_int_equal(unprivileged__begin(&u), 0);
	ret = virtio_net__create_detached(&g.n, &g.cfg, sv[0], &g.fg.gm);
	assert_int_equal(unprivileged__end(&u), 0);
	assert_int_equal(ret, 0);
	assert_true(g.n->antispoof);
	assert_null(g.n->bpf.obj);
	assert_int_equal(event_loop__init(&g.loop), 0);
	assert_int_equal(virtio_net__watch(g.n, &g.loop), 0);
	drv_start(LINUX_FEATURES);
	return 0;
}

/* An IPv4/UDP frame of len bytes (header included) from mac and saddr. */
static uint32_t make_ipv4(uint8_t *f, uint32_t len, const uint8_t mac[6], const char *saddr,
			  uint8_t seed)
{
	make_frame(f, len, seed);
	memcpy(f + HDR + 6, mac, 6);
	f[HDR + 14] = 0x45;
	f[HDR + 14 + 9] = 17;
	assert_int_equal(inet_pton(AF_INET, saddr, f + IP_SRC_OFF), 1);
	return len;
}

/* A TX chain of frame in pieces of lens[] bytes (the last one takes the rest). */
static uint16_t tx_add_pieces(const uint8_t *frame, uint32_t len, const uint32_t *lens,
			      unsigned int n)
{
	uint64_t gpas[VIRTQ_CHAIN_MAX];
	uint32_t l[VIRTQ_CHAIN_MAX], off = 0;

	assert_true(n <= VIRTQ_CHAIN_MAX);
	for (unsigned int k = 0; k < n; k++) {
		l[k] = k + 1 < n ? lens[k] : len - off;
		gpas[k] = alloc_data(l[k] ? l[k] : 1);
		memcpy(g.fg.mem + gpas[k], frame + off, l[k]);
		off += l[k];
	}
	return add_chain_at(TXQ, gpas, l, n, false);
}

static void antispoof_counts(uint64_t mac, uint64_t ip, uint64_t other)
{
	virtio_net__sync_metrics(g.n);
	assert_int_equal(g.n->m.tx_antispoof_mac_drops, mac);
	assert_int_equal(g.n->m.tx_antispoof_ip_drops, ip);
	assert_int_equal(g.n->m.tx_antispoof_other_drops, other);
}

/* Spoofed frames go nowhere, are counted, and their buffers come back; the rest go whole. */
static void antispoof_drops_spoofed_frames(void **state)
{
	static const uint8_t other_mac[6] = { 0x06, 0x00, 0xac, 0x10, 0x00, 0x09 };
	uint8_t f[5][1500], got[2000];
	uint16_t heads[5];
	uint32_t id, len;

	(void)state;
	make_ipv4(f[0], 1500, guest_mac, GUEST_IP, 1);
	make_ipv4(f[1], 1500, other_mac, GUEST_IP, 2);	   /* a foreign MAC */
	make_ipv4(f[2], 1500, guest_mac, "172.16.0.9", 3); /* a foreign IPv4 source */
	make_frame(f[3], 200, 4);
	f[3][HDR + 12] = 0x88; /* LLDP */
	f[3][HDR + 13] = 0xcc;
	make_ipv4(f[4], 1000, guest_mac, GUEST_IP, 5);
	heads[0] = tx_add(f[0], 1500, HDR); /* header apart, as Linux without any_header_sg */
	heads[1] = tx_add(f[1], 1500, 0);
	heads[2] = tx_add(f[2], 1500, HDR);
	heads[3] = tx_add(f[3], 200, 0);
	heads[4] = tx_add(f[4], 1000, 0);
	kick(TXQ);
	pump();
	assert_int_equal(peer_recv(got, sizeof(got)), 1500);
	assert_memory_equal(got, f[0], 1500);
	assert_int_equal(peer_recv(got, sizeof(got)), 1000);
	assert_memory_equal(got, f[4], 1000);
	assert_int_equal(peer_recv(got, sizeof(got)), -1);
	for (unsigned int i = 0; i < 5; i++) {
		next_used(TXQ, &id, &len);
		assert_int_equal(id, heads[i]);
		assert_int_equal(len, 0);
	}
	assert_int_equal(interrupts(), 1);
	antispoof_counts(1, 1, 1);
	assert_int_equal(g.n->m.tx_packets_count, 2);
	assert_int_equal(g.n->m.tx_bytes_count, 2500);
	assert_int_equal(g.n->m.tx_spoofed_mac_count, 1);
	assert_false(needs_reset());
}

/* A kick and the loop: the peer gets exactly copies of f, all the chains come back used. */
static void sent_round(const uint8_t *f, uint32_t len, unsigned int copies, unsigned int chains)
{
	uint8_t got[2000];
	uint32_t id, ulen;

	kick(TXQ);
	pump();
	for (unsigned int i = 0; i < copies; i++) {
		assert_int_equal(peer_recv(got, sizeof(got)), len);
		assert_memory_equal(got, f, len);
	}
	assert_int_equal(peer_recv(got, sizeof(got)), -1);
	for (unsigned int i = 0; i < chains; i++)
		next_used(TXQ, &id, &ulen);
	assert_int_equal(used_idx(TXQ), g.q[TXQ].last_used);
}

/*
 * A hostile layout: the headers a byte per descriptor, or in pieces across the virtio-net
 * header's end, a cut exactly where the check stops looking, a frame shorter than that.
 * The verdict is the same as for the frame in one piece, and what goes is the frame, intact.
 */
static void antispoof_header_split_across_descriptors(void **state)
{
	static uint32_t bytes[HDR + 42];
	const uint32_t at_end[] = { HDR + ANTISPOOF_HDR_MAX, 1 };
	const uint32_t odd[] = { HDR - 5, 6, 7, 2, 30 };
	uint8_t good[600], bad[600], arp[HDR + 42];

	(void)state;
	for (unsigned int i = 0; i < HDR + 42; i++)
		bytes[i] = 1;
	make_ipv4(good, sizeof(good), guest_mac, GUEST_IP, 6);
	make_ipv4(bad, sizeof(bad), guest_mac, "172.16.0.3", 7);
	/* (the queue has 256 descriptors: the chains of a round use at most that many) */
	tx_add_pieces(bad, sizeof(bad), bytes, 40);
	tx_add_pieces(good, sizeof(good), bytes, 40);
	tx_add_pieces(good, sizeof(good), at_end, 2);
	tx_add_pieces(good, sizeof(good), odd, 5);
	sent_round(good, sizeof(good), 3, 4);
	antispoof_counts(0, 1, 0);

	/* ARP: Ethernet/IPv4, request, sender guest_mac and GUEST_IP (42 bytes, all copied) */
	make_frame(arp, sizeof(arp), 8);
	memcpy(arp + HDR + 12, (const uint8_t[]){ 0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1 }, 10);
	memcpy(arp + HDR + 22, guest_mac, 6);
	assert_int_equal(inet_pton(AF_INET, GUEST_IP, arp + HDR + 28), 1);
	tx_add_pieces(arp, sizeof(arp), bytes, 20);
	tx_add_pieces(arp, sizeof(arp), bytes, sizeof(arp)); /* every byte apart, none left */
	arp[HDR + 31] = 9;				     /* another sender address */
	tx_add_pieces(arp, sizeof(arp), bytes, 20);
	arp[HDR + 31] = 2;
	sent_round(arp, sizeof(arp), 2, 3);
	antispoof_counts(0, 2, 0);
	assert_false(needs_reset());
}

/*
 * Time of check, time of use: frames wait in hand while the TAP is full, checked already,
 * and the guest then rewrites every frame's source address in its memory. The frame in
 * hand goes as it was checked (its header from the device's copy); the ones not taken yet
 * are checked as they are now, and dropped.
 */
static void antispoof_checked_bytes_are_sent(void **state)
{
	static uint8_t f[8000], got[8000];
	uint64_t gpas[100];
	unsigned int sent = 0, in_hand;
	int sndbuf = 32768;

	(void)state;
	assert_int_equal(setsockopt(g.n->tap.fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf)),
			 0);
	for (unsigned int i = 0; i < 100; i++) {
		make_ipv4(f, sizeof(f), guest_mac, GUEST_IP, (uint8_t)i);
		gpas[i] = g.data;
		tx_add(f, sizeof(f), 0);
	}
	kick(TXQ);
	pump();
	assert_true(g.n->tx_blocked && g.n->tx_pending);
	in_hand = g.n->tx_head;
	assert_true(in_hand < 99);
	for (unsigned int i = 0; i < 100; i++)
		assert_int_equal(inet_pton(AF_INET, "172.16.0.66", g.fg.mem + gpas[i] + IP_SRC_OFF),
				 1);
	for (int spins = 0; spins < 10000; spins++) {
		ssize_t r = peer_recv(got, sizeof(got));

		if (r < 0) {
			if (!g.n->tx_pending && used_idx(TXQ) == 100)
				break;
			pump();
			continue;
		}
		assert_int_equal(r, sizeof(f));
		make_ipv4(f, sizeof(f), guest_mac, GUEST_IP, (uint8_t)sent);
		assert_memory_equal(got, f, sizeof(f));
		sent++;
	}
	assert_int_equal(sent, in_hand + 1);
	assert_int_equal(used_idx(TXQ), 100);
	antispoof_counts(0, 100 - sent, 0);
	assert_false(needs_reset());
}

/* With the privilege to attach, a failure to is no reason to fall back: no such TAP. */
static void antispoof_other_failures_stay_fatal(void **state)
{
	struct virtio_net *n = NULL;
	int sv[2];

	(void)state;
	if (geteuid())
		skip();
	default_cfg();
	g.cfg.host_dev_name = (char *)"ember-no-such";
	g.cfg.has_anti_spoofing = true;
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
	assert_int_equal(virtio_net__create_detached(&n, &g.cfg, sv[0], &g.fg.gm), -ENODEV);
	assert_non_null(strstr(error__get(), "ember-no-such"));
	assert_null(n);
	close(sv[1]);
}

/* ---- a real TAP (root and /dev/net/tun) ---- */

static bool can_tap(void)
{
	return geteuid() == 0 && access("/dev/net/tun", R_OK | W_OK) == 0;
}

static void tap_name_too_long(void **state)
{
	struct net_tap tap;

	(void)state;
	assert_int_equal(net_tap__open(&tap, "eth0", "a-name-too-long-x"), -EINVAL);
	assert_non_null(strstr(error__get(), "network interface eth0: tap a-name-too-long-x"));
	assert_int_equal(tap.fd, -1);
	assert_int_equal(net_tap__open(&tap, "eth0", ""), -EINVAL);
}

static int link_up(const char *name)
{
	struct ifreq ifr = { 0 };
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), ret;

	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	ret = ioctl(s, SIOCGIFFLAGS, &ifr);
	ifr.ifr_flags |= IFF_UP;
	if (!ret)
		ret = ioctl(s, SIOCSIFFLAGS, &ifr);
	close(s);
	return ret;
}

/* A packet socket on the TAP: what it sends comes out of the TAP's fd. */
static int packet_socket(const char *name)
{
	struct sockaddr_ll sll = { .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL) };
	int s = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL));

	if (s < 0)
		return -1;
	sll.sll_ifindex = (int)if_nametoindex(name);
	if (bind(s, (struct sockaddr *)&sll, sizeof(sll)) < 0) {
		close(s);
		return -1;
	}
	return s;
}

/*
 * The TAP's ABI that RX relies on: a 12-byte header in front, and a frame too big for the
 * buffers is cut to them with no error (Linux returns min(frame, buffers) from read()), so
 * only a byte more than the guest's buffers tells a truncated frame.
 */
static void tap_open_and_read_truncation_abi(void **state)
{
	struct net_tap tap;
	char name[IFNAMSIZ];
	uint8_t f[1000], small[300], big[2000];
	int hdr = 0, s;
	ssize_t r;

	(void)state;
	if (!can_tap())
		skip();
	snprintf(name, sizeof(name), "embt%d", (int)getpid() % 100000);
	assert_int_equal(net_tap__open(&tap, "eth0", name), 0);
	assert_true(tap.is_tap);
	assert_string_equal(tap.name, name);
	assert_true(fcntl(tap.fd, F_GETFL) & O_NONBLOCK);
	assert_int_equal(ioctl(tap.fd, TUNGETVNETHDRSZ, &hdr), 0);
	assert_int_equal(hdr, 12);
	assert_int_equal(net_tap__set_offloads(&tap, "eth0", LINUX_FEATURES), 0);
	assert_int_equal(net_tap__set_offloads(&tap, "eth0", F_V1), 0);
	assert_int_equal(link_up(name), 0);
	s = packet_socket(name);
	assert_true(s >= 0);
	/* drain what the kernel sends on its own (IPv6 router solicitations and such) */
	usleep(10000);
	while (read(tap.fd, big, sizeof(big)) > 0)
		;
	make_frame(f, sizeof(f), 20);
	assert_int_equal(send(s, f + HDR, sizeof(f) - HDR, 0), (ssize_t)(sizeof(f) - HDR));
	for (int i = 0; i < 100 && (r = read(tap.fd, small, sizeof(small))) < 0; i++)
		usleep(1000);
	assert_true(r == sizeof(small) || r == sizeof(f)); /* cut, silently (or the length) */
	assert_memory_equal(small + HDR, f + HDR, sizeof(small) - HDR);
	/* with a byte more than the frame needs: exactly the frame */
	assert_int_equal(send(s, f + HDR, sizeof(f) - HDR, 0), (ssize_t)(sizeof(f) - HDR));
	for (int i = 0; i < 100 && (r = read(tap.fd, big, sizeof(f) + 1)) < 0; i++)
		usleep(1000);
	assert_int_equal(r, sizeof(f));
	assert_int_equal(big[0], 0); /* no offloads asked for: flags 0 or DATA_VALID */
	close(s);
	net_tap__close(&tap);
	assert_int_equal(if_nametoindex(name), 0); /* not persistent: gone */
}

/* Runs the loop until a used RX buffer holds frame f; its id, or -1. */
static int rx_find(const uint64_t *gpas, const uint8_t *f, uint32_t len)
{
	uint32_t id, ulen;

	for (int i = 0; i < 200; i++) {
		event_loop__run_once(&g.loop, 5);
		while (used_idx(RXQ) != g.q[RXQ].last_used) {
			next_used(RXQ, &id, &ulen);
			if (ulen == len && !memcmp(g.fg.mem + gpas[id] + HDR, f + HDR, len - HDR))
				return (int)id;
		}
	}
	return -1;
}

/* The device on a real TAP, detached from KVM: a frame each way. */
static void device_on_a_real_tap(void **state)
{
	struct net_tap tap;
	char name[IFNAMSIZ];
	uint8_t f[600], got[2000];
	uint64_t gpas[64];
	ssize_t r = -1;
	int s, id;

	(void)state;
	if (!can_tap())
		skip();
	default_cfg();
	memset(g.fg.mem, 0, TOUCHED);
	g.data = DATA;
	snprintf(name, sizeof(name), "embd%d", (int)getpid() % 100000);
	assert_int_equal(net_tap__open(&tap, "eth0", name), 0);
	assert_int_equal(virtio_net__create_detached(&g.n, &g.cfg, tap.fd, &g.fg.gm), 0);
	g.n->tap.is_tap = true; /* the offloads for real */
	assert_int_equal(event_loop__init(&g.loop), 0);
	assert_int_equal(virtio_net__watch(g.n, &g.loop), 0);
	assert_int_equal(link_up(name), 0);
	s = packet_socket(name);
	assert_true(s >= 0);
	drv_start(LINUX_FEATURES);
	/* TX: the guest's frame comes out of the TAP */
	make_frame(f, sizeof(f), 21);
	tx_add(f, sizeof(f), HDR);
	kick(TXQ);
	pump();
	assert_int_equal(g.n->m.tx_packets_count, 1);
	for (int i = 0; i < 100; i++) {
		r = recv(s, got, sizeof(got), MSG_DONTWAIT);
		if (r == (ssize_t)(sizeof(f) - HDR) && !memcmp(got, f + HDR, (size_t)r))
			break;
		if (r < 0)
			usleep(1000);
	}
	assert_int_equal(r, sizeof(f) - HDR);
	/* RX: a frame into the TAP comes to the guest (among what the kernel sends itself) */
	rx_bufs(64, 1536, gpas);
	kick(RXQ);
	pump();
	make_frame(f, sizeof(f), 22);
	assert_int_equal(send(s, f + HDR, sizeof(f) - HDR, 0), (ssize_t)(sizeof(f) - HDR));
	id = rx_find(gpas, f, sizeof(f));
	assert_true(id >= 0);
	assert_int_equal(fake_gmem__get16(&g.fg, gpas[id] + NET_HDR_NUM_BUFFERS), 1);
	assert_false(needs_reset());
	close(s);
	/* the TAP deleted under the device: out of the loop, TX frames dropped, no spinning */
	snprintf((char *)got, sizeof(got), "ip link del %s 2>/dev/null", name);
	if (!system((char *)got)) {
		pump();
		assert_true(g.n->tap_gone);
		tx_add(f, sizeof(f), 0);
		kick(TXQ);
		pump();
		assert_int_equal(g.n->m.tx_packets_count, 1);
		assert_int_equal(g.n->m.tap_write_fails, 1);
		assert_int_equal(used_idx(TXQ), 2);
		assert_false(needs_reset());
		assert_int_equal(event_loop__run_once(&g.loop, 50), 0);
	}
	virtio_net__destroy(g.n);
	g.n = NULL;
	event_loop__destroy(&g.loop);
	assert_int_equal(if_nametoindex(name), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(offloads_follow_guest_features),
		cmocka_unit_test(rx_fifo_span_and_split),
		cmocka_unit_test(rx_fifo_write_across_buffers),
		cmocka_unit_test(rx_fifo_rejects_bad_chains),
		cmocka_unit_test(rx_fifo_full_and_compaction),
		cmocka_unit_test_setup_teardown(features_and_config, each, each_down),
		cmocka_unit_test_setup_teardown(no_mac_no_mac_feature, each, each_down),
		cmocka_unit_test_setup_teardown(features_not_offered, each, each_down),
		cmocka_unit_test_setup_teardown(tx_frames_reach_the_tap, each, each_down),
		cmocka_unit_test_setup_teardown(tx_malformed_frames_dropped, each, each_down),
		cmocka_unit_test_setup_teardown(tx_writable_buffer_breaks_the_rules, each,
						each_down),
		cmocka_unit_test_setup_teardown(tx_spoofed_mac_counted, each, each_down),
		cmocka_unit_test_setup_teardown(tx_waits_for_room, each, each_down),
		cmocka_unit_test_setup_teardown(tx_long_queue_in_batches, each, each_down),
		cmocka_unit_test_setup_teardown(rx_mergeable, each, each_down),
		cmocka_unit_test_setup_teardown(rx_batch_one_interrupt, each, each_down),
		cmocka_unit_test_setup_teardown(rx_without_mergeable, each, each_down),
		cmocka_unit_test_setup_teardown(rx_waits_for_buffers, each, each_down),
		cmocka_unit_test_setup_teardown(rx_bounce_waits_for_room, each, each_down),
		cmocka_unit_test_setup_teardown(rx_frame_that_can_never_fit, each, each_down),
		cmocka_unit_test_setup_teardown(rx_flags_cleared_without_guest_csum, each,
						each_down),
		cmocka_unit_test_setup_teardown(rx_readable_buffer_breaks_the_rules, each,
						each_down),
		cmocka_unit_test_setup_teardown(rx_tiny_buffer_breaks_the_rules, each, each_down),
		cmocka_unit_test_setup_teardown(reset_and_restart, each, each_down),
		cmocka_unit_test_setup_teardown(tx_rate_limited, each, each_down),
		cmocka_unit_test_setup_teardown(rx_rate_limited_and_patched, each, each_down),
		cmocka_unit_test_setup_teardown(update_refuses_bad_limits, each, each_down),
		cmocka_unit_test_setup_teardown(antispoof_drops_spoofed_frames, each_antispoof,
						each_down),
		cmocka_unit_test_setup_teardown(antispoof_header_split_across_descriptors,
						each_antispoof, each_down),
		cmocka_unit_test_setup_teardown(antispoof_checked_bytes_are_sent, each_antispoof,
						each_down),
		cmocka_unit_test(antispoof_other_failures_stay_fatal),
		cmocka_unit_test(tap_name_too_long),
		cmocka_unit_test(tap_open_and_read_truncation_abi),
		cmocka_unit_test(device_on_a_real_tap),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
