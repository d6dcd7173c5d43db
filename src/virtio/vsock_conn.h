/* SPDX-License-Identifier: Apache-2.0 */
/*
 * One virtio-vsock stream connection as the protocol sees it (virtio 1.2, 5.10.6): its
 * state, the control packets it owes the guest, the credit both ways, its timeout; and the
 * table of connections keyed by (local port, peer port). Pure: no sockets, no guest memory,
 * no clock (times are passed in), so every transition can be unit-tested. vsock.c (the
 * queues) and vsock_stream.c (the host sockets) ask this module what to do.
 *
 * Names: "local" is the host side (Ember's Unix sockets), "peer" the guest.
 *
 * Credit (5.10.6.3), all counters 32-bit and wrapping:
 * - host -> guest: we may have at most peer_buf_alloc bytes in flight, that is
 *   rx_cnt - peer_fwd_cnt (rx_cnt: payload bytes we put on the rx queue; peer_fwd_cnt: what
 *   the guest says its application consumed). When it is used up we ask with one
 *   CREDIT_REQUEST per stall.
 * - guest -> host: we advertise VSOCK_CONN_BUF_ALLOC and fwd_cnt, the bytes that reached
 *   the host socket. Bytes taken from the guest but not yet written (recv_cnt - fwd_cnt)
 *   wait in the connection's buffer, which is therefore never larger than
 *   VSOCK_CONN_BUF_ALLOC for a guest that respects the credit; one that does not is reset.
 *   Every packet we send carries fwd_cnt; when the guest's last view of our free space
 *   falls under VSOCK_CONN_CREDIT_THRESHOLD and we have freed space since, a CREDIT_UPDATE
 *   is owed.
 *
 * Closing (Firecracker's rules, plus half-close): a SHUTDOWN from the guest shuts the host
 * socket's matching direction; once neither side can send any more and our buffer is
 * empty we send RST and the connection is removed (after VSOCK_CONN_TIMEOUT_NS with data
 * still buffered, it is killed). When the host side ends (EOF), the guest gets SHUTDOWN:
 * SEND if the host only half-closed and the guest may still send, both flags if the host
 * socket is gone or the guest had already stopped sending, and in that case we wait that
 * long for the guest's RST (or SHUTDOWN) before sending our own.
 */
#ifndef EMBER_VIRTIO_VSOCK_CONN_H
#define EMBER_VIRTIO_VSOCK_CONN_H

#include <stdbool.h>
#include <stdint.h>

#include "virtio/vsock_packet.h"

/* The receive buffer we advertise for each connection, and its credit-update threshold. */
#define VSOCK_CONN_BUF_ALLOC (256U * 1024U)
#define VSOCK_CONN_CREDIT_THRESHOLD (VSOCK_CONN_BUF_ALLOC / 2)
/* Firecracker's CONN_REQUEST_TIMEOUT_MS and CONN_SHUTDOWN_TIMEOUT_MS. */
#define VSOCK_CONN_TIMEOUT_NS (2000ULL * 1000000ULL)

enum vsock_conn_state {
	VSOCK_CONN_LOCAL_INIT,	/* host-initiated: REQUEST owed or sent, RESPONSE awaited */
	VSOCK_CONN_PEER_INIT,	/* guest-initiated, connected on the host: RESPONSE owed */
	VSOCK_CONN_ESTABLISHED, /* data flows, within the shutdown flags */
	VSOCK_CONN_DEAD,	/* RST owed (or sent): removed once it is out */
};

/* Control packets owed to the guest, in the order they go out. */
#define VSOCK_OWE_RST (1U << 0)
#define VSOCK_OWE_RESPONSE (1U << 1)
#define VSOCK_OWE_REQUEST (1U << 2)
#define VSOCK_OWE_SHUTDOWN (1U << 3)
#define VSOCK_OWE_CREDIT_UPDATE (1U << 4)

struct vsock_conn {
	uint32_t local_port;
	uint32_t peer_port;
	enum vsock_conn_state state;
	unsigned int owed;     /* VSOCK_OWE_* */
	uint32_t peer_shut;    /* VSOCK_SHUTDOWN_* the guest sent us */
	uint32_t local_shut;   /* VSOCK_SHUTDOWN_* we sent (or owe) the guest */
	bool credit_requested; /* a CREDIT_REQUEST is out and no credit came since */
	bool killed;	       /* DEAD because of an error or a timeout (counted as killed) */

	/* host -> guest */
	uint32_t peer_buf_alloc;
	uint32_t peer_fwd_cnt;
	uint32_t rx_cnt;
	/* guest -> host */
	uint32_t recv_cnt;
	uint32_t fwd_cnt;
	uint32_t fwd_cnt_sent; /* fwd_cnt as the guest last heard it */

	uint64_t deadline_ns;	  /* 0: none; else when the connection is killed */
	struct vsock_conn *hnext; /* the table's bucket chain */
};

/* A host-initiated connection: REQUEST owed, RESPONSE expected before now + timeout. */
void vsock_conn__init_local(struct vsock_conn *c, uint32_t local_port, uint32_t peer_port,
			    uint64_t now_ns);
/* A guest-initiated one whose host socket is connected: RESPONSE owed. */
void vsock_conn__init_peer(struct vsock_conn *c, const struct vsock_hdr *req);

/* What vsock_conn__recv asks of the host side, as bits. */
#define VSOCK_DO_DATA 1U      /* write the packet's len payload bytes to the host */
#define VSOCK_DO_CONNECTED 2U /* host-initiated and accepted: write "OK <port>\n" */
#define VSOCK_DO_REMOVE 4U    /* the guest reset it: close and forget, no RST */
#define VSOCK_DO_SHUT_RD 8U   /* the guest will receive no more: shutdown(SHUT_RD) */
#define VSOCK_DO_SHUT_WR 16U  /* it will send no more: shutdown(SHUT_WR), buffer emptied */
#define VSOCK_DO_IGNORED 32U  /* not valid in this state: dropped */

/*
 * A packet from the guest for this connection (checked by vsock_packet__check_tx, routed
 * by ports). Takes the guest's credit fields, moves the state, and says what the host side
 * must do. An RW beyond the credit we gave kills the connection (RST owed).
 */
unsigned int vsock_conn__recv(struct vsock_conn *c, const struct vsock_hdr *h, uint64_t now_ns);

/* n of the guest's bytes reached the host socket (written directly or from the buffer). */
void vsock_conn__forwarded(struct vsock_conn *c, uint32_t n);
/* Guest bytes taken but not yet written to the host socket. */
uint32_t vsock_conn__buffered(const struct vsock_conn *c);
/*
 * After the host side changed (bytes forwarded, the buffer emptied): owes RST if both
 * directions are over and nothing is buffered, sets the flush timeout if only the buffer
 * keeps it open.
 */
void vsock_conn__check_closed(struct vsock_conn *c, uint64_t now_ns);

/* The host socket reached EOF; gone: it is closed altogether (HUP), not half-closed. */
void vsock_conn__host_eof(struct vsock_conn *c, bool gone, uint64_t now_ns);
/* Kill: an error on the host side, a credit violation, a timeout. RST owed. */
void vsock_conn__kill(struct vsock_conn *c);
/* The deadline passed: kills it; true if it did. */
bool vsock_conn__expire(struct vsock_conn *c, uint64_t now_ns);

/* May the host send data to the guest / the guest to the host, by state and shutdowns? */
bool vsock_conn__may_send(const struct vsock_conn *c);
bool vsock_conn__may_recv(const struct vsock_conn *c);
/* Bytes we may send the guest now (0 when a hostile guest's fields make no sense). */
uint32_t vsock_conn__peer_credit(const struct vsock_conn *c);
/* Bytes the guest may send us now, by our own books. */
uint32_t vsock_conn__our_credit(const struct vsock_conn *c);

/*
 * The next packet for the guest, given whether the host socket may have data: an owed
 * control packet, VSOCK_OP_RW (the caller reads up to vsock_conn__peer_credit bytes), a
 * CREDIT_REQUEST when data waits without credit, or VSOCK_OP_INVALID for nothing.
 */
enum vsock_op vsock_conn__next_op(const struct vsock_conn *c, bool host_readable);
/*
 * Fills h for op with len payload bytes, and books it: clears what it owed, moves the
 * state (RESPONSE establishes, RST makes it DEAD), counts rx_cnt, records fwd_cnt_sent.
 */
void vsock_conn__emit(struct vsock_conn *c, enum vsock_op op, uint32_t len, uint64_t guest_cid,
		      struct vsock_hdr *h);

/* ---- the table ---- */

#define VSOCK_TABLE_BUCKETS 1024 /* a power of two */

struct vsock_conn_table {
	struct vsock_conn *buckets[VSOCK_TABLE_BUCKETS];
	unsigned int count;
};

void vsock_conn__table_init(struct vsock_conn_table *t);
struct vsock_conn *vsock_conn__find(const struct vsock_conn_table *t, uint32_t local_port,
				    uint32_t peer_port);
/* Adds c under its ports; -EEXIST if that key is taken. */
int vsock_conn__add(struct vsock_conn_table *t, struct vsock_conn *c);
void vsock_conn__remove(struct vsock_conn_table *t, struct vsock_conn *c);

#endif
