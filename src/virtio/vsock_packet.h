/* SPDX-License-Identifier: Apache-2.0 */
/*
 * virtio-vsock packets (virtio 1.2, 5.10.6): the 44-byte header that starts every packet on
 * the rx and tx queues, the checks a packet from a hostile guest must pass, and the
 * `CONNECT <port>\n` line with which a host process asks Ember for a connection to a guest
 * port (Firecracker's hybrid vsock). Pure: no I/O, no guest memory.
 */
#ifndef EMBER_VIRTIO_VSOCK_PACKET_H
#define EMBER_VIRTIO_VSOCK_PACKET_H

#include <stddef.h>
#include <stdint.h>

#define VSOCK_HOST_CID 2
#define VSOCK_HDR_BYTES 44
#define VSOCK_TYPE_STREAM 1
/* The largest payload a packet carries, either way (Linux's VIRTIO_VSOCK_MAX_PKT_BUF_SIZE). */
#define VSOCK_MAX_PKT_BYTES (64U * 1024U)

enum vsock_op {
	VSOCK_OP_INVALID = 0,
	VSOCK_OP_REQUEST = 1,
	VSOCK_OP_RESPONSE = 2,
	VSOCK_OP_RST = 3,
	VSOCK_OP_SHUTDOWN = 4,
	VSOCK_OP_RW = 5,
	VSOCK_OP_CREDIT_UPDATE = 6,
	VSOCK_OP_CREDIT_REQUEST = 7,
};

/* SHUTDOWN flags: the sender will receive (RCV) or send (SEND) no more. */
#define VSOCK_SHUTDOWN_RCV 1U
#define VSOCK_SHUTDOWN_SEND 2U
#define VSOCK_SHUTDOWN_BOTH (VSOCK_SHUTDOWN_RCV | VSOCK_SHUTDOWN_SEND)

/* The transport-reset event on the event queue (5.10.6.7): le32 id. */
#define VSOCK_EVENT_TRANSPORT_RESET 0
#define VSOCK_EVENT_BYTES 4

/* struct virtio_vsock_hdr, in host order */
struct vsock_hdr {
	uint64_t src_cid;
	uint64_t dst_cid;
	uint32_t src_port;
	uint32_t dst_port;
	uint32_t len;
	uint16_t type;
	uint16_t op;
	uint32_t flags;
	uint32_t buf_alloc;
	uint32_t fwd_cnt;
};

/* From and to the little-endian wire layout (VSOCK_HDR_BYTES bytes). */
void vsock_packet__decode(const uint8_t *raw, struct vsock_hdr *h);
void vsock_packet__encode(const struct vsock_hdr *h, uint8_t *raw);

enum vsock_verdict {
	VSOCK_PKT_OK,
	VSOCK_PKT_DROP, /* not for us or not answerable: dropped and counted */
	VSOCK_PKT_RST,	/* answered with an RST from dst_port to src_port, and counted */
};

/*
 * Checks a packet the guest put on the tx queue, with payload_bytes readable bytes after
 * its header. Dropped: a source CID that is not the guest's or a destination that is not
 * the host (Firecracker drops those too), an empty RW, and a bad RST (an RST is never
 * answered with one). Answered with RST: a type other than STREAM, an unknown op, an RW
 * longer than VSOCK_MAX_PKT_BYTES or than its buffers. The len of a control packet is not
 * looked at (it carries no payload).
 */
enum vsock_verdict vsock_packet__check_tx(const struct vsock_hdr *h, uint64_t guest_cid,
					  uint64_t payload_bytes);

/* The longest CONNECT line Ember reads, '\n' included (Firecracker's bound too). */
#define VSOCK_CONNECT_LINE_MAX 32

/*
 * Parses a host's connection request, line[0..len) with its final '\n': "CONNECT" (any
 * case, as Firecracker accepts), blanks, 1 to 10 decimal digits, optional blanks or "\r",
 * "\n". 0 with *port set, -EINVAL for anything else (no '\n' at the end, a '\n' before it,
 * another word, a sign, too long), -ERANGE for a port of 2^32 or more.
 */
int vsock_packet__parse_connect(const char *line, size_t len, uint32_t *port);

#endif
