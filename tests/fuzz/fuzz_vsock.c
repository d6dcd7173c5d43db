// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer target: the parts of virtio-vsock that read untrusted bytes without sockets or
 * guest memory: the host's CONNECT line, and the guest's packet headers driving one
 * connection's state machine and credit books.
 *
 * Byte 0 picks the mode. Odd: the rest is a CONNECT line; a line Ember accepts must
 * end in '\n', fit VSOCK_CONNECT_LINE_MAX and give the port its digits spell. Even: the
 * rest is a series of 44-byte guest headers played against one connection (host- or
 * guest-initiated, from byte 1), with the host side forwarding what it is asked to and the
 * device emitting what it owes; the books must stay within what was advertised.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "virtio/vsock_conn.h"
#include "virtio/vsock_packet.h"

#define GUEST_CID 3

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool ok)
{
	if (!ok)
		abort();
}

static void connect_line(const uint8_t *data, size_t size)
{
	uint64_t want = 0;
	uint32_t port = 0;
	bool digits = false;

	if (vsock_packet__parse_connect((const char *)data, size, &port))
		return;
	check(size >= 1 && size <= VSOCK_CONNECT_LINE_MAX && data[size - 1] == '\n');
	for (size_t i = 0; i < size; i++) {
		if (data[i] >= '0' && data[i] <= '9') {
			want = want * 10 + (uint64_t)(data[i] - '0');
			digits = true;
		}
	}
	check(digits && want == port);
}

static void packets(const uint8_t *data, size_t size)
{
	struct vsock_conn c;
	uint64_t now = 1000;
	struct vsock_hdr h;

	if (size < 1)
		return;
	if (data[0] & 1) {
		vsock_conn__init_local(&c, 1U << 30, 52, now);
	} else {
		memset(&h, 0, sizeof(h));
		h.src_cid = GUEST_CID;
		h.dst_cid = VSOCK_HOST_CID;
		h.src_port = 1234;
		h.dst_port = 5000;
		h.type = VSOCK_TYPE_STREAM;
		h.op = VSOCK_OP_REQUEST;
		h.buf_alloc = 65536;
		vsock_conn__init_peer(&c, &h);
	}
	data++;
	size--;
	for (; size >= VSOCK_HDR_BYTES; data += VSOCK_HDR_BYTES, size -= VSOCK_HDR_BYTES) {
		unsigned int todo;
		enum vsock_op op;

		vsock_packet__decode(data, &h);
		now += 1000000;
		/* the payload the guest's buffers hold: what it says, within bounds */
		if (vsock_packet__check_tx(&h, GUEST_CID, h.len % (VSOCK_MAX_PKT_BYTES + 2)) !=
		    VSOCK_PKT_OK)
			continue;
		todo = vsock_conn__recv(&c, &h, now);
		check(vsock_conn__buffered(&c) <= VSOCK_CONN_BUF_ALLOC);
		check(vsock_conn__our_credit(&c) <= VSOCK_CONN_BUF_ALLOC);
		if (todo & VSOCK_DO_DATA) /* the host socket took half of what waits */
			vsock_conn__forwarded(&c, (vsock_conn__buffered(&c) + 1) / 2);
		check(vsock_conn__buffered(&c) <= VSOCK_CONN_BUF_ALLOC);
		vsock_conn__check_closed(&c, now);
		vsock_conn__expire(&c, now);
		/* the device answers what it owes, and sends data while it may */
		for (int i = 0; i < 8; i++) {
			uint32_t len = 0;
			struct vsock_hdr out;

			op = vsock_conn__next_op(&c, true);
			if (op == VSOCK_OP_INVALID)
				break;
			if (op == VSOCK_OP_RW) {
				len = vsock_conn__peer_credit(&c);
				if (len > 4096)
					len = 4096;
				if (!len)
					break;
				check(vsock_conn__may_send(&c));
			}
			vsock_conn__emit(&c, op, len, GUEST_CID, &out);
			check(out.dst_cid == GUEST_CID && out.src_cid == VSOCK_HOST_CID);
			check(out.len == len && out.op == op);
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	if (data[0] & 1)
		connect_line(data + 1, size - 1);
	else
		packets(data + 1, size - 1);
	return 0;
}
