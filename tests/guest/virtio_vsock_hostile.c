// SPDX-License-Identifier: Apache-2.0
/*
 * virtio_vsock_hostile: breaks the rules on the first virtio-vsock device, one case at a
 * time, each from a fresh initialisation (tests/guest/test_virtio_hostile_queues.py):
 *
 * - RESET cases (bad chains, rings or indices on the tx queue; a looping rx chain, met when
 *   the device has a packet for the guest): DEVICE_NEEDS_RESET with a config-change
 *   interrupt; after a reset the device must work again.
 * - packets the device must answer with RST (an RW whose len is more than its buffer, an
 *   unknown op, a type other than STREAM) or drop unanswered (a header shorter than 44
 *   bytes, a source CID that is not the guest's, a destination that is not the host: the
 *   last two are REQUESTs to a port the host listens on, and the host checks no
 *   connection came); an rx buffer too small for a header is given back empty.
 *
 * "Works" is checked by a REQUEST to host port VSOCK_PORT_NONE, where nothing listens: the
 * next packet must be the RST for it. At the end a real connection to VSOCK_PORT_ECHO
 * carries "alive" to the host.
 */
#include "virtio.h"

#define FEATURES (VIRTIO_BIT(VIRTIO_F_EVENT_IDX) | VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC))
#define HDR_BYTES ((uint32_t)sizeof(struct virtio_vsock_hdr))
#define RX_BUF (HDR_BYTES + 4096)
#define VSOCK_PORT_ECHO 5000
#define VSOCK_PORT_NONE 5001
#define BAD_OP 99
#define BAD_TYPE 2 /* SEQPACKET */
#define OTHER_CID 7
#define ABSURD_LEN 0x80000000U
#define WAIT (2 * VIRTIO_WAIT_TSC)
#define ALIVE "alive"

enum vh_kind {
	VH_TX_RESET,
	VH_RX_RESET, /* the bad rx chain is the only one; an RST is provoked to meet it */
	VH_RST,	     /* answered with an RST */
	VH_DROP,     /* dropped: no answer */
	VH_RX_SMALL, /* a too-small rx buffer first: given back with len 0 */
};

struct vh {
	struct virtio_dev d;
	struct virtio_queue rx, tx, ev;
	uint64_t cid;
	uint64_t ram_top;
	uint32_t port; /* the guest's port for the current case */
};

struct vh_case {
	const char *name;
	enum vh_kind kind;
	void (*build)(struct vh *v); /* for the tx cases: the header in hdr, then chain at 0 */
};

static uint8_t rx_mem[VQ_SIZE][RX_BUF] NOINIT __attribute__((aligned(64)));
static uint8_t ev_mem[2][8] NOINIT;
static struct virtio_vsock_hdr hdr NOINIT;
static uint8_t payload[64] NOINIT;
static struct virtio_vsock_hdr got NOINIT;

static struct vq_desc desc(uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
	return (struct vq_desc){ addr, len, flags, next };
}

static uint64_t addr(const void *p)
{
	return (uintptr_t)p;
}

static void make_hdr(struct vh *v, uint16_t op, uint32_t dst_port, uint32_t len)
{
	hdr = (struct virtio_vsock_hdr){ .src_cid = v->cid,
					 .dst_cid = VSOCK_HOST_CID,
					 .src_port = v->port,
					 .dst_port = dst_port,
					 .len = len,
					 .type = VSOCK_TYPE_STREAM,
					 .op = op,
					 .buf_alloc = 65536 };
}

/* A good RW chain at t[0..1]: header, 10 bytes. */
static void rw_chain(struct vh *v, struct vq_desc *t)
{
	make_hdr(v, VSOCK_OP_RW, VSOCK_PORT_NONE, 10);
	t[0] = desc(addr(&hdr), HDR_BYTES, VQ_DESC_F_NEXT, 1);
	t[1] = desc(addr(payload), 10, 0, 0);
}

/* ---- tx cases that need a reset ---- */

static void tx_past_ram(struct vh *v)
{
	rw_chain(v, v->tx.desc);
	v->tx.desc[1].addr = v->ram_top;
	virtio__queue_publish(&v->tx, 0);
}

static void tx_absurd_length(struct vh *v)
{
	rw_chain(v, v->tx.desc);
	v->tx.desc[1].len = ABSURD_LEN;
	virtio__queue_publish(&v->tx, 0);
}

static void tx_zero_length(struct vh *v)
{
	rw_chain(v, v->tx.desc);
	v->tx.desc[1].len = 0;
	virtio__queue_publish(&v->tx, 0);
}

static void tx_loop(struct vh *v)
{
	rw_chain(v, v->tx.desc);
	v->tx.desc[1] = desc(addr(payload), 10, VQ_DESC_F_NEXT, 0);
	virtio__queue_publish(&v->tx, 0);
}

static void tx_next_out_of_range(struct vh *v)
{
	rw_chain(v, v->tx.desc);
	v->tx.desc[0].next = VQ_SIZE + 1;
	virtio__queue_publish(&v->tx, 0);
}

static void tx_head_out_of_range(struct vh *v)
{
	rw_chain(v, v->tx.desc);
	virtio__queue_publish(&v->tx, 0xffff);
}

static void tx_avail_jump(struct vh *v)
{
	rw_chain(v, v->tx.desc);
	virtio__queue_publish(&v->tx, 0);
	v->tx.avail_idx += VQ_SIZE;
	*(volatile uint16_t *)&v->tx.avail->idx = v->tx.avail_idx;
}

/* ---- bad packets ---- */

static void send_one(struct vh *v, uint32_t hdr_len, uint32_t payload_len)
{
	v->tx.desc[0] = desc(addr(&hdr), hdr_len, payload_len ? VQ_DESC_F_NEXT : 0, 1);
	v->tx.desc[1] = desc(addr(payload), payload_len, 0, 0);
	virtio__queue_publish(&v->tx, 0);
}

static void short_header(struct vh *v)
{
	make_hdr(v, VSOCK_OP_REQUEST, VSOCK_PORT_ECHO, 0);
	send_one(v, 20, 0);
}

static void len_beyond_buffer(struct vh *v)
{
	make_hdr(v, VSOCK_OP_RW, VSOCK_PORT_NONE, 4096);
	send_one(v, HDR_BYTES, 10);
}

static void bad_op(struct vh *v)
{
	make_hdr(v, BAD_OP, VSOCK_PORT_NONE, 0);
	send_one(v, HDR_BYTES, 0);
}

static void bad_type(struct vh *v)
{
	make_hdr(v, VSOCK_OP_REQUEST, VSOCK_PORT_ECHO, 0);
	hdr.type = BAD_TYPE;
	send_one(v, HDR_BYTES, 0);
}

static void rw_unconnected(struct vh *v)
{
	make_hdr(v, VSOCK_OP_RW, VSOCK_PORT_NONE, 10);
	send_one(v, HDR_BYTES, 10);
}

static void wrong_src_cid(struct vh *v)
{
	make_hdr(v, VSOCK_OP_REQUEST, VSOCK_PORT_ECHO, 0);
	hdr.src_cid = v->cid + 1;
	send_one(v, HDR_BYTES, 0);
}

static void wrong_dst_cid(struct vh *v)
{
	make_hdr(v, VSOCK_OP_REQUEST, VSOCK_PORT_ECHO, 0);
	hdr.dst_cid = OTHER_CID;
	send_one(v, HDR_BYTES, 0);
}

/* ---- rx ---- */

static void rx_loop(struct vh *v)
{
	v->rx.desc[0] = desc(addr(rx_mem[0]), 64, VQ_DESC_F_WRITE | VQ_DESC_F_NEXT, 1);
	v->rx.desc[1] = desc(addr(rx_mem[1]), RX_BUF, VQ_DESC_F_WRITE | VQ_DESC_F_NEXT, 0);
	virtio__queue_publish(&v->rx, 0);
}

static void rx_small(struct vh *v)
{
	v->rx.desc[0] = desc(addr(rx_mem[0]), 16, VQ_DESC_F_WRITE, 0);
	virtio__queue_publish(&v->rx, 0);
}

static const struct vh_case cases[] = {
	{ "tx-desc-past-ram", VH_TX_RESET, tx_past_ram },
	{ "tx-absurd-length", VH_TX_RESET, tx_absurd_length },
	{ "tx-zero-length", VH_TX_RESET, tx_zero_length },
	{ "tx-chain-loop", VH_TX_RESET, tx_loop },
	{ "tx-next-out-of-range", VH_TX_RESET, tx_next_out_of_range },
	{ "tx-head-out-of-range", VH_TX_RESET, tx_head_out_of_range },
	{ "tx-avail-idx-jump", VH_TX_RESET, tx_avail_jump },
	{ "rx-chain-loop", VH_RX_RESET, rx_loop },
	{ "short-header", VH_DROP, short_header },
	{ "len-beyond-buffer", VH_RST, len_beyond_buffer },
	{ "bad-op", VH_RST, bad_op },
	{ "bad-type", VH_RST, bad_type },
	{ "rw-unconnected", VH_RST, rw_unconnected },
	{ "wrong-src-cid", VH_DROP, wrong_src_cid },
	{ "wrong-dst-cid", VH_DROP, wrong_dst_cid },
	{ "rx-small-buffer", VH_RX_SMALL, rx_small },
};

/* ---- the device ---- */

static void post_rx(struct vh *v, uint16_t head)
{
	struct virtio_buf b = { rx_mem[head], RX_BUF, true };

	virtio__queue_chain(&v->rx, head, &b, 1);
	virtio__queue_publish(&v->rx, head);
}

/* rx buffers at heads [first, VQ_SIZE). */
static const char *vh_init(struct vh *v, uint16_t first, void (*rx_first)(struct vh *v))
{
	const char *why = virtio__init_features(&v->d, FEATURES);

	if (!why)
		why = virtio__queue_setup(&v->d, &v->rx, VIRTIO_VSOCK_QUEUE_RX);
	if (!why)
		why = virtio__queue_setup(&v->d, &v->tx, VIRTIO_VSOCK_QUEUE_TX);
	if (!why)
		why = virtio__queue_setup(&v->d, &v->ev, VIRTIO_VSOCK_QUEUE_EVENT);
	if (why)
		return why;
	v->cid = virtio__config64(&v->d, VIRTIO_VSOCK_CFG_CID);
	if (rx_first)
		rx_first(v);
	for (uint16_t h = first; h < VQ_SIZE; h++)
		post_rx(v, h);
	for (uint16_t i = 0; i < 2; i++) {
		struct virtio_buf b = { ev_mem[i], sizeof(ev_mem[i]), true };

		virtio__queue_chain(&v->ev, i, &b, 1);
		virtio__queue_publish(&v->ev, i);
	}
	why = virtio__driver_ok(&v->d);
	if (!why)
		virtio__queue_kick(&v->d, &v->rx);
	return why;
}

/* The next packet's header into `got`; its buffer goes back. */
static const char *recv_hdr(struct vh *v, const char *name)
{
	struct vq_used_elem e;

	if (virtio__queue_wait(&v->rx, &e, WAIT))
		return fail("%s: no packet from the device", name);
	if (e.id >= VQ_SIZE || e.len < HDR_BYTES || e.len > RX_BUF)
		return fail("%s: rx used id %u len %u", name, e.id, e.len);
	memcpy(&got, rx_mem[e.id], HDR_BYTES);
	post_rx(v, (uint16_t)e.id);
	virtio__queue_kick(&v->d, &v->rx);
	return NULL;
}

static const char *send_hdr(struct vh *v, uint16_t op, uint32_t dst_port, const char *name)
{
	struct virtio_buf b = { &hdr, HDR_BYTES, false };
	uint32_t len;

	make_hdr(v, op, dst_port, 0);
	if (virtio__queue_send(&v->d, &v->tx, &b, 1, &len))
		return fail("%s: the device did not take a %u packet", name, op);
	return NULL;
}

/* The next packet is an RST from host port `from` to v->port. */
static const char *expect_rst(struct vh *v, uint32_t from, const char *name)
{
	const char *why = recv_hdr(v, name);

	if (!why && (got.op != VSOCK_OP_RST || got.src_port != from || got.dst_port != v->port ||
		     got.dst_cid != v->cid))
		why = fail("%s: expected RST %u->%u, got op %u %u->%u", name, from, v->port, got.op,
			   got.src_port, got.dst_port);
	return why;
}

/* The device answers: a REQUEST to a port without listener gets its RST, first. */
static const char *alive(struct vh *v, const char *name)
{
	const char *why;

	v->port++;
	why = send_hdr(v, VSOCK_OP_REQUEST, VSOCK_PORT_NONE, name);
	return why ? why : expect_rst(v, VSOCK_PORT_NONE, name);
}

static const char *bad_packet(struct vh *v, const struct vh_case *c)
{
	struct vq_used_elem e;
	uint32_t s;

	c->build(v);
	virtio__queue_notify(&v->d, &v->tx);
	if (virtio__queue_wait(&v->tx, &e, VIRTIO_WAIT_TSC) || e.id != 0)
		return fail("%s: the device did not give the packet back", c->name);
	s = virtio__read(&v->d, VIRTIO_MMIO_STATUS);
	report("virtio-vsock-hostile %s %s status=0x%x", c->name,
	       c->kind == VH_RST ? "rst" : "dropped", s);
	if (s & VIRTIO_STATUS_NEEDS_RESET)
		return fail("%s: a bad packet reset the device", c->name);
	if (c->kind == VH_RST)
		return expect_rst(v, hdr.dst_port, c->name);
	return NULL;
}

static const char *small_rx(struct vh *v, const struct vh_case *c)
{
	struct vq_used_elem e;
	const char *why;

	v->port++;
	why = send_hdr(v, VSOCK_OP_REQUEST, VSOCK_PORT_NONE, c->name);
	if (!why && (virtio__queue_wait(&v->rx, &e, WAIT) || e.id != 0 || e.len))
		why = fail("%s: the small buffer did not come back empty", c->name);
	if (!why)
		report("virtio-vsock-hostile %s returned len=%u", c->name, e.len);
	return why ? why : expect_rst(v, VSOCK_PORT_NONE, c->name);
}

static const char *run_case(struct vh *v, const struct vh_case *c)
{
	bool rx_case = c->kind == VH_RX_RESET || c->kind == VH_RX_SMALL;
	const char *why = vh_init(v, rx_case ? 2 : 0, rx_case ? c->build : NULL);

	if (why)
		return why;
	switch (c->kind) {
	case VH_TX_RESET:
		c->build(v);
		virtio__queue_notify(&v->d, &v->tx);
		return virtio__expect_needs_reset(&v->d, "virtio-vsock-hostile", c->name);
	case VH_RX_RESET:
		/* an RST for this REQUEST meets the looping chain */
		why = send_hdr(v, VSOCK_OP_REQUEST, VSOCK_PORT_NONE, c->name);
		return why ? why : virtio__expect_needs_reset(&v->d, "virtio-vsock-hostile", c->name);
	case VH_RX_SMALL:
		return small_rx(v, c);
	default:
		why = bad_packet(v, c);
		return why ? why : alive(v, c->name);
	}
}

/* A real connection to the host's listener: "alive" arrives there. */
static const char *last_connection(struct vh *v)
{
	struct virtio_buf b[2] = { { &hdr, HDR_BYTES, false }, { payload, 5, false } };
	const char *why;
	uint32_t len;

	v->port++;
	why = send_hdr(v, VSOCK_OP_REQUEST, VSOCK_PORT_ECHO, "last");
	if (!why)
		why = recv_hdr(v, "last");
	if (!why && got.op != VSOCK_OP_RESPONSE)
		why = fail("last: expected RESPONSE, got op %u", got.op);
	if (why)
		return why;
	make_hdr(v, VSOCK_OP_RW, VSOCK_PORT_ECHO, 5);
	memcpy(payload, ALIVE, 5);
	if (virtio__queue_send(&v->d, &v->tx, b, 2, &len))
		return fail("last: RW not taken");
	hdr.op = VSOCK_OP_SHUTDOWN;
	hdr.len = 0;
	hdr.flags = VSOCK_SHUTDOWN_RCV | VSOCK_SHUTDOWN_SEND;
	if (virtio__queue_send(&v->d, &v->tx, b, 1, &len))
		return fail("last: SHUTDOWN not taken");
	return expect_rst(v, VSOCK_PORT_ECHO, "last");
}

const char *test_virtio_vsock_hostile(void)
{
	static struct vh v NOINIT;
	const char *why = NULL;

	memset(&v, 0, sizeof(v));
	if (!virtio__find(VIRTIO_ID_VSOCK, &v.d, 1))
		return "no virtio-vsock device";
	v.ram_top = virtio__ram_top();
	v.port = 2000;
	memset(payload, 'x', sizeof(payload));
	for (unsigned int i = 0; i < ARRAY_SIZE(cases) && !why; i++) {
		v.port++;
		why = run_case(&v, &cases[i]);
		if (!why && (cases[i].kind == VH_TX_RESET || cases[i].kind == VH_RX_RESET)) {
			/* after a reset the device works again */
			why = vh_init(&v, 0, NULL);
			if (!why)
				why = alive(&v, cases[i].name);
		}
	}
	if (!why)
		why = last_connection(&v);
	virtio__reset(&v.d);
	return why;
}
