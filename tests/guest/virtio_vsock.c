// SPDX-License-Identifier: Apache-2.0
/*
 * virtio_vsock: drives the first virtio-vsock device as Linux's virtio_transport does (rx,
 * tx and event queues; the CID from the config space), against a host peer on Ember's Unix
 * sockets (tests/guest/test_virtio_vsock.py), in this order:
 *
 * 1. guest to host port VSOCK_PORT_ECHO (the peer listens on <uds_path>_5000): REQUEST,
 *    RESPONSE; the guest sends stream 0 (VSOCK_TX_SIZES bytes, in packets of several
 *    layouts); the host sends stream 1 (VSOCK_HOST_BYTES) and shuts down its side; the
 *    guest advertises only VSOCK_BUF_ALLOC bytes of credit and gives it back only when it
 *    is all used, after checking that the host sent nothing more meanwhile (a
 *    CREDIT_REQUEST at most); it gets SHUTDOWN(SEND),
 *    answers SHUTDOWN(both) and expects the RST that ends the connection.
 * 2. guest to host port VSOCK_PORT_NONE, where nothing listens: RST.
 * 3. host to guest: the peer sends "CONNECT 53": the guest answers the REQUEST with RST
 *    (no listener); then "CONNECT 52": the guest answers RESPONSE and echoes stream 2
 *    (VSOCK_ECHO_BYTES) back, then shuts down and expects the RST.
 *
 * Byte k of stream s is vsock_byte(s, k); every received byte is checked. The event queue
 * has buffers all along and must stay unused (no transport reset).
 */
#include "virtio.h"

#define WANTED (VIRTIO_BIT(VIRTIO_F_EVENT_IDX) | VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC))
#define HDR_BYTES ((uint32_t)sizeof(struct virtio_vsock_hdr))
#define RX_DATA 4096
#define RX_CHAINS (VQ_SIZE / 2) /* each at descriptors 2i, 2i+1 */
#define EV_BUFS 4
#define VSOCK_BUF_ALLOC 16384
#define VSOCK_PORT_ECHO 5000
#define VSOCK_PORT_NONE 5001
#define VSOCK_PORT_LISTEN 52
#define VSOCK_PORT_CLOSED 53
#define VSOCK_HOST_BYTES 65536
#define VSOCK_ECHO_BYTES 5000
#define HOST_BUF_ALLOC (256U * 1024U) /* what Ember advertises (docs/vsock.md) */
#define WAIT (3 * VIRTIO_WAIT_TSC)
#define STALL_TSC (VIRTIO_WAIT_TSC / 10)

struct vsock_ctx {
	struct virtio_dev d;
	struct virtio_queue rx, tx, ev;
	uint64_t cid;
};

struct vsock_conn {
	uint32_t local_port, peer_port;
	uint32_t rx_cnt;   /* payload bytes received */
	uint32_t fwd_sent; /* fwd_cnt last told to the host (we consume at once: fwd == rx) */
	uint32_t tx_cnt;
	uint32_t peer_buf_alloc, peer_fwd_cnt;
	uint32_t credit_updates, credit_requests;
};

/* One received packet, payload copied out. */
struct vsock_pkt {
	struct virtio_vsock_hdr h;
	uint8_t data[RX_DATA];
};

static const uint32_t tx_sizes[] = { 1, 3000, 8000, 2 * RX_DATA + 7 };

/* REQUESTs from the host that came while the guest waited on another connection. */
#define STASH_MAX 4
static struct virtio_vsock_hdr stash[STASH_MAX];
static unsigned int stashed;

static uint8_t rx_mem[RX_CHAINS][HDR_BYTES + RX_DATA + 64] NOINIT __attribute__((aligned(64)));
static uint8_t ev_mem[EV_BUFS][8] NOINIT;
static uint8_t tx_data[2 * RX_DATA + 7 + 64] NOINIT __attribute__((aligned(64)));
static struct virtio_vsock_hdr tx_hdr NOINIT;
static struct vsock_pkt pkt NOINIT;

static inline uint8_t vsock_byte(unsigned int stream, uint32_t k)
{
	return (uint8_t)(stream * 77 + k + (k >> 8) * 3);
}

static const char *op_name(uint16_t op)
{
	static const char *const names[] = { "INVALID",	 "REQUEST", "RESPONSE",
					     "RST",	 "SHUTDOWN", "RW",
					     "CREDIT_UPDATE", "CREDIT_REQUEST" };

	return op < ARRAY_SIZE(names) ? names[op] : "unknown";
}

/* ---- queues ---- */

/* Even chains: one descriptor for header and data (Linux since 6.3); odd: two. */
static void post_rx(struct vsock_ctx *c, unsigned int i)
{
	struct virtio_buf bufs[2] = {
		{ rx_mem[i], HDR_BYTES + RX_DATA, true },
		{ rx_mem[i] + 64, RX_DATA, true },
	};

	if (i & 1)
		bufs[0].len = HDR_BYTES;
	virtio__queue_chain(&c->rx, (uint16_t)(2 * i), bufs, (i & 1) ? 2 : 1);
	virtio__queue_publish(&c->rx, (uint16_t)(2 * i));
}

static const char *vsock_init(struct vsock_ctx *c)
{
	const char *why = virtio__init_features(&c->d, WANTED);

	if (!why)
		why = virtio__queue_setup(&c->d, &c->rx, VIRTIO_VSOCK_QUEUE_RX);
	if (!why)
		why = virtio__queue_setup(&c->d, &c->tx, VIRTIO_VSOCK_QUEUE_TX);
	if (!why)
		why = virtio__queue_setup(&c->d, &c->ev, VIRTIO_VSOCK_QUEUE_EVENT);
	if (why)
		return why;
	c->cid = virtio__config64(&c->d, VIRTIO_VSOCK_CFG_CID);
	for (unsigned int i = 0; i < RX_CHAINS; i++)
		post_rx(c, i);
	for (uint16_t i = 0; i < EV_BUFS; i++) {
		struct virtio_buf b = { ev_mem[i], sizeof(ev_mem[i]), true };

		virtio__queue_chain(&c->ev, i, &b, 1);
		virtio__queue_publish(&c->ev, i);
	}
	why = virtio__driver_ok(&c->d);
	if (!why) {
		virtio__queue_kick(&c->d, &c->rx);
		virtio__queue_kick(&c->d, &c->ev);
	}
	return why;
}

/* The next packet into pkt; the buffer goes back to the device. */
static const char *recv_pkt(struct vsock_ctx *c, uint64_t wait)
{
	struct vq_used_elem e;
	unsigned int i;
	const uint8_t *data;

	if (virtio__queue_wait(&c->rx, &e, wait))
		return fail("rx: no packet from the device");
	if (e.id >= VQ_SIZE || (e.id & 1))
		return fail("rx: used id %u is no chain of ours", e.id);
	i = e.id / 2;
	memcpy(&pkt.h, rx_mem[i], HDR_BYTES);
	data = (i & 1) ? rx_mem[i] + 64 : rx_mem[i] + HDR_BYTES;
	if (pkt.h.len > RX_DATA || e.len != HDR_BYTES + pkt.h.len)
		return fail("rx: %s with len %u in a used element of %u bytes", op_name(pkt.h.op),
			    pkt.h.len, e.len);
	memcpy(pkt.data, data, pkt.h.len);
	post_rx(c, i);
	virtio__queue_kick(&c->d, &c->rx);
	if (pkt.h.src_cid != VSOCK_HOST_CID || pkt.h.dst_cid != c->cid ||
	    pkt.h.type != VSOCK_TYPE_STREAM)
		return fail("rx: %s from cid %llu to cid %llu, type %u", op_name(pkt.h.op),
			    (unsigned long long)pkt.h.src_cid, (unsigned long long)pkt.h.dst_cid,
			    pkt.h.type);
	return NULL;
}

/* A packet on conn; payload in tx_data, sent as header + n_data descriptors (or indirect). */
static const char *send_pkt(struct vsock_ctx *c, struct vsock_conn *k, uint16_t op,
			    uint32_t flags, uint32_t len, unsigned int n_data, bool indirect)
{
	struct virtio_buf bufs[1 + ARRAY_SIZE(tx_sizes)] = { { &tx_hdr, HDR_BYTES, false } };
	uint32_t used, off = 0;
	int ret;

	if (n_data >= ARRAY_SIZE(bufs))
		return fail("tx %s: %u data buffers", op_name(op), n_data);
	tx_hdr = (struct virtio_vsock_hdr){ .src_cid = c->cid,
					    .dst_cid = VSOCK_HOST_CID,
					    .src_port = k->local_port,
					    .dst_port = k->peer_port,
					    .len = len,
					    .type = VSOCK_TYPE_STREAM,
					    .op = op,
					    .flags = flags,
					    .buf_alloc = VSOCK_BUF_ALLOC,
					    .fwd_cnt = k->rx_cnt };
	for (unsigned int i = 0; len && i < n_data; i++) {
		uint32_t part = i + 1 < n_data ? len / n_data : len - off;

		bufs[i + 1] = (struct virtio_buf){ tx_data + off, part, false };
		off += part;
	}
	n_data = len ? n_data : 0;
	if (indirect && virtio__has(&c->d, VIRTIO_F_INDIRECT_DESC))
		ret = virtio__queue_send_indirect(&c->d, &c->tx, bufs, 1 + n_data, &used);
	else
		ret = virtio__queue_send(&c->d, &c->tx, bufs, 1 + n_data, &used);
	if (ret)
		return fail("tx %s: the device did not use it", op_name(op));
	k->fwd_sent = k->rx_cnt;
	k->tx_cnt += op == VSOCK_OP_RW ? len : 0;
	return NULL;
}

static bool is_conn(const struct vsock_conn *k)
{
	return pkt.h.src_port == k->peer_port && pkt.h.dst_port == k->local_port;
}

/* Waits for `op` on k; credit packets on the way are answered and the credit noted. */
static const char *expect(struct vsock_ctx *c, struct vsock_conn *k, uint16_t op)
{
	for (;;) {
		const char *why = recv_pkt(c, WAIT);

		if (why)
			return why;
		if (pkt.h.op == VSOCK_OP_REQUEST && !is_conn(k) && stashed < STASH_MAX) {
			stash[stashed++] = pkt.h;
			continue;
		}
		if (!is_conn(k))
			return fail("expected %s on %u:%u, got %s for %u:%u", op_name(op),
				    k->local_port, k->peer_port, op_name(pkt.h.op), pkt.h.dst_port,
				    pkt.h.src_port);
		k->peer_buf_alloc = pkt.h.buf_alloc;
		k->peer_fwd_cnt = pkt.h.fwd_cnt;
		if (pkt.h.op == op)
			return NULL;
		if (pkt.h.op == VSOCK_OP_CREDIT_UPDATE)
			continue;
		if (pkt.h.op == VSOCK_OP_CREDIT_REQUEST) {
			why = send_pkt(c, k, VSOCK_OP_CREDIT_UPDATE, 0, 0, 0, false);
			if (why)
				return why;
			continue;
		}
		return fail("expected %s on %u:%u, got %s (flags 0x%x)", op_name(op),
			    k->local_port, k->peer_port, op_name(pkt.h.op), pkt.h.flags);
	}
}

/* ---- data ---- */

/* Stream s's bytes [k->tx_cnt, + len) out in one RW packet. */
static const char *send_stream(struct vsock_ctx *c, struct vsock_conn *k, unsigned int s,
			       uint32_t len, unsigned int n_data, bool indirect)
{
	uint32_t credit = k->peer_buf_alloc - (k->tx_cnt - k->peer_fwd_cnt);

	if (len > credit)
		return fail("the host's credit is %u bytes, %u needed", credit, len);
	for (uint32_t i = 0; i < len; i++)
		tx_data[i] = vsock_byte(s, k->tx_cnt + i);
	return send_pkt(c, k, VSOCK_OP_RW, 0, len, n_data, indirect);
}

/* pkt is an RW of stream s on k: check its bytes and the credit it respected. */
static const char *take_stream(struct vsock_conn *k, unsigned int s)
{
	for (uint32_t i = 0; i < pkt.h.len; i++) {
		if (pkt.data[i] != vsock_byte(s, k->rx_cnt + i))
			return fail("stream %u: byte %u is 0x%x, expected 0x%x", s, k->rx_cnt + i,
				    pkt.data[i], vsock_byte(s, k->rx_cnt + i));
	}
	k->rx_cnt += pkt.h.len;
	if (k->rx_cnt - k->fwd_sent > VSOCK_BUF_ALLOC)
		return fail("stream %u: the host sent %u bytes on %u of credit", s,
			    k->rx_cnt - k->fwd_sent, VSOCK_BUF_ALLOC);
	return NULL;
}

/*
 * Out of credit: for STALL_TSC cycles the host may send nothing but a CREDIT_REQUEST (an
 * RW would be beyond the credit); then the guest gives all of it back.
 */
static const char *stall(struct vsock_ctx *c, struct vsock_conn *k)
{
	const char *why = recv_pkt(c, STALL_TSC);

	if (!why && !is_conn(k))
		return fail("while out of credit: %s for %u:%u", op_name(pkt.h.op),
			    pkt.h.dst_port, pkt.h.src_port);
	if (!why && pkt.h.op == VSOCK_OP_RW)
		return fail("the host sent %u bytes beyond the %u bytes of credit", pkt.h.len,
			    VSOCK_BUF_ALLOC);
	if (!why && pkt.h.op != VSOCK_OP_CREDIT_REQUEST)
		return fail("while out of credit: %s", op_name(pkt.h.op));
	k->credit_requests += !why;
	k->credit_updates++;
	return send_pkt(c, k, VSOCK_OP_CREDIT_UPDATE, 0, 0, 0, false);
}

/* Receives RWs of stream s up to `bytes`, echoing them if asked, giving credit back only
 * when there is none left. */
static const char *recv_stream(struct vsock_ctx *c, struct vsock_conn *k, unsigned int s,
			       uint32_t bytes, bool echo)
{
	while (k->rx_cnt < bytes) {
		const char *why = NULL;

		if (k->rx_cnt - k->fwd_sent >= VSOCK_BUF_ALLOC) {
			why = stall(c, k);
			if (why)
				return why;
			continue;
		}
		why = expect(c, k, VSOCK_OP_RW);
		if (!why)
			why = take_stream(k, s);
		if (!why && echo) {
			memcpy(tx_data, pkt.data, pkt.h.len);
			why = send_pkt(c, k, VSOCK_OP_RW, 0, pkt.h.len, 1, false);
		}
		if (why)
			return why;
	}
	return NULL;
}

/* ---- the three parts ---- */

static const char *connect_host(struct vsock_ctx *c, struct vsock_conn *k)
{
	const char *why = send_pkt(c, k, VSOCK_OP_REQUEST, 0, 0, 0, false);

	if (!why)
		why = expect(c, k, VSOCK_OP_RESPONSE);
	if (!why && k->peer_buf_alloc != HOST_BUF_ALLOC)
		why = fail("RESPONSE: buf_alloc %u, expected %u", k->peer_buf_alloc,
			   HOST_BUF_ALLOC);
	return why;
}

/* Both sides are done: SHUTDOWN(both) from us, the RST that ends it from the device. */
static const char *close_conn(struct vsock_ctx *c, struct vsock_conn *k)
{
	const char *why = send_pkt(c, k, VSOCK_OP_SHUTDOWN,
				   VSOCK_SHUTDOWN_RCV | VSOCK_SHUTDOWN_SEND, 0, 0, false);

	return why ? why : expect(c, k, VSOCK_OP_RST);
}

static const char *guest_to_host(struct vsock_ctx *c)
{
	struct vsock_conn k = { .local_port = 1024, .peer_port = VSOCK_PORT_ECHO };
	const char *why = connect_host(c, &k);

	for (unsigned int i = 0; !why && i < ARRAY_SIZE(tx_sizes); i++)
		why = send_stream(c, &k, 0, tx_sizes[i], i + 1, i == 2);
	if (!why)
		why = recv_stream(c, &k, 1, VSOCK_HOST_BYTES, false);
	/* the host shut its side down after its last byte */
	if (!why)
		why = expect(c, &k, VSOCK_OP_SHUTDOWN);
	if (!why && !(pkt.h.flags & VSOCK_SHUTDOWN_SEND))
		why = fail("the host's SHUTDOWN has flags 0x%x", pkt.h.flags);
	if (!why)
		why = close_conn(c, &k);
	report("virtio-vsock guest-to-host port=%u sent=%u received=%u credit_updates=%u "
	       "credit_requests=%u",
	       k.peer_port, k.tx_cnt, k.rx_cnt, k.credit_updates, k.credit_requests);
	return why;
}

static const char *no_listener(struct vsock_ctx *c)
{
	struct vsock_conn k = { .local_port = 1025, .peer_port = VSOCK_PORT_NONE };
	const char *why = send_pkt(c, &k, VSOCK_OP_REQUEST, 0, 0, 0, false);

	if (!why)
		why = expect(c, &k, VSOCK_OP_RST);
	if (!why)
		report("virtio-vsock no-listener port=%u rst", k.peer_port);
	return why;
}

/* The next REQUEST from the host (a host process connected): its ports into k. */
static const char *host_request(struct vsock_ctx *c, struct vsock_conn *k)
{
	const char *why = NULL;

	if (stashed) {
		pkt.h = stash[0];
		for (unsigned int i = 1; i < stashed; i++)
			stash[i - 1] = stash[i];
		stashed--;
	} else {
		why = recv_pkt(c, WAIT);
	}
	if (why)
		return why;
	if (pkt.h.op != VSOCK_OP_REQUEST)
		return fail("expected a REQUEST from the host, got %s", op_name(pkt.h.op));
	*k = (struct vsock_conn){ .local_port = pkt.h.dst_port,
				  .peer_port = pkt.h.src_port,
				  .peer_buf_alloc = pkt.h.buf_alloc,
				  .peer_fwd_cnt = pkt.h.fwd_cnt };
	report("virtio-vsock host-request port=%u from=%u", k->local_port, k->peer_port);
	if (k->peer_port < (1U << 30))
		return fail("REQUEST from host port %u, below 2^30", k->peer_port);
	return NULL;
}

static const char *host_to_guest(struct vsock_ctx *c)
{
	struct vsock_conn k;
	const char *why = host_request(c, &k);

	/* nothing listens on VSOCK_PORT_CLOSED */
	if (!why && k.local_port != VSOCK_PORT_CLOSED)
		why = fail("REQUEST for port %u, expected %u first", k.local_port,
			   VSOCK_PORT_CLOSED);
	if (!why)
		why = send_pkt(c, &k, VSOCK_OP_RST, 0, 0, 0, false);
	if (!why)
		why = host_request(c, &k);
	if (!why && k.local_port != VSOCK_PORT_LISTEN)
		why = fail("REQUEST for port %u, expected %u", k.local_port, VSOCK_PORT_LISTEN);
	if (!why)
		why = send_pkt(c, &k, VSOCK_OP_RESPONSE, 0, 0, 0, false);
	if (!why)
		why = recv_stream(c, &k, 2, VSOCK_ECHO_BYTES, true);
	if (!why)
		why = close_conn(c, &k);
	report("virtio-vsock host-to-guest port=%u echoed=%u", k.local_port, k.tx_cnt);
	return why;
}

const char *test_virtio_vsock(void)
{
	static struct vsock_ctx c NOINIT;
	const char *why;

	memset(&c, 0, sizeof(c));
	stashed = 0;
	if (!virtio__find(VIRTIO_ID_VSOCK, &c.d, 1))
		return "no virtio-vsock device";
	why = vsock_init(&c);
	if (!why)
		report("virtio-vsock dev=%u cid=%llu features=0x%llx", c.d.slot,
		       (unsigned long long)c.cid, (unsigned long long)c.d.features);
	if (!why)
		why = guest_to_host(&c);
	if (!why)
		why = no_listener(&c);
	if (!why)
		why = host_to_guest(&c);
	if (!why && *(volatile uint16_t *)&c.ev.used->idx)
		why = fail("the event queue was used: a transport reset");
	virtio__reset(&c.d);
	return why;
}
