// SPDX-License-Identifier: Apache-2.0
/*
 * Split virtqueues, the device side (virtio 1.2, 2.7).
 *
 * The three rings and every buffer live in guest memory, which the driver may change at
 * any moment. So:
 * - every access goes through gmem__ptr() with its exact length, at the moment it is made:
 *   no host pointer is kept from one call to the next;
 * - a descriptor is copied out once and only the copy is used, so the driver cannot
 *   change it between a check and its use;
 * - indices are read once per decision, with 16-bit wrap-around arithmetic;
 * - a chain walk is bounded: at most the queue size descriptors in the descriptor table,
 *   at most the table's entries in an indirect table, at most VIRTQ_CHAIN_MAX buffers.
 *   Counting visits against those bounds also catches loops, in O(chain length).
 *
 * A queue is used only while q->ready, which the transport sets only after virtq__check()
 * passed: the size is a power of two and the rings are aligned and wholly in RAM. The
 * alignment makes the 16- and 32-bit ring fields naturally aligned, so they are loaded and
 * stored whole (single-copy atomic), never torn.
 *
 * Ordering (2.7.13 and 2.7.7/2.7.10, as Linux's virtio_ring.c and vhost expect):
 * - pop: load avail->idx, acquire fence, then ring entries and descriptors;
 * - push: store the used elements, release fence, then used->idx, once for all of them;
 * - should_signal: full fence between the store of used->idx and the load of used_event
 *   (or avail->flags), else a driver that just re-enabled interrupts could be missed;
 * - arm_notify: full fence between the store of avail_event and the re-load of avail->idx,
 *   else a buffer made available meanwhile could wait for a kick that never comes.
 */
#include "virtio/queue.h"

#include <endian.h>
#include <errno.h>
#include <string.h>

/* Ring layouts (2.7.5, 2.7.6, 2.7.8). */
#define DESC_BYTES 16
#define AVAIL_RING_OFF 4   /* flags, idx */
#define AVAIL_ELEM_BYTES 2 /* le16 head */
#define USED_RING_OFF 4	   /* flags, idx */
#define USED_ELEM_BYTES 8  /* le32 id, le32 len */
#define RING_FLAGS_OFF 0
#define RING_IDX_OFF 2
/* A driver must not make a chain longer than 2^32 bytes in total (2.7.5.2). */
#define CHAIN_BYTES_MAX (1ULL << 32)

/* One descriptor, copied out of guest memory and converted to host order. */
struct virtq_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

/* Where a chain walk reads descriptors: the queue's own table, or an indirect one. */
struct desc_table {
	uint64_t gpa;
	unsigned int entries;
	bool indirect;
};

/* ---- guest memory ---- */

/* Host pointer to len bytes at base + off, NULL when that is not wholly in guest RAM. */
static void *ring_ptr(const struct virtq *q, uint64_t base, uint64_t off, uint64_t len)
{
	uint64_t gpa;

	if (__builtin_add_overflow(base, off, &gpa))
		return NULL;
	return gmem__ptr(q->gm, gpa, len);
}

static int load16(const struct virtq *q, uint64_t base, uint64_t off, uint16_t *v)
{
	uint16_t *p = ring_ptr(q, base, off, sizeof(*p));

	if (!p)
		return -EINVAL;
	*v = le16toh(__atomic_load_n(p, __ATOMIC_RELAXED));
	return 0;
}

static int store16(const struct virtq *q, uint64_t base, uint64_t off, uint16_t v)
{
	uint16_t *p = ring_ptr(q, base, off, sizeof(*p));

	if (!p)
		return -EINVAL;
	__atomic_store_n(p, htole16(v), __ATOMIC_RELAXED);
	gmem__mark_dirty(q->gm, p, sizeof(*p));
	return 0;
}

static int store32(const struct virtq *q, uint64_t base, uint64_t off, uint32_t v)
{
	uint32_t *p = ring_ptr(q, base, off, sizeof(*p));

	if (!p)
		return -EINVAL;
	__atomic_store_n(p, htole32(v), __ATOMIC_RELAXED);
	gmem__mark_dirty(q->gm, p, sizeof(*p));
	return 0;
}

static uint64_t avail_bytes(uint16_t size)
{
	return AVAIL_RING_OFF + (uint64_t)AVAIL_ELEM_BYTES * size + 2; /* + used_event */
}

static uint64_t used_bytes(uint16_t size)
{
	return USED_RING_OFF + (uint64_t)USED_ELEM_BYTES * size + 2; /* + avail_event */
}

/* used_event sits after the avail ring, avail_event after the used ring (2.7.10). */
static uint64_t used_event_off(const struct virtq *q)
{
	return AVAIL_RING_OFF + (uint64_t)AVAIL_ELEM_BYTES * q->size;
}

static uint64_t avail_event_off(const struct virtq *q)
{
	return USED_RING_OFF + (uint64_t)USED_ELEM_BYTES * q->size;
}

/* ---- set-up ---- */

int virtq__check(const struct virtq *q)
{
	uint16_t n = q->size;

	if (!q->gm || !n || n > VIRTQ_MAX_SIZE || (n & (n - 1)))
		return -EINVAL;
	if ((q->desc_gpa & 15) || (q->avail_gpa & 1) || (q->used_gpa & 3))
		return -EINVAL;
	if (!gmem__ptr(q->gm, q->desc_gpa, (uint64_t)DESC_BYTES * n) ||
	    !gmem__ptr(q->gm, q->avail_gpa, avail_bytes(n)) ||
	    !gmem__ptr(q->gm, q->used_gpa, used_bytes(n)))
		return -EINVAL;
	return 0;
}

void virtq__reset(struct virtq *q)
{
	const struct gmem *gm = q->gm;

	memset(q, 0, sizeof(*q));
	q->gm = gm;
}

/* ---- taking chains ---- */

static int read_desc(const struct virtq *q, const struct desc_table *t, uint16_t idx,
		     struct virtq_desc *d)
{
	const void *p = ring_ptr(q, t->gpa, (uint64_t)DESC_BYTES * idx, DESC_BYTES);
	struct virtq_desc raw;

	if (!p)
		return -EINVAL;
	memcpy(&raw, p, sizeof(raw)); /* once: only the copy is used */
	d->addr = le64toh(raw.addr);
	d->len = le32toh(raw.len);
	d->flags = le16toh(raw.flags);
	d->next = le16toh(raw.next);
	return 0;
}

/* Switches the walk to the indirect table d points at (2.7.5.3). */
static int enter_indirect(const struct virtq *q, struct desc_table *t, const struct virtq_desc *d)
{
	if (!q->indirect || t->indirect) /* not negotiated, or nested */
		return -EINVAL;
	if (d->flags & VIRTQ_DESC_F_NEXT) /* the driver must not set both */
		return -EINVAL;
	if (!d->len || d->len % DESC_BYTES || d->len / DESC_BYTES > VIRTQ_CHAIN_MAX)
		return -EINVAL;
	if (!gmem__ptr(q->gm, d->addr, d->len))
		return -EINVAL;
	t->gpa = d->addr;
	t->entries = d->len / DESC_BYTES;
	t->indirect = true; /* the table's WRITE flag is ignored, as the spec says */
	return 0;
}

static int add_buf(const struct virtq *q, struct vq_chain *c, const struct virtq_desc *d)
{
	bool write = d->flags & VIRTQ_DESC_F_WRITE;
	struct vq_buf *b;

	if (c->nr >= VIRTQ_CHAIN_MAX)
		return -EINVAL;
	if (!gmem__ptr(q->gm, d->addr, d->len)) /* also a zero length and a wrap */
		return -EINVAL;
	if (!write && c->writable) /* readable after writable (2.7.4.2) */
		return -EINVAL;
	if (c->readable + c->writable + d->len > CHAIN_BYTES_MAX)
		return -EINVAL;
	b = &c->bufs[c->nr++];
	b->gpa = d->addr;
	b->len = d->len;
	b->write = write;
	if (write)
		c->writable += d->len;
	else
		c->readable += d->len;
	return 0;
}

/*
 * Follows a chain from head. Each visit counts against the table it is in, so a walk ends
 * after at most size + 1 + VIRTQ_CHAIN_MAX descriptors, loops included.
 */
static int walk_chain(const struct virtq *q, uint16_t head, struct vq_chain *c)
{
	struct desc_table t = { .gpa = q->desc_gpa, .entries = q->size, .indirect = false };
	unsigned int visited = 0;
	struct virtq_desc d;
	uint16_t idx = head;
	int ret;

	c->head = head;
	c->nr = 0;
	c->readable = c->writable = 0;
	for (;;) {
		if (idx >= t.entries || ++visited > t.entries)
			return -EINVAL;
		ret = read_desc(q, &t, idx, &d);
		if (ret)
			return ret;
		if (d.flags & VIRTQ_DESC_F_INDIRECT) {
			ret = enter_indirect(q, &t, &d);
			if (ret)
				return ret;
			idx = 0;
			visited = 0;
			continue;
		}
		ret = add_buf(q, c, &d);
		if (ret)
			return ret;
		if (!(d.flags & VIRTQ_DESC_F_NEXT))
			return 0;
		idx = d.next;
	}
}

int virtq__pop(struct virtq *q, struct vq_chain *c)
{
	uint16_t avail_idx, head, pending;
	uint64_t slot;
	int ret;

	if (!q->ready)
		return -EINVAL;
	ret = load16(q, q->avail_gpa, RING_IDX_OFF, &avail_idx);
	if (ret)
		return ret;
	pending = (uint16_t)(avail_idx - q->last_avail);
	if (pending > q->size)
		return -EINVAL;
	if (!pending)
		return 0;
	/* the entry and its descriptors were written before avail->idx */
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	slot = q->last_avail & (q->size - 1);
	ret = load16(q, q->avail_gpa, AVAIL_RING_OFF + AVAIL_ELEM_BYTES * slot, &head);
	if (ret)
		return ret;
	ret = walk_chain(q, head, c);
	if (ret)
		return ret;
	q->last_avail++;
	return 1;
}

uint16_t virtq__pending(const struct virtq *q)
{
	uint16_t avail_idx, pending;

	if (!q->ready || load16(q, q->avail_gpa, RING_IDX_OFF, &avail_idx))
		return 0;
	pending = (uint16_t)(avail_idx - q->last_avail);
	return pending > q->size ? 0 : pending;
}

/* ---- giving chains back ---- */

int virtq__push_n(struct virtq *q, const struct vq_used *u, unsigned int n)
{
	uint16_t old = q->used_idx;
	uint64_t off;

	if (!q->ready || n > q->size)
		return -EINVAL;
	for (unsigned int i = 0; i < n; i++) { /* every head first: all or nothing */
		if (u[i].head >= q->size)
			return -EINVAL;
	}
	if (!n)
		return 0;
	for (unsigned int i = 0; i < n; i++) {
		off = USED_RING_OFF + USED_ELEM_BYTES * (uint64_t)((old + i) & (q->size - 1));
		if (store32(q, q->used_gpa, off, u[i].head) ||
		    store32(q, q->used_gpa, off + 4, u[i].len))
			return -EINVAL; /* written past used->idx: the driver does not look there */
	}
	/* the elements before the index that publishes them */
	__atomic_thread_fence(__ATOMIC_RELEASE);
	if (store16(q, q->used_gpa, RING_IDX_OFF, (uint16_t)(old + n)))
		return -EINVAL;
	q->used_idx = (uint16_t)(old + n);
	/*
	 * (old, used_idx] passed signalled_used: 2^16 pushes or more without a signal, and
	 * signalled_used means nothing any more
	 */
	if ((uint16_t)(q->signalled_used - old - 1) < n)
		q->signalled_used_valid = false;
	return 0;
}

int virtq__push(struct virtq *q, uint16_t head, uint32_t len)
{
	const struct vq_used u = { .head = head, .len = len };

	return virtq__push_n(q, &u, 1);
}

/* vring_need_event() (2.7.10): has new_idx passed event since old_idx? */
static bool need_event(uint16_t event, uint16_t new_idx, uint16_t old_idx)
{
	return (uint16_t)(new_idx - event - 1) < (uint16_t)(new_idx - old_idx);
}

bool virtq__should_signal(struct virtq *q)
{
	uint16_t old = q->signalled_used, v;
	bool valid = q->signalled_used_valid, want;

	if (!q->ready || (valid && old == q->used_idx)) /* nothing new since the last one */
		return false;
	/* used->idx is visible before we look at what the driver asked for */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (q->event_idx)
		want = load16(q, q->avail_gpa, used_event_off(q), &v) || !valid ||
		       need_event(v, q->used_idx, old);
	else
		want = load16(q, q->avail_gpa, RING_FLAGS_OFF, &v) ||
		       !(v & VIRTQ_AVAIL_F_NO_INTERRUPT);
	/* with event_idx, the next decision covers what came after this one */
	if (want || q->event_idx) {
		q->signalled_used = q->used_idx;
		q->signalled_used_valid = true;
	}
	return want;
}

bool virtq__arm_notify(struct virtq *q)
{
	uint16_t avail_idx;

	if (!q->ready)
		return false;
	if (q->event_idx && store16(q, q->used_gpa, avail_event_off(q), q->last_avail))
		return true; /* cannot happen once checked; let pop report it */
	/* avail_event is visible before we look at avail->idx again */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (load16(q, q->avail_gpa, RING_IDX_OFF, &avail_idx))
		return true;
	return avail_idx != q->last_avail;
}
