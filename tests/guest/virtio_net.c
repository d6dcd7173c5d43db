// SPDX-License-Identifier: Apache-2.0
/*
 * virtio_net: drives the first virtio-net device the way Linux's virtio_net does, against a
 * host peer on the TAP (tests/guest/test_virtio_net.py). Two phases, each from a reset:
 *
 * 1. the features Linux takes (MAC, MRG_RXBUF, CSUM, GUEST_CSUM, HOST_TSO4, EVENT_IDX,
 *    INDIRECT_DESC, as offered); 16 mergeable receive buffers of NET_MRG_BUF bytes, one
 *    descriptor each; frames sent with the header and the frame in one descriptor: a UDP
 *    frame whose checksum is left to the host (NEEDS_CSUM), a TCP segment to be cut up by
 *    the host (GSO TCPV4), then a ping (NET_TYPE_PING, broadcast).
 * 2. without MRG_RXBUF: 8 receive chains of two descriptors (header, NET_SMALL_BUF bytes of
 *    data); the ping through an indirect table, echoes with the header in a descriptor of
 *    its own.
 *
 * The host answers each ping with frames of NET_TYPE_PING to the guest's MAC from
 * NET_HOST_MAC whose bytes follow net_byte(frame number, offset); the guest checks each
 * byte, the header (num_buffers, no GSO, no NEEDS_CSUM) and the order, and sends every
 * frame back (NET_TYPE_ECHO) for the host to compare. In phase 2 the host also sends a
 * frame too big for the buffers between the two others, which must not arrive.
 */
#include "virtio.h"

#define WANTED                                                                                     \
	(VIRTIO_BIT(VIRTIO_NET_F_MAC) | VIRTIO_BIT(VIRTIO_NET_F_MRG_RXBUF) |                       \
	 VIRTIO_BIT(VIRTIO_NET_F_CSUM) | VIRTIO_BIT(VIRTIO_NET_F_GUEST_CSUM) |                     \
	 VIRTIO_BIT(VIRTIO_NET_F_HOST_TSO4) | VIRTIO_BIT(VIRTIO_F_EVENT_IDX) |                     \
	 VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC))
#define NET_HDR_BYTES ((uint32_t)sizeof(struct virtio_net_hdr))
#define NET_TYPE_PING 0x88b5
#define NET_TYPE_ECHO 0x88b6
#define NET_MRG_BUF 4608 /* 16 of them hold a 64 KiB frame: Ember reads straight into them */
#define NET_SMALL_BUF 1536
#define NET_FRAME_MAX 9014 /* the largest frame the host sends that must arrive */
#define NET_PING_BYTES 64
#define NET_RX_WAIT (3 * VIRTIO_WAIT_TSC)
#define UDP_PAYLOAD "EMBER-NET udp csum offload"
#define TSO_PAYLOAD 4000
#define TSO_MSS 1000
#define IP_HDR 20
#define UDP_HDR 8
#define TCP_HDR 20

static const uint8_t host_mac[ETH_ALEN] = { 0x02, 0xee, 0x00, 0x00, 0x00, 0x01 };
static const uint8_t guest_ip[4] = { 10, 0, 0, 2 };
static const uint8_t host_ip[4] = { 10, 0, 0, 1 };

/* What a phase expects from the host: frame numbers and lengths, in order. */
struct net_expect {
	unsigned int frame;
	uint32_t len;
};

static const struct net_expect phase1[] = { { 0, 60 }, { 1, 1514 }, { 2, NET_FRAME_MAX } };
/* frame 4 (9014 bytes) does not fit a small buffer: dropped by the device */
static const struct net_expect phase2[] = { { 3, 60 }, { 5, 1514 } };

struct net_ctx {
	struct virtio_dev d;
	struct virtio_queue rx, tx;
	uint8_t mac[ETH_ALEN];
	bool mrg;
	unsigned int seq;
};

static uint8_t rx_mem[VQ_SIZE][NET_MRG_BUF] NOINIT __attribute__((aligned(64)));
static uint8_t frame[NET_FRAME_MAX + NET_MRG_BUF] NOINIT __attribute__((aligned(64)));
static uint8_t tx_mem[NET_HDR_BYTES + NET_FRAME_MAX + 64] NOINIT __attribute__((aligned(64)));
static struct virtio_net_hdr tx_hdr NOINIT;

static inline uint8_t net_byte(unsigned int n, uint32_t k)
{
	return (uint8_t)(n * 31 + k);
}

static void put16be(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static uint16_t get16be(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static void eth_header(uint8_t *f, const uint8_t *dst, const uint8_t *src, uint16_t type)
{
	memcpy(f, dst, ETH_ALEN);
	memcpy(f + ETH_ALEN, src, ETH_ALEN);
	put16be(f + 2 * ETH_ALEN, type);
}

/* The one's-complement sum of len bytes, big-endian 16-bit words, folded, not inverted. */
static uint16_t csum_add(uint32_t sum, const uint8_t *p, uint32_t len)
{
	for (uint32_t i = 0; i + 1 < len; i += 2)
		sum += get16be(p + i);
	if (len & 1)
		sum += (uint32_t)p[len - 1] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)sum;
}

/* IPv4 header from guest_ip to host_ip, with its checksum. */
static void ip_header(uint8_t *ip, uint8_t proto, uint16_t payload)
{
	memset(ip, 0, IP_HDR);
	ip[0] = 0x45;
	put16be(ip + 2, (uint16_t)(IP_HDR + payload));
	put16be(ip + 6, 0x4000); /* DF */
	ip[8] = 64;
	ip[9] = proto;
	memcpy(ip + 12, guest_ip, 4);
	memcpy(ip + 16, host_ip, 4);
	put16be(ip + 10, (uint16_t)~csum_add(0, ip, IP_HDR));
}

/* The pseudo-header sum that NEEDS_CSUM leaves in the checksum field (not inverted). */
static uint16_t pseudo_sum(uint8_t proto, uint16_t len)
{
	uint8_t ph[12];

	memcpy(ph, guest_ip, 4);
	memcpy(ph + 4, host_ip, 4);
	ph[8] = 0;
	ph[9] = proto;
	put16be(ph + 10, len);
	return csum_add(0, ph, sizeof(ph));
}

/* ---- set-up ---- */

static void post_rx(struct net_ctx *c, uint16_t head)
{
	struct virtio_buf bufs[2];
	unsigned int i = c->mrg ? head : head / 2;

	if (c->mrg) {
		bufs[0] = (struct virtio_buf){ rx_mem[i], NET_MRG_BUF, true };
		virtio__queue_chain(&c->rx, head, bufs, 1);
	} else {
		bufs[0] = (struct virtio_buf){ rx_mem[i], NET_HDR_BYTES, true };
		bufs[1] = (struct virtio_buf){ rx_mem[i] + 64, NET_SMALL_BUF, true };
		virtio__queue_chain(&c->rx, head, bufs, 2);
	}
	virtio__queue_publish(&c->rx, head);
}

static const char *net_init(struct net_ctx *c, uint64_t wanted)
{
	const char *why = virtio__init_features(&c->d, wanted);

	if (!why)
		why = virtio__queue_setup(&c->d, &c->rx, VIRTIO_NET_QUEUE_RX);
	if (!why)
		why = virtio__queue_setup(&c->d, &c->tx, VIRTIO_NET_QUEUE_TX);
	if (why)
		return why;
	c->mrg = virtio__has(&c->d, VIRTIO_NET_F_MRG_RXBUF);
	/* Linux fills the receive queue before DRIVER_OK */
	for (uint16_t h = 0; h < VQ_SIZE; h += c->mrg ? 1 : 2)
		post_rx(c, h);
	why = virtio__driver_ok(&c->d);
	if (!why)
		virtio__queue_kick(&c->d, &c->rx);
	return why;
}

/* ---- TX ---- */

enum tx_layout {
	TX_ONE,	     /* header and frame in one descriptor (Linux's any_header_sg) */
	TX_SPLIT,    /* the header in a descriptor of its own */
	TX_INDIRECT, /* split, through an indirect table */
};

/* Sends tx_mem[NET_HDR_BYTES..+len) with tx_hdr in front. */
static const char *send_frame(struct net_ctx *c, uint32_t len, enum tx_layout how,
			      const char *what)
{
	struct virtio_buf bufs[2] = {
		{ &tx_hdr, NET_HDR_BYTES, false },
		{ tx_mem + NET_HDR_BYTES, len, false },
	};
	uint32_t used;
	int ret;

	if (how == TX_ONE) {
		memcpy(tx_mem, &tx_hdr, NET_HDR_BYTES);
		bufs[0] = (struct virtio_buf){ tx_mem, NET_HDR_BYTES + len, false };
		ret = virtio__queue_send(&c->d, &c->tx, bufs, 1, &used);
	} else if (how == TX_INDIRECT && virtio__has(&c->d, VIRTIO_F_INDIRECT_DESC)) {
		ret = virtio__queue_send_indirect(&c->d, &c->tx, bufs, 2, &used);
	} else {
		ret = virtio__queue_send(&c->d, &c->tx, bufs, 2, &used);
	}
	if (ret)
		return fail("tx %s: the device did not use the frame", what);
	return NULL;
}

static const char *send_ping(struct net_ctx *c, unsigned int phase, enum tx_layout how)
{
	uint8_t *f = tx_mem + NET_HDR_BYTES;
	static const uint8_t bcast[ETH_ALEN] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

	memset(&tx_hdr, 0, sizeof(tx_hdr));
	memset(f, 0, NET_PING_BYTES);
	eth_header(f, bcast, c->mac, NET_TYPE_PING);
	snformat((char *)f + ETH_HDR_BYTES, NET_PING_BYTES - ETH_HDR_BYTES,
		 "EMBER-NET ping phase=%u seq=%u", phase, c->seq++);
	return send_frame(c, NET_PING_BYTES, how, "ping");
}

/* A UDP frame whose checksum the host finishes (VIRTIO_NET_F_CSUM). */
static const char *send_udp_csum(struct net_ctx *c)
{
	uint8_t *f = tx_mem + NET_HDR_BYTES, *ip = f + ETH_HDR_BYTES, *udp = ip + IP_HDR;
	uint16_t ulen = (uint16_t)(UDP_HDR + sizeof(UDP_PAYLOAD) - 1);

	eth_header(f, host_mac, c->mac, 0x0800);
	ip_header(ip, 17, ulen);
	put16be(udp, 5000);
	put16be(udp + 2, 5001);
	put16be(udp + 4, ulen);
	put16be(udp + 6, pseudo_sum(17, ulen));
	memcpy(udp + UDP_HDR, UDP_PAYLOAD, sizeof(UDP_PAYLOAD) - 1);
	tx_hdr = (struct virtio_net_hdr){ .flags = VIRTIO_NET_HDR_F_NEEDS_CSUM,
					  .csum_start = ETH_HDR_BYTES + IP_HDR,
					  .csum_offset = 6 };
	return send_frame(c, ETH_HDR_BYTES + IP_HDR + ulen, TX_ONE, "udp");
}

/* One TCP segment of TSO_PAYLOAD bytes that the host cuts into TSO_MSS (HOST_TSO4). */
static const char *send_tso(struct net_ctx *c)
{
	uint8_t *f = tx_mem + NET_HDR_BYTES, *ip = f + ETH_HDR_BYTES, *tcp = ip + IP_HDR;
	uint16_t tlen = TCP_HDR + TSO_PAYLOAD;

	eth_header(f, host_mac, c->mac, 0x0800);
	ip_header(ip, 6, tlen);
	memset(tcp, 0, TCP_HDR);
	put16be(tcp, 5002);
	put16be(tcp + 2, 5003);
	put16be(tcp + 4, 0x1000); /* seq 0x10000000 */
	tcp[12] = 5 << 4;
	tcp[13] = 0x18; /* PSH ACK */
	put16be(tcp + 14, 0xffff);
	put16be(tcp + 16, pseudo_sum(6, tlen));
	for (uint32_t k = 0; k < TSO_PAYLOAD; k++)
		tcp[TCP_HDR + k] = net_byte(99, k);
	tx_hdr = (struct virtio_net_hdr){ .flags = VIRTIO_NET_HDR_F_NEEDS_CSUM,
					  .gso_type = VIRTIO_NET_HDR_GSO_TCPV4,
					  .hdr_len = ETH_HDR_BYTES + IP_HDR + TCP_HDR,
					  .gso_size = TSO_MSS,
					  .csum_start = ETH_HDR_BYTES + IP_HDR,
					  .csum_offset = 16 };
	return send_frame(c, ETH_HDR_BYTES + IP_HDR + tlen, TX_ONE, "tso");
}

/* The frame received back to the host, from us, as NET_TYPE_ECHO. */
static const char *send_echo(struct net_ctx *c, uint32_t len, enum tx_layout how)
{
	uint8_t *f = tx_mem + NET_HDR_BYTES;

	memset(&tx_hdr, 0, sizeof(tx_hdr));
	memcpy(f + ETH_HDR_BYTES, frame + ETH_HDR_BYTES, len - ETH_HDR_BYTES);
	eth_header(f, host_mac, c->mac, NET_TYPE_ECHO);
	return send_frame(c, len, how, "echo");
}

/* ---- RX ---- */

/* The receive buffer behind a used element, and how many bytes it may hold. */
static const char *rx_buffer(const struct net_ctx *c, const struct vq_used_elem *e,
			     uint8_t **hdr, uint8_t **data, uint32_t *cap)
{
	if (e->id >= VQ_SIZE || (!c->mrg && (e->id & 1)))
		return fail("rx: used id %u is no chain of ours", e->id);
	if (c->mrg) {
		*hdr = rx_mem[e->id];
		*data = rx_mem[e->id];
		*cap = NET_MRG_BUF;
	} else {
		*hdr = rx_mem[e->id / 2];
		*data = rx_mem[e->id / 2] + 64;
		*cap = NET_HDR_BYTES + NET_SMALL_BUF;
	}
	if (e->len > *cap || e->len < NET_HDR_BYTES)
		return fail("rx: used len %u for a chain of %u bytes", e->len, *cap);
	return NULL;
}

/* The next frame into `frame`: its length, header and the buffers it took. */
static const char *recv_frame(struct net_ctx *c, uint32_t *len, struct virtio_net_hdr *h,
			      unsigned int *bufs)
{
	struct vq_used_elem e;
	uint8_t *hdr, *data;
	uint32_t cap, skip;
	const char *why;

	if (virtio__queue_wait(&c->rx, &e, NET_RX_WAIT))
		return fail("rx: no frame from the host");
	why = rx_buffer(c, &e, &hdr, &data, &cap);
	if (why)
		return why;
	memcpy(h, hdr, NET_HDR_BYTES);
	skip = c->mrg ? NET_HDR_BYTES : 0;
	*len = e.len - NET_HDR_BYTES;
	memcpy(frame, data + skip, *len);
	post_rx(c, (uint16_t)e.id);
	for (*bufs = 1; c->mrg && *bufs < h->num_buffers; ++*bufs) {
		if (virtio__queue_wait(&c->rx, &e, VIRTIO_WAIT_TSC))
			return fail("rx: buffer %u of %u missing", *bufs + 1, h->num_buffers);
		why = rx_buffer(c, &e, &hdr, &data, &cap);
		if (why)
			return why;
		if (*len + e.len > sizeof(frame))
			return fail("rx: a frame of more than %u bytes", (unsigned)sizeof(frame));
		memcpy(frame + *len, data, e.len);
		*len += e.len;
		post_rx(c, (uint16_t)e.id);
	}
	virtio__queue_kick(&c->d, &c->rx);
	return NULL;
}

static const char *check_frame(const struct net_ctx *c, const struct net_expect *x, uint32_t len)
{
	if (len != x->len)
		return fail("rx frame %u: %u bytes, expected %u", x->frame, len, x->len);
	if (memcmp(frame, c->mac, ETH_ALEN) || memcmp(frame + ETH_ALEN, host_mac, ETH_ALEN) ||
	    get16be(frame + 2 * ETH_ALEN) != NET_TYPE_PING)
		return fail("rx frame %u: wrong Ethernet header", x->frame);
	for (uint32_t k = ETH_HDR_BYTES; k < len; k++) {
		if (frame[k] != net_byte(x->frame, k))
			return fail("rx frame %u: byte %u is 0x%x, expected 0x%x", x->frame, k,
				    frame[k], net_byte(x->frame, k));
	}
	return NULL;
}

/* Receives the phase's frames in order (others, e.g. from the host's stack, are skipped). */
static const char *receive(struct net_ctx *c, const struct net_expect *x, unsigned int n,
			   enum tx_layout echo)
{
	for (unsigned int i = 0; i < n;) {
		struct virtio_net_hdr h;
		unsigned int bufs = 0;
		uint32_t len = 0;
		const char *why = recv_frame(c, &len, &h, &bufs);

		if (why)
			return why;
		if (len < ETH_HDR_BYTES || get16be(frame + 2 * ETH_ALEN) != NET_TYPE_PING ||
		    memcmp(frame + ETH_ALEN, host_mac, ETH_ALEN)) {
			report("virtio-net rx other len=%u", len);
			continue;
		}
		report("virtio-net rx frame=%u len=%u bufs=%u num_buffers=%u flags=0x%x gso=%u",
		       x[i].frame, len, bufs, h.num_buffers, h.flags, h.gso_type);
		why = check_frame(c, &x[i], len);
		if (!why && h.num_buffers != bufs)
			why = fail("rx frame %u: num_buffers %u", x[i].frame, h.num_buffers);
		if (!why && (h.gso_type != VIRTIO_NET_HDR_GSO_NONE ||
			     (h.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM)))
			why = fail("rx frame %u: header flags 0x%x gso_type %u", x[i].frame,
				   h.flags, h.gso_type);
		if (!why)
			why = send_echo(c, len, echo);
		if (why)
			return why;
		i++;
	}
	return NULL;
}

static const char *phase_one(struct net_ctx *c)
{
	const char *why = net_init(c, WANTED);

	if (why)
		return why;
	virtio__net_mac(&c->d, c->mac);
	report("virtio-net dev=%u mac=%02x:%02x:%02x:%02x:%02x:%02x features=0x%llx", c->d.slot,
	       c->mac[0], c->mac[1], c->mac[2], c->mac[3], c->mac[4], c->mac[5],
	       (unsigned long long)c->d.features);
	if (!virtio__has(&c->d, VIRTIO_NET_F_MAC) || !c->mrg)
		return fail("MAC or MRG_RXBUF not offered (features 0x%llx)",
			    (unsigned long long)c->d.offered);
	if (virtio__has(&c->d, VIRTIO_NET_F_CSUM))
		why = send_udp_csum(c);
	if (!why && virtio__has(&c->d, VIRTIO_NET_F_HOST_TSO4))
		why = send_tso(c);
	if (!why)
		why = send_ping(c, 1, TX_ONE);
	return why ? why : receive(c, phase1, ARRAY_SIZE(phase1), TX_ONE);
}

static const char *phase_two(struct net_ctx *c)
{
	uint64_t wanted = VIRTIO_BIT(VIRTIO_NET_F_MAC) | VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC);
	const char *why = net_init(c, wanted);

	if (why)
		return why;
	report("virtio-net dev=%u features=0x%llx", c->d.slot, (unsigned long long)c->d.features);
	why = send_ping(c, 2, TX_INDIRECT);
	return why ? why : receive(c, phase2, ARRAY_SIZE(phase2), TX_SPLIT);
}

const char *test_virtio_net(void)
{
	static struct net_ctx c NOINIT;
	const char *why;

	memset(&c, 0, sizeof(c));
	if (!virtio__find(VIRTIO_ID_NET, &c.d, 1))
		return "no virtio-net device";
	why = phase_one(&c);
	if (!why)
		why = phase_two(&c);
	virtio__reset(&c.d);
	return why;
}
