// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests for src/virtio/blk_request.c: from a descriptor chain to a virtio-blk request.
 *
 * A fake guest of two RAM regions, 1 MiB from 0 and 64 KiB above the MMIO gap, each mapped
 * with a PROT_NONE guard page on both sides, so any access past a region faults. Chains are
 * built by hand (the parser takes a struct vq_chain, as virtq__pop() fills it); one test
 * goes through a real queue. Every host pointer the parser returns is compared with one
 * computed here, without gmem__ptr().
 */
#include <endian.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#include <cmocka.h>

#include "virtio/blk_request.h"
#include "virtio/queue.h"
#include "vmm/layout.h"
#include "vmm/memory.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define PAGE 4096ULL
#define LOW_SIZE (1ULL << 20)
#define HIGH_GPA LAYOUT_MMIO_GAP_END
#define HIGH_SIZE (64ULL << 10)
#define HDR 0x1000ULL	/* headers */
#define DATA 0x10000ULL /* data buffers */
#define STATUS 0x8000ULL
#define DISK (1ULL << 20) /* 2048 sectors */
#define SECTORS (DISK / VIRTIO_BLK_SECTOR)
#define T_IN VIRTIO_BLK_T_IN
#define T_OUT VIRTIO_BLK_T_OUT
#define T_FLUSH VIRTIO_BLK_T_FLUSH
#define T_GET_ID VIRTIO_BLK_T_GET_ID
#define R false /* device-readable */
#define W true	/* device-writable */

static struct gmem gm;
static uint8_t *low, *high;
static struct vq_chain c;
static struct blk_request r;

/* ---- the fake guest ---- */

/* size bytes with a PROT_NONE page before and after. */
static uint8_t *map_guarded(uint64_t size)
{
	uint8_t *p = mmap(NULL, size + 2 * PAGE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	if (mprotect(p + PAGE, size, PROT_READ | PROT_WRITE)) {
		munmap(p, size + 2 * PAGE);
		return NULL;
	}
	return p + PAGE;
}

static int setup(void **state)
{
	(void)state;
	low = map_guarded(LOW_SIZE);
	high = map_guarded(HIGH_SIZE);
	if (!low || !high)
		return -1;
	gm.nr_regions = 2;
	gm.regions[0] = (struct gmem_region){ .gpa = 0, .size = LOW_SIZE, .host = low };
	gm.regions[1] = (struct gmem_region){ .gpa = HIGH_GPA, .size = HIGH_SIZE, .host = high };
	gm.ram_size = LOW_SIZE + HIGH_SIZE;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	munmap(low - PAGE, LOW_SIZE + 2 * PAGE);
	munmap(high - PAGE, HIGH_SIZE + 2 * PAGE);
	return 0;
}

static int each(void **state)
{
	(void)state;
	memset(low, 0, LOW_SIZE);
	memset(high, 0, HIGH_SIZE);
	memset(&c, 0, sizeof(c));
	return 0;
}

/* Where gpa lives on the host, computed without gmem__ptr(). */
static uint8_t *host(uint64_t gpa)
{
	if (gpa < LOW_SIZE)
		return low + gpa;
	if (gpa >= HIGH_GPA && gpa - HIGH_GPA < HIGH_SIZE)
		return high + (gpa - HIGH_GPA);
	fail_msg("gpa 0x%llx is not RAM", (unsigned long long)gpa);
	return NULL;
}

/* The 16 header bytes; the reserved field holds garbage, which the device must ignore. */
static void make_hdr(uint8_t h[BLK_HDR_BYTES], uint32_t type, uint64_t sector)
{
	uint32_t t = htole32(type), reserved = htole32(0xdeadbeef);
	uint64_t s = htole64(sector);

	memcpy(h, &t, 4);
	memcpy(h + 4, &reserved, 4);
	memcpy(h + 8, &s, 8);
}

/* ---- building chains ---- */

static void chain(uint16_t head)
{
	memset(&c, 0, sizeof(c));
	c.head = head;
}

static void buf(uint64_t gpa, uint32_t len, bool write)
{
	c.bufs[c.nr++] = (struct vq_buf){ gpa, len, write };
	if (write)
		c.writable += len;
	else
		c.readable += len;
}

/* A readable buffer of len bytes at gpa that starts with the header. */
static void hdr_buf(uint64_t gpa, uint32_t len, uint32_t type, uint64_t sector)
{
	make_hdr(host(gpa), type, sector);
	buf(gpa, len, R);
}

/* The usual shapes: header, one data buffer (none when len is 0), status byte. */
static void simple(uint32_t type, uint64_t sector, uint32_t len, bool data_write)
{
	chain(7);
	hdr_buf(HDR, BLK_HDR_BYTES, type, sector);
	if (len)
		buf(DATA, len, data_write);
	buf(STATUS, 1, W);
}

/* ---- checking requests ---- */

/* Parses into a request full of garbage: nothing may be left over from before. */
static int parse(uint64_t disk_bytes, bool read_only)
{
	memset(&r, 0xa5, sizeof(r));
	return blk_request__parse(&gm, &c, disk_bytes, read_only, &r);
}

static void expect_iov(unsigned int i, uint64_t gpa, uint64_t len)
{
	assert_true(i < r.niov);
	assert_ptr_equal(r.iov[i].iov_base, host(gpa));
	assert_int_equal(r.iov[i].iov_len, len);
	/* the whole range is RAM of one region (the guard pages would fault otherwise) */
	assert_ptr_equal((uint8_t *)r.iov[i].iov_base + len - 1, host(gpa + len - 1));
}

/* Kind, head, data length and iov count, and the status byte at status_gpa. */
static void expect_req(enum blk_req_kind kind, uint64_t len, unsigned int niov, uint64_t status_gpa)
{
	uint64_t sum = 0;

	assert_int_equal(r.kind, kind);
	assert_int_equal(r.head, c.head);
	assert_int_equal(r.len, len);
	assert_int_equal(r.niov, niov);
	assert_ptr_equal(r.status, host(status_gpa));
	for (unsigned int i = 0; i < r.niov; i++)
		sum += r.iov[i].iov_len;
	assert_int_equal(sum, r.len);
}

/* Answered with IOERR: a status byte and no data to move. */
static void expect_bad(uint64_t status_gpa)
{
	expect_req(BLK_REQ_BAD, 0, 0, status_gpa);
}

static void expect_parse_bad(uint64_t disk_bytes, bool read_only, uint64_t status_gpa)
{
	assert_int_equal(parse(disk_bytes, read_only), 0);
	expect_bad(status_gpa);
}

/* ---- well-formed requests ---- */

static void in_well_formed(void **state)
{
	static const uint64_t sectors[] = { 0, 1, 3, 1000, SECTORS - 8 };

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(sectors); i++) {
		simple(T_IN, sectors[i], 4096, W);
		assert_int_equal(parse(DISK, false), 0);
		expect_req(BLK_REQ_IN, 4096, 1, STATUS);
		assert_int_equal(r.offset, sectors[i] * 512);
		expect_iov(0, DATA, 4096);
	}
	/* a read-only disk can still be read; the last sector is inside */
	simple(T_IN, SECTORS - 1, 512, W);
	assert_int_equal(parse(DISK, true), 0);
	expect_req(BLK_REQ_IN, 512, 1, STATUS);
	assert_int_equal(r.offset, DISK - 512);
}

static void out_well_formed(void **state)
{
	(void)state;
	chain(200);
	hdr_buf(HDR, 16, T_OUT, 5);
	buf(DATA, 512, R);
	buf(DATA + 0x2000, 1024, R);
	buf(STATUS, 1, W);
	assert_int_equal(parse(DISK, false), 0);
	expect_req(BLK_REQ_OUT, 1536, 2, STATUS);
	assert_int_equal(r.offset, 5 * 512);
	expect_iov(0, DATA, 512);
	expect_iov(1, DATA + 0x2000, 1024);
	/* up to the very end of the disk */
	simple(T_OUT, SECTORS - 2, 1024, R);
	assert_int_equal(parse(DISK, false), 0);
	expect_req(BLK_REQ_OUT, 1024, 1, STATUS);
	assert_int_equal(r.offset, DISK - 1024);
}

/* FLUSH has no data; its sector field is unused (5.2.6) and not looked at. */
static void flush_well_formed(void **state)
{
	static const uint64_t sectors[] = { 0, 77, UINT64_MAX };

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(sectors); i++) {
		simple(T_FLUSH, sectors[i], 0, W);
		assert_int_equal(parse(DISK, false), 0);
		expect_req(BLK_REQ_FLUSH, 0, 0, STATUS);
		/* a read-only disk may be flushed: nothing to write back */
		assert_int_equal(parse(DISK, true), 0);
		expect_req(BLK_REQ_FLUSH, 0, 0, STATUS);
	}
}

static void get_id_well_formed(void **state)
{
	(void)state;
	/* what Linux sends: 20 bytes, then the status */
	simple(T_GET_ID, 0, VIRTIO_BLK_ID_BYTES, W);
	assert_int_equal(parse(DISK, true), 0);
	expect_req(BLK_REQ_GET_ID, 20, 1, STATUS);
	expect_iov(0, DATA, 20);
	/* a bigger buffer: only 20 bytes of it are mapped */
	simple(T_GET_ID, 0, 4096, W);
	assert_int_equal(parse(DISK, false), 0);
	expect_req(BLK_REQ_GET_ID, 20, 1, STATUS);
	expect_iov(0, DATA, 20);
	/* the id and the status in one buffer */
	chain(3);
	hdr_buf(HDR, 16, T_GET_ID, 0);
	buf(DATA, 21, W);
	assert_int_equal(parse(DISK, false), 0);
	expect_req(BLK_REQ_GET_ID, 20, 1, DATA + 20);
	expect_iov(0, DATA, 20);
	/* spread over three buffers, the last one shared with the status */
	chain(4);
	hdr_buf(HDR, 16, T_GET_ID, 0);
	buf(DATA, 7, W);
	buf(DATA + 0x100, 7, W);
	buf(DATA + 0x200, 100, W);
	assert_int_equal(parse(DISK, false), 0);
	expect_req(BLK_REQ_GET_ID, 20, 3, DATA + 0x200 + 99);
	expect_iov(0, DATA, 7);
	expect_iov(1, DATA + 0x100, 7);
	expect_iov(2, DATA + 0x200, 6);
}

/*
 * The spec has the driver give 20 bytes; a shorter buffer gets what fits (a truncated id),
 * which is what blk_request.h promises ("at most VIRTIO_BLK_ID_BYTES"). No writable data at
 * all, or readable data, is BAD.
 */
static void get_id_short(void **state)
{
	(void)state;
	for (uint32_t len = 1; len < VIRTIO_BLK_ID_BYTES; len++) {
		simple(T_GET_ID, 0, len, W);
		assert_int_equal(parse(DISK, false), 0);
		expect_req(BLK_REQ_GET_ID, len, 1, STATUS);
		expect_iov(0, DATA, len);
	}
	simple(T_GET_ID, 0, 0, W);
	expect_parse_bad(DISK, false, STATUS);
	simple(T_GET_ID, 0, 20, R);
	expect_parse_bad(DISK, false, STATUS);
	chain(1);
	hdr_buf(HDR, 16, T_GET_ID, 0);
	buf(DATA, 512, R);
	buf(DATA + 0x1000, 20, W);
	buf(STATUS, 1, W);
	expect_parse_bad(DISK, false, STATUS);
	c.bufs[0].len = 17; /* one readable byte after the header is too many */
	c.nr = 1;
	buf(DATA + 0x1000, 20, W);
	buf(STATUS, 1, W);
	expect_parse_bad(DISK, false, STATUS);
}

/* The header may be split anywhere (2.7.4.1), also over 16 one-byte buffers. */
static void header_split(void **state)
{
	static const uint32_t splits[][4] = {
		{ 8, 8 }, { 4, 8, 4 }, { 1, 15 }, { 15, 1 }, { 4, 4, 4, 4 }, { 12, 4 },
	};
	uint8_t h[BLK_HDR_BYTES];

	(void)state;
	for (size_t s = 0; s < ARRAY_SIZE(splits); s++) {
		uint32_t got = 0;

		chain((uint16_t)s);
		make_hdr(h, T_OUT, 0x123);
		for (unsigned int k = 0; k < 4 && splits[s][k]; k++) {
			/* scattered, in both regions, in reverse address order */
			uint64_t gpa =
				k & 1 ? HIGH_GPA + 0x1000 - 0x100 * k : HDR + 0x1000 - 0x100 * k;

			memcpy(host(gpa), h + got, splits[s][k]);
			buf(gpa, splits[s][k], R);
			got += splits[s][k];
		}
		assert_int_equal(got, 16);
		buf(DATA, 512, R);
		buf(STATUS, 1, W);
		assert_int_equal(parse(DISK, false), 0);
		expect_req(BLK_REQ_OUT, 512, 1, STATUS);
		assert_int_equal(r.offset, 0x123 * 512);
		expect_iov(0, DATA, 512);
	}

	chain(9);
	make_hdr(h, T_IN, 42);
	for (unsigned int k = 0; k < 16; k++) {
		host(HDR + 0x10 * k)[0] = h[k];
		buf(HDR + 0x10 * k, 1, R);
	}
	buf(DATA, 1024, W);
	buf(STATUS, 1, W);
	assert_int_equal(parse(DISK, false), 0);
	expect_req(BLK_REQ_IN, 1024, 1, STATUS);
	assert_int_equal(r.offset, 42 * 512);
	expect_iov(0, DATA, 1024);
}

/* OUT data may start in the buffer that ends the header. */
static void data_after_header_in_same_buffer(void **state)
{
	uint8_t h[BLK_HDR_BYTES];

	(void)state;
	chain(1);
	hdr_buf(HDR, 16 + 1024, T_OUT, 8);
	buf(STATUS, 1, W);
	assert_int_equal(parse(DISK, false), 0);
	expect_req(BLK_REQ_OUT, 1024, 1, STATUS);
	assert_int_equal(r.offset, 8 * 512);
	expect_iov(0, HDR + 16, 1024);

	/* header 10 + 6, the 6 in a buffer that goes on with 600 data bytes, then 424 more */
	chain(2);
	make_hdr(h, T_OUT, 9);
	memcpy(host(HDR), h, 10);
	memcpy(host(HDR + 0x1000), h + 10, 6);
	buf(HDR, 10, R);
	buf(HDR + 0x1000, 6 + 600, R);
	buf(HIGH_GPA + 0x300, 424, R);
	buf(STATUS, 1, W);
	assert_int_equal(parse(DISK, false), 0);
	expect_req(BLK_REQ_OUT, 1024, 2, STATUS);
	assert_int_equal(r.offset, 9 * 512);
	expect_iov(0, HDR + 0x1000 + 6, 600);
	expect_iov(1, HIGH_GPA + 0x300, 424);
}

/* IN data may end in the buffer that holds the status, in its last byte. */
static void data_ends_in_status_buffer(void **state)
{
	(void)state;
	chain(1);
	hdr_buf(HDR, 16, T_IN, 0);
	buf(DATA, 513, W);
	assert_int_equal(parse(DISK, false), 0);
	expect_req(BLK_REQ_IN, 512, 1, DATA + 512);
	expect_iov(0, DATA, 512);

	chain(2);
	hdr_buf(HDR, 16, T_IN, 2);
	buf(DATA, 300, W);
	buf(HIGH_GPA + 0x2000, 212 + 1, W);
	assert_int_equal(parse(DISK, false), 0);
	expect_req(BLK_REQ_IN, 512, 2, HIGH_GPA + 0x2000 + 212);
	assert_int_equal(r.offset, 1024);
	expect_iov(0, DATA, 300);
	expect_iov(1, HIGH_GPA + 0x2000, 212);
}

/* Buffers in the region above the gap map to that region's host memory. */
static void iov_in_high_region(void **state)
{
	(void)state;
	chain(5);
	hdr_buf(HIGH_GPA, 16, T_IN, 1);
	buf(HIGH_GPA + HIGH_SIZE - 4096 - 1, 4096, W); /* ends one byte before the top */
	buf(DATA, 512, W);
	buf(HIGH_GPA + HIGH_SIZE - 1, 1, W); /* the last byte of RAM */
	assert_int_equal(parse(DISK, false), 0);
	expect_req(BLK_REQ_IN, 4608, 2, HIGH_GPA + HIGH_SIZE - 1);
	expect_iov(0, HIGH_GPA + HIGH_SIZE - 4096 - 1, 4096);
	expect_iov(1, DATA, 512);
	assert_int_equal(r.offset, 512);
	/* the host pointers really are the guest's bytes */
	host(HIGH_GPA + HIGH_SIZE - 4096 - 1)[17] = 0x5a;
	assert_int_equal(((uint8_t *)r.iov[0].iov_base)[17], 0x5a);
	*r.status = VIRTIO_BLK_S_UNSUPP;
	assert_int_equal(host(HIGH_GPA + HIGH_SIZE - 1)[0], VIRTIO_BLK_S_UNSUPP);
}

/* ---- bad requests: a status byte, IOERR, no data ---- */

static void range_past_disk_end(void **state)
{
	static const struct {
		uint64_t sector;
		uint32_t len;
		uint64_t disk;
	} bad[] = {
		{ SECTORS, 512, DISK },	     /* the sector after the last */
		{ SECTORS - 1, 1024, DISK }, /* starts inside, ends outside */
		{ SECTORS - 8, 4608, DISK },
		{ SECTORS + 1000, 512, DISK },
		{ 0, 512, 0 },	   /* an empty disk */
		{ 0, 1024, 1000 }, /* a disk that is not whole sectors */
		{ 1, 512, 1000 },
		{ 0x7fffffffffffffULL, 512, DISK },
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		simple(T_IN, bad[i].sector, bad[i].len, W);
		expect_parse_bad(bad[i].disk, false, STATUS);
		simple(T_OUT, bad[i].sector, bad[i].len, R);
		expect_parse_bad(bad[i].disk, false, STATUS);
	}
	/* the boundary cases that are fine */
	simple(T_IN, 0, 512, W);
	assert_int_equal(parse(512, false), 0);
	expect_req(BLK_REQ_IN, 512, 1, STATUS);
	simple(T_OUT, SECTORS - 8, 4096, R);
	assert_int_equal(parse(DISK, false), 0);
	expect_req(BLK_REQ_OUT, 4096, 1, STATUS);
}

/* sector * 512 and offset + len must not wrap, even on a disk of 2^64 - 1 bytes. */
static void sector_overflow(void **state)
{
	static const uint64_t sectors[] = {
		1ULL << 55,	  /* * 512 = 2^64: wraps to 0 */
		(1ULL << 55) + 1, /* wraps to 512 */
		UINT64_MAX,	  /* wraps to -512 */
		(1ULL << 55) - 1, /* 2^64 - 512: + 512 wraps to 0 */
		(1ULL << 63) + 2, /* wraps to 1024 */
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(sectors); i++) {
		simple(T_IN, sectors[i], 512, W);
		expect_parse_bad(UINT64_MAX, false, STATUS);
		simple(T_OUT, sectors[i], 1024, R);
		expect_parse_bad(UINT64_MAX, false, STATUS);
	}
	/* just below: fine */
	simple(T_IN, (1ULL << 55) - 2, 512, W);
	assert_int_equal(parse(UINT64_MAX, false), 0);
	expect_req(BLK_REQ_IN, 512, 1, STATUS);
	assert_int_equal(r.offset, 0 - 1024ULL);
}

/* 5.2.6.2: a write to a read-only device gets IOERR and writes nothing. */
static void out_read_only(void **state)
{
	(void)state;
	simple(T_OUT, 0, 512, R);
	expect_parse_bad(DISK, true, STATUS);
	simple(T_OUT, SECTORS, 512, R); /* bad twice over */
	expect_parse_bad(DISK, true, STATUS);
	chain(1);
	hdr_buf(HDR, 16 + 512, T_OUT, 0);
	buf(STATUS, 1, W);
	expect_parse_bad(DISK, true, STATUS);
	assert_int_equal(parse(DISK, false), 0);
	expect_req(BLK_REQ_OUT, 512, 1, STATUS);
}

/*
 * 5.2.6.1: IN and OUT data is whole sectors. The spec leaves the device's answer open;
 * Ember answers IOERR (BAD), also for no data at all.
 */
static void data_not_whole_sectors(void **state)
{
	static const uint32_t lens[] = { 0, 1, 100, 511, 513, 1023, 4095, 4097 };

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(lens); i++) {
		simple(T_IN, 0, lens[i], W);
		expect_parse_bad(DISK, false, STATUS);
		simple(T_OUT, 0, lens[i], R);
		expect_parse_bad(DISK, false, STATUS);
	}
	/* whole sectors only over the sum: 300 + 212 is fine, 300 + 213 is not */
	chain(1);
	hdr_buf(HDR, 16, T_IN, 0);
	buf(DATA, 300, W);
	buf(DATA + 0x1000, 213, W);
	buf(STATUS, 1, W);
	expect_parse_bad(DISK, false, STATUS);
	c.bufs[2].len = 212;
	assert_int_equal(parse(DISK, false), 0);
	expect_req(BLK_REQ_IN, 512, 2, STATUS);
	/* the header buffer's extra bytes count as OUT data */
	chain(2);
	hdr_buf(HDR, 17, T_OUT, 0);
	buf(DATA, 512, R);
	buf(STATUS, 1, W);
	expect_parse_bad(DISK, false, STATUS);
}

/* Data the wrong way: a read with readable data, a write with writable data. */
static void data_wrong_direction(void **state)
{
	(void)state;
	chain(1);
	hdr_buf(HDR, 16, T_IN, 0);
	buf(DATA, 512, R);
	buf(DATA + 0x1000, 512, W);
	buf(STATUS, 1, W);
	expect_parse_bad(DISK, false, STATUS);
	simple(T_IN, 0, 512, R);
	expect_parse_bad(DISK, false, STATUS);

	chain(2);
	hdr_buf(HDR, 16, T_OUT, 0);
	buf(DATA, 512, R);
	buf(DATA + 0x1000, 512, W);
	buf(STATUS, 1, W);
	expect_parse_bad(DISK, false, STATUS);
	simple(T_OUT, 0, 512, W);
	expect_parse_bad(DISK, false, STATUS);
	/* one writable byte too many */
	chain(3);
	hdr_buf(HDR, 16, T_OUT, 0);
	buf(DATA, 512, R);
	buf(STATUS, 2, W);
	expect_parse_bad(DISK, false, STATUS + 1);
}

static void flush_with_data(void **state)
{
	(void)state;
	simple(T_FLUSH, 0, 512, R);
	expect_parse_bad(DISK, false, STATUS);
	simple(T_FLUSH, 0, 512, W);
	expect_parse_bad(DISK, false, STATUS);
	chain(1);
	hdr_buf(HDR, 17, T_FLUSH, 0);
	buf(STATUS, 1, W);
	expect_parse_bad(DISK, false, STATUS);
	chain(2);
	hdr_buf(HDR, 16, T_FLUSH, 0);
	buf(STATUS, 2, W);
	expect_parse_bad(DISK, false, STATUS + 1);
}

/* Types Ember does not know get UNSUPP; the whole 32-bit type counts. */
static void unknown_type(void **state)
{
	/* not Ember's; then IN, OUT, FLUSH, GET_ID in the low byte only; then the extremes */
	static const uint32_t types[] = { 2,	   3,	       5,	  7,	     10,
					  11,	   13,	       14,	  0x7f,	     0x100,
					  0x101,   0x104,      0x108,	  0x1000000, 0x1000001,
					  0x10000, 0x80000000, 0xffffffff };

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(types); i++) {
		simple(types[i], 0, 512, W); /* a good IN but for the type */
		assert_int_equal(parse(DISK, false), 0);
		expect_req(BLK_REQ_UNSUPPORTED, 0, 0, STATUS);
		simple(types[i], 0, 0, W);
		assert_int_equal(parse(DISK, true), 0);
		expect_req(BLK_REQ_UNSUPPORTED, 0, 0, STATUS);
	}
}

/* ---- chains without a place for the status: -EINVAL ---- */

static void einval_no_writable_byte(void **state)
{
	(void)state;
	chain(1);
	hdr_buf(HDR, 16, T_OUT, 0);
	buf(DATA, 512, R);
	assert_int_equal(parse(DISK, false), -EINVAL);
	chain(2);
	hdr_buf(HDR, 16, T_FLUSH, 0);
	assert_int_equal(parse(DISK, false), -EINVAL);
	chain(3);
	assert_int_equal(parse(DISK, false), -EINVAL); /* an empty chain */
}

static void einval_no_header(void **state)
{
	(void)state;
	chain(1);
	buf(STATUS, 1, W);
	assert_int_equal(parse(DISK, false), -EINVAL);
	/* a header in a writable buffer is not a header */
	chain(2);
	make_hdr(host(HDR), T_FLUSH, 0);
	buf(HDR, 16, W);
	buf(STATUS, 1, W);
	assert_int_equal(parse(DISK, false), -EINVAL);
}

static void einval_short_header(void **state)
{
	static const uint32_t splits[][3] = { { 15 }, { 1 }, { 8, 7 }, { 4, 4, 4 } };

	(void)state;
	for (size_t s = 0; s < ARRAY_SIZE(splits); s++) {
		chain(1);
		make_hdr(host(HDR), T_FLUSH, 0);
		for (unsigned int k = 0, off = 0; k < 3 && splits[s][k]; off += splits[s][k++])
			buf(HDR + off, splits[s][k], R);
		buf(STATUS, 1, W);
		assert_int_equal(parse(DISK, false), -EINVAL);
		/* the header's missing bytes in the status buffer do not count either */
		c.bufs[c.nr - 1].len = 512;
		assert_int_equal(parse(DISK, false), -EINVAL);
	}
}

/* A chain not in the shape readable-then-writable. */
static void einval_readable_after_writable(void **state)
{
	(void)state;
	chain(1);
	hdr_buf(HDR, 16, T_IN, 0);
	buf(DATA, 512, W);
	buf(DATA + 0x1000, 512, R);
	buf(STATUS, 1, W);
	assert_int_equal(parse(DISK, false), -EINVAL);
	chain(2);
	buf(STATUS, 1, W);
	hdr_buf(HDR, 16, T_FLUSH, 0);
	assert_int_equal(parse(DISK, false), -EINVAL);
}

/* Any buffer outside RAM, wrapping, across a region's end, in the gap or empty. */
static void einval_outside_memory(void **state)
{
	static const struct {
		uint64_t gpa;
		uint32_t len;
	} bad[] = {
		{ LOW_SIZE, 512 },
		{ LOW_SIZE - 511, 512 }, /* crosses the end of the low region */
		{ LOW_SIZE - 1, 2 },
		{ LAYOUT_MMIO_GAP_START, 512 },
		{ HIGH_GPA - 1, 512 }, /* from the gap into RAM */
		{ HIGH_GPA + HIGH_SIZE - 511, 512 },
		{ HIGH_GPA + HIGH_SIZE, 1 },
		{ 0xfffffffffffffe00ULL, 0x200 }, /* wraps to 0 */
		{ 0xffffffffffffffffULL, 1 },
		{ 0xfffffffffffffff0ULL, 0x20 },
		{ DATA, 0 },	      /* empty */
		{ DATA, 0xfffffe00 }, /* far past the end */
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		/* as the data of an IN and of an OUT, and as the status */
		simple(T_IN, 0, 512, W);
		c.bufs[1].gpa = bad[i].gpa;
		c.bufs[1].len = bad[i].len;
		if (parse(DISK, false) != -EINVAL)
			fail_msg("IN data, case %zu", i);
		simple(T_OUT, 0, 512, R);
		c.bufs[1].gpa = bad[i].gpa;
		c.bufs[1].len = bad[i].len;
		if (parse(DISK, false) != -EINVAL)
			fail_msg("OUT data, case %zu", i);
		simple(T_FLUSH, 0, 0, W);
		c.bufs[1].gpa = bad[i].gpa;
		c.bufs[1].len = bad[i].len;
		if (parse(DISK, false) != -EINVAL)
			fail_msg("status, case %zu", i);
		/* a data buffer whose bytes a FLUSH would not even look at */
		simple(T_FLUSH, 0, 512, W);
		c.bufs[1].gpa = bad[i].gpa;
		c.bufs[1].len = bad[i].len;
		if (parse(DISK, false) != -EINVAL)
			fail_msg("flush data, case %zu", i);
		/* the header */
		simple(T_FLUSH, 0, 0, W);
		c.bufs[0].gpa = bad[i].gpa;
		c.bufs[0].len = bad[i].len;
		if (parse(DISK, false) != -EINVAL)
			fail_msg("header, case %zu", i);
	}
	/* the same, deep in a long chain */
	chain(1);
	hdr_buf(HDR, 16, T_IN, 0);
	for (unsigned int i = 0; i < 200; i++)
		buf(DATA + 512ULL * i, 512, W);
	buf(STATUS, 1, W);
	assert_int_equal(parse(DISK, false), 0);
	c.bufs[199].gpa = LOW_SIZE - 256;
	assert_int_equal(parse(DISK, false), -EINVAL);
	/*
	 * More buffers than a chain can hold. Where bufs[VIRTQ_CHAIN_MAX] would be, the struct
	 * has readable and writable: make them look like a good status buffer, so that only
	 * the count can make this chain bad (a parser that read on would also overrun).
	 */
	c.bufs[199].gpa = DATA + 512ULL * 198;
	c.nr--; /* the status, added again after more data */
	c.writable--;
	while (c.nr < VIRTQ_CHAIN_MAX - 1)
		buf(DATA + 512ULL * (c.nr - 1), 512, W);
	buf(STATUS, 1, W);
	assert_int_equal(c.nr, VIRTQ_CHAIN_MAX);
	assert_int_equal(parse(DISK, false), 0);
	assert_int_equal(r.kind, BLK_REQ_IN);
	if (offsetof(struct vq_chain, readable) ==
		    sizeof(struct vq_buf) * VIRTQ_CHAIN_MAX + offsetof(struct vq_chain, bufs) &&
	    sizeof(struct vq_buf) == 16) {
		c.readable = STATUS + 1;
		c.writable = 1 | 1ULL << 32; /* len 1, write */
	}
	c.nr = VIRTQ_CHAIN_MAX + 1;
	assert_int_equal(parse(DISK, false), -EINVAL);
}

/* ---- long chains ---- */

static void chain_max(void **state)
{
	uint8_t h[BLK_HDR_BYTES];

	(void)state;
	/* header, VIRTQ_CHAIN_MAX - 2 data buffers, status: what seg_max allows */
	chain(255);
	hdr_buf(HDR, 16, T_IN, 16);
	for (unsigned int i = 0; i < VIRTQ_CHAIN_MAX - 2; i++)
		buf(DATA + 0x1000ULL * (i % 200) + (i / 200) * 0x200, 512, W);
	buf(STATUS, 1, W);
	assert_int_equal(c.nr, VIRTQ_CHAIN_MAX);
	assert_int_equal(parse(DISK, false), 0);
	expect_req(BLK_REQ_IN, 512 * (VIRTQ_CHAIN_MAX - 2), VIRTQ_CHAIN_MAX - 2, STATUS);
	assert_int_equal(r.offset, 16 * 512);
	for (unsigned int i = 0; i < VIRTQ_CHAIN_MAX - 2; i++)
		expect_iov(i, c.bufs[i + 1].gpa, 512);

	/* header, VIRTQ_CHAIN_MAX - 1 writable data buffers, the last one with the status */
	chain(0);
	hdr_buf(HDR, 16, T_IN, 0);
	for (unsigned int i = 0; i < VIRTQ_CHAIN_MAX - 1; i++)
		buf(DATA + 0x800ULL * i, i == VIRTQ_CHAIN_MAX - 2 ? 513 : 512, W);
	assert_int_equal(c.nr, VIRTQ_CHAIN_MAX);
	assert_int_equal(parse(DISK, false), 0);
	expect_req(BLK_REQ_IN, 512 * (VIRTQ_CHAIN_MAX - 1), VIRTQ_CHAIN_MAX - 1,
		   DATA + 0x800ULL * (VIRTQ_CHAIN_MAX - 2) + 512);
	for (unsigned int i = 0; i < VIRTQ_CHAIN_MAX - 1; i++)
		expect_iov(i, DATA + 0x800ULL * i, 512);

	/* OUT: the header over 16 buffers, 239 data buffers, the status */
	chain(1);
	make_hdr(h, T_OUT, 3);
	for (unsigned int k = 0; k < 16; k++) {
		host(HDR + 2 * k)[0] = h[k];
		buf(HDR + 2 * k, 1, R);
	}
	for (unsigned int i = 0; i < VIRTQ_CHAIN_MAX - 17; i++)
		buf(HIGH_GPA + 0x100ULL * i, 512, R); /* overlapping: the device may not care */
	buf(STATUS, 1, W);
	assert_int_equal(c.nr, VIRTQ_CHAIN_MAX);
	assert_int_equal(parse(DISK, false), 0);
	expect_req(BLK_REQ_OUT, 512 * (VIRTQ_CHAIN_MAX - 17), VIRTQ_CHAIN_MAX - 17, STATUS);
	assert_int_equal(r.offset, 3 * 512);
	for (unsigned int i = 0; i < VIRTQ_CHAIN_MAX - 17; i++)
		expect_iov(i, HIGH_GPA + 0x100ULL * i, 512);
}

/* ---- through a real queue ---- */

static void put_desc(uint64_t table, unsigned int i, uint64_t addr, uint32_t len, uint16_t flags,
		     uint16_t next)
{
	uint64_t a = htole64(addr);
	uint32_t l = htole32(len);
	uint16_t f = htole16(flags), n = htole16(next);
	uint8_t *p = host(table + 16ULL * i);

	memcpy(p, &a, 8);
	memcpy(p + 8, &l, 4);
	memcpy(p + 12, &f, 2);
	memcpy(p + 14, &n, 2);
}

static void put16(uint64_t gpa, uint16_t v)
{
	v = htole16(v);
	memcpy(host(gpa), &v, 2);
}

/* Linux's shape: a direct read, then an indirect write, popped and parsed. */
static void from_queue(void **state)
{
	struct virtq q = { .size = 16,
			   .desc_gpa = 0x2000,
			   .avail_gpa = 0x3000,
			   .used_gpa = 0x4000,
			   .indirect = true,
			   .gm = &gm };

	(void)state;
	assert_int_equal(virtq__check(&q), 0);
	q.ready = true;
	make_hdr(host(HDR), T_IN, 6);
	put_desc(0x2000, 3, HDR, 16, VIRTQ_DESC_F_NEXT, 4);
	put_desc(0x2000, 4, HIGH_GPA, 2048, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 5);
	put_desc(0x2000, 5, STATUS, 1, VIRTQ_DESC_F_WRITE, 0);
	make_hdr(host(HDR + 0x100), T_OUT, 7);
	put_desc(0x5000, 0, HDR + 0x100, 16, VIRTQ_DESC_F_NEXT, 1);
	put_desc(0x5000, 1, DATA, 512, VIRTQ_DESC_F_NEXT, 2);
	put_desc(0x5000, 2, DATA + 0x1000, 512, VIRTQ_DESC_F_NEXT, 3);
	put_desc(0x5000, 3, STATUS + 1, 1, VIRTQ_DESC_F_WRITE, 0);
	put_desc(0x2000, 9, 0x5000, 64, VIRTQ_DESC_F_INDIRECT, 0);
	put16(0x3000 + 4, 3);
	put16(0x3000 + 6, 9);
	put16(0x3000 + 2, 2);

	assert_int_equal(virtq__pop(&q, &c), 1);
	assert_int_equal(parse(DISK, false), 0);
	expect_req(BLK_REQ_IN, 2048, 1, STATUS);
	assert_int_equal(r.head, 3);
	assert_int_equal(r.offset, 6 * 512);
	expect_iov(0, HIGH_GPA, 2048);

	assert_int_equal(virtq__pop(&q, &c), 1);
	assert_int_equal(parse(DISK, false), 0);
	expect_req(BLK_REQ_OUT, 1024, 2, STATUS + 1);
	assert_int_equal(r.head, 9);
	assert_int_equal(r.offset, 7 * 512);
	expect_iov(0, DATA, 512);
	expect_iov(1, DATA + 0x1000, 512);
	assert_int_equal(virtq__pop(&q, &c), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(in_well_formed, each),
		cmocka_unit_test_setup(out_well_formed, each),
		cmocka_unit_test_setup(flush_well_formed, each),
		cmocka_unit_test_setup(get_id_well_formed, each),
		cmocka_unit_test_setup(get_id_short, each),
		cmocka_unit_test_setup(header_split, each),
		cmocka_unit_test_setup(data_after_header_in_same_buffer, each),
		cmocka_unit_test_setup(data_ends_in_status_buffer, each),
		cmocka_unit_test_setup(iov_in_high_region, each),
		cmocka_unit_test_setup(range_past_disk_end, each),
		cmocka_unit_test_setup(sector_overflow, each),
		cmocka_unit_test_setup(out_read_only, each),
		cmocka_unit_test_setup(data_not_whole_sectors, each),
		cmocka_unit_test_setup(data_wrong_direction, each),
		cmocka_unit_test_setup(flush_with_data, each),
		cmocka_unit_test_setup(unknown_type, each),
		cmocka_unit_test_setup(einval_no_writable_byte, each),
		cmocka_unit_test_setup(einval_no_header, each),
		cmocka_unit_test_setup(einval_short_header, each),
		cmocka_unit_test_setup(einval_readable_after_writable, each),
		cmocka_unit_test_setup(einval_outside_memory, each),
		cmocka_unit_test_setup(chain_max, each),
		cmocka_unit_test_setup(from_queue, each),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
