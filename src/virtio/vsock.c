// SPDX-License-Identifier: Apache-2.0
/*
 * virtio-vsock, the device half: config space, the rx, tx and event queues, routing the
 * guest's packets to connections, and the listening socket. The protocol decisions are
 * vsock_conn.c's, the host sockets vsock_stream.c's. See vsock.h for the design.
 */
#include "virtio/vsock.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include "virtio/persist.h"
#include "virtio/vsock_stream.h"
#include "vmm/log.h"
#include "vmm/snapshot_file.h"

METRICS_NAMES(vsock_metrics, VSOCK_METRICS);

#define NR_QUEUES 3
#define CONFIG_SIZE 8 /* le64 guest_cid */
#define LISTEN_BACKLOG 1024

static bool device_live(const struct virtio_vsock *v)
{
	return virtio_mmio__queue_live(&v->t, VSOCK_RXQ) &&
	       virtio_mmio__queue_live(&v->t, VSOCK_TXQ);
}

/* ---- guest buffers ---- */

/*
 * Maps [off, off + len) of a chain's readable (or writable) bytes as at most max iovecs.
 * The count, or -EFAULT. virtq__pop checked every buffer against guest RAM already.
 */
static int chain_iov(const struct gmem *gm, const struct vq_chain *c, bool writable, uint64_t off,
		     uint64_t len, struct iovec *iov, int max)
{
	int n = 0;

	for (unsigned int i = 0; i < c->nr && len; i++) {
		const struct vq_buf *b = &c->bufs[i];
		uint64_t take;
		void *p;

		if (b->write != writable)
			continue;
		if (off >= b->len) {
			off -= b->len;
			continue;
		}
		take = b->len - off < len ? b->len - off : len;
		p = gmem__ptr(gm, b->gpa + off, take);
		if (!p || n == max)
			return -EFAULT;
		iov[n++] = (struct iovec){ p, (size_t)take };
		off = 0;
		len -= take;
	}
	return len ? -EFAULT : n;
}

/* Copies a header out of (or into) the start of a chain's readable (writable) bytes. */
static int chain_hdr(const struct gmem *gm, const struct vq_chain *c, bool writable, uint8_t *raw)
{
	struct iovec iov[VSOCK_HDR_BYTES]; /* buffers are at least a byte long */
	int n = chain_iov(gm, c, writable, 0, VSOCK_HDR_BYTES, iov, VSOCK_HDR_BYTES);

	if (n < 0)
		return n;
	for (int i = 0; i < n; i++) {
		if (writable)
			memcpy(iov[i].iov_base, raw, iov[i].iov_len);
		else
			memcpy(raw, iov[i].iov_base, iov[i].iov_len);
		raw += iov[i].iov_len;
	}
	return 0;
}

/* For Diff snapshots: the first len writable bytes of c are written (0 or -EFAULT). */
static int mark_written(const struct gmem *gm, const struct vq_chain *c, uint64_t len)
{
	struct iovec iov[VIRTQ_CHAIN_MAX];
	int n = chain_iov(gm, c, true, 0, len, iov, VIRTQ_CHAIN_MAX);

	if (n < 0)
		return n;
	gmem__mark_dirty_iov(gm, iov, (unsigned int)n, len);
	return 0;
}

/* How long host connections wait after a restore for the guest to handle the reset. */
#define RESET_ACK_TIMEOUT_NS (1000ULL * 1000000ULL)

/* ---- the rx queue: packets for the guest ---- */

static void put_rx_packet(struct virtio_vsock *v, const struct vsock_hdr *h, uint32_t len)
{
	uint8_t raw[VSOCK_HDR_BYTES];

	vsock_packet__encode(h, raw);
	v->rx_held = false;
	if (chain_hdr(v->t.gm, &v->rx_chain, true, raw) ||
	    mark_written(v->t.gm, &v->rx_chain, VSOCK_HDR_BYTES + (uint64_t)len) ||
	    virtq__push(&v->t.queues[VSOCK_RXQ], v->rx_chain.head, VSOCK_HDR_BYTES + len)) {
		v->m.rx_queue_event_fails++;
		virtio_mmio__needs_reset(&v->t, "rx ring outside guest RAM");
		return;
	}
	v->rx_pushed = true;
	v->m.rx_packets_count++;
}

/* Holds an rx buffer with room for a header and at least a byte; false when there is none. */
static bool take_rx_chain(struct virtio_vsock *v)
{
	struct virtq *q = &v->t.queues[VSOCK_RXQ];
	int ret;

	while (!v->rx_held) {
		ret = virtq__pop(q, &v->rx_chain);
		if (ret < 0) {
			v->m.rx_queue_event_fails++;
			virtio_mmio__needs_reset(&v->t, "a malformed rx descriptor chain");
			vsock_stream__drop_all(v);
			return false;
		}
		if (!ret) {
			if (!virtq__arm_notify(q))
				return false;
			continue;
		}
		if (v->rx_chain.writable > VSOCK_HDR_BYTES && !v->rx_chain.readable) {
			v->rx_held = true;
			break;
		}
		/* a buffer that cannot hold a packet: given back empty */
		v->m.rx_queue_event_fails++;
		if (virtq__push(q, v->rx_chain.head, 0)) {
			virtio_mmio__needs_reset(&v->t, "rx used ring outside guest RAM");
			return false;
		}
		v->rx_pushed = true;
	}
	return true;
}

static void queue_rst(struct virtio_vsock *v, uint32_t local_port, uint32_t peer_port)
{
	if (v->rst_count == VSOCK_RST_QUEUE) {
		v->m.muxer_event_fails++; /* the guest floods us with orphans: dropped */
		return;
	}
	v->rsts[(v->rst_head + v->rst_count++) % VSOCK_RST_QUEUE] =
		(struct vsock_rst){ local_port, peer_port };
}

static void send_queued_rst(struct virtio_vsock *v)
{
	struct vsock_rst r = v->rsts[v->rst_head];
	struct vsock_hdr h = {
		.src_cid = VSOCK_HOST_CID,
		.dst_cid = v->guest_cid,
		.src_port = r.local_port,
		.dst_port = r.peer_port,
		.type = VSOCK_TYPE_STREAM,
		.op = VSOCK_OP_RST,
	};

	v->rst_head = (v->rst_head + 1) % VSOCK_RST_QUEUE;
	v->rst_count--;
	put_rx_packet(v, &h, 0);
}

/* Host bytes into the held rx buffer, after the header: see vsock_stream__read. */
static int read_data(struct virtio_vsock *v, struct vsock_stream *s, uint32_t *len)
{
	struct iovec iov[VIRTQ_CHAIN_MAX];
	uint64_t cap = v->rx_chain.writable - VSOCK_HDR_BYTES;
	uint32_t credit = vsock_conn__peer_credit(&s->c);
	int n;

	cap = cap < credit ? cap : credit;
	cap = cap < VSOCK_MAX_PKT_BYTES ? cap : VSOCK_MAX_PKT_BYTES;
	n = chain_iov(v->t.gm, &v->rx_chain, true, VSOCK_HDR_BYTES, cap, iov, VIRTQ_CHAIN_MAX);
	if (n <= 0) {
		s->readable = false; /* cannot happen: the chain and the credit were checked */
		return 0;
	}
	return vsock_stream__read(v, s, iov, n, len);
}

/* One packet from the stream at the head of the round robin into the held rx buffer. */
static void serve_stream(struct virtio_vsock *v, struct vsock_stream *s)
{
	enum vsock_op op;
	struct vsock_hdr h;
	uint32_t len = 0;

	vsock_stream__rx_del(v, s);
	while ((op = vsock_conn__next_op(&s->c, s->readable && s->h.fd >= 0)) == VSOCK_OP_RW &&
	       !read_data(v, s, &len))
		;
	if (op == VSOCK_OP_INVALID) {
		vsock_stream__changed(v, s);
		return;
	}
	vsock_conn__emit(&s->c, op, len, v->guest_cid, &h);
	put_rx_packet(v, &h, len);
	if (op == VSOCK_OP_RST)
		vsock_stream__remove(v, s);
	else
		vsock_stream__changed(v, s); /* back at the tail if it has more */
}

static void process_rx(struct virtio_vsock *v)
{
	while (virtio_mmio__queue_live(&v->t, VSOCK_RXQ) && (v->rst_count || v->rx_head)) {
		if (!take_rx_chain(v))
			break;
		if (v->rst_count)
			send_queued_rst(v);
		else
			serve_stream(v, v->rx_head);
	}
	if (v->rx_pushed) {
		v->rx_pushed = false;
		virtio_mmio__used(&v->t, VSOCK_RXQ);
	}
}

/* ---- the tx queue: packets from the guest ---- */

/* An RW's payload, after the header in the chain's readable bytes, to the host socket. */
static void forward(struct virtio_vsock *v, struct vsock_stream *s, const struct vq_chain *c,
		    uint32_t len)
{
	struct iovec iov[VIRTQ_CHAIN_MAX];
	int n = chain_iov(v->t.gm, c, false, VSOCK_HDR_BYTES, len, iov, VIRTQ_CHAIN_MAX);

	if (n < 0)
		vsock_conn__kill(&s->c);
	else
		vsock_stream__write(v, s, iov, n, len);
}

/* What vsock_conn__recv asked of the host side. */
static void apply(struct virtio_vsock *v, struct vsock_stream *s, unsigned int todo,
		  const struct vq_chain *c, uint32_t len)
{
	if (todo & VSOCK_DO_DATA)
		forward(v, s, c, len);
	if (todo & VSOCK_DO_CONNECTED)
		vsock_stream__say_ok(v, s);
	if (todo & VSOCK_DO_SHUT_RD)
		vsock_stream__shut_rd(s);
	if (todo & VSOCK_DO_SHUT_WR)
		vsock_stream__shut_wr(s);
	if (todo & VSOCK_DO_IGNORED)
		log_debug("vsock: packet for %u:%u not valid in its state: dropped",
			  s->c.local_port, s->c.peer_port);
}

/* A REQUEST to host port dst_port: connect to <uds_path>_<port>, RESPONSE or RST. */
static void guest_connect(struct virtio_vsock *v, const struct vsock_hdr *h)
{
	int ret = vsock_stream__connect(v, h);

	if (ret) {
		log_debug("vsock: guest connection to host port %u refused: %s", h->dst_port,
			  strerror(-ret));
		queue_rst(v, h->dst_port, h->src_port);
	}
}

static void handle_tx(struct virtio_vsock *v, const struct vq_chain *c)
{
	uint8_t raw[VSOCK_HDR_BYTES];
	struct vsock_hdr h;
	struct vsock_conn *cn;
	struct vsock_stream *s;
	unsigned int todo;

	if (c->readable < VSOCK_HDR_BYTES || chain_hdr(v->t.gm, c, false, raw)) {
		v->m.bad_packets++;
		return;
	}
	vsock_packet__decode(raw, &h);
	v->m.tx_packets_count++;
	switch (vsock_packet__check_tx(&h, v->guest_cid, c->readable - VSOCK_HDR_BYTES)) {
	case VSOCK_PKT_DROP:
		v->m.bad_packets++;
		return;
	case VSOCK_PKT_RST:
		v->m.bad_packets++;
		queue_rst(v, h.dst_port, h.src_port);
		return;
	default:
		break;
	}
	cn = vsock_conn__find(&v->conns, h.dst_port, h.src_port);
	if (!cn) {
		if (h.op == VSOCK_OP_REQUEST)
			guest_connect(v, &h);
		else if (h.op != VSOCK_OP_RST)
			queue_rst(v, h.dst_port, h.src_port);
		return;
	}
	s = container_of(cn, struct vsock_stream, c);
	todo = vsock_conn__recv(cn, &h, vsock_stream__now_ns());
	if (todo & VSOCK_DO_REMOVE) {
		vsock_stream__remove(v, s);
		return;
	}
	apply(v, s, todo, c, h.len);
	vsock_stream__changed(v, s);
}

static void process_tx(struct virtio_vsock *v)
{
	struct virtq *q = &v->t.queues[VSOCK_TXQ];
	bool used = false;
	int ret;

	while (virtio_mmio__queue_live(&v->t, VSOCK_TXQ)) {
		ret = virtq__pop(q, &v->tx_chain);
		if (!ret) {
			if (virtq__arm_notify(q))
				continue;
			break;
		}
		if (ret == 1) {
			handle_tx(v, &v->tx_chain);
			ret = virtq__push(q, v->tx_chain.head, 0);
		}
		if (ret < 0) {
			v->m.tx_queue_event_fails++;
			virtio_mmio__needs_reset(&v->t, "a malformed tx descriptor chain");
			vsock_stream__drop_all(v);
			break;
		}
		used = true;
	}
	if (used)
		virtio_mmio__used(&v->t, VSOCK_TXQ);
}

/* ---- events ---- */

static void send_restored_reset(struct virtio_vsock *v);

/* Whether the guest has handled the restore's transport reset (see vsock.h). */
static bool reset_handled(struct virtio_vsock *v)
{
	if (!v->reset_unacked)
		return true;
	if (virtq__pending(&v->t.queues[VSOCK_EVQ]) > v->ev_pending_after_reset ||
	    vsock_stream__now_ns() >= v->reset_deadline_ns || !device_live(v)) {
		v->reset_unacked = false;
		vsock_stream__update_timer(v);
	}
	return !v->reset_unacked;
}

void virtio_vsock__run(struct virtio_vsock *v)
{
	/* a restore's reset first, whatever woke the loop: it must not drop newer streams */
	if (v->reset_pending)
		send_restored_reset(v);
	if (v->accept_pending && device_live(v) && reset_handled(v))
		vsock_stream__accept_all(v);
	process_rx(v);
}

static void on_listen(struct event_handler *h, uint32_t events)
{
	struct virtio_vsock *v = container_of(h, struct virtio_vsock, listen_h);

	(void)events;
	virtio_mmio__lock(&v->t);
	v->accept_pending = true; /* taken now if the driver runs the device, else later */
	virtio_vsock__run(v);
	virtio_mmio__unlock(&v->t);
}

static void on_timer(struct event_handler *h, uint32_t events)
{
	struct virtio_vsock *v = container_of(h, struct virtio_vsock, timer_h);
	uint64_t ticks;
	ssize_t r = read(h->fd, &ticks, sizeof(ticks));

	(void)r;
	(void)events;
	virtio_mmio__lock(&v->t);
	vsock_stream__tick(v);
	virtio_vsock__run(v);
	virtio_mmio__unlock(&v->t);
}

static int put_reset_event(struct virtio_vsock *v);

/* A restored device tells the guest that its connections are gone. */
static void send_restored_reset(struct virtio_vsock *v)
{
	int ret;

	v->reset_pending = false;
	ret = put_reset_event(v);
	vsock_stream__drop_all(v);
	if (!ret) {
		v->reset_unacked = true;
		v->ev_pending_after_reset = virtq__pending(&v->t.queues[VSOCK_EVQ]);
		v->reset_deadline_ns = vsock_stream__now_ns() + RESET_ACK_TIMEOUT_NS;
		vsock_stream__update_timer(v);
	}
	if (ret == -ENOSPC)
		log_warn("vsock: restored, but the guest left no event buffer: it was not told of "
			 "the transport reset");
	else if (!ret)
		log_debug("vsock: restored: transport reset sent to the guest");
}

static void on_wake(struct event_handler *h, uint32_t events)
{
	struct virtio_vsock *v = container_of(h, struct virtio_vsock, wake_h);
	uint64_t n;
	ssize_t r = read(h->fd, &n, sizeof(n));

	(void)r;
	(void)events;
	virtio_mmio__lock(&v->t);
	virtio_vsock__run(v);
	virtio_mmio__unlock(&v->t);
}

/* ---- the device ---- */

static uint64_t vsock_features(void *dev)
{
	(void)dev;
	return (1ULL << VIRTIO_F_EVENT_IDX) | (1ULL << VIRTIO_F_INDIRECT_DESC);
}

static void vsock_config_read(void *dev, uint32_t off, uint8_t *data, uint32_t len)
{
	struct virtio_vsock *v = dev;
	uint8_t cfg[CONFIG_SIZE];

	for (unsigned int i = 0; i < CONFIG_SIZE; i++)
		cfg[i] = (uint8_t)(v->guest_cid >> (8 * i));
	memcpy(data, cfg + off, len);
}

static void vsock_config_write(void *dev, uint32_t off, const uint8_t *data, uint32_t len)
{
	struct virtio_vsock *v = dev;

	(void)off;
	(void)data;
	(void)len;
	v->m.cfg_fails++; /* guest_cid is read-only */
}

/*
 * On a vCPU thread: the listen backlog is taken on the VMM thread, woken by an eventfd
 * (host connections wait in the backlog until the driver runs the device, as Firecracker
 * registers its backend only on activation).
 */
static int vsock_activate(void *dev)
{
	struct virtio_vsock *v = dev;
	uint64_t one = 1;

	v->accept_pending = true;
	if (write(v->wake_h.fd, &one, sizeof(one)) != sizeof(one)) {
		v->m.activate_fails++;
		return -EIO;
	}
	return 0;
}

/* The driver reset the device: every connection goes (host sockets closed). */
static void vsock_reset(void *dev)
{
	struct virtio_vsock *v = dev;

	vsock_stream__drop_all(v);
	v->rx_held = v->rx_pushed = false;
}

static void vsock_notify(void *dev, uint16_t q)
{
	struct virtio_vsock *v = dev;

	if (q == VSOCK_RXQ) {
		v->m.rx_queue_event_count++;
	} else if (q == VSOCK_TXQ) {
		v->m.tx_queue_event_count++;
		process_tx(v);
	}
	/* the event queue: buffers for a later transport reset; nothing to do now */
	virtio_vsock__run(v);
}

static const struct virtio_dev_ops vsock_ops = {
	.device_id = VIRTIO_ID_VSOCK,
	.name = "virtio-vsock",
	.nr_queues = NR_QUEUES,
	.features = vsock_features,
	.config_size = CONFIG_SIZE,
	.config_read = vsock_config_read,
	.config_write = vsock_config_write,
	.activate = vsock_activate,
	.reset = vsock_reset,
	.notify = vsock_notify,
};

/* ---- set-up ---- */

static int listen_on(struct virtio_vsock *v)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	const char *path = v->uds_path;
	struct stat st;

	if (strlen(path) >= sizeof(a.sun_path))
		return error__set(-ENAMETOOLONG, "vsock: uds_path %s: longer than %zu bytes", path,
				  sizeof(a.sun_path) - 1);
	if (!lstat(path, &st))
		return error__set(
			-EEXIST,
			"vsock: uds_path %s already exists; remove it first (Ember creates "
			"the socket, as Firecracker does)",
			path);
	memcpy(a.sun_path, path, strlen(path) + 1);
	v->listen_h.fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (v->listen_h.fd < 0)
		return error__set(-errno, "vsock: socket: %s", strerror(errno));
	if (bind(v->listen_h.fd, (struct sockaddr *)&a, sizeof(a)) < 0)
		return error__set(-errno, "vsock: uds_path %s: bind: %s", path, strerror(errno));
	v->path_created = true;
	if (listen(v->listen_h.fd, LISTEN_BACKLOG) < 0)
		return error__set(-errno, "vsock: uds_path %s: listen: %s", path, strerror(errno));
	return 0;
}

static int make_fds(struct virtio_vsock *v)
{
	v->timer_h.fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (v->timer_h.fd < 0)
		return error__set(-errno, "vsock: timerfd: %s", strerror(errno));
	v->wake_h.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (v->wake_h.fd < 0)
		return error__set(-errno, "vsock: eventfd: %s", strerror(errno));
	return 0;
}

int virtio_vsock__create(struct virtio_vsock **out, const struct vsock_config *cfg, int vm_fd,
			 const struct gmem *gm, uint64_t base, uint32_t gsi)
{
	struct virtio_vsock *v;
	int ret;

	if (cfg->guest_cid < 3 || !cfg->uds_path || !cfg->uds_path[0])
		return error__set(-EINVAL, "vsock: needs a guest_cid of 3 or more and a uds_path");
	v = calloc(1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	v->listen_h = (struct event_handler){ -1, on_listen };
	v->timer_h = (struct event_handler){ -1, on_timer };
	v->wake_h = (struct event_handler){ -1, on_wake };
	v->guest_cid = cfg->guest_cid;
	v->last_local_port = (1U << 30) - 1;
	vsock_conn__table_init(&v->conns);
	v->uds_path = strdup(cfg->uds_path);
	ret = v->uds_path ? listen_on(v) : -ENOMEM;
	if (!ret)
		ret = make_fds(v);
	if (!ret)
		ret = virtio_mmio__init(&v->t, vm_fd, gm, base, gsi, &vsock_ops, v);
	if (ret) {
		virtio_vsock__destroy(v);
		return ret;
	}
	*out = v;
	return 0;
}

int virtio_vsock__watch(struct virtio_vsock *v, struct event_loop *loop)
{
	int ret;

	v->loop = loop;
	ret = virtio_mmio__watch(&v->t, loop);
	if (ret)
		return ret;
	ret = event_loop__add(loop, &v->listen_h, EPOLLIN | EPOLLET);
	if (!ret)
		ret = event_loop__add(loop, &v->timer_h, EPOLLIN);
	if (!ret)
		ret = event_loop__add(loop, &v->wake_h, EPOLLIN);
	if (ret)
		return error__set(ret, "vsock: epoll_ctl: %s", strerror(-ret));
	return 0;
}

/* One event buffer with VIRTIO_VSOCK_EVENT_TRANSPORT_RESET. */
static int put_reset_event(struct virtio_vsock *v)
{
	struct virtq *q = &v->t.queues[VSOCK_EVQ];
	struct vq_chain *c = &v->tx_chain; /* free outside process_tx; we hold the lock */
	struct iovec iov[VSOCK_EVENT_BYTES];
	uint8_t ev[VSOCK_EVENT_BYTES] = { VSOCK_EVENT_TRANSPORT_RESET }; /* le32 0 */
	int n, ret;

	if (!virtio_mmio__queue_live(&v->t, VSOCK_EVQ))
		return -ENODEV;
	ret = virtq__pop(q, c);
	if (ret <= 0) {
		v->m.ev_queue_event_fails++;
		if (ret < 0)
			virtio_mmio__needs_reset(&v->t, "a malformed event descriptor chain");
		return ret < 0 ? -EINVAL : -ENOSPC;
	}
	n = chain_iov(v->t.gm, c, true, 0, VSOCK_EVENT_BYTES, iov, VSOCK_EVENT_BYTES);
	for (int i = 0, off = 0; i < n; off += (int)iov[i].iov_len, i++)
		memcpy(iov[i].iov_base, ev + off, iov[i].iov_len);
	if (n > 0)
		gmem__mark_dirty_iov(v->t.gm, iov, (unsigned int)n, VSOCK_EVENT_BYTES);
	if (n < 0)
		v->m.ev_queue_event_fails++;
	if (virtq__push(q, c->head, n < 0 ? 0 : VSOCK_EVENT_BYTES))
		virtio_mmio__needs_reset(&v->t, "event used ring outside guest RAM");
	virtio_mmio__used(&v->t, VSOCK_EVQ);
	if (n < 0)
		return -EINVAL;
	v->m.transport_resets++;
	return 0;
}

int virtio_vsock__send_reset(struct virtio_vsock *v)
{
	int ret;

	virtio_mmio__lock(&v->t);
	ret = put_reset_event(v);
	vsock_stream__drop_all(v);
	virtio_mmio__unlock(&v->t);
	return ret;
}

/* ---- snapshots ---- */

int virtio_vsock__save(struct virtio_vsock *v, struct snapshot_file_writer *w)
{
	uint16_t back[NR_QUEUES] = { 0 };
	int ret;

	virtio_mmio__lock(&v->t);
	back[VSOCK_RXQ] = v->rx_held ? 1 : 0;
	virtio_mmio__save(&v->t, "vsock", back, w); /* the writer's first error sticks */
	snapshot_file__begin_section(w, SNAPSHOT_SECTION_VIRTIO_VSOCK,
				     SNAPSHOT_FILE_MUST_UNDERSTAND);
	snapshot_file__put_u64(w, v->guest_cid);
	snapshot_file__put_str(w, v->uds_path);
	ret = snapshot_file__end_section(w);
	virtio_mmio__unlock(&v->t);
	if (ret)
		return error__set_default(ret, "vsock: cannot save its state");
	return 0;
}

static int check_vsock_section(const struct virtio_vsock *v, const struct snapshot_file_reader *r)
{
	struct snapshot_file_section s;
	struct snapshot_file_cursor c;
	char path[4097];
	uint64_t cid;
	int ret = snapshot_file__find(r, SNAPSHOT_SECTION_VIRTIO_VSOCK, &s);

	if (ret)
		return error__set(-EINVAL, "vsock: the snapshot has no virtio-vsock section");
	snapshot_file__cursor(&s, &c);
	ret = snapshot_file__get_u64(&c, &cid);
	if (!ret)
		ret = snapshot_file__get_str(&c, path, sizeof(path));
	if (!ret)
		ret = snapshot_file__expect_end(&c);
	if (ret)
		return ret;
	if (cid != v->guest_cid)
		return error__set(-EINVAL, "vsock: the snapshot's guest CID was %llu, this one's is "
				  "%llu", (unsigned long long)cid, (unsigned long long)v->guest_cid);
	return 0;
}

int virtio_vsock__restore(struct virtio_vsock *v, const struct snapshot_file_reader *r)
{
	uint64_t one = 1;
	int ret;

	virtio_mmio__lock(&v->t);
	ret = check_vsock_section(v, r);
	if (!ret)
		ret = virtio_mmio__restore(&v->t, "vsock", "vsock", r);
	if (!ret && (v->t.status & VIRTIO_STATUS_DRIVER_OK)) {
		v->reset_pending = true;
		if (write(v->wake_h.fd, &one, sizeof(one)) != sizeof(one))
			ret = error__set(-errno, "vsock: eventfd: %s", strerror(errno));
	}
	virtio_mmio__unlock(&v->t);
	return ret;
}

void virtio_vsock__destroy(struct virtio_vsock *v)
{
	if (!v)
		return;
	vsock_stream__free_all(v);
	if (v->listen_h.fd >= 0)
		close(v->listen_h.fd);
	if (v->timer_h.fd >= 0)
		close(v->timer_h.fd);
	if (v->wake_h.fd >= 0)
		close(v->wake_h.fd);
	if (v->path_created)
		unlink(v->uds_path);
	if (v->t.ops)
		virtio_mmio__destroy(&v->t);
	free(v->uds_path);
	free(v);
}
