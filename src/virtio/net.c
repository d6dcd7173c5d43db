// SPDX-License-Identifier: Apache-2.0
/*
 * virtio-net (virtio 1.2, 5.1) on a TAP.
 *
 * TX: a kick (or room in the TAP again) pops chains; the device-readable buffers, header
 * first, become an iovec of host pointers into guest memory, and one writev() hands the
 * frame to the TAP, which takes the header as it is (TUNSETVNETHDRSZ 12). When Ember
 * enforces anti-spoofing itself (tx_antispoof()), the frame's first bytes are a copy.
 *
 * RX: while the TAP is readable and the guest has buffers, chains are taken from the RX
 * queue into a FIFO (struct net_rx_bufs) until they could hold the largest frame, and one
 * readv() fills them. The frame takes as many chains as it needs, in order (num_buffers,
 * MRG_RXBUF; one chain without it); the chains it did not need stay for the next frame, as
 * a chain cannot be given back. With fewer buffers than the largest frame needs, the frame
 * is read into a bounce buffer and copied once there is room for it. Without buffers, the
 * TAP is left alone (no EPOLLIN) until the guest kicks the RX queue.
 *
 * Rate limits: a TX frame takes its tokens before it is written, and waits for the timer
 * when there are none. An RX frame's size is known only once it is read, so it takes its
 * tokens then; without them it stays where it is (in the guest's buffers, not yet used)
 * and the TAP is not read until the timer fires.
 *
 * Everything runs with the transport's lock held: ops from the transport, and the TAP and
 * timer handlers take it.
 */
#include "virtio/net.h"

#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "api/config.h"
#include "vmm/log.h"

_Static_assert(NET_CHANGED_RX_RATE_LIMITER == CONFIG_CHANGED_RX_RATE_LIMITER &&
		       NET_CHANGED_TX_RATE_LIMITER == CONFIG_CHANGED_TX_RATE_LIMITER,
	       "NET_CHANGED_* and CONFIG_CHANGED_* agree");

#define ETH_HDR_BYTES 14
#define ETH_SRC_OFF 6
#define NET_RX_BATCH 64 /* frames per TAP wake-up before the loop serves other fds */

METRICS_NAMES(net_metrics, NET_METRICS);

static void rx_process(struct virtio_net *n);
static void tx_process(struct virtio_net *n);

/* ---- the RX buffer FIFO ---- */

static const struct net_rx_chain *rx_chain(const struct net_rx_bufs *b, unsigned int i)
{
	return &b->chains[(b->first + i) % VIRTQ_MAX_SIZE];
}

void virtio_net__rx_clear(struct net_rx_bufs *b)
{
	b->first = b->nr = 0;
	b->iov_first = b->iov_nr = 0;
	b->bytes = 0;
}

bool virtio_net__rx_full(const struct net_rx_bufs *b)
{
	return b->nr >= VIRTQ_MAX_SIZE || b->iov_nr >= NET_RX_IOV_MAX;
}

/* Only a chain's first NET_FRAME_MAX bytes can ever be used: the rest is not kept. */
int virtio_net__rx_add(struct net_rx_bufs *b, const struct gmem *gm, const struct vq_chain *c)
{
	struct net_rx_chain *rc;
	struct iovec *iov;
	uint32_t left = NET_FRAME_MAX;
	unsigned int k = 0;

	if (virtio_net__rx_full(b))
		return -ENOSPC;
	if (c->readable || c->writable < NET_HDR_BYTES)
		return -EINVAL;
	if (b->iov_first + b->iov_nr + c->nr > NET_RX_IOV_STORE) {
		memmove(b->iov, b->iov + b->iov_first, b->iov_nr * sizeof(*b->iov));
		b->iov_first = 0;
	}
	iov = &b->iov[b->iov_first + b->iov_nr];
	for (unsigned int i = 0; i < c->nr && left; i++) {
		uint32_t len = c->bufs[i].len < left ? c->bufs[i].len : left;
		void *p = gmem__ptr(gm, c->bufs[i].gpa, len);

		if (!p)
			return -EINVAL;
		iov[k++] = (struct iovec){ p, len };
		left -= len;
	}
	rc = &b->chains[(b->first + b->nr) % VIRTQ_MAX_SIZE];
	*rc = (struct net_rx_chain){ c->head, (uint16_t)k, NET_FRAME_MAX - left };
	b->nr++;
	b->iov_nr += k;
	b->bytes += rc->len;
	return 0;
}

unsigned int virtio_net__rx_span(const struct net_rx_bufs *b, uint64_t target, unsigned int *chains)
{
	uint64_t bytes = 0;
	unsigned int niov = 0;

	for (unsigned int i = 0; i < b->nr; i++) {
		const struct net_rx_chain *c = rx_chain(b, i);

		if (niov + c->niov > NET_RX_IOV_MAX)
			break;
		niov += c->niov;
		bytes += c->len;
		if (bytes >= target) {
			*chains = i + 1;
			return niov;
		}
	}
	*chains = 0;
	return 0;
}

unsigned int virtio_net__rx_split(const struct net_rx_bufs *b, uint64_t bytes, uint32_t *lens)
{
	unsigned int k = 0;

	if (bytes > b->bytes)
		return 0;
	while (bytes) {
		uint32_t len = rx_chain(b, k)->len;

		lens[k] = bytes < len ? (uint32_t)bytes : len;
		bytes -= lens[k++];
	}
	return k;
}

int virtio_net__rx_write(const struct net_rx_bufs *b, uint64_t off, const void *src, size_t len)
{
	const uint8_t *s = src;

	for (unsigned int i = 0; i < b->iov_nr && len; i++) {
		const struct iovec *v = &b->iov[b->iov_first + i];
		size_t n;

		if (off >= v->iov_len) {
			off -= v->iov_len;
			continue;
		}
		n = v->iov_len - off < len ? v->iov_len - off : len;
		memcpy((uint8_t *)v->iov_base + off, s, n);
		s += n;
		len -= n;
		off = 0;
	}
	return len ? -EINVAL : 0;
}

void virtio_net__rx_consume(struct net_rx_bufs *b, unsigned int k)
{
	for (; k && b->nr; k--) {
		const struct net_rx_chain *c = rx_chain(b, 0);

		b->iov_first += c->niov;
		b->iov_nr -= c->niov;
		b->bytes -= c->len;
		b->first = (b->first + 1) % VIRTQ_MAX_SIZE;
		b->nr--;
	}
	if (!b->nr)
		virtio_net__rx_clear(b);
}

/* ---- features, config space ---- */

static uint64_t net_features(void *dev)
{
	struct virtio_net *n = dev;
	/* every GUEST_ and HOST_ offload comes with the checksum offload it depends on */
	uint64_t f =
		VIRTIO_NET_BIT(CSUM) | VIRTIO_NET_BIT(GUEST_CSUM) | VIRTIO_NET_BIT(GUEST_TSO4) |
		VIRTIO_NET_BIT(GUEST_TSO6) | VIRTIO_NET_BIT(GUEST_UFO) | VIRTIO_NET_BIT(HOST_TSO4) |
		VIRTIO_NET_BIT(HOST_TSO6) | VIRTIO_NET_BIT(HOST_UFO) | VIRTIO_NET_BIT(MRG_RXBUF) |
		(1ULL << VIRTIO_F_EVENT_IDX) | (1ULL << VIRTIO_F_INDIRECT_DESC);

	if (n->has_mac)
		f |= VIRTIO_NET_BIT(MAC);
	return f;
}

static void net_config_read(void *dev, uint32_t off, uint8_t *data, uint32_t len)
{
	struct virtio_net *n = dev;
	uint8_t cfg[NET_CONFIG_SIZE] = { 0 };

	if (n->has_mac)
		memcpy(cfg, n->mac, sizeof(n->mac));
	cfg[6] = VIRTIO_NET_S_LINK_UP; /* le16 status; read only with VIRTIO_NET_F_STATUS */
	memcpy(data, cfg + off, len);
}

/* A VERSION_1 driver must not write the config space (the MAC is the device's). */
static void net_config_write(void *dev, uint32_t off, const uint8_t *data, uint32_t len)
{
	struct virtio_net *n = dev;

	(void)off;
	(void)data;
	(void)len;
	n->m.cfg_fails++;
}

/* ---- the TAP's place in the loop ---- */

static bool rx_wanted(const struct virtio_net *n)
{
	return n->active && virtio_mmio__queue_live(&n->t, NET_QUEUE_RX) && !n->rx_rl.blocked &&
	       n->held == NET_RX_HELD_NONE && !n->rx_starved;
}

static uint32_t tap_interest(const struct virtio_net *n)
{
	return (rx_wanted(n) ? EPOLLIN : 0) | (n->active && n->tx_blocked ? EPOLLOUT : 0);
}

static void update_interest(struct virtio_net *n)
{
	uint32_t want = tap_interest(n);
	int ret;

	if (!n->loop || n->tap_gone || want == n->tap_events)
		return;
	ret = event_loop__mod(n->loop, &n->tap_h, want);
	if (ret) {
		n->m.event_fails++;
		log_warn("network interface %s: epoll_ctl: %s", n->id, strerror(-ret));
		return;
	}
	n->tap_events = want;
}

/* EPOLLERR: the TAP was deleted under us. It stays out of the loop; TX frames now fail. */
static void tap_gone(struct virtio_net *n)
{
	n->m.event_fails++;
	if (n->tap_gone)
		return;
	log_warn("network interface %s: tap %s went away", n->id, n->tap.name);
	event_loop__del(n->loop, &n->tap_h);
	n->tap_gone = true;
	n->tx_blocked = false;
}

/* ---- RX ---- */

enum rx_step {
	RX_STOP, /* nothing more for now: no frame, no buffers, no tokens, or a broken queue */
	RX_NEXT,
};

/* Takes chains from the RX queue until they hold want bytes; false when the queue broke. */
static bool rx_fill(struct virtio_net *n, uint64_t want)
{
	struct virtq *q = &n->t.queues[NET_QUEUE_RX];
	int ret;

	while (n->rx.bytes < want && !virtio_net__rx_full(&n->rx)) {
		ret = virtq__pop(q, &n->chain);
		if (!ret)
			return true;
		if (ret > 0)
			ret = virtio_net__rx_add(&n->rx, n->t.gm, &n->chain);
		if (ret < 0) {
			virtio_mmio__needs_reset(&n->t, "a malformed RX descriptor chain");
			return false;
		}
	}
	return true;
}

/* Out of buffers: ask for a kick, unless some came meanwhile (true: look again). */
static bool rx_wait_buffers(struct virtio_net *n)
{
	if (virtq__arm_notify(&n->t.queues[NET_QUEUE_RX]))
		return true;
	n->rx_starved = true;
	n->m.no_rx_avail_buffer++;
	return false;
}

/* Could the guest still give more buffers? Not if every chain it can have is here. */
static bool rx_can_grow(const struct virtio_net *n)
{
	return !virtio_net__rx_full(&n->rx) && n->rx.nr < n->t.queues[NET_QUEUE_RX].size;
}

/* Finds room for the bounced frame: RX_NEXT when there is, or when the frame was dropped. */
static enum rx_step rx_room_for_bounce(struct virtio_net *n)
{
	while (n->rx.bytes < n->held_len) {
		if (!rx_fill(n, n->held_len))
			return RX_STOP;
		if (n->rx.bytes >= n->held_len)
			break;
		if (!rx_can_grow(n)) {
			/* the guest's buffers will never hold it */
			n->m.rx_fails++;
			n->held = NET_RX_HELD_NONE;
			return RX_NEXT;
		}
		if (!rx_wait_buffers(n))
			return RX_STOP;
	}
	return RX_NEXT;
}

static void rx_fix_header(struct virtio_net *n, unsigned int num_buffers)
{
	uint16_t nb = htole16((uint16_t)num_buffers);
	uint8_t no_flags = 0;

	virtio_net__rx_write(&n->rx, NET_HDR_NUM_BUFFERS, &nb, sizeof(nb));
	/* the TAP says DATA_VALID on its own; a driver without GUEST_CSUM gets flags 0 */
	if (!(n->features & VIRTIO_NET_BIT(GUEST_CSUM)))
		virtio_net__rx_write(&n->rx, 0, &no_flags, 1);
}

/*
 * A frame's k chains go back under one used->idx store: a driver that sees the first must
 * see all num_buffers of them (Linux drops a frame whose buffers are "missing").
 */
static int rx_push(struct virtio_net *n, const uint32_t *lens, unsigned int k)
{
	struct vq_used u[VIRTQ_MAX_SIZE];

	for (unsigned int i = 0; i < k; i++)
		u[i] = (struct vq_used){ .head = rx_chain(&n->rx, i)->head, .len = lens[i] };
	return virtq__push_n(&n->t.queues[NET_QUEUE_RX], u, k);
}

/* The frame in hand goes to the guest: tokens, then the used ring. */
static enum rx_step rx_deliver(struct virtio_net *n, bool *used)
{
	uint32_t lens[VIRTQ_MAX_SIZE];
	unsigned int k;

	if (n->held == NET_RX_HELD_BOUNCE) {
		if (rx_room_for_bounce(n) == RX_STOP)
			return RX_STOP;
		if (n->held == NET_RX_HELD_NONE)
			return RX_NEXT; /* dropped */
	}
	if (!rate_limiter__consume(&n->rx_rl, n->held_len, rate_limiter__now_ns())) {
		n->m.rx_rate_limiter_throttled++;
		return RX_STOP;
	}
	if (n->held == NET_RX_HELD_BOUNCE)
		virtio_net__rx_write(&n->rx, 0, n->bounce, n->held_len);
	k = virtio_net__rx_split(&n->rx, n->held_len, lens);
	rx_fix_header(n, k);
	/* the frame is in guest memory now (for Diff snapshots) */
	gmem__mark_dirty_iov(n->t.gm, &n->rx.iov[n->rx.iov_first], n->rx.iov_nr, n->held_len);
	n->held = NET_RX_HELD_NONE;
	if (rx_push(n, lens, k)) {
		virtio_mmio__needs_reset(&n->t, "an RX frame over more chains than the queue has");
		return RX_STOP;
	}
	virtio_net__rx_consume(&n->rx, k);
	n->m.rx_packets_count++;
	n->m.rx_bytes_count += n->held_len;
	*used = true;
	return RX_NEXT;
}

static enum rx_step rx_read_failed(struct virtio_net *n, int err)
{
	if (err == EAGAIN || err == EWOULDBLOCK)
		return RX_STOP;
	if (err == EINTR)
		return RX_NEXT;
	/* the kernel dropped that frame; go on with the next (the batch bounds this) */
	if (!n->m.tap_read_fails++)
		log_warn("network interface %s: tap %s: read: %s", n->id, n->tap.name,
			 strerror(err));
	n->m.rx_fails++;
	return RX_NEXT;
}

/* Too few buffers for the largest frame: read it aside, and copy it once it fits. */
static enum rx_step rx_read_bounce(struct virtio_net *n, bool *used)
{
	ssize_t r = read(n->tap.fd, n->bounce, NET_FRAME_MAX + 1);

	if (r < 0)
		return rx_read_failed(n, errno);
	n->m.rx_count++;
	if (r < NET_HDR_BYTES || r > NET_FRAME_MAX) {
		n->m.rx_fails++;
		return RX_NEXT;
	}
	n->m.rx_bounced_frames++;
	n->held = NET_RX_HELD_BOUNCE;
	n->held_len = (uint32_t)r;
	return rx_deliver(n, used);
}

/* One frame into the first niov buffers, and a byte of ours after them. */
static ssize_t readv_sentinel(struct virtio_net *n, unsigned int niov)
{
	struct iovec *iov = &n->rx.iov[n->rx.iov_first];
	struct iovec saved = iov[niov];
	ssize_t r;

	iov[niov] = (struct iovec){ &n->sentinel, 1 };
	r = readv(n->tap.fd, iov, (int)niov + 1);
	iov[niov] = saved;
	return r;
}

static enum rx_step rx_read(struct virtio_net *n, bool *used)
{
	bool mrg = n->features & VIRTIO_NET_BIT(MRG_RXBUF);
	uint64_t cap = 0;
	unsigned int chains, niov;
	ssize_t r;

	if (!rx_fill(n, mrg ? NET_FRAME_MAX : 1))
		return RX_STOP;
	if (!n->rx.nr)
		return rx_wait_buffers(n) ? RX_NEXT : RX_STOP;
	/* without MRG_RXBUF a frame has one chain, whatever its size */
	niov = virtio_net__rx_span(&n->rx, mrg ? NET_FRAME_MAX : 1, &chains);
	if (!niov)
		return rx_read_bounce(n, used);
	for (unsigned int i = 0; i < chains; i++)
		cap += rx_chain(&n->rx, i)->len;
	r = readv_sentinel(n, niov);
	if (r < 0)
		return rx_read_failed(n, errno);
	n->m.rx_count++;
	/* too big for the chains: it reached the sentinel, and the rest of it is lost */
	if (r < NET_HDR_BYTES || (uint64_t)r > cap) {
		n->m.rx_fails++;
		return RX_NEXT;
	}
	n->held = NET_RX_HELD_GUEST;
	n->held_len = (uint32_t)r;
	return rx_deliver(n, used);
}

static bool rx_can_run(const struct virtio_net *n)
{
	return n->active && virtio_mmio__queue_live(&n->t, NET_QUEUE_RX) && !n->rx_rl.blocked &&
	       !n->rx_starved && !n->tap_gone;
}

/* Frames from the TAP into the guest, a batch at a time; one interrupt for the batch. */
static void rx_process(struct virtio_net *n)
{
	enum rx_step s = RX_NEXT;
	bool used = false;

	for (unsigned int i = 0; i < NET_RX_BATCH && s == RX_NEXT && rx_can_run(n); i++)
		s = n->held != NET_RX_HELD_NONE ? rx_deliver(n, &used) : rx_read(n, &used);
	if (used)
		virtio_mmio__used(&n->t, NET_QUEUE_RX);
	update_interest(n);
}

/* ---- TX ---- */

static int iov_read(const struct iovec *iov, unsigned int n, size_t off, void *dst, size_t len)
{
	uint8_t *d = dst;

	for (unsigned int i = 0; i < n && len; i++) {
		size_t k;

		if (off >= iov[i].iov_len) {
			off -= iov[i].iov_len;
			continue;
		}
		k = iov[i].iov_len - off < len ? iov[i].iov_len - off : len;
		memcpy(d, (const uint8_t *)iov[i].iov_base + off, k);
		d += k;
		len -= k;
		off = 0;
	}
	return len ? -EINVAL : 0;
}

/* Firecracker's tx_spoofed_mac_count: counted, not dropped. */
static void check_source_mac(struct virtio_net *n)
{
	uint8_t src[6];

	if (n->has_mac &&
	    !iov_read(n->tx_iov, n->tx_niov, NET_HDR_BYTES + ETH_SRC_OFF, src, sizeof(src)) &&
	    memcmp(src, n->mac, sizeof(src)))
		n->m.tx_spoofed_mac_count++;
}

/*
 * Anti-spoofing in Ember itself: the frame's virtio-net header and its first bytes, as many
 * as the rules look at (ANTISPOOF_HDR_MAX, or the whole of a shorter frame), are copied into
 * tx_hdr and checked there; then tx_iov becomes that copy followed by the rest of the frame
 * in guest memory. The guest's vCPUs run meanwhile: what goes to the TAP is what was
 * checked. True when the frame is dropped (and counted).
 */
static bool tx_antispoof(struct virtio_net *n)
{
	size_t frame = n->tx_len - NET_HDR_BYTES, off;
	size_t copy = NET_HDR_BYTES + (frame < ANTISPOOF_HDR_MAX ? frame : ANTISPOOF_HDR_MAX);
	enum antispoof_reason why = ANTISPOOF_DROP_OTHER;
	unsigned int i = 0;

	if (!iov_read(n->tx_iov, n->tx_niov, 0, n->tx_hdr, copy))
		why = antispoof_rules__verdict(n->tx_hdr + NET_HDR_BYTES, n->tx_hdr + copy,
					       &n->as_rules);
	if (why != ANTISPOOF_ALLOW) {
		n->as_drops[why]++;
		return true;
	}
	/* the buffers the copy covers go; the one it ends in is cut */
	for (off = copy; i < n->tx_niov && off >= n->tx_iov[i].iov_len; i++)
		off -= n->tx_iov[i].iov_len;
	memmove(&n->tx_iov[1], &n->tx_iov[i], (n->tx_niov - i) * sizeof(*n->tx_iov));
	n->tx_niov = n->tx_niov - i + 1;
	if (n->tx_niov > 1) {
		n->tx_iov[1].iov_base = (uint8_t *)n->tx_iov[1].iov_base + off;
		n->tx_iov[1].iov_len -= off;
	}
	n->tx_iov[0] = (struct iovec){ n->tx_hdr, copy };
	return false;
}

static void tx_used(struct virtio_net *n, uint16_t head, bool *used)
{
	if (virtq__push(&n->t.queues[NET_QUEUE_TX], head, 0))
		virtio_mmio__needs_reset(&n->t, "TX used ring outside guest RAM");
	*used = true;
}

/* The next chain into tx_iov: 1, 0 when there is none, -1 when the queue broke or the
 * frame was dropped. */
static int tx_take(struct virtio_net *n, bool *used)
{
	struct virtq *q = &n->t.queues[NET_QUEUE_TX];
	struct vq_chain *c = &n->chain;
	int ret;

	while ((ret = virtq__pop(q, c)) == 0) {
		if (!virtq__arm_notify(q))
			return 0;
	}
	if (ret < 0 || c->writable) {
		virtio_mmio__needs_reset(&n->t, ret < 0 ? "a malformed TX descriptor chain"
							: "a device-writable buffer in a TX chain");
		return -1;
	}
	if (c->readable < NET_HDR_BYTES + ETH_HDR_BYTES || c->readable > NET_FRAME_MAX) {
		n->m.tx_malformed_frames++;
		tx_used(n, c->head, used);
		return -1;
	}
	for (unsigned int i = 0; i < c->nr; i++) {
		void *p = gmem__ptr(n->t.gm, c->bufs[i].gpa, c->bufs[i].len);

		if (!p) {
			virtio_mmio__needs_reset(&n->t, "a TX buffer outside guest RAM");
			return -1;
		}
		n->tx_iov[i] = (struct iovec){ p, c->bufs[i].len };
	}
	n->tx_niov = c->nr;
	n->tx_len = (uint32_t)c->readable;
	check_source_mac(n);
	if (n->antispoof && tx_antispoof(n)) {
		tx_used(n, c->head, used);
		return -1;
	}
	n->tx_head = c->head;
	n->tx_pending = true;
	n->tx_charged = false;
	return 1;
}

/* Writes the frame in hand: false when the TAP has no room (it waits for EPOLLOUT). */
static bool tx_send(struct virtio_net *n)
{
	ssize_t w;

	do
		w = writev(n->tap.fd, n->tx_iov, (int)n->tx_niov);
	while (w < 0 && errno == EINTR);
	if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
		n->tx_blocked = true;
		n->m.tx_remaining_reqs_count++;
		return false;
	}
	if (w < 0) {
		if (!n->m.tap_write_fails++)
			log_warn("network interface %s: tap %s: write: %s", n->id, n->tap.name,
				 strerror(errno));
		n->m.tx_fails++;
		return true; /* dropped */
	}
	n->m.tx_count++;
	n->m.tx_packets_count++;
	n->m.tx_bytes_count += n->tx_len;
	return true;
}

/* Lets the loop serve other fds, and comes back through the queue's own kick eventfd. */
static void kick_self(struct virtio_net *n, uint16_t q)
{
	uint64_t one = 1;
	ssize_t r = write(n->t.kicks[q].h.fd, &one, sizeof(one));

	(void)r;
}

/* Frames from the guest to the TAP; one interrupt for the batch. */
static void tx_process(struct virtio_net *n)
{
	unsigned int frames = 0;
	bool used = false;
	int ret;

	while (n->active && virtio_mmio__queue_live(&n->t, NET_QUEUE_TX) && !n->tx_blocked) {
		if (frames++ == NET_TX_BATCH) {
			kick_self(n, NET_QUEUE_TX); /* more later: let the loop serve the rest */
			break;
		}
		if (!n->tx_pending) {
			ret = tx_take(n, &used);
			if (!ret && frames == 1)
				n->m.no_tx_avail_buffer++;
			if (!ret || (ret < 0 && !virtio_mmio__queue_live(&n->t, NET_QUEUE_TX)))
				break;
			if (ret < 0)
				continue;
		}
		if (!n->tx_charged) {
			if (!rate_limiter__consume(&n->tx_rl, n->tx_len, rate_limiter__now_ns())) {
				n->m.tx_rate_limiter_throttled++;
				n->m.tx_remaining_reqs_count++;
				break;
			}
			n->tx_charged = true;
		}
		if (!tx_send(n))
			break;
		n->tx_pending = false;
		tx_used(n, n->tx_head, &used);
	}
	if (used)
		virtio_mmio__used(&n->t, NET_QUEUE_TX);
	update_interest(n);
}

/* ---- events ---- */

static void net_notify(void *dev, uint16_t q)
{
	struct virtio_net *n = dev;

	if (q == NET_QUEUE_TX) {
		n->m.tx_queue_event_count++;
		tx_process(n);
		return;
	}
	n->m.rx_queue_event_count++;
	/* new buffers matter only to an RX that waits for them */
	if (n->rx_starved) {
		n->rx_starved = false;
		rx_process(n);
	}
}

static void on_tap(struct event_handler *h, uint32_t events)
{
	struct virtio_net *n = container_of(h, struct virtio_net, tap_h);

	virtio_mmio__lock(&n->t);
	if (events & (EPOLLERR | EPOLLHUP)) {
		tap_gone(n);
		tx_process(n); /* a frame that waited for room is dropped now */
	} else {
		if (events & EPOLLOUT) {
			n->tx_blocked = false;
			tx_process(n);
		}
		if (events & EPOLLIN) {
			n->m.rx_tap_event_count++;
			rx_process(n);
		}
	}
	update_interest(n);
	virtio_mmio__unlock(&n->t);
}

static void on_rx_rate_limiter(struct event_handler *h, uint32_t events)
{
	struct virtio_net *n = container_of(h, struct virtio_net, rx_rl_h);

	(void)events;
	virtio_mmio__lock(&n->t);
	rate_limiter__timer_fired(&n->rx_rl);
	n->m.rx_event_rate_limiter_count++;
	rx_process(n);
	virtio_mmio__unlock(&n->t);
}

static void on_tx_rate_limiter(struct event_handler *h, uint32_t events)
{
	struct virtio_net *n = container_of(h, struct virtio_net, tx_rl_h);

	(void)events;
	virtio_mmio__lock(&n->t);
	rate_limiter__timer_fired(&n->tx_rl);
	n->m.tx_rate_limiter_event_count++;
	tx_process(n);
	virtio_mmio__unlock(&n->t);
}

/* DRIVER_OK: the TAP's offloads follow what the driver took; RX starts. */
static int net_activate(void *dev)
{
	struct virtio_net *n = dev;
	int ret;

	n->features = n->t.driver_features;
	ret = net_tap__set_offloads(&n->tap, n->id, n->features);
	if (ret) {
		n->m.activate_fails++;
		log_warn("%s", error__get());
		return ret;
	}
	n->active = true;
	update_interest(n);
	return 0;
}

/* Chains taken and not used belong to the driver again; a held frame is dropped. */
static void net_reset(void *dev)
{
	struct virtio_net *n = dev;

	n->active = false;
	n->features = 0;
	virtio_net__rx_clear(&n->rx);
	n->held = NET_RX_HELD_NONE;
	n->rx_starved = false;
	n->tx_pending = n->tx_charged = n->tx_blocked = false;
	update_interest(n);
}

static const struct virtio_dev_ops net_ops = {
	.device_id = VIRTIO_ID_NET,
	.name = "virtio-net",
	.nr_queues = NET_QUEUES,
	.features = net_features,
	.config_size = NET_CONFIG_SIZE,
	.config_read = net_config_read,
	.config_write = net_config_write,
	.activate = net_activate,
	.reset = net_reset,
	.notify = net_notify,
};

/* ---- set-up ---- */

static int limiter_init(struct virtio_net *n, struct rate_limiter *rl, bool has,
			const struct rate_limiter_config *cfg, const char *which)
{
	int ret = rate_limiter__init(rl, has ? cfg : NULL, rate_limiter__now_ns());

	if (ret)
		return error__set(ret, "network interface %s: %s: %s", n->id, which,
				  strerror(-ret));
	return 0;
}

/* Anti-spoofing by the tc filter, or by the device itself when it may not attach one. */
static int antispoof_start(struct virtio_net *n, const char *ifname,
			   const struct antispoof_config *as)
{
	int ret = net_bpf__attach(&n->bpf, n->id, ifname, n->mac, as);

	if (!net_bpf__unprivileged(ret))
		return ret;
	net_bpf__rules(&n->as_rules, n->mac, as);
	n->antispoof = true;
	log_info("network interface %s: anti-spoofing enforced by Ember itself: the tc filter "
		 "needs CAP_NET_ADMIN and CAP_BPF (%s); %u IPv4 and %u IPv6 addresses",
		 n->id, strerror(-ret), as->nr_ipv4, as->nr_ipv6);
	return 0;
}

/* What does not depend on the TAP or the transport. */
static int net_init(struct virtio_net *n, const struct net_config *cfg)
{
	int ret;

	snprintf(n->id, sizeof(n->id), "%s", cfg->iface_id ? cfg->iface_id : "");
	n->has_mac = cfg->has_guest_mac;
	memcpy(n->mac, cfg->guest_mac, sizeof(n->mac));
	n->bounce = malloc(NET_FRAME_MAX + 1);
	if (!n->bounce)
		return error__set(-ENOMEM, "network interface %s: out of memory", n->id);
	ret = limiter_init(n, &n->rx_rl, cfg->has_rx_rate_limiter, &cfg->rx_rate_limiter,
			   "rx_rate_limiter");
	if (!ret)
		ret = limiter_init(n, &n->tx_rl, cfg->has_tx_rate_limiter, &cfg->tx_rate_limiter,
				   "tx_rate_limiter");
	return ret;
}

static struct virtio_net *net_alloc(void)
{
	struct virtio_net *n = calloc(1, sizeof(*n));

	if (!n)
		return NULL;
	n->tap.fd = -1;
	n->rx_rl.timer_fd = n->tx_rl.timer_fd = -1;
	return n;
}

static void net_handlers(struct virtio_net *n)
{
	n->tap_h = (struct event_handler){ n->tap.fd, on_tap };
	n->rx_rl_h = (struct event_handler){ n->rx_rl.timer_fd, on_rx_rate_limiter };
	n->tx_rl_h = (struct event_handler){ n->tx_rl.timer_fd, on_tx_rate_limiter };
}

int virtio_net__create(struct virtio_net **out, const struct net_config *cfg, int vm_fd,
		       const struct gmem *gm, uint64_t base, uint32_t gsi)
{
	struct virtio_net *n = net_alloc();
	int ret;

	if (!n)
		return -ENOMEM;
	ret = net_init(n, cfg);
	if (!ret)
		ret = net_tap__open(&n->tap, n->id, cfg->host_dev_name ? cfg->host_dev_name : "");
	/* Before the guest can send anything: the filter is in place from the first frame. */
	if (!ret && cfg->has_anti_spoofing)
		ret = antispoof_start(n, n->tap.name, &cfg->anti_spoofing);
	if (!ret)
		ret = virtio_mmio__init(&n->t, vm_fd, gm, base, gsi, &net_ops, n);
	if (ret) {
		virtio_net__destroy(n);
		return ret;
	}
	net_handlers(n);
	*out = n;
	return 0;
}

int virtio_net__create_detached(struct virtio_net **out, const struct net_config *cfg, int fd,
				const struct gmem *gm)
{
	struct virtio_net *n = net_alloc();
	int ret;

	if (!n) {
		close(fd);
		return -ENOMEM;
	}
	ret = net_tap__adopt(&n->tap, fd, cfg->host_dev_name ? cfg->host_dev_name : "detached");
	if (!ret)
		ret = net_init(n, cfg);
	if (!ret && cfg->has_anti_spoofing)
		ret = antispoof_start(n, n->tap.name, &cfg->anti_spoofing);
	if (!ret)
		ret = virtio_mmio__init(&n->t, -1, gm, 0, 0, &net_ops, n);
	if (ret) {
		virtio_net__destroy(n);
		return ret;
	}
	net_handlers(n);
	*out = n;
	return 0;
}

int virtio_net__watch(struct virtio_net *n, struct event_loop *loop)
{
	int ret = virtio_mmio__watch(&n->t, loop);

	virtio_mmio__lock(&n->t);
	n->loop = loop;
	if (!ret) {
		n->tap_events = tap_interest(n);
		ret = event_loop__add(loop, &n->tap_h, n->tap_events);
	}
	if (!ret && n->rx_rl_h.fd >= 0)
		ret = event_loop__add(loop, &n->rx_rl_h, EPOLLIN);
	if (!ret && n->tx_rl_h.fd >= 0)
		ret = event_loop__add(loop, &n->tx_rl_h, EPOLLIN);
	virtio_mmio__unlock(&n->t);
	if (ret)
		return error__set(ret, "network interface %s: epoll_ctl: %s", n->id,
				  strerror(-ret));
	return 0;
}

/* A limiter that had no timer has one now: into the loop with it. */
static int watch_timer(struct virtio_net *n, struct rate_limiter *rl, struct event_handler *h)
{
	int ret = 0;

	if (rl->timer_fd < 0 || h->fd >= 0)
		return 0;
	h->fd = rl->timer_fd;
	if (n->loop)
		ret = event_loop__add(n->loop, h, EPOLLIN);
	if (ret)
		h->fd = -1;
	return ret;
}

static int reconfigure(struct virtio_net *n, struct rate_limiter *rl, struct event_handler *h,
		       bool has, const struct rate_limiter_config *cfg, const char *which)
{
	int ret = rate_limiter__reconfigure(rl, has ? cfg : NULL, rate_limiter__now_ns());

	if (!ret)
		ret = watch_timer(n, rl, h);
	if (ret)
		return error__set(ret, "network interface %s: %s: %s", n->id, which,
				  strerror(-ret));
	return 0;
}

/*
 * Both limiters or neither: the RX one is put back as it was when the TX one fails (a timer
 * it may have created meanwhile stays, unarmed). A frame that waits for tokens is looked at
 * again at once, under the new limits.
 */
int virtio_net__update(struct virtio_net *n, const struct net_config *cfg, unsigned int changed)
{
	struct rate_limiter saved;
	int ret = 0;

	virtio_mmio__lock(&n->t);
	saved = n->rx_rl;
	if (changed & NET_CHANGED_RX_RATE_LIMITER)
		ret = reconfigure(n, &n->rx_rl, &n->rx_rl_h, cfg->has_rx_rate_limiter,
				  &cfg->rx_rate_limiter, "rx_rate_limiter");
	if (!ret && (changed & NET_CHANGED_TX_RATE_LIMITER)) {
		ret = reconfigure(n, &n->tx_rl, &n->tx_rl_h, cfg->has_tx_rate_limiter,
				  &cfg->tx_rate_limiter, "tx_rate_limiter");
		if (ret) {
			saved.timer_fd = n->rx_rl.timer_fd;
			n->rx_rl = saved;
		}
	}
	if (!ret && n->rx_rl.blocked)
		rate_limiter__timer_fired(&n->rx_rl);
	if (!ret && n->tx_rl.blocked)
		rate_limiter__timer_fired(&n->tx_rl);
	if (!ret) {
		rx_process(n);
		tx_process(n);
	}
	virtio_mmio__unlock(&n->t);
	return ret;
}

void virtio_net__sync_metrics(struct virtio_net *n)
{
	struct net_bpf_drops d;

	/* one of the two is zero: the filter's, or the device's own */
	net_bpf__drops(&n->bpf, &d);
	n->m.tx_antispoof_mac_drops = d.mac + n->as_drops[ANTISPOOF_DROP_MAC];
	n->m.tx_antispoof_ip_drops = d.ip + n->as_drops[ANTISPOOF_DROP_IP];
	n->m.tx_antispoof_other_drops = d.other + n->as_drops[ANTISPOOF_DROP_OTHER];
}

void virtio_net__destroy(struct virtio_net *n)
{
	if (!n)
		return;
	net_bpf__detach(&n->bpf);
	net_tap__close(&n->tap);
	rate_limiter__destroy(&n->rx_rl);
	rate_limiter__destroy(&n->tx_rl);
	if (n->t.ops)
		virtio_mmio__destroy(&n->t);
	free(n->bounce);
	free(n);
}
