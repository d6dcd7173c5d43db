// SPDX-License-Identifier: Apache-2.0
#include "virtio/vsock_conn.h"

#include <errno.h>
#include <string.h>

void vsock_conn__init_local(struct vsock_conn *c, uint32_t local_port, uint32_t peer_port,
			    uint64_t now_ns)
{
	memset(c, 0, sizeof(*c));
	c->local_port = local_port;
	c->peer_port = peer_port;
	c->state = VSOCK_CONN_LOCAL_INIT;
	c->owed = VSOCK_OWE_REQUEST;
	c->deadline_ns = now_ns + VSOCK_CONN_TIMEOUT_NS;
}

void vsock_conn__init_peer(struct vsock_conn *c, const struct vsock_hdr *req)
{
	memset(c, 0, sizeof(*c));
	c->local_port = req->dst_port;
	c->peer_port = req->src_port;
	c->state = VSOCK_CONN_PEER_INIT;
	c->owed = VSOCK_OWE_RESPONSE;
	c->peer_buf_alloc = req->buf_alloc;
	c->peer_fwd_cnt = req->fwd_cnt;
}

bool vsock_conn__may_send(const struct vsock_conn *c)
{
	return c->state == VSOCK_CONN_ESTABLISHED && !(c->local_shut & VSOCK_SHUTDOWN_SEND) &&
	       !(c->peer_shut & VSOCK_SHUTDOWN_RCV);
}

bool vsock_conn__may_recv(const struct vsock_conn *c)
{
	return c->state == VSOCK_CONN_ESTABLISHED && !(c->peer_shut & VSOCK_SHUTDOWN_SEND) &&
	       !(c->local_shut & VSOCK_SHUTDOWN_RCV);
}

uint32_t vsock_conn__peer_credit(const struct vsock_conn *c)
{
	uint32_t in_flight = c->rx_cnt - c->peer_fwd_cnt;

	/* a guest that claims to have consumed more than we sent gets nothing more */
	return in_flight > c->peer_buf_alloc ? 0 : c->peer_buf_alloc - in_flight;
}

uint32_t vsock_conn__buffered(const struct vsock_conn *c)
{
	return c->recv_cnt - c->fwd_cnt;
}

uint32_t vsock_conn__our_credit(const struct vsock_conn *c)
{
	uint32_t used = vsock_conn__buffered(c);

	return used > VSOCK_CONN_BUF_ALLOC ? 0 : VSOCK_CONN_BUF_ALLOC - used;
}

void vsock_conn__kill(struct vsock_conn *c)
{
	if (c->state == VSOCK_CONN_DEAD)
		return;
	c->state = VSOCK_CONN_DEAD;
	c->killed = true;
	c->owed = VSOCK_OWE_RST;
	c->deadline_ns = 0;
}

bool vsock_conn__expire(struct vsock_conn *c, uint64_t now_ns)
{
	if (!c->deadline_ns || now_ns < c->deadline_ns)
		return false;
	vsock_conn__kill(c);
	return true;
}

/* The RST that ends a connection both sides closed: not an error. */
static void finish(struct vsock_conn *c)
{
	c->state = VSOCK_CONN_DEAD;
	c->owed = VSOCK_OWE_RST;
	c->deadline_ns = 0;
}

static bool both_over(const struct vsock_conn *c)
{
	bool to_host_over =
		(c->peer_shut & VSOCK_SHUTDOWN_SEND) || (c->local_shut & VSOCK_SHUTDOWN_RCV);
	bool to_guest_over =
		(c->local_shut & VSOCK_SHUTDOWN_SEND) || (c->peer_shut & VSOCK_SHUTDOWN_RCV);

	return to_host_over && to_guest_over;
}

void vsock_conn__check_closed(struct vsock_conn *c, uint64_t now_ns)
{
	if (c->state != VSOCK_CONN_ESTABLISHED || !both_over(c))
		return;
	if (!vsock_conn__buffered(c) || (c->local_shut & VSOCK_SHUTDOWN_RCV))
		finish(c);
	else if (!c->deadline_ns)
		c->deadline_ns = now_ns + VSOCK_CONN_TIMEOUT_NS;
}

void vsock_conn__host_eof(struct vsock_conn *c, bool gone, uint64_t now_ns)
{
	uint32_t shut = VSOCK_SHUTDOWN_SEND;

	if (c->state != VSOCK_CONN_ESTABLISHED)
		return;
	/* with the guest done sending, the host has nothing more to receive either */
	if (gone || (c->peer_shut & VSOCK_SHUTDOWN_SEND))
		shut |= VSOCK_SHUTDOWN_RCV;
	if ((c->local_shut | shut) == c->local_shut)
		return;
	c->local_shut |= shut;
	c->owed |= VSOCK_OWE_SHUTDOWN;
	/* the guest answers with RST (or its own SHUTDOWN); we wait for it, not forever */
	if (both_over(c) && !c->deadline_ns)
		c->deadline_ns = now_ns + VSOCK_CONN_TIMEOUT_NS;
}

static bool peer_needs_credit(const struct vsock_conn *c)
{
	uint32_t seen_used = c->recv_cnt - c->fwd_cnt_sent;
	uint32_t seen_free =
		seen_used > VSOCK_CONN_BUF_ALLOC ? 0 : VSOCK_CONN_BUF_ALLOC - seen_used;

	return c->fwd_cnt != c->fwd_cnt_sent && seen_free < VSOCK_CONN_CREDIT_THRESHOLD;
}

void vsock_conn__forwarded(struct vsock_conn *c, uint32_t n)
{
	c->fwd_cnt += n;
	if (vsock_conn__may_recv(c) && peer_needs_credit(c))
		c->owed |= VSOCK_OWE_CREDIT_UPDATE;
}

static unsigned int recv_rw(struct vsock_conn *c, const struct vsock_hdr *h)
{
	if (!vsock_conn__may_recv(c))
		return VSOCK_DO_IGNORED;
	if (h->len > vsock_conn__our_credit(c)) {
		vsock_conn__kill(c); /* more than the credit we gave */
		return 0;
	}
	c->recv_cnt += h->len;
	return VSOCK_DO_DATA;
}

static unsigned int recv_shutdown(struct vsock_conn *c, const struct vsock_hdr *h, uint64_t now_ns)
{
	uint32_t added = h->flags & VSOCK_SHUTDOWN_BOTH & ~c->peer_shut;
	unsigned int todo = 0;

	if (c->state != VSOCK_CONN_ESTABLISHED)
		return VSOCK_DO_IGNORED;
	c->peer_shut |= added;
	if (added & VSOCK_SHUTDOWN_RCV)
		todo |= VSOCK_DO_SHUT_RD;
	if (added & VSOCK_SHUTDOWN_SEND)
		todo |= VSOCK_DO_SHUT_WR;
	vsock_conn__check_closed(c, now_ns);
	return todo;
}

unsigned int vsock_conn__recv(struct vsock_conn *c, const struct vsock_hdr *h, uint64_t now_ns)
{
	if (h->op == VSOCK_OP_RST)
		return VSOCK_DO_REMOVE;
	if (c->state == VSOCK_CONN_DEAD)
		return VSOCK_DO_IGNORED;
	c->peer_buf_alloc = h->buf_alloc;
	c->peer_fwd_cnt = h->fwd_cnt;
	/* asked once per stall: a guest whose reader sleeps is not pinged in a loop */
	if (vsock_conn__peer_credit(c))
		c->credit_requested = false;
	switch (h->op) {
	case VSOCK_OP_RESPONSE:
		/* only an answer to a REQUEST we sent */
		if (c->state != VSOCK_CONN_LOCAL_INIT || (c->owed & VSOCK_OWE_REQUEST))
			return VSOCK_DO_IGNORED;
		c->state = VSOCK_CONN_ESTABLISHED;
		c->deadline_ns = 0;
		return VSOCK_DO_CONNECTED;
	case VSOCK_OP_RW:
		return recv_rw(c, h);
	case VSOCK_OP_SHUTDOWN:
		return recv_shutdown(c, h, now_ns);
	case VSOCK_OP_CREDIT_UPDATE:
		return 0;
	case VSOCK_OP_CREDIT_REQUEST:
		c->owed |= VSOCK_OWE_CREDIT_UPDATE;
		return 0;
	default: /* a second REQUEST, or an op check_tx would have refused */
		return VSOCK_DO_IGNORED;
	}
}

enum vsock_op vsock_conn__next_op(const struct vsock_conn *c, bool host_readable)
{
	if (c->owed & VSOCK_OWE_RST)
		return VSOCK_OP_RST;
	if (c->state == VSOCK_CONN_DEAD)
		return VSOCK_OP_INVALID;
	if (c->owed & VSOCK_OWE_RESPONSE)
		return VSOCK_OP_RESPONSE;
	if (c->owed & VSOCK_OWE_REQUEST)
		return VSOCK_OP_REQUEST;
	if (host_readable && vsock_conn__may_send(c)) {
		if (vsock_conn__peer_credit(c))
			return VSOCK_OP_RW;
		if (!c->credit_requested)
			return VSOCK_OP_CREDIT_REQUEST;
	}
	if (c->owed & VSOCK_OWE_SHUTDOWN)
		return VSOCK_OP_SHUTDOWN;
	if (c->owed & VSOCK_OWE_CREDIT_UPDATE)
		return VSOCK_OP_CREDIT_UPDATE;
	return VSOCK_OP_INVALID;
}

void vsock_conn__emit(struct vsock_conn *c, enum vsock_op op, uint32_t len, uint64_t guest_cid,
		      struct vsock_hdr *h)
{
	*h = (struct vsock_hdr){
		.src_cid = VSOCK_HOST_CID,
		.dst_cid = guest_cid,
		.src_port = c->local_port,
		.dst_port = c->peer_port,
		.len = op == VSOCK_OP_RW ? len : 0,
		.type = VSOCK_TYPE_STREAM,
		.op = (uint16_t)op,
		.buf_alloc = VSOCK_CONN_BUF_ALLOC,
		.fwd_cnt = c->fwd_cnt,
	};
	/* every packet tells the guest our credit */
	c->fwd_cnt_sent = c->fwd_cnt;
	c->owed &= ~VSOCK_OWE_CREDIT_UPDATE;
	switch (op) {
	case VSOCK_OP_RST:
		c->state = VSOCK_CONN_DEAD;
		c->owed = 0;
		c->deadline_ns = 0;
		break;
	case VSOCK_OP_RESPONSE:
		c->owed &= ~VSOCK_OWE_RESPONSE;
		c->state = VSOCK_CONN_ESTABLISHED;
		break;
	case VSOCK_OP_REQUEST:
		c->owed &= ~VSOCK_OWE_REQUEST;
		break;
	case VSOCK_OP_SHUTDOWN:
		c->owed &= ~VSOCK_OWE_SHUTDOWN;
		h->flags = c->local_shut;
		break;
	case VSOCK_OP_RW:
		c->rx_cnt += len;
		break;
	case VSOCK_OP_CREDIT_REQUEST:
		c->credit_requested = true;
		break;
	default:
		break;
	}
}

/* ---- the table ---- */

static unsigned int bucket(uint32_t local_port, uint32_t peer_port)
{
	uint32_t h = local_port * 0x9e3779b1U ^ peer_port * 0x85ebca77U;

	h ^= h >> 15;
	return h & (VSOCK_TABLE_BUCKETS - 1);
}

void vsock_conn__table_init(struct vsock_conn_table *t)
{
	memset(t, 0, sizeof(*t));
}

struct vsock_conn *vsock_conn__find(const struct vsock_conn_table *t, uint32_t local_port,
				    uint32_t peer_port)
{
	struct vsock_conn *c = t->buckets[bucket(local_port, peer_port)];

	while (c && (c->local_port != local_port || c->peer_port != peer_port))
		c = c->hnext;
	return c;
}

int vsock_conn__add(struct vsock_conn_table *t, struct vsock_conn *c)
{
	unsigned int b = bucket(c->local_port, c->peer_port);

	if (vsock_conn__find(t, c->local_port, c->peer_port))
		return -EEXIST;
	c->hnext = t->buckets[b];
	t->buckets[b] = c;
	t->count++;
	return 0;
}

void vsock_conn__remove(struct vsock_conn_table *t, struct vsock_conn *c)
{
	struct vsock_conn **p = &t->buckets[bucket(c->local_port, c->peer_port)];

	while (*p && *p != c)
		p = &(*p)->hnext;
	if (!*p)
		return;
	*p = c->hnext;
	c->hnext = NULL;
	t->count--;
}
