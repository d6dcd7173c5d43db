// SPDX-License-Identifier: Apache-2.0
/*
 * virtio_net_hostile: breaks the rules on the first virtio-net device's queues, one case at
 * a time, from a fresh initialisation each, with a host peer on the TAP that answers each
 * ping (NET_TYPE_PING, "EMBER-NET ping phase=0 seq=N") with a pong ("EMBER-NET pong
 * seq=N") to the guest (tests/guest/test_virtio_hostile_queues.py).
 *
 * - RESET cases (bad descriptor chains, rings or indices on TX; bad receive chains on RX,
 *   which the device meets when the host's pong comes in): Status must get
 *   DEVICE_NEEDS_RESET with a config-change interrupt; then the guest resets the device,
 *   initialises it again and a ping/pong round trip must work.
 * - DROP cases (a TX frame shorter than a virtio-net header plus an Ethernet header, a
 *   header alone, a frame over 64 KiB): the device must give the chain back, stay live,
 *   send nothing to the TAP (the host checks), and a round trip must work at once.
 */
#include "virtio.h"

#define FEATURES                                                                                   \
	(VIRTIO_BIT(VIRTIO_NET_F_MAC) | VIRTIO_BIT(VIRTIO_NET_F_MRG_RXBUF) |                       \
	 VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC))
#define NET_HDR_BYTES ((uint32_t)sizeof(struct virtio_net_hdr))
#define RX_BUF 4608
#define PING_BYTES 64
#define OVERSIZE (70 * 1024)
#define WRAP_ADDR 0xffffffffffffff00ULL
#define ABSURD_LEN 0x80000000U
#define PONG_WAIT (3 * VIRTIO_WAIT_TSC)

enum nh_kind {
	TX_RESET,
	RX_RESET, /* the bad chain is the only receive buffer; a ping brings a frame to it */
	TX_DROP,
};

struct nh {
	struct virtio_dev d;
	struct virtio_queue rx, tx;
	uint8_t mac[ETH_ALEN];
	unsigned int seq;
	uint64_t ram_top;
};

struct nh_case {
	const char *name;
	enum nh_kind kind;
	void (*build)(struct nh *n); /* fills descriptors from 0 and publishes head 0 */
};

static uint8_t rx_mem[VQ_SIZE][RX_BUF] NOINIT __attribute__((aligned(64)));
static uint8_t tx_mem[NET_HDR_BYTES + PING_BYTES] NOINIT __attribute__((aligned(64)));
static uint8_t big[OVERSIZE] NOINIT __attribute__((aligned(64)));
static struct vq_desc table[3] NOINIT __attribute__((aligned(16)));

static struct vq_desc desc(uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
	return (struct vq_desc){ addr, len, flags, next };
}

static uint64_t addr(const void *p)
{
	return (uintptr_t)p;
}

/* A good TX chain at t[0..1]: the header, then a ping frame. */
static void tx_chain(struct vq_desc *t)
{
	t[0] = desc(addr(tx_mem), NET_HDR_BYTES, VQ_DESC_F_NEXT, 1);
	t[1] = desc(addr(tx_mem + NET_HDR_BYTES), PING_BYTES, 0, 0);
}

/* ---- TX cases ---- */

static void tx_past_ram(struct nh *n)
{
	tx_chain(n->tx.desc);
	n->tx.desc[1].addr = n->ram_top;
	virtio__queue_publish(&n->tx, 0);
}

static void tx_wraps(struct nh *n)
{
	tx_chain(n->tx.desc);
	n->tx.desc[1].addr = WRAP_ADDR;
	virtio__queue_publish(&n->tx, 0);
}

static void tx_absurd_length(struct nh *n)
{
	tx_chain(n->tx.desc);
	n->tx.desc[1].len = ABSURD_LEN;
	virtio__queue_publish(&n->tx, 0);
}

static void tx_zero_length(struct nh *n)
{
	tx_chain(n->tx.desc);
	n->tx.desc[1].len = 0;
	virtio__queue_publish(&n->tx, 0);
}

static void tx_loop(struct nh *n)
{
	tx_chain(n->tx.desc);
	n->tx.desc[1] = desc(addr(tx_mem + NET_HDR_BYTES), PING_BYTES, VQ_DESC_F_NEXT, 0);
	virtio__queue_publish(&n->tx, 0);
}

static void tx_next_out_of_range(struct nh *n)
{
	tx_chain(n->tx.desc);
	n->tx.desc[0].next = VQ_SIZE;
	virtio__queue_publish(&n->tx, 0);
}

static void tx_head_out_of_range(struct nh *n)
{
	tx_chain(n->tx.desc);
	virtio__queue_publish(&n->tx, VQ_SIZE + 3);
}

static void tx_avail_jump(struct nh *n)
{
	tx_chain(n->tx.desc);
	virtio__queue_publish(&n->tx, 0);
	n->tx.avail_idx += VQ_SIZE;
	*(volatile uint16_t *)&n->tx.avail->idx = n->tx.avail_idx; /* size + 1 ahead */
}

static void tx_writable(struct nh *n)
{
	tx_chain(n->tx.desc);
	n->tx.desc[1].flags = VQ_DESC_F_WRITE;
	virtio__queue_publish(&n->tx, 0);
}

static void tx_indirect_nested(struct nh *n)
{
	tx_chain(table);
	table[1] = desc(addr(&table[2]), sizeof(struct vq_desc), VQ_DESC_F_INDIRECT, 0);
	n->tx.desc[0] = desc(addr(table), 2 * sizeof(struct vq_desc), VQ_DESC_F_INDIRECT, 0);
	virtio__queue_publish(&n->tx, 0);
}

/* ---- TX frames that are dropped ---- */

static void tx_short_header(struct nh *n)
{
	n->tx.desc[0] = desc(addr(tx_mem), NET_HDR_BYTES - 4, 0, 0);
	virtio__queue_publish(&n->tx, 0);
}

static void tx_header_only(struct nh *n)
{
	n->tx.desc[0] = desc(addr(tx_mem), NET_HDR_BYTES, 0, 0);
	virtio__queue_publish(&n->tx, 0);
}

static void tx_oversize(struct nh *n)
{
	tx_chain(n->tx.desc);
	n->tx.desc[1] = desc(addr(big), OVERSIZE, 0, 0);
	virtio__queue_publish(&n->tx, 0);
}

/* ---- RX cases: the chain at head 0 is the only receive buffer ---- */

static void rx_readable(struct nh *n)
{
	n->rx.desc[0] = desc(addr(rx_mem[0]), RX_BUF, 0, 0);
	virtio__queue_publish(&n->rx, 0);
}

static void rx_shorter_than_header(struct nh *n)
{
	n->rx.desc[0] = desc(addr(rx_mem[0]), NET_HDR_BYTES - 4, VQ_DESC_F_WRITE, 0);
	virtio__queue_publish(&n->rx, 0);
}

static void rx_past_ram(struct nh *n)
{
	n->rx.desc[0] = desc(n->ram_top - 64, RX_BUF, VQ_DESC_F_WRITE, 0);
	virtio__queue_publish(&n->rx, 0);
}

static void rx_loop(struct nh *n)
{
	n->rx.desc[0] = desc(addr(rx_mem[0]), 64, VQ_DESC_F_WRITE | VQ_DESC_F_NEXT, 1);
	n->rx.desc[1] = desc(addr(rx_mem[1]), 64, VQ_DESC_F_WRITE | VQ_DESC_F_NEXT, 0);
	virtio__queue_publish(&n->rx, 0);
}

static const struct nh_case cases[] = {
	{ "tx-desc-past-ram", TX_RESET, tx_past_ram },
	{ "tx-desc-wraps", TX_RESET, tx_wraps },
	{ "tx-absurd-length", TX_RESET, tx_absurd_length },
	{ "tx-zero-length", TX_RESET, tx_zero_length },
	{ "tx-chain-loop", TX_RESET, tx_loop },
	{ "tx-next-out-of-range", TX_RESET, tx_next_out_of_range },
	{ "tx-head-out-of-range", TX_RESET, tx_head_out_of_range },
	{ "tx-avail-idx-jump", TX_RESET, tx_avail_jump },
	{ "tx-writable-buffer", TX_RESET, tx_writable },
	{ "tx-indirect-nested", TX_RESET, tx_indirect_nested },
	{ "rx-readable-buffer", RX_RESET, rx_readable },
	{ "rx-shorter-than-header", RX_RESET, rx_shorter_than_header },
	{ "rx-desc-past-ram", RX_RESET, rx_past_ram },
	{ "rx-chain-loop", RX_RESET, rx_loop },
	{ "tx-short-header", TX_DROP, tx_short_header },
	{ "tx-header-only", TX_DROP, tx_header_only },
	{ "tx-oversize", TX_DROP, tx_oversize },
};

/* ---- the device ---- */

static void post_rx(struct nh *n, uint16_t head)
{
	struct virtio_buf b = { rx_mem[head], RX_BUF, true };

	virtio__queue_chain(&n->rx, head, &b, 1);
	virtio__queue_publish(&n->rx, head);
}

static const char *nh_init(struct nh *n, bool rx_buffers)
{
	const char *why = virtio__init_features(&n->d, FEATURES);

	if (!why)
		why = virtio__queue_setup(&n->d, &n->rx, VIRTIO_NET_QUEUE_RX);
	if (!why)
		why = virtio__queue_setup(&n->d, &n->tx, VIRTIO_NET_QUEUE_TX);
	if (why)
		return why;
	for (uint16_t h = 0; rx_buffers && h < VQ_SIZE; h++)
		post_rx(n, h);
	why = virtio__driver_ok(&n->d);
	if (!why)
		virtio__queue_kick(&n->d, &n->rx);
	return why;
}

static const char *ping(struct nh *n)
{
	uint8_t *f = tx_mem + NET_HDR_BYTES;
	struct virtio_buf b = { tx_mem, NET_HDR_BYTES + PING_BYTES, false };
	uint32_t len;

	memset(tx_mem, 0, sizeof(tx_mem));
	memset(f, 0xff, ETH_ALEN);
	memcpy(f + ETH_ALEN, n->mac, ETH_ALEN);
	f[12] = 0x88;
	f[13] = 0xb5;
	snformat((char *)f + ETH_HDR_BYTES, PING_BYTES - ETH_HDR_BYTES,
		 "EMBER-NET ping phase=0 seq=%u", n->seq);
	if (virtio__queue_send(&n->d, &n->tx, &b, 1, &len))
		return fail("ping %u: the device did not use it", n->seq);
	return NULL;
}

/* Pings and waits for the pong to this ping (older pongs, left in the TAP, are skipped). */
static const char *round_trip(struct nh *n, const char *name)
{
	char want[32];
	int want_len = snformat(want, sizeof(want), "EMBER-NET pong seq=%u", n->seq);
	const char *why = ping(n);
	struct vq_used_elem e;

	n->seq++;
	while (!why) {
		const uint8_t *f;

		if (virtio__queue_wait(&n->rx, &e, PONG_WAIT))
			return fail("%s: no pong to ping %u", name, n->seq - 1);
		if (e.id >= VQ_SIZE || e.len > RX_BUF || e.len < NET_HDR_BYTES + ETH_HDR_BYTES)
			return fail("%s: rx used id %u len %u", name, e.id, e.len);
		f = rx_mem[e.id] + NET_HDR_BYTES;
		if (!memcmp(f + ETH_HDR_BYTES, want, (size_t)want_len) &&
		    !memcmp(f, n->mac, ETH_ALEN))
			return NULL;
		post_rx(n, (uint16_t)e.id);
		virtio__queue_kick(&n->d, &n->rx);
	}
	return why;
}

static const char *provoke(struct nh *n, const struct nh_case *c)
{
	struct vq_used_elem e;
	const char *why = nh_init(n, c->kind != RX_RESET);

	if (why)
		return why;
	if (c->kind == RX_RESET) {
		c->build(n);
		virtio__queue_notify(&n->d, &n->rx);
		why = ping(n); /* the pong meets the bad chain */
		n->seq++;
		return why ? why : virtio__expect_needs_reset(&n->d, "virtio-net-hostile", c->name);
	}
	c->build(n);
	virtio__queue_notify(&n->d, &n->tx);
	if (c->kind == TX_RESET)
		return virtio__expect_needs_reset(&n->d, "virtio-net-hostile", c->name);
	/* dropped: the chain comes back, the device stays live */
	if (virtio__queue_wait(&n->tx, &e, VIRTIO_WAIT_TSC) || e.id != 0)
		return fail("%s: the device did not give the chain back", c->name);
	report("virtio-net-hostile %s dropped status=0x%x", c->name,
	       virtio__read(&n->d, VIRTIO_MMIO_STATUS));
	if (virtio__read(&n->d, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET)
		return fail("%s: a malformed frame reset the device", c->name);
	return round_trip(n, c->name);
}

const char *test_virtio_net_hostile(void)
{
	static struct nh n NOINIT;
	const char *why = NULL;

	memset(&n, 0, sizeof(n));
	if (!virtio__find(VIRTIO_ID_NET, &n.d, 1))
		return "no virtio-net device";
	n.ram_top = virtio__ram_top();
	why = nh_init(&n, true);
	if (!why)
		virtio__net_mac(&n.d, n.mac);
	for (unsigned int i = 0; i < ARRAY_SIZE(cases) && !why; i++) {
		why = provoke(&n, &cases[i]);
		if (!why && cases[i].kind != TX_DROP) {
			/* after a reset the device works again */
			why = nh_init(&n, true);
			if (!why)
				why = round_trip(&n, cases[i].name);
		}
	}
	virtio__reset(&n.d);
	return why;
}
