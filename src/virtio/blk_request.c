// SPDX-License-Identifier: Apache-2.0
/*
 * virtio-blk requests (virtio 1.2, 5.2.6): from a descriptor chain to a request.
 *
 * The device may not assume how the driver split a request into buffers (2.7.4.1), so a
 * chain is read as two byte streams, the readable bytes then the writable ones:
 *
 *   readable: [ 16-byte header | data for OUT ]
 *   writable: [ data for IN and GET_ID | status byte ]
 *
 * The header may be spread over several buffers and is copied out once; data may start in
 * the middle of the buffer that ends the header and may end in the middle of the buffer
 * that holds the status. Each data buffer is mapped to a host iovec through gmem__ptr().
 */
#include "virtio/blk_request.h"

#include <endian.h>
#include <errno.h>
#include <string.h>

/* The chain's shape: bufs [0, nr_read) are readable, the rest writable. */
static int split_chain(const struct gmem *gm, const struct vq_chain *c, unsigned int *nr_read)
{
	unsigned int i = 0;

	if (!c->nr || c->nr > VIRTQ_CHAIN_MAX)
		return -EINVAL;
	for (unsigned int k = 0; k < c->nr; k++) {
		if (!gmem__ptr(gm, c->bufs[k].gpa, c->bufs[k].len))
			return -EINVAL; /* outside RAM, wraps, or empty */
	}
	while (i < c->nr && !c->bufs[i].write)
		i++;
	*nr_read = i;
	for (; i < c->nr; i++) {
		if (!c->bufs[i].write)
			return -EINVAL;
	}
	if (*nr_read == c->nr) /* no writable byte for the status */
		return -EINVAL;
	return 0;
}

static uint64_t bytes_of(const struct vq_chain *c, unsigned int first, unsigned int last)
{
	uint64_t n = 0;

	for (unsigned int i = first; i < last; i++)
		n += c->bufs[i].len;
	return n;
}

/* Gathers the header from the first readable bytes. */
static int read_header(const struct gmem *gm, const struct vq_chain *c, unsigned int nr_read,
		       uint8_t hdr[BLK_HDR_BYTES])
{
	uint32_t got = 0;

	for (unsigned int i = 0; i < nr_read && got < BLK_HDR_BYTES; i++) {
		uint32_t n = c->bufs[i].len;

		if (n > BLK_HDR_BYTES - got)
			n = BLK_HDR_BYTES - got;
		if (gmem__read(gm, c->bufs[i].gpa, hdr + got, n))
			return -EINVAL;
		got += n;
	}
	return got == BLK_HDR_BYTES ? 0 : -EINVAL;
}

/* Maps want bytes of bufs [first, last), after skipping skip bytes, into r->iov. */
static int map_data(const struct gmem *gm, const struct vq_chain *c, unsigned int first,
		    unsigned int last, uint64_t skip, uint64_t want, struct blk_request *r)
{
	for (unsigned int i = first; i < last && want; i++) {
		uint64_t len = c->bufs[i].len, n;
		void *p;

		if (skip >= len) {
			skip -= len;
			continue;
		}
		n = len - skip < want ? len - skip : want;
		p = gmem__ptr(gm, c->bufs[i].gpa + skip, n);
		if (!p)
			return -EINVAL;
		r->iov[r->niov].iov_base = p;
		r->iov[r->niov].iov_len = n;
		r->niov++;
		r->len += n;
		want -= n;
		skip = 0;
	}
	return 0;
}

/* IN and OUT: whole sectors, at least one, inside the disk, nothing the other way. */
static enum blk_req_kind io_kind(enum blk_req_kind kind, uint64_t sector, uint64_t len,
				 uint64_t other_way, uint64_t disk_bytes, uint64_t *offset)
{
	uint64_t off, end;

	if (other_way || !len || len % VIRTIO_BLK_SECTOR)
		return BLK_REQ_BAD;
	if (__builtin_mul_overflow(sector, VIRTIO_BLK_SECTOR, &off) ||
	    __builtin_add_overflow(off, len, &end) || end > disk_bytes)
		return BLK_REQ_BAD;
	*offset = off;
	return kind;
}

static enum blk_req_kind classify(uint32_t type, uint64_t sector, uint64_t rd, uint64_t wr,
				  uint64_t disk_bytes, bool read_only, uint64_t *offset)
{
	switch (type) {
	case VIRTIO_BLK_T_IN:
		return io_kind(BLK_REQ_IN, sector, wr, rd, disk_bytes, offset);
	case VIRTIO_BLK_T_OUT:
		if (read_only)
			return BLK_REQ_BAD;
		return io_kind(BLK_REQ_OUT, sector, rd, wr, disk_bytes, offset);
	case VIRTIO_BLK_T_FLUSH:
		return rd || wr ? BLK_REQ_BAD : BLK_REQ_FLUSH;
	case VIRTIO_BLK_T_GET_ID:
		return rd || !wr ? BLK_REQ_BAD : BLK_REQ_GET_ID;
	default:
		return BLK_REQ_UNSUPPORTED;
	}
}

int blk_request__parse(const struct gmem *gm, const struct vq_chain *c, uint64_t disk_bytes,
		       bool read_only, struct blk_request *r)
{
	const struct vq_buf *last;
	uint8_t hdr[BLK_HDR_BYTES];
	unsigned int nr_read;
	uint64_t rd, wr, sector;
	uint32_t type;
	int ret;

	r->kind = BLK_REQ_BAD;
	r->head = c->head;
	r->offset = r->len = 0;
	r->niov = 0;
	r->status = NULL;
	ret = split_chain(gm, c, &nr_read);
	if (!ret)
		ret = read_header(gm, c, nr_read, hdr);
	if (ret)
		return ret;
	last = &c->bufs[c->nr - 1];
	r->status = gmem__ptr(gm, last->gpa + last->len - 1, 1);
	if (!r->status)
		return -EINVAL;
	memcpy(&type, hdr, sizeof(type));
	memcpy(&sector, hdr + 8, sizeof(sector));
	rd = bytes_of(c, 0, nr_read) - BLK_HDR_BYTES;
	wr = bytes_of(c, nr_read, c->nr) - 1;
	r->kind =
		classify(le32toh(type), le64toh(sector), rd, wr, disk_bytes, read_only, &r->offset);
	if (r->kind == BLK_REQ_IN)
		ret = map_data(gm, c, nr_read, c->nr, 0, wr, r);
	else if (r->kind == BLK_REQ_GET_ID)
		ret = map_data(gm, c, nr_read, c->nr, 0,
			       wr < VIRTIO_BLK_ID_BYTES ? wr : VIRTIO_BLK_ID_BYTES, r);
	else if (r->kind == BLK_REQ_OUT)
		ret = map_data(gm, c, 0, nr_read, BLK_HDR_BYTES, rd, r);
	/* for Diff snapshots: what the device will write (it completes before any snapshot) */
	if (!ret && (r->kind == BLK_REQ_IN || r->kind == BLK_REQ_GET_ID))
		gmem__mark_dirty_iov(gm, r->iov, r->niov, r->len);
	return ret;
}
