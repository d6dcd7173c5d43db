/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The host half of virtio-vsock's connections (vsock.c is the device half): a stream is a
 * connection (vsock_conn.h) with its Unix socket, and this module owns those sockets: it
 * accepts host connections and reads their CONNECT line, connects to <uds_path>_<port>
 * for the guest (retrying while the listener's backlog is full), writes the guest's bytes
 * (keeping what the socket does not take), reads the host's bytes into the iovecs vsock.c
 * maps in guest memory, and keeps the bookkeeping: the pool, the rx round robin, the
 * timer. Everything runs under the transport's lock, on the VMM thread (a driver reset
 * drops the streams from a vCPU thread).
 *
 * Streams are pooled and never freed before destroy: an epoll batch may still hold an
 * event for a stream closed earlier in the same batch, and its handler must find memory
 * it can look at. So handlers treat events as hints (a read that finds nothing costs an
 * EAGAIN), and a FREE stream ignores them.
 */
#ifndef EMBER_VIRTIO_VSOCK_STREAM_H
#define EMBER_VIRTIO_VSOCK_STREAM_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "virtio/vsock.h"

enum vsock_stream_phase {
	VSOCK_STREAM_FREE,
	VSOCK_STREAM_HANDSHAKE,	 /* host-initiated, accepted: its CONNECT line is awaited */
	VSOCK_STREAM_CONNECTING, /* guest-initiated: the listener's backlog was full; retried */
	VSOCK_STREAM_LIVE,	 /* in the table; fd is -1 once it is DEAD (RST owed) */
};

struct vsock_stream {
	struct vsock_conn c;
	struct event_handler h; /* the host socket */
	struct virtio_vsock *v;
	enum vsock_stream_phase phase;
	bool in_table;
	bool readable;	/* the host socket may have data: an event since the last EAGAIN */
	bool out_armed; /* EPOLLOUT is in the interest set */
	bool wr_shut;	/* shutdown(SHUT_WR) done */
	bool kill_counted;
	uint64_t connect_deadline_ns;
	uint8_t *buf; /* guest bytes the host socket has not taken yet: a ring */
	uint32_t buf_head;
	uint32_t buf_len;
	bool on_rx;
	struct vsock_stream *rx_prev, *rx_next;
	bool on_timed;
	struct vsock_stream *t_prev, *t_next;
	struct vsock_stream *pool_next;
	struct vsock_stream *free_next;
};

/* vsock.c, after every host event: take the listen backlog, fill rx buffers. */
void virtio_vsock__run(struct virtio_vsock *v);

uint64_t vsock_stream__now_ns(void);

/* Closes the host socket, leaves the table and the lists, back to the pool. */
void vsock_stream__remove(struct virtio_vsock *v, struct vsock_stream *s);
/* After anything that may have changed a stream: its socket, the timer, the round robin. */
void vsock_stream__changed(struct virtio_vsock *v, struct vsock_stream *s);
/* Takes s off the rx round robin (vsock.c, before serving it). */
void vsock_stream__rx_del(struct virtio_vsock *v, struct vsock_stream *s);
/* Every stream goes: a reset of the device, a transport reset, a broken ring. */
void vsock_stream__drop_all(struct virtio_vsock *v);
/* At destroy: closes and frees the pool. */
void vsock_stream__free_all(struct virtio_vsock *v);

/* An RW's len payload bytes, mapped in guest memory: to the socket, or kept. */
void vsock_stream__write(struct virtio_vsock *v, struct vsock_stream *s, const struct iovec *iov,
			 int n, uint32_t len);
/*
 * Reads host bytes into iov: 1 with *len, or 0 when the stream changed instead (EAGAIN:
 * no longer readable; EOF: SHUTDOWN owed; an error: killed).
 */
int vsock_stream__read(struct virtio_vsock *v, struct vsock_stream *s, const struct iovec *iov,
		       int n, uint32_t *len);
/* The guest accepted a host-initiated connection: "OK <local port>\n" to the host. */
void vsock_stream__say_ok(struct virtio_vsock *v, struct vsock_stream *s);
/* The guest will receive (RD) / send (WR, once the buffer is empty) no more. */
void vsock_stream__shut_rd(struct vsock_stream *s);
void vsock_stream__shut_wr(struct vsock_stream *s);

/*
 * A REQUEST from the guest with no connection yet: connects to <uds_path>_<dst_port>. 0
 * (RESPONSE owed, or the connect is retried), or -errno: the caller answers RST.
 */
int vsock_stream__connect(struct virtio_vsock *v, const struct vsock_hdr *req);
/*
 * Accepts what the listening socket has; each then waits for its CONNECT line. With
 * VSOCK_MAX_HANDSHAKES lines awaited, the rest wait in the backlog (accept_pending).
 */
void vsock_stream__accept_all(struct virtio_vsock *v);
/* The timer: connect retries and deadlines. */
/* Sets the periodic tick for what waits now (vsock.h: connects, a restore's reset). */
void vsock_stream__update_timer(struct virtio_vsock *v);
void vsock_stream__tick(struct virtio_vsock *v);

#endif
