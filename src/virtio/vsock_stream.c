// SPDX-License-Identifier: Apache-2.0
#include "virtio/vsock_stream.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "vmm/log.h"

#define SOCK_EVENTS (EPOLLIN | EPOLLRDHUP | EPOLLET)
#define RETRY_PERIOD_NS (5ULL * 1000000ULL)  /* connect retries (a full listen backlog) */
#define TICK_PERIOD_NS (100ULL * 1000000ULL) /* timeouts */

uint64_t vsock_stream__now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* ---- lists: the rx round robin, and streams with a timer ---- */

static void rx_add(struct virtio_vsock *v, struct vsock_stream *s)
{
	if (s->on_rx)
		return;
	s->on_rx = true;
	s->rx_next = NULL;
	s->rx_prev = v->rx_tail;
	if (v->rx_tail)
		v->rx_tail->rx_next = s;
	else
		v->rx_head = s;
	v->rx_tail = s;
}

void vsock_stream__rx_del(struct virtio_vsock *v, struct vsock_stream *s)
{
	if (!s->on_rx)
		return;
	if (s->rx_prev)
		s->rx_prev->rx_next = s->rx_next;
	else
		v->rx_head = s->rx_next;
	if (s->rx_next)
		s->rx_next->rx_prev = s->rx_prev;
	else
		v->rx_tail = s->rx_prev;
	s->on_rx = false;
	s->rx_prev = s->rx_next = NULL;
}

static void timed_set(struct virtio_vsock *v, struct vsock_stream *s, bool on)
{
	if (on == s->on_timed)
		return;
	s->on_timed = on;
	if (on) {
		s->t_prev = NULL;
		s->t_next = v->timed;
		if (v->timed)
			v->timed->t_prev = s;
		v->timed = s;
		return;
	}
	if (s->t_prev)
		s->t_prev->t_next = s->t_next;
	else
		v->timed = s->t_next;
	if (s->t_next)
		s->t_next->t_prev = s->t_prev;
	s->t_prev = s->t_next = NULL;
}

/*
 * A periodic tick while anything waits: fast for connect retries and for the guest's
 * handling of a restore's reset, slow for timeouts.
 */
static void update_timer(struct virtio_vsock *v)
{
	uint64_t want = v->nr_connecting || v->reset_unacked ? RETRY_PERIOD_NS
			: v->timed			      ? TICK_PERIOD_NS
							      : 0;
	struct timespec ts = { (time_t)(want / 1000000000ULL), (long)(want % 1000000000ULL) };
	struct itimerspec its = { ts, ts };

	if (want == v->timer_period_ns || v->timer_h.fd < 0)
		return;
	if (timerfd_settime(v->timer_h.fd, 0, &its, NULL) < 0) {
		v->m.muxer_event_fails++;
		return;
	}
	v->timer_period_ns = want;
}

void vsock_stream__update_timer(struct virtio_vsock *v)
{
	update_timer(v);
}

/* ---- the pool ---- */

static void on_stream(struct event_handler *h, uint32_t events);

static struct vsock_stream *stream_get(struct virtio_vsock *v)
{
	struct vsock_stream *s = v->free_list, *next;

	if (s) {
		v->free_list = s->free_next;
	} else {
		s = calloc(1, sizeof(*s));
		if (!s)
			return NULL;
		s->pool_next = v->pool;
		v->pool = s;
	}
	next = s->pool_next;
	*s = (struct vsock_stream){ .h = { -1, on_stream }, .v = v, .pool_next = next };
	return s;
}

static void close_host(struct vsock_stream *s)
{
	if (s->h.fd >= 0)
		close(s->h.fd); /* also leaves the epoll set */
	s->h.fd = -1;
	s->readable = s->out_armed = false;
	free(s->buf);
	s->buf = NULL;
	s->buf_head = s->buf_len = 0;
}

static void count_kill(struct virtio_vsock *v, struct vsock_stream *s)
{
	if (s->c.killed && !s->kill_counted) {
		s->kill_counted = true;
		v->m.conns_killed++;
	}
}

void vsock_stream__remove(struct virtio_vsock *v, struct vsock_stream *s)
{
	count_kill(v, s);
	if (s->in_table) {
		vsock_conn__remove(&v->conns, &s->c);
		s->in_table = false;
		v->m.conns_removed++;
	}
	if (s->phase == VSOCK_STREAM_CONNECTING)
		v->nr_connecting--;
	else if (s->phase == VSOCK_STREAM_HANDSHAKE)
		v->nr_handshakes--;
	vsock_stream__rx_del(v, s);
	timed_set(v, s, false);
	close_host(s);
	s->phase = VSOCK_STREAM_FREE;
	s->free_next = v->free_list;
	v->free_list = s;
	update_timer(v);
}

static void add_conn(struct virtio_vsock *v, struct vsock_stream *s)
{
	/* the callers looked the key up first: this cannot collide */
	if (!vsock_conn__add(&v->conns, &s->c)) {
		s->in_table = true;
		v->m.conns_added++;
	}
}

void vsock_stream__drop_all(struct virtio_vsock *v)
{
	for (struct vsock_stream *s = v->pool; s; s = s->pool_next)
		if (s->phase != VSOCK_STREAM_FREE)
			vsock_stream__remove(v, s);
	v->rst_count = 0;
}

void vsock_stream__free_all(struct virtio_vsock *v)
{
	struct vsock_stream *s, *next;

	for (s = v->pool; s; s = next) {
		next = s->pool_next;
		close_host(s);
		free(s);
	}
	v->pool = v->free_list = v->rx_head = v->rx_tail = v->timed = NULL;
}

static void arm_out(struct virtio_vsock *v, struct vsock_stream *s, bool on)
{
	if (s->out_armed == on || s->h.fd < 0)
		return;
	if (event_loop__mod(v->loop, &s->h, SOCK_EVENTS | (on ? EPOLLOUT : 0))) {
		v->m.conn_event_fails++;
		vsock_conn__kill(&s->c);
		return;
	}
	s->out_armed = on;
}

/*
 * A dead stream loses its host socket at once (its RST may wait for an rx buffer; without
 * a live rx queue it cannot go out, and the stream goes too); then the timer and the rx
 * round robin are brought up to date.
 */
void vsock_stream__changed(struct virtio_vsock *v, struct vsock_stream *s)
{
	if (s->phase != VSOCK_STREAM_LIVE && s->phase != VSOCK_STREAM_CONNECTING)
		return;
	if ((s->c.local_shut & VSOCK_SHUTDOWN_RCV) && s->buf_len) {
		/* the host socket is gone: what it did not take is lost */
		free(s->buf);
		s->buf = NULL;
		s->buf_len = s->buf_head = 0;
		arm_out(v, s, false);
	}
	count_kill(v, s);
	if (s->c.state == VSOCK_CONN_DEAD) {
		close_host(s);
		if (!virtio_mmio__queue_live(&v->t, VSOCK_RXQ)) {
			vsock_stream__remove(v, s);
			return;
		}
	}
	timed_set(v, s, s->c.deadline_ns || s->phase == VSOCK_STREAM_CONNECTING);
	if (s->phase == VSOCK_STREAM_LIVE &&
	    vsock_conn__next_op(&s->c, s->readable) != VSOCK_OP_INVALID)
		rx_add(v, s);
	update_timer(v);
}

/* ---- bytes to and from the host socket ---- */

static ssize_t send_iov(int fd, const struct iovec *iov, int n)
{
	struct msghdr msg = { .msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)n };
	ssize_t k;

	do
		k = sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
	while (k < 0 && errno == EINTR);
	return k;
}

/* Keeps the bytes of iov after the first skip in the ring; -ENOMEM or -ENOSPC. */
static int buffer_put(struct vsock_stream *s, const struct iovec *iov, int n, size_t skip)
{
	if (!s->buf && !(s->buf = malloc(VSOCK_CONN_BUF_ALLOC)))
		return -ENOMEM;
	for (int i = 0; i < n; i++) {
		const uint8_t *p = iov[i].iov_base;
		size_t len = iov[i].iov_len;

		if (skip >= len) {
			skip -= len;
			continue;
		}
		p += skip;
		len -= skip;
		skip = 0;
		if (len > VSOCK_CONN_BUF_ALLOC - s->buf_len)
			return -ENOSPC;
		while (len) {
			uint32_t at = (s->buf_head + s->buf_len) % VSOCK_CONN_BUF_ALLOC;
			uint32_t k = VSOCK_CONN_BUF_ALLOC - at;

			k = k < len ? k : (uint32_t)len;
			memcpy(s->buf + at, p, k);
			s->buf_len += k;
			p += k;
			len -= k;
		}
	}
	return 0;
}

void vsock_stream__shut_wr(struct vsock_stream *s)
{
	if (s->wr_shut || s->h.fd < 0 || s->buf_len)
		return;
	shutdown(s->h.fd, SHUT_WR);
	s->wr_shut = true;
}

void vsock_stream__shut_rd(struct vsock_stream *s)
{
	if (s->h.fd >= 0)
		shutdown(s->h.fd, SHUT_RD);
}

static void forwarded(struct virtio_vsock *v, struct vsock_stream *s, ssize_t k)
{
	vsock_conn__forwarded(&s->c, (uint32_t)k);
	v->m.tx_bytes_count += (uint64_t)k;
}

/* EPOLLOUT: what the ring holds goes to the host socket. */
static void flush(struct virtio_vsock *v, struct vsock_stream *s)
{
	while (s->buf_len) {
		uint32_t first = VSOCK_CONN_BUF_ALLOC - s->buf_head;
		struct iovec iov[2] = { { s->buf + s->buf_head, s->buf_len } };
		ssize_t k;

		if (first < s->buf_len) {
			iov[0].iov_len = first;
			iov[1] = (struct iovec){ s->buf, s->buf_len - first };
		}
		k = send_iov(s->h.fd, iov, iov[1].iov_len ? 2 : 1);
		if (k <= 0) {
			if (k < 0 && errno != EAGAIN) {
				v->m.tx_flush_fails++;
				vsock_conn__kill(&s->c);
			}
			return;
		}
		s->buf_head = (s->buf_head + (uint32_t)k) % VSOCK_CONN_BUF_ALLOC;
		s->buf_len -= (uint32_t)k;
		forwarded(v, s, k);
	}
	free(s->buf); /* idle connections keep no buffer */
	s->buf = NULL;
	s->buf_head = 0;
	arm_out(v, s, false);
	if (s->c.peer_shut & VSOCK_SHUTDOWN_SEND)
		vsock_stream__shut_wr(s);
	vsock_conn__check_closed(&s->c, vsock_stream__now_ns());
}

void vsock_stream__write(struct virtio_vsock *v, struct vsock_stream *s, const struct iovec *iov,
			 int n, uint32_t len)
{
	ssize_t k = 0;

	if (s->h.fd < 0) {
		vsock_conn__kill(&s->c);
		return;
	}
	if (!s->buf_len) {
		k = send_iov(s->h.fd, iov, n);
		if (k < 0 && errno != EAGAIN) {
			v->m.tx_write_fails++;
			vsock_conn__kill(&s->c);
			return;
		}
		k = k < 0 ? 0 : k;
		forwarded(v, s, k);
	}
	/* the credit check let in no more than the ring holds */
	if ((uint32_t)k < len && buffer_put(s, iov, n, (size_t)k)) {
		v->m.tx_write_fails++;
		vsock_conn__kill(&s->c);
		return;
	}
	if (s->buf_len)
		arm_out(v, s, true);
}

void vsock_stream__say_ok(struct virtio_vsock *v, struct vsock_stream *s)
{
	char msg[24];
	int n = snprintf(msg, sizeof(msg), "OK %u\n", s->c.local_port);

	if (s->h.fd < 0 || send(s->h.fd, msg, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) != n) {
		v->m.conn_event_fails++;
		vsock_conn__kill(&s->c);
		return;
	}
	s->readable = true; /* bytes the host sent right after its CONNECT line */
}

/* After EOF: did the host close its socket (HUP), or only shut down its sending side? */
static bool host_gone(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN | POLLRDHUP };

	return poll(&p, 1, 0) == 1 && (p.revents & (POLLHUP | POLLERR));
}

int vsock_stream__read(struct virtio_vsock *v, struct vsock_stream *s, const struct iovec *iov,
		       int n, uint32_t *len)
{
	ssize_t k;

	do
		k = readv(s->h.fd, iov, n);
	while (k < 0 && errno == EINTR);
	if (k > 0) {
		*len = (uint32_t)k;
		v->m.rx_bytes_count += (uint64_t)k;
		return 1;
	}
	s->readable = false;
	if (!k) {
		vsock_conn__host_eof(&s->c, host_gone(s->h.fd), vsock_stream__now_ns());
	} else if (errno != EAGAIN) {
		v->m.rx_read_fails++; /* ECONNRESET: the host closed with our bytes unread */
		vsock_conn__kill(&s->c);
	}
	return 0;
}

/* ---- connecting for the guest ---- */

static int connect_port(struct virtio_vsock *v, int fd, uint32_t port)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int n = snprintf(a.sun_path, sizeof(a.sun_path), "%s_%u", v->uds_path, port);

	if (n < 0 || (size_t)n >= sizeof(a.sun_path))
		return -ENAMETOOLONG;
	if (!connect(fd, (struct sockaddr *)&a, sizeof(a)) || errno == EISCONN)
		return 0;
	if (errno == EAGAIN || errno == EINPROGRESS || errno == EALREADY || errno == EINTR)
		return -EAGAIN;
	return -errno;
}

static int register_stream(struct virtio_vsock *v, struct vsock_stream *s)
{
	if (!v->loop || event_loop__add(v->loop, &s->h, SOCK_EVENTS)) {
		v->m.conn_event_fails++;
		return -EIO;
	}
	return 0;
}

int vsock_stream__connect(struct virtio_vsock *v, const struct vsock_hdr *req)
{
	struct vsock_stream *s = v->conns.count < VSOCK_MAX_CONNS ? stream_get(v) : NULL;
	int fd = -1, ret = v->conns.count < VSOCK_MAX_CONNS ? -ENOMEM : -EMFILE;

	if (s) {
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		ret = fd < 0 ? -errno : connect_port(v, fd, req->dst_port);
	}
	if (ret && ret != -EAGAIN) {
		if (fd >= 0)
			close(fd);
		if (s)
			vsock_stream__remove(v, s);
		return ret;
	}
	vsock_conn__init_peer(&s->c, req);
	s->h.fd = fd;
	add_conn(v, s);
	if (ret == -EAGAIN) {
		s->phase = VSOCK_STREAM_CONNECTING;
		s->connect_deadline_ns = vsock_stream__now_ns() + VSOCK_CONN_TIMEOUT_NS;
		v->nr_connecting++;
	} else {
		s->phase = VSOCK_STREAM_LIVE;
		if (register_stream(v, s))
			vsock_conn__kill(&s->c);
	}
	vsock_stream__changed(v, s);
	return 0;
}

static void retry_connect(struct virtio_vsock *v, struct vsock_stream *s, uint64_t now)
{
	int ret = connect_port(v, s->h.fd, s->c.local_port);

	if (ret == -EAGAIN && now < s->connect_deadline_ns)
		return;
	v->nr_connecting--;
	s->phase = VSOCK_STREAM_LIVE;
	if (ret || register_stream(v, s))
		vsock_conn__kill(&s->c); /* RST, and the socket closed */
}

void vsock_stream__tick(struct virtio_vsock *v)
{
	uint64_t now = vsock_stream__now_ns();

	for (struct vsock_stream *s = v->timed, *next; s; s = next) {
		next = s->t_next;
		if (s->phase == VSOCK_STREAM_CONNECTING)
			retry_connect(v, s, now);
		else
			vsock_conn__expire(&s->c, now);
		vsock_stream__changed(v, s);
	}
}

/* ---- host-initiated: accepting, the CONNECT line ---- */

static void reject(struct virtio_vsock *v, struct vsock_stream *s, const char *why)
{
	log_debug("vsock: host connection closed: %s", why);
	v->m.connect_rejects++;
	vsock_stream__remove(v, s);
}

static uint32_t alloc_local_port(struct virtio_vsock *v, uint32_t peer_port)
{
	/* Firecracker's range, [1 << 30, 1 << 31), round robin, skipping ports in use */
	do
		v->last_local_port = ((v->last_local_port + 1) & ~(1U << 31)) | (1U << 30);
	while (vsock_conn__find(&v->conns, v->last_local_port, peer_port));
	return v->last_local_port;
}

/* The CONNECT line, peeked so that no byte after it is taken. */
static void handshake(struct virtio_vsock *v, struct vsock_stream *s)
{
	char line[VSOCK_CONNECT_LINE_MAX];
	ssize_t n = recv(s->h.fd, line, sizeof(line), MSG_PEEK | MSG_DONTWAIT);
	const char *nl;
	uint32_t port;
	size_t len;

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		vsock_stream__remove(v, s); /* the host gave up */
		return;
	}
	nl = memchr(line, '\n', (size_t)n);
	if (!nl) {
		if ((size_t)n == sizeof(line))
			reject(v, s, "no CONNECT line in 32 bytes");
		return;
	}
	len = (size_t)(nl - line) + 1;
	if (vsock_packet__parse_connect(line, len, &port) ||
	    recv(s->h.fd, line, len, MSG_DONTWAIT) != (ssize_t)len) {
		reject(v, s, "not a CONNECT <port> line");
		return;
	}
	if (!virtio_mmio__queue_live(&v->t, VSOCK_RXQ) || v->conns.count >= VSOCK_MAX_CONNS) {
		reject(v, s, "the device is not running or has too many connections");
		return;
	}
	v->nr_handshakes--;
	vsock_conn__init_local(&s->c, alloc_local_port(v, port), port, vsock_stream__now_ns());
	s->phase = VSOCK_STREAM_LIVE;
	add_conn(v, s);
	vsock_stream__changed(v, s);
}

void vsock_stream__accept_all(struct virtio_vsock *v)
{
	v->accept_pending = false;
	for (;;) {
		struct vsock_stream *s;
		int fd;

		if (v->nr_handshakes >= VSOCK_MAX_HANDSHAKES) {
			/* the rest wait in the backlog until some CONNECT lines are in */
			v->accept_pending = true;
			return;
		}
		fd = accept4(v->listen_h.fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0 && (errno == EINTR || errno == ECONNABORTED))
			continue;
		if (fd < 0) {
			if (errno != EAGAIN) {
				/* out of fds: tried again on the next event or tick */
				v->m.muxer_event_fails++;
				v->accept_pending = true;
			}
			return;
		}
		s = stream_get(v);
		if (!s) {
			v->m.connect_rejects++;
			close(fd);
			continue;
		}
		s->h.fd = fd;
		s->phase = VSOCK_STREAM_HANDSHAKE;
		v->nr_handshakes++;
		if (register_stream(v, s))
			vsock_stream__remove(v, s);
	}
}

static void on_stream(struct event_handler *h, uint32_t events)
{
	struct vsock_stream *s = container_of(h, struct vsock_stream, h);
	struct virtio_vsock *v = s->v;

	virtio_mmio__lock(&v->t);
	if (s->phase == VSOCK_STREAM_HANDSHAKE) {
		handshake(v, s);
	} else if (s->phase == VSOCK_STREAM_LIVE && s->h.fd >= 0) {
		if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
			s->readable = true;
		if (s->buf_len)
			flush(v, s);
		vsock_stream__changed(v, s);
	}
	virtio_vsock__run(v);
	virtio_mmio__unlock(&v->t);
}
