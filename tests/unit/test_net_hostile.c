// SPDX-License-Identifier: Apache-2.0
/*
 * virtio-net against a hostile guest: a driver that writes random descriptors (addresses
 * near and far, lengths, NEXT/WRITE/INDIRECT flags, next indices), random avail entries and
 * indices, kicks at random, resets at random and negotiates random feature sets, while
 * frames of every size, too small and too big included, come from the TAP and the TAP's
 * peer reads or does not. The device must never crash nor touch memory outside the guest
 * (run it under ASan or valgrind to see the latter), must keep its own bookkeeping sane, and
 * must leave the TAP alone when it cannot use it (no busy loop).
 *
 * The same again with anti-spoofing enforced by the device itself (as in a jail: the test
 * drops the eBPF capabilities while it creates the device), whose TX path copies and
 * rewrites the start of each frame.
 *
 * A fixed seed, so that a failure replays; NET_HOSTILE_SEED and NET_HOSTILE_ROUNDS in the
 * environment pick another and run longer.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "virtio/net.h"
#include "vmm/event_loop.h"
#include "vmm/log.h"
#include "vmm/memory.h"

#include "fake_gmem.h"
#include "unprivileged.h"
#include "virtio_mmio_regs.h"

#define MEM (8ULL << 20)
#define AREA (1ULL << 20) /* where most of the random addresses point */

static struct {
	struct fake_gmem fg;
	struct virtio_net *n;
	struct event_loop loop;
	int peer;
	uint64_t rng;
	uint16_t size[2];
	uint16_t avail_idx[2];
	uint64_t desc[2], avail[2], used[2];
	uint64_t frame_at; /* with anti-spoofing: an allowed frame, which TX chains point at */
} g;

#define GUEST_MAC 0x06, 0x00, 0x0a, 0x00, 0x00, 0x02
#define GUEST_IP 10, 0, 0, 2
#define PEER_IP 10, 0, 0, 1

static uint64_t rnd(void)
{
	g.rng ^= g.rng >> 12;
	g.rng ^= g.rng << 25;
	g.rng ^= g.rng >> 27;
	return g.rng * 0x2545f4914f6cdd1dULL;
}

static uint64_t below(uint64_t n)
{
	return n ? rnd() % n : 0;
}

static void wr(uint64_t off, uint32_t v)
{
	virtio_mmio__bus_ops.write(&g.n->t, off, (const uint8_t *)&v, 4);
}

static uint32_t rd(uint64_t off)
{
	uint32_t v = 0;

	virtio_mmio__bus_ops.read(&g.n->t, off, (uint8_t *)&v, 4);
	return v;
}

/* A random address: mostly in the area, sometimes anywhere or at the edge of RAM. */
static uint64_t rnd_addr(void)
{
	switch (below(16)) {
	case 0:
		return rnd();
	case 1:
		return MEM - below(64);
	default:
		return below(AREA);
	}
}

static uint32_t rnd_len(void)
{
	switch (below(8)) {
	case 0:
		return (uint32_t)rnd();
	case 1:
		return 0;
	case 2:
		return (uint32_t)below(70000);
	default:
		return (uint32_t)below(4096) + 1;
	}
}

/* Mostly what a driver would write for queue q (so that frames go), sometimes garbage. */
static void rnd_desc(uint64_t table, unsigned int q, unsigned int i, uint16_t size)
{
	uint16_t good = q == NET_QUEUE_RX ? VIRTQ_DESC_F_WRITE : 0;

	if (below(4))
		fake_gmem__set_desc(&g.fg, table, i,
				    g.frame_at && !below(4) ? g.frame_at : below(AREA - 70000),
				    (uint32_t)below(below(8) ? 4096 : 70000),
				    (uint16_t)(good | (below(4) ? 0 : VIRTQ_DESC_F_NEXT)),
				    (uint16_t)((i + 1) % size));
	else
		fake_gmem__set_desc(&g.fg, table, i, rnd_addr(), rnd_len(), (uint16_t)below(8),
				    (uint16_t)below(size + 2));
}

/* A driver start with random features (any subset of what is offered) and queue sizes. */
static void restart(void)
{
	uint64_t offered, want;

	wr(R_STATUS, 0);
	wr(R_STATUS, 3);
	wr(R_DEV_FEATURES_SEL, 0);
	offered = rd(R_DEV_FEATURES);
	wr(R_DEV_FEATURES_SEL, 1);
	offered |= (uint64_t)rd(R_DEV_FEATURES) << 32;
	want = (offered & rnd()) | (1ULL << VIRTIO_F_VERSION_1);
	wr(R_DRV_FEATURES_SEL, 0);
	wr(R_DRV_FEATURES, (uint32_t)want);
	wr(R_DRV_FEATURES_SEL, 1);
	wr(R_DRV_FEATURES, (uint32_t)(want >> 32));
	wr(R_STATUS, 11);
	for (unsigned int q = 0; q < 2; q++) {
		g.size[q] = (uint16_t)(1u << below(9));
		g.desc[q] = 0x10000ULL * (q + 1);
		g.avail[q] = g.desc[q] + 0x1000;
		g.used[q] = g.desc[q] + 0x2000;
		g.avail_idx[q] = 0;
		fake_gmem__clear(&g.fg, g.desc[q], 0x3000);
		wr(R_QUEUE_SEL, q);
		wr(R_QUEUE_NUM, g.size[q]);
		wr(R_QUEUE_DESC, (uint32_t)g.desc[q]);
		wr(R_QUEUE_DESC + 4, 0);
		wr(R_QUEUE_DRIVER, (uint32_t)g.avail[q]);
		wr(R_QUEUE_DRIVER + 4, 0);
		wr(R_QUEUE_DEVICE, (uint32_t)g.used[q]);
		wr(R_QUEUE_DEVICE + 4, 0);
		wr(R_QUEUE_READY, 1);
	}
	wr(R_STATUS, 15);
}

/* Some descriptors (also in "indirect tables" in the area), some avail entries. */
static void scribble(unsigned int q)
{
	uint16_t size = g.size[q];

	for (unsigned int k = below(8); k; k--)
		rnd_desc(g.desc[q], q, (unsigned int)below(size), size);
	for (unsigned int k = below(4); k; k--)
		rnd_desc(below(AREA - 4096) & ~15ULL, q, (unsigned int)below(16), 16);
	for (unsigned int k = below(4); k; k--) {
		fake_gmem__put16(&g.fg, g.avail[q] + 4 + 2ULL * (g.avail_idx[q] % size),
				 (uint16_t)below(below(16) ? size : 65536));
		g.avail_idx[q]++;
	}
	if (!below(1000))
		g.avail_idx[q] = (uint16_t)rnd(); /* an index that jumps */
	fake_gmem__put16(&g.fg, g.avail[q] + 2, g.avail_idx[q]);
	if (!below(8))
		fake_gmem__put16(&g.fg, g.avail[q], (uint16_t)below(2)); /* NO_INTERRUPT */
	if (!below(8))
		fake_gmem__put16(&g.fg, g.avail[q] + 4 + 2ULL * size,
				 (uint16_t)rnd()); /* used_event */
}

static void frames_from_the_tap(void)
{
	static uint8_t f[70000], sink[70000];
	unsigned int len;

	for (unsigned int k = below(4); k; k--) {
		len = below(4) ? (unsigned int)below(2000) + 1 : (unsigned int)below(sizeof(f)) + 1;
		memset(f, (int)rnd(), len);
		if (send(g.peer, f, len, MSG_DONTWAIT) < 0)
			break;
	}
	if (below(2))
		while (recv(g.peer, sink, sizeof(sink), MSG_DONTWAIT) > 0)
			;
}

static void kick(unsigned int q)
{
	uint64_t one = 1;
	ssize_t r = write(g.n->t.kicks[q].h.fd, &one, sizeof(one));

	(void)r;
}

/* The device's own bookkeeping, whatever the guest did. */
static void check_invariants(void)
{
	const struct net_rx_bufs *b = &g.n->rx;
	uint64_t bytes = 0;
	unsigned int niov = 0;

	assert_true(b->nr <= VIRTQ_MAX_SIZE);
	assert_true(b->iov_first + b->iov_nr <= NET_RX_IOV_STORE);
	for (unsigned int i = 0; i < b->nr; i++) {
		const struct net_rx_chain *c = &b->chains[(b->first + i) % VIRTQ_MAX_SIZE];

		assert_true(c->len >= NET_HDR_BYTES && c->len <= NET_FRAME_MAX);
		bytes += c->len;
		niov += c->niov;
	}
	assert_int_equal(bytes, b->bytes);
	assert_int_equal(niov, b->iov_nr);
	for (unsigned int i = 0; i < b->iov_nr; i++) {
		const struct iovec *v = &b->iov[b->iov_first + i];

		assert_true((uint8_t *)v->iov_base >= g.fg.mem);
		assert_true((uint8_t *)v->iov_base + v->iov_len <= g.fg.mem + MEM);
	}
	if (!g.n->active || (rd(R_STATUS) & VIRTIO_STATUS_NEEDS_RESET))
		assert_int_equal(g.n->tap_events & EPOLLIN, 0);
	/* the TX frame in hand: guest memory, but for the device's own copy of its start */
	assert_true(g.n->tx_niov <= VIRTQ_CHAIN_MAX + 1);
	for (unsigned int i = 0; g.n->tx_pending && i < g.n->tx_niov; i++) {
		const struct iovec *v = &g.n->tx_iov[i];

		if (!i && g.n->antispoof) {
			assert_ptr_equal(v->iov_base, g.n->tx_hdr);
			assert_true(v->iov_len <= sizeof(g.n->tx_hdr));
			continue;
		}
		assert_true((uint8_t *)v->iov_base >= g.fg.mem);
		assert_true((uint8_t *)v->iov_base + v->iov_len <= g.fg.mem + MEM);
	}
}

/* An IPv4 frame from GUEST_MAC and GUEST_IP, virtio-net header first (again: the guest's
 * chains and the device's RX may have written over it). */
static void put_frame(void)
{
	static const uint8_t eth[] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, GUEST_MAC, 0x08, 0 };
	static const uint8_t ip[] = { 0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0, GUEST_IP, PEER_IP };
	static const uint8_t udp[] = { 0x30, 0x39, 0x30, 0x39, 0, 8, 0, 0 };
	uint8_t *p = fake_gmem__ptr(&g.fg, g.frame_at, NET_HDR_BYTES + 14 + 20 + 8);

	memset(p, 0, NET_HDR_BYTES); /* virtio_net_hdr_v1 */
	memcpy(p + NET_HDR_BYTES, eth, sizeof(eth));
	memcpy(p + NET_HDR_BYTES + 14, ip, sizeof(ip));
	memcpy(p + NET_HDR_BYTES + 14 + 20, udp, sizeof(udp));
}

static void hostile_guest(void **state)
{
	const char *env = getenv("NET_HOSTILE_ROUNDS");
	unsigned long rounds = env ? strtoul(env, NULL, 0) : 50000;
	uint64_t resets = 0;

	(void)state;
	for (unsigned long i = 0; i < rounds; i++) {
		if (g.frame_at)
			put_frame();
		if (!i || (rd(R_STATUS) & VIRTIO_STATUS_NEEDS_RESET) || !below(2000)) {
			restart();
			resets++;
		}
		scribble((unsigned int)below(2));
		frames_from_the_tap();
		if (below(2))
			kick((unsigned int)below(2));
		for (int k = 0; k < 100 && event_loop__run_once(&g.loop, 0) > 0; k++)
			;
		check_invariants();
	}
	/* the guest was hostile, and it showed */
	assert_true(g.n->t.m.needs_reset > 0);
	if (g.frame_at) {
		virtio_net__sync_metrics(g.n);
		assert_true(g.n->m.tx_antispoof_mac_drops + g.n->m.tx_antispoof_other_drops > 0);
	}
	print_message("%lu rounds, %llu restarts, %llu needs_reset, rx %llu tx %llu frames\n",
		      rounds, (unsigned long long)resets, (unsigned long long)g.n->t.m.needs_reset,
		      (unsigned long long)g.n->m.rx_packets_count,
		      (unsigned long long)g.n->m.tx_packets_count);
}

static int setup_with(struct net_config *cfg)
{
	struct unprivileged u;
	int sv[2], ret;

	log__set_level(LOG_LEVEL_OFF);
	g.rng = getenv("NET_HOSTILE_SEED") ? strtoull(getenv("NET_HOSTILE_SEED"), NULL, 0) | 1
					   : 0x9e3779b97f4a7c15ULL;
	if (fake_gmem__create(&g.fg, MEM))
		return -1;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv))
		return -1;
	g.peer = sv[1];
	if (unprivileged__begin(&u))
		return -1;
	ret = virtio_net__create_detached(&g.n, cfg, sv[0], &g.fg.gm);
	if (unprivileged__end(&u) || ret || event_loop__init(&g.loop) ||
	    virtio_net__watch(g.n, &g.loop))
		return -1;
	return cfg->has_anti_spoofing && !g.n->antispoof ? -1 : 0;
}

static void hostile_guest_antispoof(void **state)
{
	hostile_guest(state);
	print_message("anti-spoofing dropped %llu (mac), %llu (ip), %llu (other)\n",
		      (unsigned long long)g.n->m.tx_antispoof_mac_drops,
		      (unsigned long long)g.n->m.tx_antispoof_ip_drops,
		      (unsigned long long)g.n->m.tx_antispoof_other_drops);
}

static int setup(void **state)
{
	struct net_config cfg = { .iface_id = (char *)"eth0", .host_dev_name = (char *)"pair" };

	(void)state;
	return setup_with(&cfg);
}

/* Anti-spoofing by the device, and a frame it lets through for chains to point at. */
static int setup_antispoof(void **state)
{
	struct net_config cfg = { .iface_id = (char *)"eth0",
				  .host_dev_name = (char *)"pair",
				  .has_guest_mac = true,
				  .guest_mac = { GUEST_MAC },
				  .has_anti_spoofing = true,
				  .anti_spoofing = { .nr_ipv4 = 1, .ipv4 = { { GUEST_IP } } } };

	(void)state;
	g.frame_at = AREA - 70000 - 4096;
	return setup_with(&cfg);
}

static int teardown(void **state)
{
	(void)state;
	virtio_net__destroy(g.n);
	event_loop__destroy(&g.loop);
	close(g.peer);
	fake_gmem__destroy(&g.fg);
	g.frame_at = 0;
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(hostile_guest, setup, teardown),
		cmocka_unit_test_setup_teardown(hostile_guest_antispoof, setup_antispoof, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
