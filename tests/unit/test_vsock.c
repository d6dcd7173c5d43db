// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests for the pure halves of virtio-vsock: src/virtio/vsock_packet.c (the header,
 * the checks on guest packets, the host's CONNECT line) and src/virtio/vsock_conn.c (the
 * connection state machine, the credit arithmetic and its 32-bit wrap-around, the table).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "virtio/vsock_conn.h"
#include "virtio/vsock_packet.h"

#define CID 3
#define T0 1000000000ULL

/* ---- the header ---- */

static void test_header_layout(void **state)
{
	struct vsock_hdr h = {
		.src_cid = 0x0102030405060708ULL,
		.dst_cid = 2,
		.src_port = 0x11223344,
		.dst_port = 0x55667788,
		.len = 0x99aabbcc,
		.type = 1,
		.op = 5,
		.flags = 3,
		.buf_alloc = 0x40000,
		.fwd_cnt = 0xdeadbeef,
	}, back;
	uint8_t raw[VSOCK_HDR_BYTES];

	(void)state;
	vsock_packet__encode(&h, raw);
	assert_int_equal(raw[0], 0x08); /* little-endian, packed, in spec order */
	assert_int_equal(raw[7], 0x01);
	assert_int_equal(raw[8], 2);
	assert_int_equal(raw[16], 0x44);
	assert_int_equal(raw[20], 0x88);
	assert_int_equal(raw[24], 0xcc);
	assert_int_equal(raw[28], 1);
	assert_int_equal(raw[30], 5);
	assert_int_equal(raw[32], 3);
	assert_int_equal(raw[38], 0x04);
	assert_int_equal(raw[40], 0xef);
	assert_int_equal(raw[43], 0xde);
	vsock_packet__decode(raw, &back);
	assert_true(back.src_cid == h.src_cid && back.dst_cid == h.dst_cid);
	assert_true(back.src_port == h.src_port && back.dst_port == h.dst_port);
	assert_true(back.len == h.len && back.type == h.type && back.op == h.op);
	assert_true(back.flags == h.flags && back.buf_alloc == h.buf_alloc);
	assert_true(back.fwd_cnt == h.fwd_cnt);
}

static struct vsock_hdr pkt(uint16_t op, uint32_t len)
{
	return (struct vsock_hdr){ .src_cid = CID,
				   .dst_cid = VSOCK_HOST_CID,
				   .src_port = 1025,
				   .dst_port = 52,
				   .len = len,
				   .type = VSOCK_TYPE_STREAM,
				   .op = op,
				   .buf_alloc = 262144 };
}

static void test_check_tx(void **state)
{
	struct vsock_hdr h;

	(void)state;
	h = pkt(VSOCK_OP_REQUEST, 0);
	assert_int_equal(vsock_packet__check_tx(&h, CID, 0), VSOCK_PKT_OK);
	h.src_cid = 4; /* spoofed source */
	assert_int_equal(vsock_packet__check_tx(&h, CID, 0), VSOCK_PKT_DROP);
	h = pkt(VSOCK_OP_REQUEST, 0);
	h.dst_cid = 5; /* another VM: not ours to route */
	assert_int_equal(vsock_packet__check_tx(&h, CID, 0), VSOCK_PKT_DROP);
	h = pkt(VSOCK_OP_REQUEST, 0);
	h.type = 2; /* SEQPACKET: not offered */
	assert_int_equal(vsock_packet__check_tx(&h, CID, 0), VSOCK_PKT_RST);
	h.op = VSOCK_OP_RST; /* never answer an RST with one */
	assert_int_equal(vsock_packet__check_tx(&h, CID, 0), VSOCK_PKT_DROP);
	h = pkt(0, 0);
	assert_int_equal(vsock_packet__check_tx(&h, CID, 0), VSOCK_PKT_RST);
	h = pkt(8, 0);
	assert_int_equal(vsock_packet__check_tx(&h, CID, 0), VSOCK_PKT_RST);
	h = pkt(0xffff, 0);
	assert_int_equal(vsock_packet__check_tx(&h, CID, 0), VSOCK_PKT_RST);
	h = pkt(VSOCK_OP_RW, 100);
	assert_int_equal(vsock_packet__check_tx(&h, CID, 100), VSOCK_PKT_OK);
	assert_int_equal(vsock_packet__check_tx(&h, CID, 4096), VSOCK_PKT_OK);
	assert_int_equal(vsock_packet__check_tx(&h, CID, 99), VSOCK_PKT_RST); /* len > buffers */
	h = pkt(VSOCK_OP_RW, VSOCK_MAX_PKT_BYTES);
	assert_int_equal(vsock_packet__check_tx(&h, CID, 1 << 20), VSOCK_PKT_OK);
	h = pkt(VSOCK_OP_RW, VSOCK_MAX_PKT_BYTES + 1);
	assert_int_equal(vsock_packet__check_tx(&h, CID, 1 << 20), VSOCK_PKT_RST);
	h = pkt(VSOCK_OP_RW, 0xffffffff);
	assert_int_equal(vsock_packet__check_tx(&h, CID, 1ULL << 33), VSOCK_PKT_RST);
	h = pkt(VSOCK_OP_RW, 0);
	assert_int_equal(vsock_packet__check_tx(&h, CID, 10), VSOCK_PKT_DROP);
	h = pkt(VSOCK_OP_CREDIT_UPDATE, 12345); /* a control packet's len is not read */
	assert_int_equal(vsock_packet__check_tx(&h, CID, 0), VSOCK_PKT_OK);
	h = pkt(VSOCK_OP_RST, 0);
	assert_int_equal(vsock_packet__check_tx(&h, CID, 0), VSOCK_PKT_OK);
}

/* ---- the CONNECT line ---- */

static int parse(const char *s, uint32_t *port)
{
	return vsock_packet__parse_connect(s, strlen(s), port);
}

/* "CONNECT", blanks, "12345\r\n": len bytes in all */
static const char *padded(size_t len)
{
	static char buf[64];

	memset(buf, ' ', sizeof(buf));
	memcpy(buf, "CONNECT", 7);
	memcpy(buf + len - 7, "12345\r\n", 8);
	return buf;
}

static void test_connect_good(void **state)
{
	uint32_t port = 7;

	(void)state;
	assert_int_equal(parse("CONNECT 1234\n", &port), 0);
	assert_int_equal(port, 1234);
	assert_int_equal(parse("connect 52\n", &port), 0);
	assert_int_equal(port, 52);
	assert_int_equal(parse("Connect\t 0 \r\n", &port), 0);
	assert_int_equal(port, 0);
	assert_int_equal(parse("CONNECT 4294967295\n", &port), 0);
	assert_int_equal(port, 4294967295U);
	assert_int_equal(parse("CONNECT 0000000001\n", &port), 0);
	assert_int_equal(port, 1);
	/* exactly 32 bytes, padded with blanks */
	assert_int_equal(parse(padded(32), &port), 0);
	assert_int_equal(port, 12345);
}

static void test_connect_bad(void **state)
{
	static const char *const bad[] = {
		"",
		"\n",
		"CONNECT\n",
		"CONNECT \n",
		"CONNECT1234\n",
		"CONNECTS 1234\n",
		" CONNECT 1234\n",
		"CONNECT 12 34\n",
		"CONNECT 1234 extra\n",
		"CONNECT -1\n",
		"CONNECT +1\n",
		"CONNECT 0x10\n",
		"CONNECT 1234",
		"CONNECT 1234\r",
		"CONNECT 1234\n\n",
		"CONNECT 00000000001\n", /* 11 digits */
		"CONNEC 1\n",
		"GET / HTTP/1.1\n",
		"\x01\x02\x03\x04\x05\x06\x07\x08\x09\n",
	};
	uint32_t port = 77;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (parse(bad[i], &port) != -EINVAL)
			fail_msg("accepted \"%s\"", bad[i]);
	}
	assert_int_equal(vsock_packet__parse_connect("CONNECT 5\0\n", 11, &port), -EINVAL);
	assert_int_equal(parse(padded(33), &port), -EINVAL);
	assert_int_equal(port, 77);
}

static void test_connect_range(void **state)
{
	uint32_t port = 9;

	(void)state;
	assert_int_equal(parse("CONNECT 4294967296\n", &port), -ERANGE);
	assert_int_equal(parse("CONNECT 9999999999\n", &port), -ERANGE);
	assert_int_equal(port, 9);
}

/* ---- the state machine ---- */

static struct vsock_hdr from_guest(const struct vsock_conn *c, uint16_t op, uint32_t len)
{
	struct vsock_hdr h = pkt(op, len);

	h.src_port = c->peer_port;
	h.dst_port = c->local_port;
	return h;
}

static enum vsock_op emit_next(struct vsock_conn *c, bool readable, uint32_t len,
			       struct vsock_hdr *out)
{
	enum vsock_op op = vsock_conn__next_op(c, readable);

	if (op != VSOCK_OP_INVALID)
		vsock_conn__emit(c, op, len, CID, out);
	return op;
}

/* A guest-initiated connection, past its RESPONSE; the guest has 256 KiB of buffer. */
static void established(struct vsock_conn *c)
{
	struct vsock_hdr req = pkt(VSOCK_OP_REQUEST, 0), out;

	req.src_port = 1025;
	req.dst_port = 52;
	vsock_conn__init_peer(c, &req);
	assert_int_equal(emit_next(c, false, 0, &out), VSOCK_OP_RESPONSE);
	assert_int_equal(c->state, VSOCK_CONN_ESTABLISHED);
}

static void test_host_initiated(void **state)
{
	struct vsock_conn c;
	struct vsock_hdr out, h;

	(void)state;
	vsock_conn__init_local(&c, 1U << 30, 1234, T0);
	assert_int_equal(c.state, VSOCK_CONN_LOCAL_INIT);
	/* a RESPONSE before our REQUEST went out is not an answer */
	h = from_guest(&c, VSOCK_OP_RESPONSE, 0);
	assert_int_equal(vsock_conn__recv(&c, &h, T0), VSOCK_DO_IGNORED);
	assert_int_equal(emit_next(&c, true, 0, &out), VSOCK_OP_REQUEST);
	assert_int_equal(out.src_cid, VSOCK_HOST_CID);
	assert_int_equal(out.dst_cid, CID);
	assert_int_equal(out.src_port, 1U << 30);
	assert_int_equal(out.dst_port, 1234);
	assert_int_equal(out.type, VSOCK_TYPE_STREAM);
	assert_int_equal(out.buf_alloc, VSOCK_CONN_BUF_ALLOC);
	/* no data before the guest accepts, however readable the host socket */
	assert_int_equal(vsock_conn__next_op(&c, true), VSOCK_OP_INVALID);
	assert_false(vsock_conn__expire(&c, T0 + VSOCK_CONN_TIMEOUT_NS - 1));
	h = from_guest(&c, VSOCK_OP_RESPONSE, 0);
	assert_int_equal(vsock_conn__recv(&c, &h, T0 + 5), VSOCK_DO_CONNECTED);
	assert_int_equal(c.state, VSOCK_CONN_ESTABLISHED);
	assert_int_equal(c.deadline_ns, 0);
	assert_int_equal(vsock_conn__peer_credit(&c), 262144);
	/* a second RESPONSE changes nothing */
	assert_int_equal(vsock_conn__recv(&c, &h, T0 + 6), VSOCK_DO_IGNORED);
	assert_int_equal(vsock_conn__next_op(&c, true), VSOCK_OP_RW);
}

static void test_host_initiated_refused_or_silent(void **state)
{
	struct vsock_conn c;
	struct vsock_hdr out, h;

	(void)state;
	/* no listener in the guest: it answers RST, the host socket is closed */
	vsock_conn__init_local(&c, 1U << 30, 9999, T0);
	emit_next(&c, false, 0, &out);
	h = from_guest(&c, VSOCK_OP_RST, 0);
	assert_int_equal(vsock_conn__recv(&c, &h, T0), VSOCK_DO_REMOVE);
	/* no answer at all: killed after the timeout, with an RST */
	vsock_conn__init_local(&c, 1U << 30, 9999, T0);
	emit_next(&c, false, 0, &out);
	assert_true(vsock_conn__expire(&c, T0 + VSOCK_CONN_TIMEOUT_NS));
	assert_true(c.killed);
	assert_int_equal(emit_next(&c, true, 0, &out), VSOCK_OP_RST);
	assert_int_equal(c.state, VSOCK_CONN_DEAD);
	assert_int_equal(vsock_conn__next_op(&c, true), VSOCK_OP_INVALID);
}

static void test_guest_initiated(void **state)
{
	struct vsock_conn c;
	struct vsock_hdr req = pkt(VSOCK_OP_REQUEST, 0), out;

	(void)state;
	req.buf_alloc = 4096;
	req.fwd_cnt = 0;
	vsock_conn__init_peer(&c, &req);
	assert_int_equal(c.local_port, 52);
	assert_int_equal(c.peer_port, 1025);
	assert_int_equal(c.state, VSOCK_CONN_PEER_INIT);
	assert_false(vsock_conn__may_send(&c));
	/* RESPONSE goes before any data */
	assert_int_equal(emit_next(&c, true, 0, &out), VSOCK_OP_RESPONSE);
	assert_int_equal(out.src_port, 52);
	assert_int_equal(out.dst_port, 1025);
	assert_int_equal(vsock_conn__next_op(&c, true), VSOCK_OP_RW);
	assert_int_equal(vsock_conn__peer_credit(&c), 4096);
	vsock_conn__emit(&c, VSOCK_OP_RW, 4096, CID, &out);
	assert_int_equal(out.len, 4096);
	assert_int_equal(vsock_conn__peer_credit(&c), 0);
	/* out of credit: ask once, then wait */
	assert_int_equal(emit_next(&c, true, 0, &out), VSOCK_OP_CREDIT_REQUEST);
	assert_int_equal(vsock_conn__next_op(&c, true), VSOCK_OP_INVALID);
	/* an answer with no more credit (the reader sleeps): no second request */
	out = from_guest(&c, VSOCK_OP_CREDIT_UPDATE, 0);
	out.buf_alloc = 4096;
	out.fwd_cnt = 0;
	assert_int_equal(vsock_conn__recv(&c, &out, T0), 0);
	assert_int_equal(vsock_conn__next_op(&c, true), VSOCK_OP_INVALID);
	/* its application consumed 1000 bytes */
	out.fwd_cnt = 1000;
	assert_int_equal(vsock_conn__recv(&c, &out, T0), 0);
	assert_int_equal(vsock_conn__peer_credit(&c), 1000);
	assert_int_equal(vsock_conn__next_op(&c, true), VSOCK_OP_RW);
	assert_int_equal(vsock_conn__next_op(&c, false), VSOCK_OP_INVALID);
	/* the next stall asks again */
	vsock_conn__emit(&c, VSOCK_OP_RW, 1000, CID, &out);
	assert_int_equal(vsock_conn__next_op(&c, true), VSOCK_OP_CREDIT_REQUEST);
}

static void test_guest_data_and_credit_updates(void **state)
{
	struct vsock_conn c;
	struct vsock_hdr h, out;
	uint32_t sent = 0;

	(void)state;
	established(&c);
	assert_int_equal(vsock_conn__our_credit(&c), VSOCK_CONN_BUF_ALLOC);
	/* the host socket takes nothing: the guest can fill exactly our buffer */
	while (sent < VSOCK_CONN_BUF_ALLOC) {
		h = from_guest(&c, VSOCK_OP_RW, VSOCK_MAX_PKT_BYTES);
		assert_int_equal(vsock_conn__recv(&c, &h, T0), VSOCK_DO_DATA);
		sent += VSOCK_MAX_PKT_BYTES;
	}
	assert_int_equal(vsock_conn__buffered(&c), VSOCK_CONN_BUF_ALLOC);
	assert_int_equal(vsock_conn__our_credit(&c), 0);
	assert_int_equal(vsock_conn__next_op(&c, false), VSOCK_OP_INVALID);
	/* the socket drains a little: not worth an update yet... */
	vsock_conn__forwarded(&c, 4096);
	assert_int_equal(vsock_conn__next_op(&c, false), VSOCK_OP_CREDIT_UPDATE);
	/* (the guest saw 0 free: any freed byte is news) */
	assert_int_equal(emit_next(&c, false, 0, &out), VSOCK_OP_CREDIT_UPDATE);
	assert_int_equal(out.fwd_cnt, 4096);
	assert_int_equal(out.buf_alloc, VSOCK_CONN_BUF_ALLOC);
	assert_int_equal(vsock_conn__next_op(&c, false), VSOCK_OP_INVALID);
	/* the guest now sees 4 KiB free; draining more crosses the threshold only when... */
	vsock_conn__forwarded(&c, VSOCK_CONN_BUF_ALLOC - 4096);
	assert_int_equal(vsock_conn__buffered(&c), 0);
	assert_int_equal(vsock_conn__next_op(&c, false), VSOCK_OP_CREDIT_UPDATE);
	/* data to the guest carries the update too */
	assert_int_equal(emit_next(&c, true, 100, &out), VSOCK_OP_RW);
	assert_int_equal(out.fwd_cnt, VSOCK_CONN_BUF_ALLOC);
	assert_int_equal(vsock_conn__next_op(&c, false), VSOCK_OP_INVALID);
	/* a guest that sends 1 byte more than the credit is reset */
	h = from_guest(&c, VSOCK_OP_RW, VSOCK_MAX_PKT_BYTES);
	for (int i = 0; i < 4; i++)
		assert_int_equal(vsock_conn__recv(&c, &h, T0), VSOCK_DO_DATA);
	h.len = 1;
	assert_int_equal(vsock_conn__recv(&c, &h, T0), 0);
	assert_true(c.killed);
	assert_int_equal(vsock_conn__next_op(&c, true), VSOCK_OP_RST);
	h = from_guest(&c, VSOCK_OP_RW, 1);
	assert_int_equal(vsock_conn__recv(&c, &h, T0), VSOCK_DO_IGNORED);
}

static void test_credit_update_threshold(void **state)
{
	struct vsock_conn c;
	struct vsock_hdr h, out;

	(void)state;
	established(&c);
	/* written through at once: no update while the guest still sees lots of room */
	h = from_guest(&c, VSOCK_OP_RW, VSOCK_MAX_PKT_BYTES);
	vsock_conn__recv(&c, &h, T0);
	vsock_conn__forwarded(&c, VSOCK_MAX_PKT_BYTES);
	assert_int_equal(vsock_conn__next_op(&c, false), VSOCK_OP_INVALID);
	vsock_conn__recv(&c, &h, T0);
	vsock_conn__forwarded(&c, VSOCK_MAX_PKT_BYTES);
	/* 128 KiB seen used: at the threshold, not under it */
	assert_int_equal(vsock_conn__next_op(&c, false), VSOCK_OP_INVALID);
	h.len = 1;
	vsock_conn__recv(&c, &h, T0);
	vsock_conn__forwarded(&c, 1);
	assert_int_equal(emit_next(&c, false, 0, &out), VSOCK_OP_CREDIT_UPDATE);
	assert_int_equal(out.fwd_cnt, 2 * VSOCK_MAX_PKT_BYTES + 1);
	/* a CREDIT_REQUEST always gets one */
	h = from_guest(&c, VSOCK_OP_CREDIT_REQUEST, 0);
	assert_int_equal(vsock_conn__recv(&c, &h, T0), 0);
	assert_int_equal(vsock_conn__next_op(&c, false), VSOCK_OP_CREDIT_UPDATE);
}

static void test_credit_wraparound(void **state)
{
	struct vsock_conn c;
	struct vsock_hdr h, out;

	(void)state;
	established(&c);
	/* host -> guest: 2^32 - 16 bytes sent already, the guest consumed all but 100 */
	c.rx_cnt = 0xfffffff0U;
	c.peer_fwd_cnt = 0xfffffff0U - 100;
	c.peer_buf_alloc = 1000;
	assert_int_equal(vsock_conn__peer_credit(&c), 900);
	vsock_conn__emit(&c, VSOCK_OP_RW, 500, CID, &out); /* rx_cnt wraps to 0x1e4 */
	assert_int_equal(c.rx_cnt, 0x1e4);
	assert_int_equal(vsock_conn__peer_credit(&c), 400);
	h = from_guest(&c, VSOCK_OP_CREDIT_UPDATE, 0);
	h.buf_alloc = 1000;
	h.fwd_cnt = 0x10; /* wrapped too: 0x1e4 - 0x10 = 468 in flight */
	vsock_conn__recv(&c, &h, T0);
	assert_int_equal(vsock_conn__peer_credit(&c), 1000 - 468);
	/* a hostile fwd_cnt ahead of what we sent: no credit, not 4 GiB of it */
	h.fwd_cnt = 0x1e5;
	vsock_conn__recv(&c, &h, T0);
	assert_int_equal(vsock_conn__peer_credit(&c), 0);
	/* and a buf_alloc smaller than what is in flight */
	h.fwd_cnt = 0x10;
	h.buf_alloc = 100;
	vsock_conn__recv(&c, &h, T0);
	assert_int_equal(vsock_conn__peer_credit(&c), 0);

	/* guest -> host, across the wrap */
	c.recv_cnt = c.fwd_cnt = c.fwd_cnt_sent = 0xffff0000U;
	h = from_guest(&c, VSOCK_OP_RW, VSOCK_MAX_PKT_BYTES);
	for (int i = 0; i < 4; i++)
		assert_int_equal(vsock_conn__recv(&c, &h, T0), VSOCK_DO_DATA);
	assert_int_equal(c.recv_cnt, 0x00030000U);
	assert_int_equal(vsock_conn__buffered(&c), VSOCK_CONN_BUF_ALLOC);
	assert_int_equal(vsock_conn__our_credit(&c), 0);
	vsock_conn__forwarded(&c, 0x20000);
	assert_int_equal(c.fwd_cnt, 0x00010000U);
	assert_int_equal(vsock_conn__buffered(&c), 0x20000);
	assert_int_equal(vsock_conn__our_credit(&c), VSOCK_CONN_BUF_ALLOC - 0x20000);
	assert_int_equal(emit_next(&c, false, 0, &out), VSOCK_OP_CREDIT_UPDATE);
	assert_int_equal(out.fwd_cnt, 0x00010000U);
}

static void test_guest_shutdown(void **state)
{
	struct vsock_conn c;
	struct vsock_hdr h, out;

	(void)state;
	established(&c);
	/* the guest stops sending: the host socket's write side goes */
	h = from_guest(&c, VSOCK_OP_SHUTDOWN, 0);
	h.flags = VSOCK_SHUTDOWN_SEND;
	assert_int_equal(vsock_conn__recv(&c, &h, T0), VSOCK_DO_SHUT_WR);
	assert_false(vsock_conn__may_recv(&c));
	assert_true(vsock_conn__may_send(&c)); /* the host can still answer */
	assert_int_equal(c.state, VSOCK_CONN_ESTABLISHED);
	/* data after that is dropped */
	h = from_guest(&c, VSOCK_OP_RW, 10);
	assert_int_equal(vsock_conn__recv(&c, &h, T0), VSOCK_DO_IGNORED);
	/* flags only add up; repeating one does nothing */
	h = from_guest(&c, VSOCK_OP_SHUTDOWN, 0);
	h.flags = VSOCK_SHUTDOWN_SEND;
	assert_int_equal(vsock_conn__recv(&c, &h, T0), 0);
	/* the host ends too: it owes SHUTDOWN with both flags, then waits for the RST */
	vsock_conn__host_eof(&c, false, T0);
	assert_int_equal(emit_next(&c, false, 0, &out), VSOCK_OP_SHUTDOWN);
	assert_int_equal(out.flags, VSOCK_SHUTDOWN_BOTH);
	assert_int_equal(c.deadline_ns, T0 + VSOCK_CONN_TIMEOUT_NS);
	h = from_guest(&c, VSOCK_OP_RST, 0);
	assert_int_equal(vsock_conn__recv(&c, &h, T0), VSOCK_DO_REMOVE);

	/* SHUTDOWN both with nothing buffered: RST at once */
	established(&c);
	h = from_guest(&c, VSOCK_OP_SHUTDOWN, 0);
	h.flags = VSOCK_SHUTDOWN_BOTH;
	assert_int_equal(vsock_conn__recv(&c, &h, T0), VSOCK_DO_SHUT_RD | VSOCK_DO_SHUT_WR);
	assert_false(c.killed);
	assert_int_equal(emit_next(&c, true, 0, &out), VSOCK_OP_RST);
	assert_int_equal(c.state, VSOCK_CONN_DEAD);
}

static void test_guest_shutdown_with_buffered_data(void **state)
{
	struct vsock_conn c;
	struct vsock_hdr h, out;

	(void)state;
	established(&c);
	h = from_guest(&c, VSOCK_OP_RW, 1000);
	vsock_conn__recv(&c, &h, T0);
	vsock_conn__forwarded(&c, 400);
	h = from_guest(&c, VSOCK_OP_SHUTDOWN, 0);
	h.flags = VSOCK_SHUTDOWN_BOTH;
	vsock_conn__recv(&c, &h, T0);
	/* 600 bytes still for the host: wait for them, not forever */
	assert_int_equal(vsock_conn__next_op(&c, false), VSOCK_OP_INVALID);
	assert_int_equal(c.deadline_ns, T0 + VSOCK_CONN_TIMEOUT_NS);
	vsock_conn__forwarded(&c, 600);
	vsock_conn__check_closed(&c, T0 + 1);
	assert_int_equal(emit_next(&c, false, 0, &out), VSOCK_OP_RST);
	assert_false(c.killed);
	/* and when the host never takes them */
	established(&c);
	h = from_guest(&c, VSOCK_OP_RW, 1000);
	vsock_conn__recv(&c, &h, T0);
	h = from_guest(&c, VSOCK_OP_SHUTDOWN, 0);
	h.flags = VSOCK_SHUTDOWN_BOTH;
	vsock_conn__recv(&c, &h, T0);
	assert_false(vsock_conn__expire(&c, T0 + VSOCK_CONN_TIMEOUT_NS - 1));
	assert_true(vsock_conn__expire(&c, T0 + VSOCK_CONN_TIMEOUT_NS));
	assert_true(c.killed);
	assert_int_equal(vsock_conn__next_op(&c, false), VSOCK_OP_RST);
}

static void test_host_eof(void **state)
{
	struct vsock_conn c;
	struct vsock_hdr h, out;

	(void)state;
	/* half-close: the guest hears SEND and may go on sending */
	established(&c);
	vsock_conn__host_eof(&c, false, T0);
	assert_false(vsock_conn__may_send(&c));
	assert_true(vsock_conn__may_recv(&c));
	assert_int_equal(vsock_conn__next_op(&c, true), VSOCK_OP_SHUTDOWN);
	assert_int_equal(emit_next(&c, true, 0, &out), VSOCK_OP_SHUTDOWN);
	assert_int_equal(out.flags, VSOCK_SHUTDOWN_SEND);
	assert_int_equal(c.deadline_ns, 0);
	vsock_conn__host_eof(&c, false, T0); /* a second EOF owes nothing */
	assert_int_equal(vsock_conn__next_op(&c, true), VSOCK_OP_INVALID);
	h = from_guest(&c, VSOCK_OP_RW, 10);
	assert_int_equal(vsock_conn__recv(&c, &h, T0), VSOCK_DO_DATA);
	/* the guest closes: both directions over, nothing buffered once forwarded */
	vsock_conn__forwarded(&c, 10);
	h = from_guest(&c, VSOCK_OP_SHUTDOWN, 0);
	h.flags = VSOCK_SHUTDOWN_BOTH;
	vsock_conn__recv(&c, &h, T0);
	assert_int_equal(emit_next(&c, false, 0, &out), VSOCK_OP_RST);

	/* the host socket is gone: SHUTDOWN both, then the guest's RST is awaited */
	established(&c);
	vsock_conn__host_eof(&c, true, T0);
	assert_false(vsock_conn__may_recv(&c));
	assert_int_equal(emit_next(&c, true, 0, &out), VSOCK_OP_SHUTDOWN);
	assert_int_equal(out.flags, VSOCK_SHUTDOWN_BOTH);
	assert_int_equal(c.deadline_ns, T0 + VSOCK_CONN_TIMEOUT_NS);
	/* the guest's own SHUTDOWN finishes it at once */
	h = from_guest(&c, VSOCK_OP_SHUTDOWN, 0);
	h.flags = VSOCK_SHUTDOWN_BOTH;
	vsock_conn__recv(&c, &h, T0);
	assert_int_equal(emit_next(&c, false, 0, &out), VSOCK_OP_RST);
	assert_false(c.killed);
	/* or silence: killed at the deadline */
	established(&c);
	vsock_conn__host_eof(&c, true, T0);
	assert_true(vsock_conn__expire(&c, T0 + VSOCK_CONN_TIMEOUT_NS));
	assert_int_equal(emit_next(&c, false, 0, &out), VSOCK_OP_RST);
}

static void test_kill_and_dead(void **state)
{
	struct vsock_conn c;
	struct vsock_hdr h, out;

	(void)state;
	established(&c);
	c.owed |= VSOCK_OWE_CREDIT_UPDATE | VSOCK_OWE_SHUTDOWN;
	vsock_conn__kill(&c);
	assert_int_equal(c.owed, VSOCK_OWE_RST); /* nothing else goes out */
	assert_int_equal(emit_next(&c, true, 0, &out), VSOCK_OP_RST);
	assert_int_equal(out.op, VSOCK_OP_RST);
	assert_int_equal(out.len, 0);
	h = from_guest(&c, VSOCK_OP_CREDIT_REQUEST, 0);
	assert_int_equal(vsock_conn__recv(&c, &h, T0), VSOCK_DO_IGNORED);
	assert_int_equal(vsock_conn__next_op(&c, true), VSOCK_OP_INVALID);
	h = from_guest(&c, VSOCK_OP_RST, 0);
	assert_int_equal(vsock_conn__recv(&c, &h, T0), VSOCK_DO_REMOVE);
	/* a REQUEST for a connection that exists is not a new one */
	established(&c);
	h = from_guest(&c, VSOCK_OP_REQUEST, 0);
	assert_int_equal(vsock_conn__recv(&c, &h, T0), VSOCK_DO_IGNORED);
	assert_int_equal(c.state, VSOCK_CONN_ESTABLISHED);
	/* SHUTDOWN and RW before the handshake ends are not valid */
	vsock_conn__init_local(&c, 1U << 30, 5, T0);
	h = from_guest(&c, VSOCK_OP_RW, 5);
	assert_int_equal(vsock_conn__recv(&c, &h, T0), VSOCK_DO_IGNORED);
	h = from_guest(&c, VSOCK_OP_SHUTDOWN, 0);
	h.flags = 3;
	assert_int_equal(vsock_conn__recv(&c, &h, T0), VSOCK_DO_IGNORED);
	assert_int_equal(c.peer_shut, 0);
}

/* ---- the table ---- */

#define MANY 3000

static void test_table(void **state)
{
	struct vsock_conn_table *t = malloc(sizeof(*t));
	struct vsock_conn *c = calloc(MANY, sizeof(*c));
	struct vsock_conn dup = { 0 };

	(void)state;
	assert_non_null(t);
	assert_non_null(c);
	vsock_conn__table_init(t);
	for (unsigned int i = 0; i < MANY; i++) {
		/* host-initiated style (one guest port, many local ones) and guest style */
		c[i].local_port = i % 2 ? (1U << 30) + i : 52;
		c[i].peer_port = i % 2 ? 1234 : 1024 + i;
		assert_int_equal(vsock_conn__add(t, &c[i]), 0);
	}
	assert_int_equal(t->count, MANY);
	dup.local_port = c[7].local_port;
	dup.peer_port = c[7].peer_port;
	assert_int_equal(vsock_conn__add(t, &dup), -EEXIST);
	for (unsigned int i = 0; i < MANY; i++)
		assert_ptr_equal(vsock_conn__find(t, c[i].local_port, c[i].peer_port), &c[i]);
	/* swapped ports are another key */
	assert_null(vsock_conn__find(t, 1234, (1U << 30) + 1));
	assert_null(vsock_conn__find(t, 52, 1023));
	for (unsigned int i = 0; i < MANY; i += 3)
		vsock_conn__remove(t, &c[i]);
	vsock_conn__remove(t, &c[0]); /* not there any more: nothing happens */
	assert_int_equal(t->count, MANY - (MANY + 2) / 3);
	for (unsigned int i = 0; i < MANY; i++) {
		struct vsock_conn *f = vsock_conn__find(t, c[i].local_port, c[i].peer_port);

		if (i % 3)
			assert_ptr_equal(f, &c[i]);
		else
			assert_null(f);
	}
	for (unsigned int i = 0; i < MANY; i++)
		vsock_conn__remove(t, &c[i]);
	assert_int_equal(t->count, 0);
	for (unsigned int i = 0; i < VSOCK_TABLE_BUCKETS; i++)
		assert_null(t->buckets[i]);
	free(c);
	free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_header_layout),
		cmocka_unit_test(test_check_tx),
		cmocka_unit_test(test_connect_good),
		cmocka_unit_test(test_connect_bad),
		cmocka_unit_test(test_connect_range),
		cmocka_unit_test(test_host_initiated),
		cmocka_unit_test(test_host_initiated_refused_or_silent),
		cmocka_unit_test(test_guest_initiated),
		cmocka_unit_test(test_guest_data_and_credit_updates),
		cmocka_unit_test(test_credit_update_threshold),
		cmocka_unit_test(test_credit_wraparound),
		cmocka_unit_test(test_guest_shutdown),
		cmocka_unit_test(test_guest_shutdown_with_buffered_data),
		cmocka_unit_test(test_host_eof),
		cmocka_unit_test(test_kill_and_dead),
		cmocka_unit_test(test_table),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
