// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests for the clone-safety devices (docs/clone-safety.md), without KVM:
 *
 * - src/virtio/rng.c, virtio-rng through its transport, with a fake guest memory and a fake
 *   driver (fake_virtio.h, fake_vring.h): bytes delivered and the used length right, a
 *   request capped at RNG_MAX_REQUEST, the pages it wrote marked dirty, hostile chains
 *   (readable buffers, no writable one, addresses outside the guest, loops) given back
 *   empty or the device put in NEEDS_RESET, never a crash; the rate limiter's buckets hold;
 *   a reset drops a parked request; a snapshot gives a parked request back.
 * - src/vmm/vmgenid.c, the VMGenID page: its layout through the bus ops, reads of every
 *   width at every offset, writes ignored, and its snapshot: each restore a new ID and the
 *   generation + 1.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "virtio/rng.h"
#include "vmm/event_loop.h"
#include "vmm/log.h"
#include "vmm/snapshot_file.h"
#include "vmm/vmgenid.h"

#include "fake_gmem.h"
#include "fake_virtio.h"
#include "fake_vring.h"
#include "virtio_mmio_regs.h"

#define MEM (16ULL << 20)
#define BASE 0xd0001000ULL
#define GSI 5
#define RING 0x10000ULL
#define DATA 0x100000ULL
#define QSIZE 16
#define FILL 0xa5
#define F_V1 (1ULL << VIRTIO_F_VERSION_1)
#define F_EVENT_IDX (1ULL << VIRTIO_F_EVENT_IDX)
#define F_INDIRECT (1ULL << VIRTIO_F_INDIRECT_DESC)

static struct {
	struct fake_gmem fg;
	struct event_loop loop;
	struct fake_vring ring;
	struct virtio_rng *r;
	struct entropy_config cfg;
} g;

/* ---- helpers ---- */

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void pump(void)
{
	for (int i = 0; i < 1000 && event_loop__run_once(&g.loop, 0) > 0; i++)
		;
}

/* Runs the loop until the ring has `want` used elements not read yet, or ms pass. */
static void pump_until_used(uint16_t want, uint64_t ms)
{
	uint64_t end = now_ms() + ms;

	while (now_ms() < end && (uint16_t)(fake_gmem__load16_acquire(&g.fg, g.ring.used + 2) -
					    g.ring.last_used) < want)
		event_loop__run_once(&g.loop, 10);
}

static void make_device(struct virtio_rng **out)
{
	error__clear();
	if (virtio_rng__create(out, &g.cfg, -1, &g.fg.gm, BASE, GSI)) {
		print_error("virtio_rng__create: %s\n", error__get());
		fail();
	}
	assert_int_equal(virtio_rng__watch(*out, &g.loop), 0);
}

static void start(uint64_t features)
{
	fake_vring__init(&g.ring, &g.fg, RING, QSIZE, features & F_EVENT_IDX);
	if (fake_virtio__start(&g.r->t, VIRTIO_ID_RNG, F_V1 | features, &g.ring, 1)) {
		print_error("start: %s\n", error__get());
		fail();
	}
}

static int setup(void **state)
{
	(void)state;
	memset(&g, 0, sizeof(g));
	assert_int_equal(fake_gmem__create(&g.fg, MEM), 0);
	assert_int_equal(event_loop__init(&g.loop), 0);
	log__set_level(LOG_LEVEL_ERROR);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	virtio_rng__destroy(g.r);
	event_loop__destroy(&g.loop);
	fake_gmem__destroy(&g.fg);
	return 0;
}

/* A started device without a rate limiter. */
static int setup_started(void **state)
{
	setup(state);
	make_device(&g.r);
	start(F_EVENT_IDX);
	return 0;
}

static void fill_pattern(uint64_t gpa, uint32_t len)
{
	memset(fake_gmem__ptr(&g.fg, gpa, len), FILL, len);
}

static bool untouched(uint64_t gpa, uint32_t len)
{
	const uint8_t *p = fake_gmem__ptr(&g.fg, gpa, len);

	for (uint32_t i = 0; i < len; i++)
		if (p[i] != FILL)
			return false;
	return true;
}

/* No run of 8 bytes still holds FILL: random bytes do that with probability 2^-64. */
static bool randomised(uint64_t gpa, uint32_t len)
{
	for (uint32_t off = 0; off + 8 <= len; off += 8)
		if (untouched(gpa + off, 8))
			return false;
	return true;
}

/* One chain of writable buffers (lens[i] bytes at gpas[i]), published and kicked. */
static uint16_t request(const uint64_t *gpas, const uint32_t *lens, unsigned int n)
{
	uint16_t head = fake_vring__add(&g.ring, gpas, lens, n, true);

	fake_vring__publish(&g.ring);
	assert_int_equal(fake_virtio__kick(&g.r->t, 0), 0);
	return head;
}

/* The next used element must be head's, with length want_len. */
static void expect_used(uint16_t head, uint32_t want_len)
{
	uint32_t id, len;

	pump_until_used(1, 2000);
	assert_true(fake_vring__next_used(&g.ring, &id, &len));
	assert_int_equal(id, head);
	assert_int_equal(len, want_len);
}

static uint32_t status(void)
{
	return fake_virtio__read(&g.r->t, R_STATUS);
}

/* ---- virtio-rng ---- */

static void test_identity_and_features(void **state)
{
	uint64_t f;

	(void)state;
	assert_int_equal(fake_virtio__read(&g.r->t, R_DEVICE_ID), VIRTIO_ID_RNG);
	f = fake_virtio__offered(&g.r->t);
	assert_true(f & F_V1);
	assert_true(f & F_EVENT_IDX);
	assert_true(f & F_INDIRECT);
	/* no config space: reads are 0 */
	assert_int_equal(fake_virtio__read(&g.r->t, R_CONFIG), 0);
	assert_true(status() & VIRTIO_STATUS_DRIVER_OK);
}

static void test_bytes_delivered(void **state)
{
	uint64_t gpas[3] = { DATA, DATA + 0x1000, DATA + 0x2000 };
	uint32_t lens[3] = { 16, 40, 200 };
	uint16_t head;

	(void)state;
	fill_pattern(DATA, 0x3000);
	head = request(gpas, lens, 1);
	expect_used(head, 16);
	assert_true(randomised(DATA, 16));
	assert_true(untouched(DATA + 16, 64));
	/* a chain of three buffers: each filled, the used length their sum */
	head = request(gpas, lens, 3);
	expect_used(head, 256);
	assert_true(randomised(DATA + 0x1000, 40) && randomised(DATA + 0x2000, 200));
	assert_true(untouched(DATA + 0x2000 + 200, 64));
	/* two requests for the same buffer get different bytes */
	{
		uint8_t first[16];

		memcpy(first, fake_gmem__ptr(&g.fg, DATA, 16), 16);
		head = request(gpas, lens, 1);
		expect_used(head, 16);
		assert_memory_not_equal(first, fake_gmem__ptr(&g.fg, DATA, 16), 16);
	}
	assert_int_equal(g.r->m.entropy_event_count, 3);
	assert_int_equal(g.r->m.entropy_bytes, 16 + 256 + 16);
	assert_int_equal(g.r->m.entropy_event_fails, 0);
	assert_int_equal(g.r->t.m.needs_reset, 0);
}

/*
 * A driver may make a buffer available and kick before DRIVER_OK (Linux does, for some
 * devices): the kick is dropped then, and the transport replays it at DRIVER_OK.
 */
static void test_kick_before_driver_ok_served_at_driver_ok(void **state)
{
	uint64_t gpa = DATA;
	uint32_t len = 64;
	uint16_t head;

	(void)state;
	make_device(&g.r);
	fake_vring__init(&g.ring, &g.fg, RING, QSIZE, false);
	assert_int_equal(fake_virtio__configure(&g.r->t, VIRTIO_ID_RNG, F_V1, &g.ring, 1), 0);
	fill_pattern(DATA, len);
	head = request(&gpa, &len, 1);
	pump();
	assert_true(untouched(DATA, len));
	assert_int_equal(fake_gmem__load16_acquire(&g.fg, g.ring.used + 2), 0);
	fake_virtio__write(&g.r->t, R_STATUS,
			   VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
				   VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);
	expect_used(head, len);
	assert_true(randomised(DATA, len));
}

static void test_many_requests_in_one_kick(void **state)
{
	uint16_t heads[QSIZE];

	(void)state;
	for (unsigned int i = 0; i < QSIZE; i++) {
		uint64_t gpa = DATA + i * 64ULL;
		uint32_t len = 32;

		heads[i] = fake_vring__add(&g.ring, &gpa, &len, 1, true);
	}
	fake_vring__publish(&g.ring);
	assert_int_equal(fake_virtio__kick(&g.r->t, 0), 0);
	pump_until_used(QSIZE, 2000);
	for (unsigned int i = 0; i < QSIZE; i++)
		expect_used(heads[i], 32);
	assert_int_equal(g.r->m.entropy_bytes, QSIZE * 32);
}

static void test_request_capped(void **state)
{
	uint64_t gpa = DATA;
	uint32_t len = 1 << 20;
	uint64_t gpas[2] = { DATA + (2 << 20), DATA + (2 << 20) + RNG_MAX_REQUEST - 8 };
	uint32_t lens[2] = { RNG_MAX_REQUEST - 8, 4096 };

	(void)state;
	fill_pattern(DATA, 4 << 20);
	expect_used(request(&gpa, &len, 1), RNG_MAX_REQUEST);
	assert_true(randomised(DATA, RNG_MAX_REQUEST));
	assert_true(untouched(DATA + RNG_MAX_REQUEST, len - RNG_MAX_REQUEST));
	/* the cap falls inside the second buffer */
	expect_used(request(gpas, lens, 2), RNG_MAX_REQUEST);
	assert_true(randomised(gpas[1], 8));
	assert_true(untouched(gpas[1] + 8, 4096 - 8));
}

static void test_written_pages_marked_dirty(void **state)
{
	uint64_t gpas[2] = { DATA + 0x5000, DATA + 0x9ff0 };
	uint32_t lens[2] = { 8, 0x20 }; /* the second crosses into page 0xa */
	uint64_t *bitmap;
	uint64_t words = memory__bitmap_words(g.fg.gm.regions[0].size);

	(void)state;
	assert_int_equal(memory__track_dirty(&g.fg.gm), 0);
	bitmap = calloc(words, sizeof(*bitmap));
	assert_non_null(bitmap);
	memory__take_dirty(&g.fg.gm, 0, bitmap); /* nothing yet */
	memset(bitmap, 0, words * sizeof(*bitmap));
	expect_used(request(gpas, lens, 2), 0x28);
	memory__take_dirty(&g.fg.gm, 0, bitmap);
	for (uint64_t page = DATA / 4096; page < DATA / 4096 + 16; page++) {
		bool want = page == (DATA + 0x5000) / 4096 || page == (DATA + 0x9000) / 4096 ||
			    page == (DATA + 0xa000) / 4096;

		assert_int_equal(!!(bitmap[page / 64] & (1ULL << (page % 64))), want);
	}
	free(bitmap);
}

static void test_bad_chains_given_back_empty(void **state)
{
	uint64_t gpas[2] = { DATA, DATA + 0x1000 };
	uint32_t lens[2] = { 64, 64 };
	bool readable_then_writable[2] = { false, true };
	uint16_t head;

	(void)state;
	fill_pattern(DATA, 0x2000);
	/* readable only: nothing to write into */
	head = fake_vring__add(&g.ring, gpas, lens, 2, false);
	fake_vring__publish(&g.ring);
	assert_int_equal(fake_virtio__kick(&g.r->t, 0), 0);
	expect_used(head, 0);
	/* a readable buffer before a writable one */
	head = fake_vring__add_chain(&g.ring, gpas, lens, readable_then_writable, 2);
	fake_vring__publish(&g.ring);
	assert_int_equal(fake_virtio__kick(&g.r->t, 0), 0);
	expect_used(head, 0);
	assert_true(untouched(DATA, 0x2000));
	assert_int_equal(g.r->m.entropy_event_fails, 2);
	assert_int_equal(g.r->m.entropy_bytes, 0);
	/* the device goes on */
	assert_false(status() & VIRTIO_STATUS_NEEDS_RESET);
	expect_used(request(gpas, lens, 1), 64);
}

/* After each hostile chain: NEEDS_RESET, nothing written; a reset and restart works. */
static void expect_broken_then_restart(void)
{
	uint64_t gpa = DATA;
	uint32_t len = 32;

	pump();
	assert_true(status() & VIRTIO_STATUS_NEEDS_RESET);
	assert_true(untouched(DATA, 0x1000));
	start(F_EVENT_IDX);
	expect_used(request(&gpa, &len, 1), 32);
	fill_pattern(DATA, 0x1000);
}

static void test_hostile_chains(void **state)
{
	uint64_t past_ram = g.fg.bytes - 16;
	uint64_t gpas[2] = { past_ram, DATA };
	uint32_t lens[2] = { 64, 64 };

	(void)state;
	fill_pattern(DATA, 0x1000);
	/* a buffer that runs off the end of guest RAM */
	request(gpas, lens, 1);
	expect_broken_then_restart();
	/* a buffer in the MMIO gap, nowhere near RAM */
	gpas[0] = 0xd0000000ULL;
	request(gpas, lens, 1);
	expect_broken_then_restart();
	/* address + length wraps */
	gpas[0] = UINT64_MAX - 8;
	request(gpas, lens, 1);
	expect_broken_then_restart();
	/* a loop: descriptor 0 points at itself */
	fake_gmem__set_desc(&g.fg, g.ring.desc, 0, DATA, 16, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT,
			    0);
	fake_gmem__put16(&g.fg, g.ring.avail + 4 + 2ULL * (g.ring.avail_idx % QSIZE), 0);
	g.ring.avail_idx++;
	fake_vring__publish(&g.ring);
	assert_int_equal(fake_virtio__kick(&g.r->t, 0), 0);
	expect_broken_then_restart();
	/* a zero-length buffer */
	gpas[0] = DATA;
	lens[0] = 0;
	request(gpas, lens, 1);
	expect_broken_then_restart();
	assert_int_equal(g.r->t.m.needs_reset, 5);
	assert_int_equal(g.r->m.entropy_event_fails, 5);
}

static void test_huge_chain_of_many_buffers(void **state)
{
	static uint64_t gpas[QSIZE];
	static uint32_t lens[QSIZE];

	(void)state;
	/* sixteen 1 GiB-ish claims that all lie in RAM: refused as outside RAM, not filled */
	for (unsigned int i = 0; i < QSIZE; i++) {
		gpas[i] = DATA;
		lens[i] = 0x80000000u;
	}
	fill_pattern(DATA, 0x1000);
	request(gpas, lens, QSIZE);
	expect_broken_then_restart();
	/* sixteen buffers of 8 KiB over the same bytes: 128 KiB asked, 64 KiB given */
	for (unsigned int i = 0; i < QSIZE; i++)
		lens[i] = 8192;
	expect_used(request(gpas, lens, QSIZE), RNG_MAX_REQUEST);
}

static void limited_device(uint64_t bw_size, uint64_t bw_ms, uint64_t ops_size, uint64_t ops_ms)
{
	g.cfg.has_rate_limiter = true;
	g.cfg.rate_limiter.has_bandwidth = bw_size != 0;
	g.cfg.rate_limiter.bandwidth = (struct token_bucket_config){ bw_size, 0, bw_ms };
	g.cfg.rate_limiter.has_ops = ops_size != 0;
	g.cfg.rate_limiter.ops = (struct token_bucket_config){ ops_size, 0, ops_ms };
	make_device(&g.r);
	start(F_EVENT_IDX);
}

static void test_rate_limit_ops(void **state)
{
	uint64_t gpa = DATA, t0;
	uint32_t len = 16, id, got;
	uint16_t heads[4];

	(void)state;
	limited_device(0, 0, 2, 300); /* 2 requests, then one per 150 ms */
	t0 = now_ms();
	for (unsigned int i = 0; i < 4; i++)
		heads[i] = fake_vring__add(&g.ring, &gpa, &len, 1, true);
	fake_vring__publish(&g.ring);
	assert_int_equal(fake_virtio__kick(&g.r->t, 0), 0);
	pump();
	expect_used(heads[0], 16);
	expect_used(heads[1], 16);
	assert_false(fake_vring__next_used(&g.ring, &id, &got)); /* held back */
	assert_true(g.r->m.entropy_rate_limiter_throttled >= 1);
	expect_used(heads[2], 16);
	expect_used(heads[3], 16);
	assert_true(now_ms() - t0 >= 250);
	assert_true(g.r->m.rate_limiter_event_count >= 2);
}

static void test_rate_limit_bytes(void **state)
{
	uint64_t gpa = DATA, t0;
	uint32_t len = 600, id, got;
	uint16_t heads[2];

	(void)state;
	limited_device(1000, 200, 0, 0); /* 1000 bytes, refilled in 200 ms */
	t0 = now_ms();
	heads[0] = fake_vring__add(&g.ring, &gpa, &len, 1, true);
	heads[1] = fake_vring__add(&g.ring, &gpa, &len, 1, true);
	fake_vring__publish(&g.ring);
	assert_int_equal(fake_virtio__kick(&g.r->t, 0), 0);
	pump();
	expect_used(heads[0], 600);
	assert_false(fake_vring__next_used(&g.ring, &id, &got));
	expect_used(heads[1], 600);
	assert_true(now_ms() - t0 >= 40); /* 200 more bytes take 40 ms */
	assert_int_equal(g.r->m.entropy_bytes, 1200);
}

static void test_reset_drops_parked_request(void **state)
{
	uint64_t gpa = DATA;
	uint32_t len = 16, id, got;

	(void)state;
	limited_device(0, 0, 1, 100000); /* one request, then one per 100 s */
	expect_used(request(&gpa, &len, 1), 16);
	request(&gpa, &len, 1);
	pump();
	assert_true(g.r->has_parked);
	fake_virtio__write(&g.r->t, R_STATUS, 0);
	assert_false(g.r->has_parked);
	start(F_EVENT_IDX);
	request(&gpa, &len, 1); /* still no tokens: it waits, and is not used */
	pump();
	assert_false(fake_vring__next_used(&g.ring, &id, &got));
}

/* A snapshot taken with a parked request: the restored device takes it again and serves it. */
static void test_snapshot_gives_parked_request_back(void **state)
{
	struct snapshot_file_writer w;
	struct snapshot_file_reader rd;
	struct virtio_rng *copy = NULL;
	const uint8_t *data;
	uint64_t gpa = DATA;
	uint32_t len = 24;
	uint16_t parked;
	size_t size;

	(void)state;
	limited_device(0, 0, 1, 300);
	expect_used(request(&gpa, &len, 1), 24);
	parked = request(&gpa, &len, 1);
	pump();
	assert_true(g.r->has_parked);
	assert_int_equal(snapshot_file__writer_init(&w, "0.1.0", "test cpu"), 0);
	assert_int_equal(virtio_rng__save(g.r, &w), 0);
	assert_int_equal(snapshot_file__finish(&w, &data, &size), 0);
	assert_int_equal(snapshot_file__open_buffer(&rd, data, size), 0);
	/* the old device goes away with its parked chain; the copy takes it from the ring */
	virtio_rng__destroy(g.r);
	g.r = NULL;
	make_device(&copy);
	error__clear();
	assert_int_equal(virtio_rng__restore(copy, &rd), 0);
	g.r = copy;
	assert_true(status() & VIRTIO_STATUS_DRIVER_OK);
	expect_used(parked, 24);
	/* the same snapshot does not restore into a device with other buckets */
	g.cfg.rate_limiter.ops.size = 2;
	make_device(&copy);
	error__clear();
	assert_int_equal(virtio_rng__restore(copy, &rd), -EINVAL);
	assert_non_null(strstr(error__get(), "entropy device: rate_limiter"));
	virtio_rng__destroy(copy);
	snapshot_file__close(&rd);
	snapshot_file__writer_free(&w);
}

/* ---- the VMGenID page ---- */

static uint64_t page_read(struct vmgenid *v, uint64_t off, uint32_t len)
{
	uint8_t buf[8];
	uint64_t x = 0;

	memset(buf, 0xee, sizeof(buf));
	vmgenid__ops.read(v, off, buf, len);
	for (uint32_t i = 0; i < len; i++)
		x |= (uint64_t)buf[i] << (8 * i);
	return x;
}

static void test_vmgenid_page(void **state)
{
	static const uint32_t widths[] = { 1, 2, 4, 8 };
	struct vmgenid a, b;
	uint8_t image[32] = { 0 };

	(void)state;
	assert_int_equal(vmgenid__init(&a), 0);
	assert_int_equal(vmgenid__init(&b), 0);
	assert_memory_not_equal(a.id, b.id, VMGENID_ID_BYTES);
	assert_int_equal(a.generation, 0);
	a.generation = 0x0102030405060708ULL;
	memcpy(image, a.id, 16);
	for (int i = 0; i < 8; i++)
		image[16 + i] = (uint8_t)(a.generation >> (8 * i));
	/* every width at every offset of the first 32 bytes, and the rest reads 0 */
	for (size_t w = 0; w < 4; w++) {
		for (uint64_t off = 0; off + widths[w] <= 32; off++) {
			uint64_t want = 0;

			for (uint32_t i = 0; i < widths[w]; i++)
				want |= (uint64_t)image[off + i] << (8 * i);
			assert_int_equal(page_read(&a, off, widths[w]), want);
		}
		assert_int_equal(page_read(&a, 4096 - widths[w], widths[w]), 0);
		assert_int_equal(page_read(&a, 100, widths[w]), 0);
	}
	/* writes change nothing */
	{
		const uint8_t junk[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };

		b = a;
		for (uint64_t off = 0; off < 32; off += 4)
			vmgenid__ops.write(&a, off, junk, 8 - (off % 8));
		assert_memory_equal(&a, &b, sizeof(a));
	}
}

/* A state file holding what save wrote (with_section), or nothing of vmgenid. */
static void vmgenid_file(const struct vmgenid *v, bool with_section, struct snapshot_file_writer *w,
			 struct snapshot_file_reader *rd)
{
	const uint8_t *data;
	size_t size;

	assert_int_equal(snapshot_file__writer_init(w, "0.1.0", "test cpu"), 0);
	snapshot_file__begin_section(w, SNAPSHOT_SECTION_I8042, SNAPSHOT_FILE_MUST_UNDERSTAND);
	snapshot_file__put_u8(w, 0);
	assert_int_equal(snapshot_file__end_section(w), 0);
	if (with_section)
		assert_int_equal(vmgenid__save(v, w), 0);
	assert_int_equal(snapshot_file__finish(w, &data, &size), 0);
	assert_int_equal(snapshot_file__open_buffer(rd, data, size), 0);
}

static void test_vmgenid_restore(void **state)
{
	struct snapshot_file_writer w;
	struct snapshot_file_reader rd;
	struct vmgenid src, c1, c2;

	(void)state;
	assert_int_equal(vmgenid__init(&src), 0);
	src.generation = 6;
	vmgenid_file(&src, true, &w, &rd);
	assert_int_equal(vmgenid__init(&c1), 0);
	assert_int_equal(vmgenid__init(&c2), 0);
	assert_int_equal(vmgenid__restore(&c1, &rd), 0);
	assert_int_equal(vmgenid__restore(&c2, &rd), 0);
	/* each clone: generation + 1, an ID of its own */
	assert_int_equal(c1.generation, 7);
	assert_int_equal(c2.generation, 7);
	assert_memory_not_equal(c1.id, src.id, VMGENID_ID_BYTES);
	assert_memory_not_equal(c2.id, src.id, VMGENID_ID_BYTES);
	assert_memory_not_equal(c1.id, c2.id, VMGENID_ID_BYTES);
	assert_int_equal(page_read(&c1, 16, 8), 7);
	snapshot_file__close(&rd);
	snapshot_file__writer_free(&w);
	/* a snapshot without the section: generation 0 before, 1 now */
	vmgenid_file(&src, false, &w, &rd);
	assert_int_equal(vmgenid__restore(&c1, &rd), 0);
	assert_int_equal(c1.generation, 1);
	snapshot_file__close(&rd);
	snapshot_file__writer_free(&w);
	/* a counter that cannot grow */
	src.generation = UINT64_MAX;
	vmgenid_file(&src, true, &w, &rd);
	c1.generation = 3;
	error__clear();
	assert_int_equal(vmgenid__restore(&c1, &rd), -EINVAL);
	assert_int_equal(c1.generation, 3);
	assert_non_null(strstr(error__get(), "generation"));
	snapshot_file__close(&rd);
	snapshot_file__writer_free(&w);
}

static void test_vmgenid_damaged_section(void **state)
{
	struct snapshot_file_writer w;
	struct snapshot_file_reader rd;
	struct vmgenid v;
	const uint8_t *data;
	size_t size;

	(void)state;
	assert_int_equal(vmgenid__init(&v), 0);
	/* too short, and too long */
	for (int extra = -1; extra <= 1; extra += 2) {
		uint8_t payload[25] = { 1 };

		assert_int_equal(snapshot_file__writer_init(&w, "0.1.0", "test cpu"), 0);
		snapshot_file__begin_section(&w, SNAPSHOT_SECTION_VMGENID, 0);
		snapshot_file__put_bytes(&w, payload, (size_t)(24 + extra));
		assert_int_equal(snapshot_file__end_section(&w), 0);
		assert_int_equal(snapshot_file__finish(&w, &data, &size), 0);
		assert_int_equal(snapshot_file__open_buffer(&rd, data, size), 0);
		error__clear();
		assert_int_equal(vmgenid__restore(&v, &rd), -EINVAL);
		assert_int_equal(v.generation, 0);
		snapshot_file__close(&rd);
		snapshot_file__writer_free(&w);
	}
}

/* A test on a started device without a rate limiter, and one that makes its own. */
#define STARTED(t) cmocka_unit_test_setup_teardown(t, setup_started, teardown)
#define OWN_DEVICE(t) cmocka_unit_test_setup_teardown(t, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		STARTED(test_identity_and_features),
		STARTED(test_bytes_delivered),
		STARTED(test_many_requests_in_one_kick),
		STARTED(test_request_capped),
		STARTED(test_written_pages_marked_dirty),
		STARTED(test_bad_chains_given_back_empty),
		STARTED(test_hostile_chains),
		STARTED(test_huge_chain_of_many_buffers),
		OWN_DEVICE(test_kick_before_driver_ok_served_at_driver_ok),
		OWN_DEVICE(test_rate_limit_ops),
		OWN_DEVICE(test_rate_limit_bytes),
		OWN_DEVICE(test_reset_drops_parked_request),
		OWN_DEVICE(test_snapshot_gives_parked_request_back),
		cmocka_unit_test(test_vmgenid_page),
		cmocka_unit_test(test_vmgenid_restore),
		cmocka_unit_test(test_vmgenid_damaged_section),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
