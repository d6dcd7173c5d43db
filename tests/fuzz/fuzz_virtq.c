// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer target: a split virtqueue and the virtio-blk request parser together, the way
 * the block device drives them, against a driver that controls all of guest memory.
 *
 * Input: a 12-byte header, then the contents of guest memory (the rest stays zero).
 *
 *   0     bits 0-3 the queue size (table below, some invalid), bit 4 INDIRECT_DESC,
 *         bit 5 EVENT_IDX, bit 6 a read-only disk, bit 7 two RAM regions with a gap
 *   1-6   le16 desc, avail and used ring addresses (see ring_gpa())
 *   7-8   le16 start: last_avail and used_idx, as after that many round trips
 *   9     the disk size (table below)
 *   10    bump: each time the ring runs dry, the driver moves avail->idx on by this much
 *   11    how many times it does that (low 3 bits)
 *
 * Guest memory is 64 KiB: one region at 0, or 32 KiB at 0 and 32 KiB at 0x10000 with a
 * gap between. Each region is its own exact-size heap block, so ASan catches any access
 * past one. The device loop: virtq__check, then pop / parse / "execute" (write IN and
 * GET_ID data and the status byte into guest memory, read OUT data) / push, signal when
 * the ring is empty, arm_notify before waiting, bounded in every way.
 *
 * Besides not crashing, it checks against a model written here from the spec and the
 * headers, without gmem__ptr(): virtq__check's verdict; virtq__pop's result and the exact
 * chain (every buffer in one region, readable before writable, at most VIRTQ_CHAIN_MAX);
 * the used ring after virtq__push; virtq__should_signal's decision and arm_notify's
 * avail_event; and that blk_request__parse's kind, offset, length, iovs (inside RAM, at the
 * right place in the chain's byte streams) and status byte are what virtio 1.2 5.2.6 and
 * blk_request.h say. (A chain of more than 2^32 bytes cannot be built in 64 KiB; the
 * unit tests in test_queue.c cover that rule.)
 *
 * The seeds in tests/fuzz/corpus/virtq/ are named after what they hold (a 3-descriptor
 * read, indirect tables, a loop, wrapping indices, rings at the ends of RAM...);
 * FUZZ_VIRTQ_TRACE=1 prints what the device does with one.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "virtio/blk_request.h"
#include "virtio/queue.h"
#include "vmm/memory.h"

#define HDR_BYTES 12
#define MEM_BYTES 0x10000ULL
#define HALF (MEM_BYTES / 2)
#define HIGH_GPA 0x10000ULL /* the second region, after a 32 KiB gap */
#define MAX_STEPS 300	    /* pops, empty or not, per input */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define check(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "fuzz_virtq:%d: invariant broken: %s\n", __LINE__, #cond); \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

static const uint16_t sizes[16] = {
	1, 2, 4, 8, 16, 32, 64, 128, 256, 0, 3, 512, 96, 255, 0xffff, 4
};
static const uint64_t disks[8] = {
	0, 512, 4096, 1ULL << 20, 4096 + 100, UINT64_MAX, 1ULL << 63, 1ULL << 40,
};

static struct gmem gm;
static bool trace; /* FUZZ_VIRTQ_TRACE=1: one line per step on stderr, to read a seed */

/* ---- the model of guest memory ---- */

/* Host pointer to [gpa, gpa + len) inside one region, else NULL. */
static uint8_t *model_ptr(uint64_t gpa, uint64_t len)
{
	for (unsigned int i = 0; i < gm.nr_regions; i++) {
		const struct gmem_region *g = &gm.regions[i];

		if (len && gpa >= g->gpa && gpa - g->gpa < g->size &&
		    len <= g->size - (gpa - g->gpa))
			return g->host + (gpa - g->gpa);
	}
	return NULL;
}

/* Does [p, p + len) lie inside one region's host block? */
static bool host_in_ram(const void *p, uint64_t len)
{
	uintptr_t a = (uintptr_t)p;

	for (unsigned int i = 0; i < gm.nr_regions; i++) {
		uintptr_t h = (uintptr_t)gm.regions[i].host;

		if (len && a >= h && len <= gm.regions[i].size && a - h <= gm.regions[i].size - len)
			return true;
	}
	return false;
}

static uint16_t model_load16(uint64_t gpa)
{
	uint8_t *p = model_ptr(gpa, 2);

	check(p);
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t model_load32(uint64_t gpa)
{
	uint8_t *p = model_ptr(gpa, 4);

	check(p);
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t model_load64(uint64_t gpa)
{
	return model_load32(gpa) | (uint64_t)model_load32(gpa + 4) << 32;
}

static void model_store16(uint64_t gpa, uint16_t v)
{
	uint8_t *p = model_ptr(gpa, 2);

	check(p);
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

/* Every ring address lands in RAM; in two-region mode the top half goes above the gap. */
static uint64_t ring_gpa(const uint8_t *p)
{
	uint64_t raw = (uint64_t)p[0] | (uint64_t)p[1] << 8;

	return gm.nr_regions == 2 && raw >= HALF ? raw - HALF + HIGH_GPA : raw;
}

/* ---- the queue ---- */

/* virtq__check's rules, from queue.h and 2.7: size, alignment, rings wholly in one region. */
static bool model_check(const struct virtq *q)
{
	uint64_t n = q->size;

	if (!n || n > VIRTQ_MAX_SIZE || (n & (n - 1)))
		return false;
	if ((q->desc_gpa & 15) || (q->avail_gpa & 1) || (q->used_gpa & 3))
		return false;
	return model_ptr(q->desc_gpa, 16 * n) && model_ptr(q->avail_gpa, 6 + 2 * n) &&
	       model_ptr(q->used_gpa, 6 + 8 * n);
}

/* What was popped: a chain of the promised shape, its buffers in RAM, from the avail ring. */
static void check_chain(const struct virtq *q, const struct vq_chain *c)
{
	uint64_t rd = 0, wr = 0, head_desc, addr;
	uint16_t flags;
	bool seen_write = false;

	check(c->nr >= 1 && c->nr <= VIRTQ_CHAIN_MAX);
	check(c->head < q->size);
	check(c->head == model_load16(q->avail_gpa + 4 +
				      2ULL * ((uint16_t)(q->last_avail - 1) & (q->size - 1))));
	for (unsigned int i = 0; i < c->nr; i++) {
		const struct vq_buf *b = &c->bufs[i];

		check(b->len > 0 && model_ptr(b->gpa, b->len));
		if (b->write) {
			seen_write = true;
			wr += b->len;
		} else {
			check(!seen_write);
			rd += b->len;
		}
	}
	check(rd == c->readable && wr == c->writable && rd + wr <= 1ULL << 32);

	/* the first buffer is the head descriptor, or the first of its indirect table */
	head_desc = q->desc_gpa + 16ULL * c->head;
	flags = model_load16(head_desc + 12);
	if (flags & VIRTQ_DESC_F_INDIRECT) {
		check(q->indirect);
		head_desc = model_load64(head_desc);
		flags = model_load16(head_desc + 12);
	}
	addr = model_load64(head_desc);
	check(c->bufs[0].gpa == addr && c->bufs[0].len == model_load32(head_desc + 8));
	check(c->bufs[0].write == !!(flags & VIRTQ_DESC_F_WRITE));
}

/*
 * The chain walk as queue.h states the rules (2.7.5, 2.7.5.3): at most a table's entries
 * visited in it, one level of indirection when negotiated and never with NEXT, a table of
 * 1..VIRTQ_CHAIN_MAX whole descriptors in RAM, buffers non-empty in RAM, readable before
 * writable, at most VIRTQ_CHAIN_MAX of them and 2^32 bytes.
 */
static int model_walk(const struct virtq *q, uint16_t head, struct vq_chain *m)
{
	uint64_t table = q->desc_gpa;
	unsigned int entries = q->size, steps = 0;
	bool nested = false;
	uint16_t i = head;

	m->nr = 0;
	m->readable = m->writable = 0;
	m->head = head;
	for (;;) {
		uint64_t at = table + 16ULL * i, addr;
		uint32_t len;
		uint16_t flags;
		bool w;

		if (i >= entries || ++steps > entries)
			return -EINVAL;
		addr = model_load64(at);
		len = model_load32(at + 8);
		flags = model_load16(at + 12);
		if (flags & VIRTQ_DESC_F_INDIRECT) {
			if (!q->indirect || nested || (flags & VIRTQ_DESC_F_NEXT) || !len ||
			    len % 16 || len / 16 > VIRTQ_CHAIN_MAX || !model_ptr(addr, len))
				return -EINVAL;
			table = addr;
			entries = len / 16;
			nested = true;
			i = 0;
			steps = 0;
			continue;
		}
		w = flags & VIRTQ_DESC_F_WRITE;
		if (m->nr == VIRTQ_CHAIN_MAX || !model_ptr(addr, len) || (!w && m->writable) ||
		    m->readable + m->writable + len > 1ULL << 32)
			return -EINVAL;
		m->bufs[m->nr++] = (struct vq_buf){ addr, len, w };
		*(w ? &m->writable : &m->readable) += len;
		if (!(flags & VIRTQ_DESC_F_NEXT))
			return 0;
		i = model_load16(at + 14);
	}
}

/* What virtq__pop must return, and the chain when it is 1. */
static int model_pop(const struct virtq *q, struct vq_chain *m)
{
	uint16_t pending = (uint16_t)(model_load16(q->avail_gpa + 2) - q->last_avail);
	uint16_t head;

	if (pending > q->size)
		return -EINVAL;
	if (!pending)
		return 0;
	head = model_load16(q->avail_gpa + 4 + 2ULL * (q->last_avail & (q->size - 1)));
	return model_walk(q, head, m) ? -EINVAL : 1;
}

static void check_same_chain(const struct vq_chain *c, const struct vq_chain *m)
{
	check(c->head == m->head && c->nr == m->nr);
	check(c->readable == m->readable && c->writable == m->writable);
	for (unsigned int i = 0; i < m->nr; i++)
		check(c->bufs[i].gpa == m->bufs[i].gpa && c->bufs[i].len == m->bufs[i].len &&
		      c->bufs[i].write == m->bufs[i].write);
}

/* 2.7.10: interrupt when used_event was passed since the last one, or unless NO_INTERRUPT. */
static bool model_signal(const struct virtq *q)
{
	uint16_t old = q->signalled_used, event;

	if (q->signalled_used_valid && old == q->used_idx)
		return false;
	if (!q->event_idx)
		return !(model_load16(q->avail_gpa) & VIRTQ_AVAIL_F_NO_INTERRUPT);
	if (!q->signalled_used_valid)
		return true;
	event = model_load16(q->avail_gpa + 4 + 2ULL * q->size);
	for (uint16_t i = old; i != q->used_idx; i++) {
		if (i == event)
			return true;
	}
	return false;
}

/* ---- the request ---- */

/* The first 16 readable bytes, gathered over buffers. */
static void model_header(const struct vq_chain *c, uint8_t hdr[BLK_HDR_BYTES])
{
	unsigned int got = 0;

	for (unsigned int i = 0; i < c->nr && got < BLK_HDR_BYTES; i++) {
		uint64_t n = c->bufs[i].len;

		check(!c->bufs[i].write);
		if (n > BLK_HDR_BYTES - got)
			n = BLK_HDR_BYTES - got;
		memcpy(hdr + got, model_ptr(c->bufs[i].gpa, n), n);
		got += (unsigned int)n;
	}
}

/* [sector * 512, + len) inside the disk, in exact arithmetic. */
static bool in_disk(uint64_t sector, uint64_t len, uint64_t disk)
{
	unsigned __int128 end = (unsigned __int128)sector * VIRTIO_BLK_SECTOR + len;

	return end <= disk;
}

struct expect {
	enum blk_req_kind kind;
	uint64_t offset, len;
};

/* 5.2.6 and blk_request.h, written out: what the request must be. */
static struct expect model_request(const struct vq_chain *c, uint64_t disk, bool ro)
{
	uint8_t hdr[BLK_HDR_BYTES];
	uint64_t rd = c->readable - BLK_HDR_BYTES, wr = c->writable - 1, sector;
	uint32_t type;
	struct expect e = { BLK_REQ_BAD, 0, 0 };

	model_header(c, hdr);
	type = (uint32_t)hdr[0] | (uint32_t)hdr[1] << 8 | (uint32_t)hdr[2] << 16 |
	       (uint32_t)hdr[3] << 24;
	sector = 0;
	for (int i = 7; i >= 0; i--)
		sector = sector << 8 | hdr[8 + i];
	switch (type) {
	case VIRTIO_BLK_T_IN:
		if (!rd && wr && wr % 512 == 0 && in_disk(sector, wr, disk))
			e = (struct expect){ BLK_REQ_IN, sector * 512, wr };
		break;
	case VIRTIO_BLK_T_OUT:
		if (!ro && !wr && rd && rd % 512 == 0 && in_disk(sector, rd, disk))
			e = (struct expect){ BLK_REQ_OUT, sector * 512, rd };
		break;
	case VIRTIO_BLK_T_FLUSH:
		if (!rd && !wr)
			e.kind = BLK_REQ_FLUSH;
		break;
	case VIRTIO_BLK_T_GET_ID:
		if (!rd && wr)
			e = (struct expect){ BLK_REQ_GET_ID, 0,
					     wr < VIRTIO_BLK_ID_BYTES ? wr : VIRTIO_BLK_ID_BYTES };
		break;
	default:
		e.kind = BLK_REQ_UNSUPPORTED;
	}
	return e;
}

/* The iovs are exactly want bytes of bufs [first, last) after skip bytes, in order. */
static void check_iovs(const struct vq_chain *c, unsigned int first, unsigned int last,
		       uint64_t skip, uint64_t want, const struct blk_request *r)
{
	unsigned int k = 0;

	for (unsigned int i = first; i < last && want; i++) {
		uint64_t len = c->bufs[i].len, n;

		if (skip >= len) {
			skip -= len;
			continue;
		}
		n = len - skip < want ? len - skip : want;
		check(k < r->niov);
		check(r->iov[k].iov_base == model_ptr(c->bufs[i].gpa + skip, n));
		check(r->iov[k].iov_len == n);
		k++;
		want -= n;
		skip = 0;
	}
	check(!want && k == r->niov);
}

static void check_request(const struct vq_chain *c, uint64_t disk, bool ro, int ret,
			  const struct blk_request *r)
{
	const struct vq_buf *last = &c->bufs[c->nr - 1];
	unsigned int nr_read = 0;
	struct expect e;
	uint64_t sum = 0;

	/* popped chains are in RAM and well-shaped: only a missing header or status is fatal */
	check(ret == (c->writable && c->readable >= BLK_HDR_BYTES ? 0 : -EINVAL));
	if (ret)
		return;
	while (!c->bufs[nr_read].write)
		nr_read++;
	e = model_request(c, disk, ro);
	check(r->kind == e.kind && r->head == c->head && r->len == e.len);
	check(r->status && r->status == model_ptr(last->gpa + last->len - 1, 1));
	if (e.kind == BLK_REQ_IN || e.kind == BLK_REQ_OUT)
		check(r->offset == e.offset);
	check(r->niov <= c->nr && r->niov <= VIRTQ_CHAIN_MAX);
	for (unsigned int i = 0; i < r->niov; i++) {
		check(host_in_ram(r->iov[i].iov_base, r->iov[i].iov_len));
		sum += r->iov[i].iov_len;
	}
	check(sum == r->len);
	if (e.kind == BLK_REQ_OUT)
		check_iovs(c, 0, nr_read, BLK_HDR_BYTES, e.len, r);
	else
		check_iovs(c, nr_read, c->nr, 0, e.len, r); /* none for FLUSH, BAD, UNSUPP */
}

/* Does what an I/O engine would do with guest memory; returns the used length. */
static uint32_t execute(const struct blk_request *r)
{
	static const char id[VIRTIO_BLK_ID_BYTES] = "ember-fuzz-virtq";
	volatile uint8_t sink = 0;
	uint64_t off = 0;
	uint8_t status = VIRTIO_BLK_S_OK;

	for (unsigned int i = 0; i < r->niov; i++) {
		uint8_t *p = r->iov[i].iov_base;
		size_t n = r->iov[i].iov_len;

		if (r->kind == BLK_REQ_IN)
			memset(p, (int)(r->offset + off) & 0xff, n);
		else if (r->kind == BLK_REQ_GET_ID)
			memcpy(p, id + off, n);
		else
			sink ^= p[0] ^ p[n - 1];
		off += n;
	}
	(void)sink;
	if (r->kind == BLK_REQ_BAD)
		status = VIRTIO_BLK_S_IOERR;
	else if (r->kind == BLK_REQ_UNSUPPORTED)
		status = VIRTIO_BLK_S_UNSUPP;
	*r->status = status;
	return 1 + (r->kind == BLK_REQ_IN || r->kind == BLK_REQ_GET_ID ? (uint32_t)r->len : 0);
}

/* ---- the device loop ---- */

static void check_push(const struct virtq *q, uint16_t head, uint32_t len)
{
	uint64_t elem = q->used_gpa + 4 + 8ULL * ((uint16_t)(q->used_idx - 1) & (q->size - 1));

	check(model_load16(q->used_gpa + 2) == q->used_idx);
	check(model_load32(elem) == head && model_load32(elem + 4) == len);
}

/*
 * The ring ran dry. The driver may publish more before we arm (then arm must say so), or
 * not (then we wait: the input is done). false: stop.
 */
static bool idle(struct virtq *q, uint8_t bump, unsigned int *rounds)
{
	bool again;

	if (bump && *rounds) {
		(*rounds)--;
		model_store16(q->avail_gpa + 2, (uint16_t)(model_load16(q->avail_gpa + 2) + bump));
	}
	again = virtq__arm_notify(q);
	/* read after: with overlapping rings, the avail_event store may have changed it */
	check(again == (model_load16(q->avail_gpa + 2) != q->last_avail));
	if (q->event_idx)
		check(model_load16(q->used_gpa + 4 + 8ULL * q->size) == q->last_avail);
	return again;
}

static void signal(struct virtq *q)
{
	bool want = model_signal(q);

	check(virtq__should_signal(q) == want);
	if (want || q->event_idx)
		check(q->signalled_used_valid && q->signalled_used == q->used_idx);
	check(!virtq__should_signal(q)); /* nothing new since */
}

static void run_device(struct virtq *q, uint64_t disk, bool ro, uint8_t bump, unsigned int rounds)
{
	static struct vq_chain c, m;
	static struct blk_request r;

	for (unsigned int step = 0; step < MAX_STEPS; step++) {
		uint16_t last = q->last_avail, pending = virtq__pending(q);
		uint16_t model_pending = (uint16_t)(model_load16(q->avail_gpa + 2) - last);
		uint32_t used;
		int ret, pret, mret;

		check(pending == (model_pending > q->size ? 0 : model_pending));
		mret = model_pop(q, &m);
		ret = virtq__pop(q, &c);
		check(ret == mret);
		if (trace)
			fprintf(stderr,
				"step %u: pending %u pop %d head %u nr %u rd %llu wr %llu\n", step,
				model_pending, ret, c.head, c.nr, (unsigned long long)c.readable,
				(unsigned long long)c.writable);
		if (model_pending > q->size)
			check(ret == -EINVAL);
		if (ret < 0) {
			check(ret == -EINVAL && q->last_avail == last);
			return; /* the device needs a reset */
		}
		if (!ret) {
			check(!model_pending && q->last_avail == last);
			if (!idle(q, bump, &rounds))
				return;
			continue;
		}
		check(model_pending && q->last_avail == (uint16_t)(last + 1));
		check(virtq__pending(q) == model_pending - 1);
		check_chain(q, &c);
		check_same_chain(&c, &m);
		memset(&r, 0x5a, sizeof(r));
		pret = blk_request__parse(&gm, &c, disk, ro, &r);
		check_request(&c, disk, ro, pret, &r);
		if (trace)
			fprintf(stderr, "  parse %d kind %d offset %llu len %llu niov %u\n", pret,
				r.kind, (unsigned long long)r.offset, (unsigned long long)r.len,
				r.niov);
		if (pret)
			return;
		used = execute(&r);
		check(virtq__push(q, c.head, used) == 0);
		check_push(q, c.head, used);
		if (!virtq__pending(q))
			signal(q);
	}
}

/* A queue that failed virtq__check, or was reset, is not ready: nothing on it may work. */
static void check_not_ready(struct virtq *q)
{
	static struct vq_chain c;

	check(virtq__pop(q, &c) == -EINVAL);
	check(virtq__push(q, 0, 1) == -EINVAL);
	check(virtq__pending(q) == 0);
	check(!virtq__should_signal(q));
	check(!virtq__arm_notify(q));
}

static void set_regions(bool two, const uint8_t *mem, size_t len)
{
	uint64_t at = 0;

	memset(&gm, 0, sizeof(gm));
	gm.nr_regions = two ? 2 : 1;
	gm.regions[0] = (struct gmem_region){ 0, two ? HALF : MEM_BYTES, NULL };
	if (two)
		gm.regions[1] = (struct gmem_region){ HIGH_GPA, HALF, NULL };
	for (unsigned int i = 0; i < gm.nr_regions; i++) {
		uint64_t n = gm.regions[i].size;

		gm.regions[i].host = calloc(1, n);
		check(gm.regions[i].host);
		if (at < len)
			memcpy(gm.regions[i].host, mem + at, len - at < n ? len - at : n);
		at += n;
		gm.ram_size += n;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct virtq q = { 0 };
	bool ro;

	if (size < HDR_BYTES)
		return 0;
	trace = getenv("FUZZ_VIRTQ_TRACE") && *getenv("FUZZ_VIRTQ_TRACE") == '1';
	set_regions(data[0] & 0x80, data + HDR_BYTES, size - HDR_BYTES);
	q.gm = &gm;
	q.size = sizes[data[0] & 15];
	q.indirect = data[0] & 0x10;
	q.event_idx = data[0] & 0x20;
	ro = data[0] & 0x40;
	q.desc_gpa = ring_gpa(data + 1);
	q.avail_gpa = ring_gpa(data + 3);
	q.used_gpa = ring_gpa(data + 5);
	q.last_avail = q.used_idx = (uint16_t)(data[7] | data[8] << 8);

	check(virtq__check(&q) == (model_check(&q) ? 0 : -EINVAL));
	if (trace)
		fprintf(stderr, "size %u desc %#llx avail %#llx used %#llx: check %d\n", q.size,
			(unsigned long long)q.desc_gpa, (unsigned long long)q.avail_gpa,
			(unsigned long long)q.used_gpa, virtq__check(&q));
	if (virtq__check(&q)) {
		check_not_ready(&q);
	} else {
		q.ready = true;
		run_device(&q, disks[data[9] & 7], ro, data[10], data[11] & 7);
		/* what the transport does after -EINVAL, or when the driver resets the device */
		virtq__reset(&q);
		check(q.gm == &gm && !q.ready && !q.size && !q.last_avail && !q.used_idx);
		check_not_ready(&q);
	}
	for (unsigned int i = 0; i < gm.nr_regions; i++)
		free(gm.regions[i].host);
	return 0;
}
