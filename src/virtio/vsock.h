/* SPDX-License-Identifier: Apache-2.0 */
/*
 * virtio-vsock (virtio 1.2, 5.10) with Firecracker's hybrid host side: the guest has a CID
 * and the host side is Unix sockets.
 *
 * - Host-initiated: Ember listens on uds_path. A host process connects, writes
 *   `CONNECT <port>\n`; Ember sends the guest a REQUEST from a local port it allocates
 *   (from 1 << 30 up, as Firecracker), and when the guest answers RESPONSE it writes
 *   `OK <local port>\n` to the host socket and bridges the bytes. A guest that answers RST
 *   (no listener on that port), or does not answer within 2 s, gets the host socket
 *   closed without a reply, as Firecracker does. A line that is not a CONNECT line, or is
 *   longer than 32 bytes, gets the socket closed.
 * - Guest-initiated: a REQUEST to host port P connects to `<uds_path>_<P>`; RESPONSE on
 *   success, RST when nothing listens there (a full listen backlog is retried for 2 s).
 *
 * Everything runs on the VMM thread's loop, under the transport's lock: queue kicks, the
 * listening socket, every connection's socket (non-blocking, edge-triggered), a timer for
 * timeouts and connect retries. Guest -> host data is written to the host socket straight
 * from guest memory; what the socket does not take waits in a per-connection buffer as big
 * as the credit we advertise (vsock_conn.h), so no connection blocks another. Host -> guest
 * data is read straight into the guest's rx buffers, only with credit and rx buffers, the
 * connections served round robin. Shutdown, RST and the credit rules: vsock_conn.h. A
 * driver reset (on a vCPU thread) or a transport reset closes every host socket.
 *
 * The files: vsock.c (the device: queues, routing, set-up), vsock_stream.c (the host
 * sockets), vsock_conn.c (the protocol, pure), vsock_packet.c (headers and the CONNECT
 * line, pure).
 */
#ifndef EMBER_VIRTIO_VSOCK_H
#define EMBER_VIRTIO_VSOCK_H

#include <stdbool.h>
#include <stdint.h>

#include "virtio/mmio.h"
#include "virtio/queue.h"
#include "virtio/vsock_conn.h"
#include "vmm/event_loop.h"
#include "vmm/memory.h"
#include "vmm/metrics.h"
#include "vmm/vm_config.h"

#define VIRTIO_ID_VSOCK 19
#define VSOCK_RXQ 0 /* device -> driver packets */
#define VSOCK_TXQ 1 /* driver -> device packets */
#define VSOCK_EVQ 2 /* events: the transport reset */

/*
 * Firecracker's "vsock" (all 20 of its counters; killq_resync stays 0: Ember has no kill
 * queue to resync); bad_packets, connect_rejects and transport_resets are Ember's.
 */
/* clang-format off */
#define VSOCK_METRICS(X)                                                                           \
	X(activate_fails) X(cfg_fails) X(rx_queue_event_fails) X(tx_queue_event_fails)             \
	X(ev_queue_event_fails) X(muxer_event_fails) X(conn_event_fails) X(rx_queue_event_count)   \
	X(tx_queue_event_count) X(rx_bytes_count) X(tx_bytes_count) X(rx_packets_count)            \
	X(tx_packets_count) X(conns_added) X(conns_killed) X(conns_removed) X(killq_resync)        \
	X(tx_flush_fails) X(tx_write_fails) X(rx_read_fails) X(bad_packets) X(connect_rejects)     \
	X(transport_resets)
/* clang-format on */
METRICS_STRUCT(vsock_metrics, VSOCK_METRICS);

#define VSOCK_MAX_CONNS 1024	 /* connections at once (Firecracker: 1023) */
#define VSOCK_MAX_HANDSHAKES 128 /* CONNECT lines awaited at once; more wait in the backlog */
#define VSOCK_RST_QUEUE 256	 /* RSTs for packets that belong to no connection */

struct vsock_stream; /* a connection with its host socket (vsock_stream.h) */

struct vsock_rst {
	uint32_t local_port;
	uint32_t peer_port;
};

struct virtio_vsock {
	struct virtio_mmio t;
	uint64_t guest_cid;
	char *uds_path;
	bool path_created; /* we bound uds_path: unlink it at destroy */

	struct event_loop *loop;
	struct event_handler listen_h; /* the listening socket at uds_path */
	struct event_handler timer_h;  /* timeouts and connect retries */
	uint64_t timer_period_ns;      /* 0: disarmed */
	struct event_handler wake_h;   /* an eventfd: activation, from a vCPU thread */
	bool accept_pending;	       /* connections may wait in the listen backlog */
	bool reset_pending;	       /* restored: send the transport reset at the wake-up */
	/*
	 * The reset is sent and the guest has not handled it yet: host connections wait in
	 * the listen backlog (the guest would reset them with the old ones). It has handled
	 * it when it posts a new event buffer (more pending than right after the reset), or
	 * at reset_deadline_ns for a driver that does not.
	 */
	bool reset_unacked;
	uint16_t ev_pending_after_reset;
	uint64_t reset_deadline_ns;

	struct vsock_conn_table conns;
	struct vsock_stream *pool; /* every stream allocated; reused, freed at destroy */
	struct vsock_stream *free_list;
	unsigned int nr_handshakes;
	unsigned int nr_connecting;
	struct vsock_stream *rx_head; /* round robin: streams with something for the guest */
	struct vsock_stream *rx_tail;
	struct vsock_stream *timed; /* streams with a deadline or a connect to retry */
	uint32_t last_local_port;

	struct vsock_rst rsts[VSOCK_RST_QUEUE];
	unsigned int rst_head;
	unsigned int rst_count;

	struct vq_chain rx_chain; /* an rx buffer taken from the ring, not filled yet */
	bool rx_held;
	bool rx_pushed; /* used entries since the last interrupt */
	struct vq_chain tx_chain;

	struct vsock_metrics m;
};

/*
 * Binds and listens on cfg->uds_path, which must not exist (Firecracker's rule: remove a
 * stale one first), and sets up the device at base with interrupt gsi. The caller puts t
 * on the MMIO bus (virtio_mmio__bus_ops, &v->t) and calls virtio_vsock__watch().
 */
int virtio_vsock__create(struct virtio_vsock **out, const struct vsock_config *cfg, int vm_fd,
			 const struct gmem *gm, uint64_t base, uint32_t gsi);
/* Registers the queue kicks, the listening socket, the timer and the wake-up eventfd. */
int virtio_vsock__watch(struct virtio_vsock *v, struct event_loop *loop);
/*
 * On the VMM thread: puts VIRTIO_VSOCK_EVENT_TRANSPORT_RESET in one event-queue buffer
 * and drops every connection (host sockets closed); the guest then resets its sockets and
 * reads its CID again. For snapshots. 0, -ENODEV when the driver has not started the
 * device (connections are dropped all the same), -ENOSPC when the driver left no event
 * buffer.
 */
int virtio_vsock__send_reset(struct virtio_vsock *v);
struct snapshot_file_writer;
struct snapshot_file_reader;

/*
 * Snapshots, with the VM paused, on the VMM thread: its virtio-mmio and virtio-vsock
 * sections (docs/snapshot-format.md). Connections are not saved, and save changes nothing
 * in the running device; an rx buffer it holds (taken, not filled) is given back in the
 * file (the rx queue's next available index is saved before it).
 *
 * restore: on a device just created from the vsock config (its uds_path the override's, if
 * any; before the vCPUs run, before or after virtio_vsock__watch()): the guest CID must be
 * the snapshot's (-EINVAL with a message otherwise); then the transport and queues are as
 * they were. The transport-reset event is not sent by restore itself: restore arms it,
 * and the VMM loop sends it (virtio_vsock__send_reset(), through the wake-up eventfd) once
 * it dispatches the device's events, i.e. after the load returns to the loop; the guest
 * then drops its connections and reads its CID again. Nothing is needed from the caller;
 * a guest that left no event buffer gets none (logged). 0 or -errno with error__set().
 */
int virtio_vsock__save(struct virtio_vsock *v, struct snapshot_file_writer *w);
int virtio_vsock__restore(struct virtio_vsock *v, const struct snapshot_file_reader *r);
/*
 * Once the loop no longer dispatches the device's events: closes every socket, unlinks
 * uds_path.
 */
void virtio_vsock__destroy(struct virtio_vsock *v);

#endif
